// Proves that the cgroup v2 device filter (src/cgroup/devices_bpf.cc) really filters: for each rule list
// it makes a cgroup in the cgroup2 mount, attaches the program, forks a child that joins the cgroup and
// tries opens and mknods, and checks each outcome. One case goes through V2Manager::Create, the path the
// daemon takes. Needs root and a cgroup2 mount (/sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup
// on a unified one; BPF device programs act on hybrid hosts too). Built by `make devices-bpf-test`.
//
// Prints one line per check and PASS or FAIL at the end; exits 0 on PASS, 1 on FAIL. A host without a
// cgroup2 mount, and a kernel that refuses to load or attach the program, are FAILs that say so (the
// latter with the kernel's error and the verifier's log).
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "cgroup/devices_bpf.h"
#include "cgroup/v2.h"

using berth::Status;
using berth::cgroup::DeviceRule;

namespace {

int failures = 0;
std::string scratch;  // a temporary directory for mknod

std::string Describe(const Status& st) {
  std::string s = std::string(strerrorname_np(st.err()) ? strerrorname_np(st.err()) : "?") + " (" +
                  strerror(st.err()) + ")";
  if (!st.syscall().empty()) s += " from " + st.syscall();
  if (!st.path().empty()) s += " on " + st.path();
  if (!st.detail().empty()) s += ": " + st.detail();
  return s;
}

const char* ErrName(int err) {
  if (err == 0) return "ok";
  const char* n = strerrorname_np(err);
  return n ? n : "?";
}

DeviceRule Rule(bool allow, char type, int64_t major, int64_t minor, const char* access) {
  DeviceRule r;
  r.allow = allow;
  r.type = type;
  r.major = major;
  r.minor = minor;
  r.access = access;
  return r;
}

// One thing the child tries, and the errno it must get (0 = success).
struct Check {
  enum Kind { kOpen, kMknod } kind;
  std::string path;  // for kMknod, a name inside scratch
  int flags;         // kOpen: O_RDONLY/O_WRONLY/O_RDWR; kMknod: S_IFCHR/S_IFBLK
  unsigned major, minor;
  int want;
};

Check Open(const std::string& path, int flags, int want) { return {Check::kOpen, path, flags, 0, 0, want}; }
Check Mknod(const std::string& name, int type, unsigned major, unsigned minor, int want) {
  return {Check::kMknod, name, type, major, minor, want};
}

std::string Name(const Check& c) {
  if (c.kind == Check::kOpen) {
    const char* mode = c.flags == O_RDONLY ? "O_RDONLY" : c.flags == O_WRONLY ? "O_WRONLY" : "O_RDWR";
    return "open " + c.path + " " + mode;
  }
  return "mknod " + c.path + " " + (c.flags == S_IFCHR ? "c " : "b ") + std::to_string(c.major) + ":" +
         std::to_string(c.minor);
}

int Try(const Check& c) {
  if (c.kind == Check::kOpen) {
    int fd = ::open(c.path.c_str(), c.flags | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
  }
  const std::string p = scratch + "/" + c.path;
  ::unlink(p.c_str());
  if (::mknod(p.c_str(), c.flags | 0600, makedev(c.major, c.minor)) != 0) return errno;
  return 0;
}

// The child: joins the cgroup, runs the checks, exits with the number that went wrong.
[[noreturn]] void Child(const std::string& dir, const std::vector<Check>& checks) {
  const std::string procs = dir + "/cgroup.procs";
  const std::string pid = std::to_string(::getpid());
  int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    std::printf("    FAIL  joining %s: %s\n", procs.c_str(), strerror(errno));
    std::fflush(stdout);
    ::_exit(100);
  }
  ::close(fd);
  int bad = 0;
  for (const Check& c : checks) {
    const int got = Try(c);
    const bool good = got == c.want;
    if (!good) bad++;
    std::printf("    %-4s  %-40s %-6s (want %s)\n", good ? "ok" : "FAIL", Name(c).c_str(), ErrName(got), ErrName(c.want));
  }
  std::fflush(stdout);
  ::_exit(bad);
}

// Runs checks in a child inside dir; true when all came out as wanted.
bool RunChild(const std::string& dir, const std::vector<Check>& checks) {
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::printf("    FAIL  fork: %s\n", strerror(errno));
    return false;
  }
  if (pid == 0) Child(dir, checks);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// rmdir with a few retries: a cgroup whose last task has just been reaped can be busy for a moment.
bool RemoveCgroup(const std::string& dir) {
  for (int i = 0; i < 100; i++) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    if (errno != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("    FAIL  rmdir %s: %s\n", dir.c_str(), strerror(errno));
  return false;
}

void Case(const std::string& root, const char* title, const std::vector<DeviceRule>& rules,
          const std::vector<Check>& checks) {
  std::printf("%s\n", title);
  const std::string dir = root + "/berth-devtest-" + std::to_string(::getpid());
  if (::mkdir(dir.c_str(), 0755) != 0) {
    std::printf("    FAIL  mkdir %s: %s\n", dir.c_str(), strerror(errno));
    failures++;
    return;
  }
  Status st = berth::cgroup::AttachDeviceFilter(dir, rules);
  bool ok = st.ok();
  if (!ok) {
    std::printf("    FAIL  attaching the program: %s\n", Describe(st).c_str());
  } else {
    ok = RunChild(dir, checks);
  }
  if (!RemoveCgroup(dir)) ok = false;
  if (!ok) failures++;
}

// The daemon's path: V2Manager::Create with Resources::devices, then Remove.
void ManagerCase(const std::string& root) {
  std::printf("V2Manager::Create attaches the filter from Resources::devices\n");
  const std::string parent = "berth-devtest-" + std::to_string(::getpid());
  berth::cgroup::Layout layout;
  layout.version = 2;
  layout.unified = root;
  berth::cgroup::V2Manager m(layout, parent + "/c");
  berth::cgroup::Resources res;
  res.devices = std::vector<DeviceRule>{Rule(false, 'a', -1, -1, "rwm"), Rule(true, 'c', 1, 3, "rwm")};
  std::vector<std::string> dirs;
  Status st = m.Create(res, &dirs);
  bool ok = st.ok() && dirs.size() == 1;
  if (!st.ok()) std::printf("    FAIL  Create: %s\n", Describe(st).c_str());
  if (ok) ok = RunChild(dirs[0], {Open("/dev/null", O_RDWR, 0), Open("/dev/zero", O_RDONLY, EPERM)});
  st = m.Remove();
  if (!st.ok()) {
    std::printf("    FAIL  Remove: %s\n", Describe(st).c_str());
    ok = false;
  }
  if (!RemoveCgroup(root + "/" + parent)) ok = false;
  if (!ok) failures++;
}

// Rule lists the builder must refuse, and a program the verifier must refuse with a log.
void Refusals() {
  std::printf("bad rules and bad programs are refused with a reason\n");
  std::vector<bpf_insn> insns;
  struct {
    const char* what;
    DeviceRule rule;
  } bad[] = {
      {"type 'x'", Rule(true, 'x', -1, -1, "rwm")},
      {"access 'rwx'", Rule(true, 'c', 1, 3, "rwx")},
      {"major -2", Rule(true, 'c', -2, 3, "rwm")},
      {"minor 2^32", Rule(true, 'c', 1, int64_t{1} << 32, "rwm")},
  };
  for (const auto& b : bad) {
    Status st = berth::cgroup::BuildDeviceProgram({b.rule}, &insns);
    const bool good = !st.ok() && st.err() == EINVAL;
    if (!good) failures++;
    std::printf("    %-4s  %-40s %s\n", good ? "ok" : "FAIL", b.what, st.ok() ? "accepted" : Describe(st).c_str());
  }
  // No exit instruction: the verifier must say why, and the error must carry it.
  insns.assign(1, bpf_insn{});
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  berth::UniqueFd prog;
  Status st = berth::cgroup::LoadDeviceProgram(insns, &prog);
  const bool good = !st.ok() && st.detail().find("verifier: ") != std::string::npos;
  if (!good) failures++;
  std::printf("    %-4s  %-40s %s\n", good ? "ok" : "FAIL", "program without exit", st.ok() ? "loaded" : Describe(st).c_str());
}

std::string FindCgroup2() {
  for (const char* p : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    struct statfs fs;
    if (::statfs(p, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) return p;
  }
  return "";
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string root = FindCgroup2();
  if (root.empty()) {
    std::printf("FAIL: no cgroup2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup to test on\n");
    return 1;
  }
  char tmpl[] = "/tmp/berth-devtest-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::printf("FAIL: mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  scratch = tmpl;
  std::printf("cgroup2 at %s, scratch %s\n", root.c_str(), scratch.c_str());

  // Outside any filtered cgroup everything opens: the refusals below are the filter's doing.
  std::printf("control: this process, outside the test cgroups\n");
  {
    int fd = ::open("/dev/full", O_RDWR | O_CLOEXEC);
    std::printf("    %-4s  %-40s %s\n", fd >= 0 ? "ok" : "FAIL", "open /dev/full O_RDWR", fd >= 0 ? "ok" : strerror(errno));
    if (fd >= 0) ::close(fd); else failures++;
  }

  Case(root, "deny all; allow c 1:3 rwm, c 1:5 rwm, c *:* m (Docker-like)",
       {Rule(false, 'a', -1, -1, "rwm"), Rule(true, 'c', 1, 3, "rwm"), Rule(true, 'c', 1, 5, "rwm"),
        Rule(true, 'c', -1, -1, "m")},
       {Open("/dev/null", O_RDWR, 0), Open("/dev/zero", O_RDONLY, 0), Open("/dev/full", O_RDONLY, EPERM),
        Open("/dev/full", O_WRONLY, EPERM), Mknod("full", S_IFCHR, 1, 7, 0), Open(scratch + "/full", O_RDONLY, EPERM),
        Mknod("loop", S_IFBLK, 7, 0, EPERM)});

  Case(root, "later allow overrides earlier deny: allow a; deny c 1:3 rwm; allow c 1:3 r",
       {Rule(true, 'a', -1, -1, "rwm"), Rule(false, 'c', 1, 3, "rwm"), Rule(true, 'c', 1, 3, "r")},
       {Open("/dev/null", O_RDONLY, 0), Open("/dev/null", O_WRONLY, EPERM), Open("/dev/null", O_RDWR, EPERM),
        Mknod("null", S_IFCHR, 1, 3, EPERM), Open("/dev/zero", O_RDWR, 0), Mknod("loop", S_IFBLK, 7, 0, 0)});

  Case(root, "later deny overrides earlier allow: deny a; allow c 1:3 rwm, c 1:5 rwm; deny c 1:3 w",
       {Rule(false, 'a', -1, -1, "rwm"), Rule(true, 'c', 1, 3, "rwm"), Rule(true, 'c', 1, 5, "rwm"),
        Rule(false, 'c', 1, 3, "w")},
       {Open("/dev/null", O_RDONLY, 0), Open("/dev/null", O_WRONLY, EPERM), Open("/dev/null", O_RDWR, EPERM),
        Mknod("null", S_IFCHR, 1, 3, 0), Open("/dev/zero", O_RDWR, 0), Open("/dev/full", O_RDONLY, EPERM)});

  Case(root, "a final deny-all wins over every earlier allow: allow a; allow c 1:3 rwm; deny a",
       {Rule(true, 'a', -1, -1, "rwm"), Rule(true, 'c', 1, 3, "rwm"), Rule(false, 'a', -1, -1, "rwm")},
       {Open("/dev/null", O_RDONLY, EPERM), Mknod("full", S_IFCHR, 1, 7, EPERM)});

  Case(root, "wildcards: deny a; allow c *:* rwm; deny c 1:7 rwm; allow b 7:* m",
       {Rule(false, 'a', -1, -1, "rwm"), Rule(true, 'c', -1, -1, "rwm"), Rule(false, 'c', 1, 7, "rwm"),
        Rule(true, 'b', 7, -1, "m")},
       {Open("/dev/null", O_RDWR, 0), Open("/dev/ptmx", O_RDWR, 0), Open("/dev/full", O_RDONLY, EPERM),
        Mknod("loop", S_IFBLK, 7, 3, 0), Mknod("sda", S_IFBLK, 8, 0, EPERM)});

  Case(root, "no rules: everything denied", {},
       {Open("/dev/null", O_RDONLY, EPERM), Mknod("full", S_IFCHR, 1, 7, EPERM)});

  ManagerCase(root);
  Refusals();

  for (const char* name : {"full", "loop", "null", "sda"}) ::unlink((scratch + "/" + name).c_str());
  if (::rmdir(scratch.c_str()) != 0) std::printf("warning: could not remove %s: %s\n", scratch.c_str(), strerror(errno));

  std::printf("%s (%d failed)\n", failures == 0 ? "PASS" : "FAIL", failures);
  return failures == 0 ? 0 : 1;
}
