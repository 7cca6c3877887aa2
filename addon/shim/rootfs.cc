#include "rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "util.h"

namespace {

// ---- path resolution inside the root ----
//
// Every lookup of a path inside the container treats its root as "/": absolute symlinks and ".." in
// the image cannot lead out of it.

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (!part.empty() && part != ".") parts.push_back(part);
    i = j + 1;
  }
  return parts;
}

std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t i = 0;
  for (;;) {
    size_t j = s.find(sep, i);
    if (j == std::string::npos) {
      parts.push_back(s.substr(i));
      return parts;
    }
    parts.push_back(s.substr(i, j - i));
    i = j + 1;
  }
}

std::string clean_path(const std::string& path) {
  std::string out;
  for (const auto& p : split_path(path)) out += "/" + p;
  return out.empty() ? "/" : out;
}

enum class Create { kNone, kDir, kFile };

// Resolves path inside the root one component at a time, each opened with O_NOFOLLOW relative to the
// directory before it. A symlink's target takes its place in the remaining path and is resolved from
// the root (absolute target) or from where it sits (relative); ".." stops at the root. Missing
// components are created when asked (directories, and an empty file last for kFile), also below a
// symlink that points to something not there yet, as runtimes do for mount targets. Returns an O_PATH
// fd, or -1 with errno set.
int walk_in_root(int rootfd, const std::string& path, Create create) {
  std::vector<Fd> dirs;  // the directories resolved so far; dirs[0] is the root
  dirs.emplace_back(fcntl(rootfd, F_DUPFD_CLOEXEC, 3));
  if (!dirs[0].ok()) return -1;
  std::vector<std::string> pending = split_path(path);
  size_t next = 0;
  int links = 0;
  while (next < pending.size()) {
    const std::string name = pending[next++];
    if (name == "..") {
      if (dirs.size() > 1) dirs.pop_back();
      continue;
    }
    int at = dirs.back().get();
    Fd fd(openat(at, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.ok() && errno == ENOENT && create != Create::kNone) {
      int r;
      if (next == pending.size() && create == Create::kFile) {
        r = openat(at, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (r >= 0) close(r);
      } else {
        r = mkdirat(at, name.c_str(), 0755);
      }
      if (r < 0 && errno != EEXIST) return -1;
      fd.reset(openat(at, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!fd.ok()) return -1;
    struct stat st;
    if (fstat(fd.get(), &st) < 0) return -1;
    if (!S_ISLNK(st.st_mode)) {
      dirs.push_back(std::move(fd));
      continue;
    }
    char target[4096];
    ssize_t n = readlinkat(fd.get(), "", target, sizeof target);
    if (n < 0) return -1;
    if (++links > 40 || n == static_cast<ssize_t>(sizeof target)) {
      errno = ELOOP;
      return -1;
    }
    std::vector<std::string> rest = split_path(std::string(target, static_cast<size_t>(n)));
    rest.insert(rest.end(), pending.begin() + static_cast<long>(next), pending.end());
    pending = std::move(rest);
    next = 0;
    if (target[0] == '/') dirs.resize(1);
  }
  return dirs.back().release();
}

long sys_openat2(int dirfd, const std::string& path, uint64_t flags, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = flags;
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
}

// Opens (O_PATH) the path inside the root, creating what is missing when asked. An existing path is
// looked up by the kernel in one openat2(RESOLVE_IN_ROOT) call, which also refuses /proc magic links;
// creating, or a kernel without openat2 (before 5.6), goes through walk_in_root.
Fd open_in_root(int rootfd, const std::string& path, Create create) {
  static bool have_openat2 = true;
  std::string rel;
  for (const auto& p : split_path(path)) rel += (rel.empty() ? "" : "/") + p;
  if (have_openat2) {
    int fd = static_cast<int>(sys_openat2(rootfd, rel.empty() ? "." : rel, O_PATH | O_CLOEXEC,
                                          RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
    if (fd >= 0) return Fd(fd);
    if (errno == ENOSYS) {
      have_openat2 = false;
    } else if (errno != ENOENT || create == Create::kNone) {
      fail("open", clean_path(path));
      return Fd();
    }
  }
  int fd = walk_in_root(rootfd, rel, create);
  if (fd < 0) fail(create == Create::kNone ? "open" : "create", clean_path(path));
  return Fd(fd);
}

// A path through which mount(2) and friends reach what an O_PATH fd refers to, without resolving any
// path inside the container again.
std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// What preopen_rootfs opened: the root (after its bind onto itself) and the bind sources by path.
int g_root_fd = -1;
bool g_userns = false;
std::map<std::string, int> g_sources;

// The path mount(2) takes for a bind source: the preopened descriptor's when there is one.
std::string source_path(const std::string& source) {
  auto it = g_sources.find(source);
  return it == g_sources.end() ? source : fd_path(it->second);
}

// ---- mount options ----

struct FlagOption {
  const char* name;
  bool clear;
  unsigned long flag;
};
const FlagOption kFlagOptions[] = {
    {"defaults", false, 0},
    {"ro", false, MS_RDONLY},          {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},      {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},        {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},      {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},   {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},      {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME}, {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},  {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
    {"bind", false, MS_BIND},          {"rbind", false, MS_BIND | MS_REC},
};

struct PropagationOption {
  const char* name;
  unsigned long flag;
};
const PropagationOption kPropagationOptions[] = {
    {"private", MS_PRIVATE},         {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},           {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},             {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE},   {"runbindable", MS_UNBINDABLE | MS_REC},
};

// Recursive variants ("rro" and so on) apply to every mount below the target, through mount_setattr(2).
struct AttrOption {
  const char* name;
  bool clear;
  uint64_t attr;
};
const AttrOption kAttrOptions[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},     {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID}, {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},   {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC}, {"rexec", true, MOUNT_ATTR_NOEXEC},
};

// Options that runtimes accept but that mean nothing to this shim.
const char* const kIgnoredOptions[] = {"tmpcopyup", "idmap", "ridmap", "notmpcopyup"};

struct MountOptions {
  unsigned long flags = 0;
  unsigned long propagation = 0;
  uint64_t attr_set = 0;
  uint64_t attr_clr = 0;
  std::string data;  // filesystem-specific options: mode=, size=, newinstance, ptmxmode=, gid=, ...
};

MountOptions parse_mount_options(const std::vector<std::string>& options) {
  MountOptions o;
  for (const auto& opt : options) {
    bool done = false;
    for (const auto& f : kFlagOptions) {
      if (opt != f.name) continue;
      if (f.clear)
        o.flags &= ~f.flag;
      else
        o.flags |= f.flag;
      done = true;
    }
    for (const auto& p : kPropagationOptions) {
      if (opt != p.name) continue;
      o.propagation = p.flag;
      done = true;
    }
    for (const auto& a : kAttrOptions) {
      if (opt != a.name) continue;
      if (a.clear)
        o.attr_clr |= a.attr;
      else
        o.attr_set |= a.attr;
      done = true;
    }
    for (const char* ign : kIgnoredOptions) done = done || opt == ign;
    if (done) continue;
    if (!o.data.empty()) o.data += ',';
    o.data += opt;
  }
  return o;
}

// Per-mount flags of the mount at path that a bind remount would otherwise reset.
unsigned long current_mount_flags(const std::string& path) {
  struct statvfs sv;
  if (statvfs(path.c_str(), &sv) < 0) return 0;
  unsigned long flags = 0;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

bool fail_mount(const SpecMount& m, int err = errno) {
  std::string src = m.source.empty() ? m.type : m.source;
  return fail(("mount " + src + " to").c_str(), m.destination, err);
}

// mountinfo writes space, tab, newline and backslash in paths as \ooo.
std::string unescape_mountinfo(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] == '\\' && i + 3 < in.size()) {
      int v = 0;
      bool octal = true;
      for (size_t k = 1; k <= 3; k++) {
        char c = in[i + k];
        if (c < '0' || c > '7') octal = false;
        v = v * 8 + (c - '0');
      }
      if (octal) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

// mount_setattr(AT_RECURSIVE) without the call (before Linux 5.12): every mount at or below the one that
// fd refers to, as mountinfo lists them, is bind-remounted with its own flags and the change. Unlike the
// one call this is not atomic, which does not matter here: nothing else runs in the container's mount
// namespace yet.
bool remount_tree(int fd, const std::string& where, uint64_t attr_set, uint64_t attr_clr) {
  char buf[4096];
  ssize_t n = readlink(fd_path(fd).c_str(), buf, sizeof buf - 1);
  if (n <= 0) return fail("readlink", where);
  const std::string top(buf, static_cast<size_t>(n));
  std::string mountinfo;
  if (!read_file("/proc/self/mountinfo", mountinfo)) return fail("read", "/proc/self/mountinfo");
  const struct {
    uint64_t attr;
    unsigned long flag;
  } kMap[] = {{MOUNT_ATTR_RDONLY, MS_RDONLY}, {MOUNT_ATTR_NOSUID, MS_NOSUID}, {MOUNT_ATTR_NODEV, MS_NODEV},
              {MOUNT_ATTR_NOEXEC, MS_NOEXEC}};
  unsigned long set = 0, clr = 0;
  for (const auto& e : kMap) {
    if (attr_set & e.attr) set |= e.flag;
    if (attr_clr & e.attr) clr |= e.flag;
  }
  for (const auto& line : split_on(mountinfo, '\n')) {
    std::vector<std::string> f = split_on(line, ' ');
    if (f.size() < 5) continue;
    const std::string point = unescape_mountinfo(f[4]);
    if (point != top && (top == "/" ? false : point.rfind(top + "/", 0) != 0)) continue;
    struct statvfs sv;
    if (statvfs(point.c_str(), &sv) < 0) continue;  // under a mount that hides it: not reachable anyway
    unsigned long flags = current_mount_flags(point) | ((sv.f_flag & ST_RDONLY) ? MS_RDONLY : 0);
    flags = (flags | set) & ~clr;
    if (mount(nullptr, point.c_str(), nullptr, MS_BIND | MS_REMOUNT | flags, nullptr) < 0)
      return fail(("remount (mount_setattr needs Linux 5.12) " + where + " at").c_str(), point);
  }
  return true;
}

// Applies propagation and recursive attributes to the mount now on m.destination.
bool finish_mount(int rootfd, const SpecMount& m, const MountOptions& o) {
  if (!o.propagation && !o.attr_set && !o.attr_clr) return true;
  Fd mnt = open_in_root(rootfd, m.destination, Create::kNone);
  if (!mnt.ok()) return false;
  if (o.propagation && mount(nullptr, fd_path(mnt.get()).c_str(), nullptr, o.propagation, nullptr) < 0)
    return fail("set propagation of", m.destination);
  if (o.attr_set || o.attr_clr) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = o.attr_set;
    attr.attr_clr = o.attr_clr;
    if (syscall(SYS_mount_setattr, mnt.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
      if (errno != ENOSYS) return fail("mount_setattr", m.destination);
      return remount_tree(mnt.get(), m.destination, o.attr_set, o.attr_clr);
    }
  }
  return true;
}

// Where this process sits in a hierarchy, from /proc/self/cgroup: "" for cgroup2 ("0::/path"), else
// the hierarchy's superblock options ("memory", "xattr,name=systemd") matched against the controllers
// of each line. "/" when not found.
std::string own_cgroup(const std::string& fstype, const std::string& options) {
  std::string text;
  if (!read_file("/proc/self/cgroup", text)) return "/";
  std::vector<std::string> opts = split_on(options, ',');
  for (const auto& line : split_on(text, '\n')) {
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (fstype == "cgroup2") {
      if (ctrls.empty()) return path;
      continue;
    }
    if (ctrls.empty()) continue;
    bool all = true;
    for (const auto& c : split_on(ctrls, ','))
      all = all && std::find(opts.begin(), opts.end(), c) != opts.end();
    if (all) return path;
  }
  return "/";
}

// Mounts a cgroup hierarchy at `target` (an O_PATH fd). In the container's own cgroup namespace the new
// mount's root is the container's cgroup already. In the host's (--cgroupns host) it would be the whole
// host tree: the hierarchy is mounted on `scratch` first and only the container's own cgroup bound at
// the target, as Docker shows it.
bool mount_hierarchy(int target, const std::string& scratch, const std::string& fstype, unsigned long flags, const std::string& data,
                     bool host_ns, const std::string& where) {
  const char* opts = data.empty() ? nullptr : data.c_str();
  if (!host_ns) {
    if (mount(fstype.c_str(), fd_path(target).c_str(), fstype.c_str(), flags, opts) < 0) return fail(("mount " + fstype + " to").c_str(), where);
    return true;
  }
  // By path: a /proc/self/fd link would lead to the directory under the new mount, not into it.
  const std::string& at = scratch;
  if (mount(fstype.c_str(), at.c_str(), fstype.c_str(), flags, opts) < 0) return fail(("mount " + fstype + " to").c_str(), where);
  std::string rel = own_cgroup(fstype, data);
  std::string sub = at + (rel == "/" ? "" : rel);
  bool ok = mount(sub.c_str(), fd_path(target).c_str(), nullptr, MS_BIND, nullptr) == 0;
  int err = errno;
  umount2(at.c_str(), MNT_DETACH);
  if (!ok) return fail("bind the container's cgroup to", where, err);
  return true;
}

// A "cgroup" mount: cgroup2 on a unified host; on a v1 (or hybrid) host a tmpfs holding one mount per
// hierarchy the host has under /sys/fs/cgroup, as Docker shows them. Each shows the container's cgroup
// as its root (see mount_hierarchy).
bool mount_cgroup(int rootfd, const SpecMount& m, const MountOptions& o, bool host_ns) {
  Fd target = open_in_root(rootfd, m.destination, Create::kDir);
  if (!target.ok()) return false;
  unsigned long flags = o.flags & ~(MS_REC | MS_BIND);
  // A scratch directory for --cgroupns host, in the shim's state directory (the working directory here),
  // not in the image.
  std::string scratch_dir;
  if (host_ns) {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == nullptr) return fail("getcwd", "");
    scratch_dir = std::string(cwd) + "/cgroup-scratch";
    if (mkdir(scratch_dir.c_str(), 0700) < 0 && errno != EEXIST) return fail("mkdir", scratch_dir);
  }
  struct ScratchGone {
    const std::string& dir;
    bool on;
    ~ScratchGone() { if (on) rmdir(dir.c_str()); }
  } gone{scratch_dir, host_ns};
  struct statfs sfs;
  if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
    if (!mount_hierarchy(target.get(), scratch_dir, "cgroup2", flags, "", host_ns, m.destination)) return false;
    return finish_mount(rootfd, m, o);
  }
  if (mount("tmpfs", fd_path(target.get()).c_str(), "tmpfs", flags & ~MS_RDONLY, "mode=755") < 0)
    return fail_mount(m);
  Fd dir = open_in_root(rootfd, m.destination, Create::kNone);
  if (!dir.ok()) return false;

  std::string mountinfo;
  if (!read_file("/proc/self/mountinfo", mountinfo)) return false;
  const std::string prefix = "/sys/fs/cgroup/";
  std::vector<std::string> mounted;  // a hierarchy mounted twice on the host is shown once
  size_t pos = 0;
  while (pos < mountinfo.size()) {
    size_t eol = mountinfo.find('\n', pos);
    if (eol == std::string::npos) eol = mountinfo.size();
    std::string line = mountinfo.substr(pos, eol - pos);
    pos = eol + 1;
    // "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
    std::vector<std::string> f = split_on(line, ' ');
    size_t dash = 0;
    for (size_t k = 6; k < f.size() && dash == 0; k++)
      if (f[k] == "-") dash = k;
    if (dash == 0 || f.size() < dash + 4) continue;
    const std::string& mountpoint = f[4];
    const std::string& fstype = f[dash + 1];
    if ((fstype != "cgroup" && fstype != "cgroup2") || mountpoint.rfind(prefix, 0) != 0) continue;
    std::string name = mountpoint.substr(prefix.size());
    if (name.empty() || name.find('/') != std::string::npos) continue;
    bool seen = false;
    for (const auto& n : mounted) seen = seen || n == name;
    if (seen) continue;
    mounted.push_back(name);
    // The superblock options name the hierarchy ("memory", "cpu,cpuacct", "xattr,name=systemd").
    std::string data;
    for (const auto& opt : split_on(f[dash + 3], ','))
      if (!opt.empty() && opt != "rw" && opt != "ro") data += (data.empty() ? "" : ",") + opt;
    if (mkdirat(dir.get(), name.c_str(), 0755) < 0 && errno != EEXIST) return fail("mkdir", m.destination + "/" + name);
    Fd sub(openat(dir.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.ok()) return fail("open", m.destination + "/" + name);
    if (!mount_hierarchy(sub.get(), scratch_dir, fstype, flags, data, host_ns, m.destination + "/" + name)) return false;
  }
  // Hosts link combined hierarchies under their single names (cpu -> cpu,cpuacct); copy those links.
  if (DIR* d = opendir("/sys/fs/cgroup")) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_type != DT_LNK) continue;
      char link[256];
      ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
      if (n <= 0) continue;
      link[n] = '\0';
      symlinkat(link, dir.get(), e->d_name);  // best effort: a missing link only loses a convenience name
    }
    closedir(d);
  }
  if (flags & MS_RDONLY) {
    if (mount(nullptr, fd_path(dir.get()).c_str(), nullptr, MS_REMOUNT | flags, "mode=755") < 0)
      return fail("remount read-only", m.destination);
  }
  return finish_mount(rootfd, m, o);
}

bool mount_entry(int rootfd, const SpecMount& m, const Spec& s) {
  MountOptions o = parse_mount_options(m.options);
  bool bind = (o.flags & MS_BIND) || m.type == "bind";
  if (m.type == "cgroup" && !bind) return mount_cgroup(rootfd, m, o, s.find_ns("cgroup") == nullptr);

  Create create = Create::kDir;
  const std::string source = bind ? source_path(m.source) : m.source;
  if (bind) {
    struct stat st;
    if (stat(source.c_str(), &st) < 0) return fail_mount(m);
    if (!S_ISDIR(st.st_mode)) create = Create::kFile;
  }
  Fd target = open_in_root(rootfd, m.destination, create);
  if (!target.ok()) return false;
  std::string tpath = fd_path(target.get());

  if (!bind) {
    const char* data = o.data.empty() ? nullptr : o.data.c_str();
    if (mount(m.source.empty() ? m.type.c_str() : m.source.c_str(), tpath.c_str(), m.type.c_str(), o.flags,
              data) < 0) {
      // A sysfs can only be made by a root of the network namespace's owner: a container in a user
      // namespace of its own that joined berthd's network namespace (owned by the host's) gets the
      // host's /sys bound instead, read-only, as runc does.
      if (errno == EPERM && m.type == "sysfs" && g_userns) {
        SpecMount sys{m.destination, "bind", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}};
        return mount_entry(rootfd, sys, s);
      }
      return fail_mount(m);
    }
    return finish_mount(rootfd, m, o);
  }

  if (mount(source.c_str(), tpath.c_str(), nullptr, MS_BIND | (o.flags & MS_REC), nullptr) < 0)
    return fail_mount(m);
  // A bind mount ignores flags such as ro; they take effect through a remount of the new mount, which
  // has to be looked up again (the old fd still points below it).
  unsigned long extra = o.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
  if (extra) {
    Fd mnt = open_in_root(rootfd, m.destination, Create::kNone);
    if (!mnt.ok()) return false;
    std::string mpath = fd_path(mnt.get());
    if (mount(nullptr, mpath.c_str(), nullptr, MS_BIND | MS_REMOUNT | extra, nullptr) < 0) {
      // Flags inherited from the source mount can be locked (when it came from a less privileged
      // namespace); retry keeping them.
      if (errno != EPERM ||
          mount(nullptr, mpath.c_str(), nullptr, MS_BIND | MS_REMOUNT | extra | current_mount_flags(mpath),
                nullptr) < 0)
        return fail(("remount " + m.destination + " with").c_str(), "options", errno);
    }
  }
  return finish_mount(rootfd, m, o);
}

// ---- /dev ----

struct DefaultDevice {
  const char* path;
  unsigned major, minor;
};
const DefaultDevice kDefaultDevices[] = {
    {"/dev/null", 1, 3},    {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
    {"/dev/random", 1, 8},  {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};
const char* const kDevLinks[][2] = {
    {"ptmx", "pts/ptmx"},           {"fd", "/proc/self/fd"},        {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
};

std::string dir_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}
std::string base_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool make_device(int rootfd, const SpecDevice& d) {
  std::string path = clean_path(d.path);
  Fd parent = open_in_root(rootfd, dir_name(path), Create::kDir);
  if (!parent.ok()) return false;
  std::string name = base_name(path);
  if (unlinkat(parent.get(), name.c_str(), 0) < 0 && errno != ENOENT) return fail("remove", path);
  mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
  mode_t perm = d.has_mode ? d.mode : 0666;
  if (mknodat(parent.get(), name.c_str(), type | perm, makedev(d.major, d.minor)) < 0) {
    // Without CAP_MKNOD (a user namespace) the host's node is bound over an empty file instead.
    if (errno != EPERM || type == S_IFIFO) return fail("mknod", path);
    int f = openat(parent.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (f < 0) return fail("create", path);
    close(f);
    Fd target = open_in_root(rootfd, path, Create::kNone);
    if (!target.ok()) return false;
    if (mount(d.path.c_str(), fd_path(target.get()).c_str(), nullptr, MS_BIND, nullptr) < 0)
      return fail("bind mount device", path);
    return true;
  }
  // mknod applied the umask; the node gets exactly the requested mode and owner.
  if (fchmodat(parent.get(), name.c_str(), perm, 0) < 0) return fail("chmod", path);
  if (fchownat(parent.get(), name.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) < 0) return fail("chown", path);
  return true;
}

bool create_devices(int rootfd, const Spec& s) {
  // When the host's /dev (or another directory) is bound on /dev, it already has its nodes.
  for (const auto& m : s.mounts) {
    if (clean_path(m.destination) != "/dev") continue;
    bool bind = m.type == "bind";
    for (const auto& o : m.options) bind = bind || o == "bind" || o == "rbind";
    if (bind) return true;
  }
  for (const auto& def : kDefaultDevices) {
    bool listed = false;
    for (const auto& d : s.devices) listed = listed || clean_path(d.path) == def.path;
    if (listed) continue;
    SpecDevice d;
    d.path = def.path;
    d.major = def.major;
    d.minor = def.minor;
    if (!make_device(rootfd, d)) return false;
  }
  Fd dev = open_in_root(rootfd, "/dev", Create::kDir);
  if (!dev.ok()) return false;
  for (const auto& link : kDevLinks) {
    if (symlinkat(link[1], dev.get(), link[0]) < 0 && errno != EEXIST)
      return fail("symlink", std::string("/dev/") + link[0]);
  }
  for (const auto& d : s.devices)
    if (!make_device(rootfd, d)) return false;
  return true;
}

// ---- after pivot_root ----

bool mask_path(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return true;  // nothing there to hide
    return fail("stat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    if (mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY, nullptr) < 0) return fail("mask", path);
  } else if (mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr) < 0) {
    return fail("mask", path);
  }
  return true;
}

bool readonly_path(const std::string& path) {
  if (mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return true;
    return fail("bind mount", path);
  }
  if (mount(nullptr, path.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | current_mount_flags(path),
            nullptr) < 0)
    return fail("remount read-only", path);
  return true;
}

}  // namespace

bool preopen_rootfs(const Spec& s) {
  g_userns = true;
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return fail("make / rprivate", "");
  // The bind of the root onto itself is made in this mount namespace, so unlike the mounts it was copied
  // with, it is not locked, and pivot_root takes it.
  if (mount(s.root_path.c_str(), s.root_path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    return fail("bind mount root", s.root_path);
  g_root_fd = open(s.root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g_root_fd < 0) return fail("open root", s.root_path);
  for (const auto& m : s.mounts) {
    bool bind = m.type == "bind";
    for (const auto& o : m.options) bind = bind || o == "bind" || o == "rbind";
    if (!bind || m.source.empty() || g_sources.count(m.source)) continue;
    int fd = open(m.source.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) return fail(("mount " + m.source + " to").c_str(), m.destination);
    g_sources[m.source] = fd;
  }
  return true;
}

bool setup_rootfs(const Spec& s) {
  Fd root;
  if (g_root_fd >= 0) {
    root.reset(g_root_fd);  // preopen_rootfs made / rprivate and bound the root already
    g_root_fd = -1;
  } else {
    // Nothing mounted from here on may propagate back to the host.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return fail("make / rprivate", "");
    if (mount(s.root_path.c_str(), s.root_path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
      return fail("bind mount root", s.root_path);
    root.reset(open(s.root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  if (!root.ok()) return fail("open root", s.root_path);

  for (const auto& m : s.mounts)
    if (!mount_entry(root.get(), m, s)) return false;
  if (!create_devices(root.get(), s)) return false;
  // Created as root before the user change, as Docker does, so a non-root user gets its workdir.
  if (!open_in_root(root.get(), s.cwd, Create::kDir).ok()) return false;

  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only the
  // container's tree, without needing a directory for the old root inside the image.
  if (fchdir(root.get()) < 0) return fail("chdir", s.root_path);
  if (syscall(SYS_pivot_root, ".", ".") < 0) return fail("pivot_root", s.root_path);
  if (mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) return fail("make old root rslave", "");
  if (umount2(".", MNT_DETACH) < 0) return fail("unmount old root", "");
  if (chdir("/") < 0) return fail("chdir", "/");
  return true;
}

bool finish_rootfs(const Spec& s) {
  for (const auto& p : s.masked_paths)
    if (!mask_path(p)) return false;
  for (const auto& p : s.readonly_paths)
    if (!readonly_path(p)) return false;
  if (s.root_readonly &&
      mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | current_mount_flags("/"), nullptr) < 0)
    return fail("remount / read-only", "");
  return true;
}
