#include "fs/inroot.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

#include "util/file.h"

namespace berth {
namespace fs {

namespace {

constexpr int kMaxLinks = 40;

// The components of a path, without empty ones and ".".
std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string c = path.substr(i, j - i);
    if (!c.empty() && c != ".") out.push_back(std::move(c));
    i = j + 1;
  }
  return out;
}

// Split, with ".." taken off lexically (never above the start): for paths whose parent is made or
// looked up on its own, where "a/../b" must mean "b".
std::vector<std::string> Clean(const std::string& path) {
  std::vector<std::string> out;
  for (auto& c : Split(path)) {
    if (c == "..") {
      if (!out.empty()) out.pop_back();
    } else {
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && i < parts.size(); i++) s += (i ? "/" : "") + parts[i];
  return s;
}

std::string Join(const std::vector<std::string>& parts) { return Join(parts, parts.size()); }

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// Whether openat2 can be used: not asked away (BERTH_INROOT_WALK=1, to run the walk on any kernel) and
// known to this kernel (5.6). A seccomp filter around berthd that refuses it with EPERM counts as missing.
bool UseOpenat2() {
  static const bool use = [] {
    const char* forced = getenv("BERTH_INROOT_WALK");
    if (forced && *forced && strcmp(forced, "0") != 0) return false;
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    if (fd >= 0) {
      close(static_cast<int>(fd));
      return true;
    }
    return false;
  }();
  return use;
}

// What the walk reached.
struct WalkOut {
  std::vector<std::string> names;  // the resolved path inside the root, by component
  bool exists = false;
  UniqueFd fd;                     // O_PATH fd of it (when it exists)
  struct stat st {};
};

// The component walk: each component is opened with O_PATH | O_NOFOLLOW relative to the directory before
// it (fds held on a stack), so the kernel never follows a symlink or ".." for us. A symlink's text takes
// its place in the remaining path, from the root when absolute; ".." pops our own stack, never below the
// root. After a missing component the rest is kept lexically.
Status Walk(int root, const std::string& path, bool follow_final, WalkOut* out) {
  std::vector<UniqueFd> dirs;
  int r = fcntl(root, F_DUPFD_CLOEXEC, 3);
  if (r < 0) return Status::Sys(errno, "fcntl", path);
  dirs.emplace_back(r);
  std::vector<std::string> names;
  std::vector<std::string> pending = Split(path);
  size_t next = 0;
  int links = 0;
  bool missing = false;
  UniqueFd leaf;
  struct stat leaf_st {};
  while (next < pending.size()) {
    std::string name = pending[next++];
    const bool last = next == pending.size();
    if (name == "..") {
      if (!names.empty()) {
        names.pop_back();
        if (!missing) dirs.pop_back();
      }
      continue;
    }
    if (missing) {
      names.push_back(name);
      continue;
    }
    UniqueFd fd(openat(dirs.back().get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      int e = errno;
      if (e != ENOENT) return Status::Sys(e, "openat", "/" + Join(names) + (names.empty() ? "" : "/") + name);
      missing = true;
      names.push_back(name);
      continue;
    }
    struct stat st;
    if (fstat(fd.get(), &st) < 0) return Status::Sys(errno, "fstat", path);
    if (S_ISLNK(st.st_mode) && (!last || follow_final)) {
      char target[PATH_MAX];
      ssize_t n = readlinkat(fd.get(), "", target, sizeof target);
      if (n < 0) return Status::Sys(errno, "readlinkat", path);
      if (++links > kMaxLinks || n == static_cast<ssize_t>(sizeof target)) return Status::Sys(ELOOP, "openat", path);
      std::string text(target, static_cast<size_t>(n));
      std::vector<std::string> rest = Split(text);
      rest.insert(rest.end(), pending.begin() + static_cast<long>(next), pending.end());
      pending = std::move(rest);
      next = 0;
      if (!text.empty() && text[0] == '/') {
        dirs.resize(1);
        names.clear();
      }
      continue;
    }
    if (!last) {
      if (!S_ISDIR(st.st_mode)) return Status::Sys(ENOTDIR, "openat", "/" + Join(names) + (names.empty() ? "" : "/") + name);
      dirs.push_back(std::move(fd));
      names.push_back(name);
      continue;
    }
    names.push_back(name);
    leaf = std::move(fd);
    leaf_st = st;
  }
  out->names = std::move(names);
  out->exists = !missing;
  if (missing) return Status::Ok();
  if (leaf.valid()) {
    out->fd = std::move(leaf);
    out->st = leaf_st;
    return Status::Ok();
  }
  // The path ended on a directory pushed by "..", a symlink to a directory, or the root itself.
  out->fd = std::move(dirs.back());
  if (fstat(out->fd.get(), &out->st) < 0) return Status::Sys(errno, "fstat", path);
  return Status::Ok();
}

// Reopens an O_PATH fd for I/O through its /proc/self/fd link, which leads to exactly that inode.
Status Reopen(int fd, int flags, const std::string& path, UniqueFd* out) {
  int r = open(FdPath(fd).c_str(), (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_PATH)) | O_CLOEXEC);
  if (r < 0) return Status::Sys(errno, "open", path);
  out->Reset();
  *out = UniqueFd(r);
  return Status::Ok();
}

// The directory fd of `comps` minus its last component, looked up beneath root.
Status OpenParent(int root, const std::vector<std::string>& comps, UniqueFd* out) {
  return OpenInRoot(root, Join(comps, comps.size() - 1), O_PATH | O_DIRECTORY, true, out);
}

// The names in directory `dirfd` (without . and ..), sorted.
Status ReadDirNames(int dirfd, const std::string& where, std::vector<std::string>* names) {
  int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Status::Sys(errno, "openat", where);
  DIR* d = fdopendir(dfd);
  if (!d) {
    int e = errno;
    close(dfd);
    return Status::Sys(e, "fdopendir", where);
  }
  errno = 0;
  while (struct dirent* de = readdir(d)) {
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) names->emplace_back(de->d_name);
  }
  int e = errno;
  closedir(d);
  if (e != 0) return Status::Sys(e, "readdir", where);
  std::sort(names->begin(), names->end());
  return Status::Ok();
}

// Removes `name` in dirfd, a directory with everything in it; gone already is not an error.
Status RemoveAt(int parent, const std::string& name, const std::string& where) {
  struct stat st;
  if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    return errno == ENOENT ? Status::Ok() : Status::Sys(errno, "fstatat", where);
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd dir(openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return Status::Sys(errno, "openat", where);
    std::vector<std::string> names;
    Status s = ReadDirNames(dir.get(), where, &names);
    for (const auto& n : names) {
      if (!s.ok()) break;
      s = RemoveAt(dir.get(), n, where + "/" + n);
    }
    if (!s.ok()) return s;
  }
  if (unlinkat(parent, name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT) {
    return Status::Sys(errno, "unlinkat", where);
  }
  return Status::Ok();
}

// Whether a failed chown may be let go: a file system that keeps no owners (vfat) or cannot map the
// ids (EINVAL), or refuses root (EPERM on NFS with root squashing), as docker cp lets it go.
bool OwnerNotKept(int err) { return err == EPERM || err == EINVAL || err == EOPNOTSUPP; }

// chown and chmod of a file made here, through an fd of it (chown first: it clears set-id bits).
Status OwnAndMode(int fd, uint32_t uid, uint32_t gid, uint32_t mode, const std::string& where, bool lenient = false) {
  if (fchown(fd, uid, gid) < 0 && !(lenient && OwnerNotKept(errno))) return Status::Sys(errno, "fchown", where);
  if (fchmod(fd, mode & 07777) < 0) return Status::Sys(errno, "fchmod", where);
  return Status::Ok();
}

// chmod of something that cannot be opened for I/O (a device node, a fifo): through an O_PATH fd.
Status ChmodPath(int fd, uint32_t mode, const std::string& where) {
  if (chmod(FdPath(fd).c_str(), mode & 07777) < 0) return Status::Sys(errno, "chmod", where);
  return Status::Ok();
}


}  // namespace

const char* InRootResolver() { return UseOpenat2() ? "openat2" : "walk"; }

Status OpenInRoot(int root, const std::string& path, int flags, bool follow_final, UniqueFd* out) {
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) return Status::Invalid(EINVAL, "OpenInRoot does not create", path);
  const std::string rel = Join(Split(path));
  if (UseOpenat2()) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | (follow_final ? 0 : O_NOFOLLOW));
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    // EAGAIN: a rename elsewhere raced a ".." lookup, and the kernel asks to try again.
    for (int tries = 0;; tries++) {
      long fd = syscall(SYS_openat2, root, rel.empty() ? "." : rel.c_str(), &how, sizeof how);
      if (fd >= 0) {
        out->Reset();
        *out = UniqueFd(static_cast<int>(fd));
        return Status::Ok();
      }
      if (errno != EAGAIN || tries >= 16) return Status::Sys(errno, "openat2", "/" + rel);
    }
  }
  WalkOut w;
  Status s = Walk(root, path, follow_final, &w);
  if (!s.ok()) return s;
  if (!w.exists) return Status::Sys(ENOENT, "openat", "/" + rel);
  if ((flags & O_DIRECTORY) && !S_ISDIR(w.st.st_mode)) return Status::Sys(ENOTDIR, "openat", "/" + rel);
  if ((flags & O_PATH) == O_PATH) {
    *out = std::move(w.fd);
    return Status::Ok();
  }
  if (S_ISLNK(w.st.st_mode)) return Status::Sys(ELOOP, "openat", "/" + rel);
  return Reopen(w.fd.get(), flags, "/" + rel, out);
}

Status ResolveInRoot(int root, const std::string& path, bool follow_final, Resolved* out) {
  WalkOut w;
  Status s = Walk(root, path, follow_final, &w);
  if (!s.ok()) return s;
  out->inner = "/" + Join(w.names);
  out->exists = w.exists;
  if (w.exists) out->st = w.st;
  return Status::Ok();
}

Status ListInRoot(int root, const std::string& path, std::vector<Entry>* out) {
  UniqueFd dir;
  Status s = OpenInRoot(root, path, O_PATH | O_DIRECTORY, false, &dir);
  if (!s.ok()) return s;
  std::vector<std::string> names;
  s = ReadDirNames(dir.get(), path, &names);
  if (!s.ok()) return s;
  for (auto& n : names) {
    Entry e;
    if (fstatat(dir.get(), n.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue;  // gone meanwhile (a running container)
      return Status::Sys(errno, "fstatat", path + "/" + n);
    }
    e.name = std::move(n);
    out->push_back(std::move(e));
  }
  return Status::Ok();
}

Status OpenFileInRoot(int root, const std::string& path, UniqueFd* out, struct stat* st) {
  // O_PATH first: a fifo or device put there meanwhile must not be opened (a fifo would block).
  UniqueFd p;
  Status s = OpenInRoot(root, path, O_PATH, false, &p);
  if (!s.ok()) return s;
  if (fstat(p.get(), st) < 0) return Status::Sys(errno, "fstat", path);
  if (!S_ISREG(st->st_mode)) return Status::Invalid(EINVAL, "not a regular file", path);
  return Reopen(p.get(), O_RDONLY, path, out);
}

Status ReadlinkInRoot(int root, const std::string& path, std::string* out) {
  UniqueFd p;
  Status s = OpenInRoot(root, path, O_PATH, false, &p);
  if (!s.ok()) return s;
  char buf[PATH_MAX];
  ssize_t n = readlinkat(p.get(), "", buf, sizeof buf);
  if (n < 0) return Status::Sys(errno, "readlinkat", path);
  out->assign(buf, static_cast<size_t>(n));
  return Status::Ok();
}

Status ReadFileInRoot(int root, const std::string& path, size_t limit, std::string* out, bool* found) {
  *found = false;
  UniqueFd p;
  Status s = OpenInRoot(root, path, O_PATH, true, &p);
  if (!s.ok()) return s.err() == ENOENT || s.err() == ENOTDIR || s.err() == ELOOP ? Status::Ok() : s;
  struct stat st;
  if (fstat(p.get(), &st) < 0) return Status::Sys(errno, "fstat", path);
  if (!S_ISREG(st.st_mode)) return Status::Ok();
  UniqueFd f;
  s = Reopen(p.get(), O_RDONLY, path, &f);
  if (!s.ok()) return s;
  char buf[65536];
  while (out->size() < limit) {
    ssize_t n = read(f.get(), buf, std::min(sizeof buf, limit - out->size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Sys(errno, "read", path);
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  *found = true;
  return Status::Ok();
}

Status MkdirAllInRoot(int root, const std::string& path, const DirOwner& owner, UniqueFd* out) {
  const std::vector<std::string> comps = Clean(path);
  Status s = OpenInRoot(root, Join(comps), O_PATH | O_DIRECTORY, true, out);
  if (s.ok() || s.err() != ENOENT || comps.empty()) return s;
  UniqueFd parent;
  s = MkdirAllInRoot(root, Join(comps, comps.size() - 1), owner, &parent);
  if (!s.ok()) return s;
  const std::string& name = comps.back();
  if (mkdirat(parent.get(), name.c_str(), 0700) == 0) {
    UniqueFd d(openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) return Status::Sys(errno, "openat", "/" + Join(comps));
    s = OwnAndMode(d.get(), owner.uid, owner.gid, owner.mode, "/" + Join(comps));
    if (!s.ok()) return s;
  } else if (errno != EEXIST) {
    return Status::Sys(errno, "mkdirat", "/" + Join(comps));
  }
  // Looked up again from the root: what is there now (made by us, or by someone else just before).
  return OpenInRoot(root, Join(comps), O_PATH | O_DIRECTORY, true, out);
}

Status PlaceInRoot(int root, const PlaceSpec& spec, UniqueFd* file_out) {
  const std::vector<std::string> comps = Clean(spec.path);
  if (comps.empty()) return Status::Ok();  // the root itself is never replaced
  const std::string where = "/" + Join(comps);
  const std::string& name = comps.back();
  UniqueFd parent;
  Status s = spec.make_parents ? MkdirAllInRoot(root, Join(comps, comps.size() - 1), spec.parents, &parent)
                               : OpenParent(root, comps, &parent);
  if (!s.ok()) return s;
  const int pfd = parent.get();
  struct stat ex;
  bool exists = fstatat(pfd, name.c_str(), &ex, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT) return Status::Sys(errno, "fstatat", where);
  const bool want_dir = spec.type == 'd';
  if (exists && spec.no_overwrite_dir_nondir) {
    if (S_ISDIR(ex.st_mode) && !want_dir) return Status::Invalid(EISDIR, "cannot overwrite directory with non-directory", where);
    if (!S_ISDIR(ex.st_mode) && want_dir) return Status::Invalid(ENOTDIR, "cannot overwrite non-directory with directory", where);
  }
  if (exists && !(S_ISDIR(ex.st_mode) && want_dir)) {
    s = RemoveAt(pfd, name, where);
    if (!s.ok()) return s;
    exists = false;
  }
  struct timespec times[2] = {spec.mtime, spec.mtime};
  switch (spec.type) {
    case 'd': {
      if (!exists && mkdirat(pfd, name.c_str(), 0700) < 0 && errno != EEXIST) return Status::Sys(errno, "mkdirat", where);
      UniqueFd d(openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d.valid()) return Status::Sys(errno, "openat", where);
      s = OwnAndMode(d.get(), spec.uid, spec.gid, spec.mode, where, true);
      if (s.ok() && spec.has_mtime && futimens(d.get(), times) < 0) return Status::Sys(errno, "futimens", where);
      return s;
    }
    case 'f': {
      UniqueFd f(openat(pfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!f.valid()) return Status::Sys(errno, "openat", where);
      s = OwnAndMode(f.get(), spec.uid, spec.gid, spec.mode, where, true);
      if (!s.ok()) return s;
      *file_out = std::move(f);
      return Status::Ok();
    }
    case 'l': {
      if (symlinkat(spec.linkname.c_str(), pfd, name.c_str()) < 0) return Status::Sys(errno, "symlinkat", where);
      if (fchownat(pfd, name.c_str(), spec.uid, spec.gid, AT_SYMLINK_NOFOLLOW) < 0 && !OwnerNotKept(errno)) {
        return Status::Sys(errno, "fchownat", where);
      }
      if (spec.has_mtime && utimensat(pfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) {
        return Status::Sys(errno, "utimensat", where);
      }
      return Status::Ok();
    }
    case 'h': {
      UniqueFd target;
      s = OpenInRoot(root, spec.linkname, O_PATH, false, &target);
      if (!s.ok()) return s.Context("hard link target");
      if (linkat(target.get(), "", pfd, name.c_str(), AT_EMPTY_PATH) < 0) return Status::Sys(errno, "linkat", where);
      return Status::Ok();
    }
    default:
      return Status::Invalid(EINVAL, std::string("unknown entry type ") + spec.type, where);
  }
}

Status SetTimesInRoot(int root, const std::string& path, const struct timespec& mtime) {
  const std::vector<std::string> comps = Clean(path);
  if (comps.empty()) return Status::Ok();
  UniqueFd parent;
  Status s = OpenParent(root, comps, &parent);
  if (!s.ok()) return s;
  struct timespec times[2] = {mtime, mtime};
  if (utimensat(parent.get(), comps.back().c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) {
    return Status::Sys(errno, "utimensat", "/" + Join(comps));
  }
  return Status::Ok();
}

namespace {

// Where a multiply-linked source file was first copied to (relative to the destination root).
using LinkMap = std::map<std::pair<dev_t, ino_t>, std::string>;

Status CopyData(int in, int out, const std::string& where) {
  // copy_file_range shares extents where the file system can; plain read/write where it cannot.
  bool plain = false;
  char buf[131072];
  for (;;) {
    ssize_t n;
    if (!plain) {
      n = copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        plain = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::Sys(errno, "copy_file_range", where);
      if (n == 0) return Status::Ok();
      continue;
    }
    n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Sys(errno, "read", where);
    if (n == 0) return Status::Ok();
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Status::Sys(errno, "write", where);
      off += w;
    }
  }
}

Status CopyDir(int src, int dst, int dst_root, const std::string& rel, LinkMap* links) {
  std::vector<std::string> names;
  Status s = ReadDirNames(src, rel, &names);
  if (!s.ok()) return s;
  for (const auto& n : names) {
    const std::string child = rel.empty() ? n : rel + "/" + n;
    const std::string where = "/" + child;
    struct stat st;
    if (fstatat(src, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue;
      return Status::Sys(errno, "fstatat", where);
    }
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (S_ISDIR(st.st_mode)) {
      if (mkdirat(dst, n.c_str(), 0700) < 0) return Status::Sys(errno, "mkdirat", where);
      UniqueFd sd(openat(src, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sd.valid()) return Status::Sys(errno, "openat", where);
      UniqueFd dd(openat(dst, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dd.valid()) return Status::Sys(errno, "openat", where);
      s = CopyDir(sd.get(), dd.get(), dst_root, child, links);
      if (!s.ok()) return s;
      s = OwnAndMode(dd.get(), st.st_uid, st.st_gid, st.st_mode, where);
      if (!s.ok()) return s;
      if (futimens(dd.get(), times) < 0) return Status::Sys(errno, "futimens", where);
    } else if (S_ISREG(st.st_mode)) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto seen = st.st_nlink > 1 ? links->find(key) : links->end();
      if (seen != links->end()) {
        UniqueFd first;
        s = OpenInRoot(dst_root, seen->second, O_PATH, false, &first);
        if (!s.ok()) return s;
        if (linkat(first.get(), "", dst, n.c_str(), AT_EMPTY_PATH) < 0) return Status::Sys(errno, "linkat", where);
        continue;
      }
      UniqueFd in(openat(src, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in.valid()) return Status::Sys(errno, "openat", where);
      UniqueFd out(openat(dst, n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out.valid()) return Status::Sys(errno, "openat", where);
      s = CopyData(in.get(), out.get(), where);
      if (s.ok()) s = OwnAndMode(out.get(), st.st_uid, st.st_gid, st.st_mode, where);
      if (!s.ok()) return s;
      if (futimens(out.get(), times) < 0) return Status::Sys(errno, "futimens", where);
      if (st.st_nlink > 1) (*links)[key] = child;
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t len = readlinkat(src, n.c_str(), target, sizeof target);
      if (len < 0) return Status::Sys(errno, "readlinkat", where);
      std::string text(target, static_cast<size_t>(len));
      if (symlinkat(text.c_str(), dst, n.c_str()) < 0) return Status::Sys(errno, "symlinkat", where);
      if (fchownat(dst, n.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) return Status::Sys(errno, "fchownat", where);
      if (utimensat(dst, n.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) return Status::Sys(errno, "utimensat", where);
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      if (mknodat(dst, n.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0) return Status::Sys(errno, "mknodat", where);
      UniqueFd node(openat(dst, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!node.valid()) return Status::Sys(errno, "openat", where);
      if (fchownat(node.get(), "", st.st_uid, st.st_gid, AT_EMPTY_PATH) < 0) return Status::Sys(errno, "fchownat", where);
      s = ChmodPath(node.get(), st.st_mode, where);
      if (!s.ok()) return s;
      if (utimensat(dst, n.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) return Status::Sys(errno, "utimensat", where);
    }
    // Sockets are not copied (cp -a makes none either).
  }
  return Status::Ok();
}

}  // namespace

Status CopyUpInRoot(int src_root, const std::string& src_path, int dst, bool* copied) {
  *copied = false;
  UniqueFd d(openat(dst, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return Status::Sys(errno, "openat", "volume");
  std::vector<std::string> names;
  Status s = ReadDirNames(d.get(), "volume", &names);
  if (!s.ok() || !names.empty()) return s;
  UniqueFd src;
  s = OpenInRoot(src_root, src_path, O_RDONLY | O_DIRECTORY, true, &src);
  if (!s.ok()) return s.err() == ENOENT || s.err() == ENOTDIR || s.err() == ELOOP ? Status::Ok() : s;
  s = ReadDirNames(src.get(), src_path, &names);
  if (!s.ok() || names.empty()) return s;
  LinkMap links;
  s = CopyDir(src.get(), d.get(), d.get(), "", &links);
  if (!s.ok()) return s.Context("copying " + src_path + " into the volume");
  struct stat st;
  if (fstat(src.get(), &st) < 0) return Status::Sys(errno, "fstat", src_path);
  s = OwnAndMode(d.get(), st.st_uid, st.st_gid, st.st_mode, "volume");
  if (!s.ok()) return s;
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (futimens(d.get(), times) < 0) return Status::Sys(errno, "futimens", "volume");
  *copied = true;
  return Status::Ok();
}

Status BindMountInRoot(int source, int root, const std::string& path, bool file, bool read_only, UniqueFd* mounted) {
  const std::vector<std::string> comps = Clean(path);
  const std::string where = "/" + Join(comps);
  UniqueFd target;
  Status s;
  if (file && !comps.empty()) {
    UniqueFd parent;
    s = MkdirAllInRoot(root, Join(comps, comps.size() - 1), DirOwner{}, &parent);
    if (!s.ok()) return s;
    int f = openat(parent.get(), comps.back().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f >= 0) close(f);
    else if (errno != EEXIST) return Status::Sys(errno, "openat", where);
    s = OpenInRoot(root, path, O_PATH, true, &target);
  } else {
    s = MkdirAllInRoot(root, path, DirOwner{}, &target);
  }
  if (!s.ok()) return s;
  if (mount(FdPath(source).c_str(), FdPath(target.get()).c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
    return Status::Sys(errno, "mount", where);
  }
  // The target fd still names the directory under the new mount: looked up again, the path leads to
  // the new mount's root, which is what a remount and the later unmount need.
  s = OpenInRoot(root, path, O_PATH, true, mounted);
  struct stat a, b;
  if (s.ok() && (fstat(mounted->get(), &a) < 0 || fstat(source, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)) {
    s = Status::Invalid(EBUSY, "the mount point changed while it was mounted", where);
  }
  if (s.ok() && mount(nullptr, FdPath(mounted->get()).c_str(), nullptr, MS_PRIVATE | MS_REC, nullptr) < 0) {
    s = Status::Sys(errno, "mount private", where);
  }
  if (s.ok() && read_only &&
      mount(nullptr, FdPath(mounted->get()).c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) < 0) {
    s = Status::Sys(errno, "mount remount read-only", where);
  }
  if (!s.ok()) {
    umount2(FdPath(target.get()).c_str(), MNT_DETACH);
    if (mounted->valid()) umount2(FdPath(mounted->get()).c_str(), MNT_DETACH);
    mounted->Reset();
  }
  return s;
}

Status UnmountFd(int fd) {
  if (umount2(FdPath(fd).c_str(), MNT_DETACH) < 0 && errno != EINVAL) return Status::Sys(errno, "umount2", FdPath(fd));
  return Status::Ok();
}

namespace {

// Field `n` (1-based, as proc(5) numbers them, n >= 3) of /proc/PID/stat, or "" when there is no such
// process. Counted from the last ')': the command name may hold spaces and parentheses.
std::string StatField(int pid, size_t n) {
  std::string text;
  if (pid <= 0 || !ReadFile("/proc/" + std::to_string(pid) + "/stat", &text).ok()) return "";
  size_t close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return "";
  std::vector<std::string> fields = SplitAny(text.substr(close_paren + 1), " \n");
  return fields.size() > n - 3 ? fields[n - 3] : "";
}

}  // namespace

std::string ProcessStartTime(int pid) { return StatField(pid, 22); }

Status OpenRoot(const std::string& path, int pid, const std::string& start_time, UniqueFd* out) {
  // A process that has exited but not yet been reaped (a zombie) keeps its pid and start time, but no
  // longer has a root.
  auto gone = [&]() { return ProcessStartTime(pid) != start_time || StatField(pid, 3) == "Z"; };
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (pid > 0 && gone()) return Status::Invalid(ESRCH, "the container's process " + std::to_string(pid) + " has exited", path);
    return Status::Sys(e, "open", path);
  }
  UniqueFd f(fd);
  // Checked after the open: a process that still has its start time now was alive all along, so the
  // pid was not reused under us and the fd is its root.
  if (pid > 0 && ProcessStartTime(pid) != start_time) {
    return Status::Invalid(ESRCH, "the container's process " + std::to_string(pid) + " has exited (its pid is another process's now)", path);
  }
  *out = std::move(f);
  return Status::Ok();
}

}  // namespace fs
}  // namespace berth
