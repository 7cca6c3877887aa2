#include "container.h"

#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <pty.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "caps.h"
#include "rootfs.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace {

// ---- keeping the shim's descriptors out of the container ----
//
// close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11) marks every fd from 3 up in one call. Without it (5.10,
// or a seccomp filter that answers ENOSYS), each fd listed in /proc/self/fd is marked with fcntl; the
// child opens that directory at its start, while the host's /proc is still what it sees, so the walk
// works whatever the container's root holds.
bool have_close_range_cloexec() {
  // Nothing is at the highest fd number, so this marks nothing; a kernel without the flag says EINVAL.
  static const bool have = syscall(SYS_close_range, ~0U, ~0U, CLOSE_RANGE_CLOEXEC) == 0;
  return have;
}

// The child's own /proc/self/fd, or -1 when close_range will do (or the directory cannot be opened:
// cloexec_from_3 then says so).
int open_fd_dir() {
  if (have_close_range_cloexec()) return -1;
  return open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

bool cloexec_from_3(int fd_dir) {
  if (have_close_range_cloexec()) {
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return true;
    return fail("close_range(CLOSE_RANGE_CLOEXEC) on the shim's descriptors", "");
  }
  if (fd_dir < 0)
    return fail_msg("cannot keep the shim's descriptors out of the container: close_range(CLOSE_RANGE_CLOEXEC) "
                    "needs Linux 5.11 and /proc/self/fd could not be opened");
  if (lseek(fd_dir, 0, SEEK_SET) < 0) return fail("rewind", "/proc/self/fd");
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, fd_dir, buf, sizeof buf);
    if (n < 0) return fail("read", "/proc/self/fd");
    if (n == 0) return true;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<LinuxDirent64*>(buf + off);
      off += d->d_reclen;
      char* end = nullptr;
      long fd = strtol(d->d_name, &end, 10);
      if (end == d->d_name || *end != '\0' || fd < 3 || fd == fd_dir) continue;
      int flags = fcntl(static_cast<int>(fd), F_GETFD);
      if (flags < 0 || (flags & FD_CLOEXEC)) continue;  // closed meanwhile (the listing's own fd), or done
      if (fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC) < 0)
        return fail("mark close-on-exec", "/proc/self/fd/" + std::to_string(fd));
    }
  }
}

struct NsKind {
  const char* type;
  int flag;
};
const NsKind kNamespaces[] = {
    {"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID},     {"uts", CLONE_NEWUTS},
    {"ipc", CLONE_NEWIPC},  {"network", CLONE_NEWNET}, {"cgroup", CLONE_NEWCGROUP},
    {"user", CLONE_NEWUSER},
};

// What the child needs besides the spec. Every fd here is close-on-exec in the child, except the
// three that become its stdio.
struct ChildPlan {
  int sync_r = -1;  // the parent writes one byte once the pid is in its cgroups (when wait_for_go)
  int fd_dir = -1;  // the child's /proc/self/fd when close_range cannot mark its fds (see cloexec_from_3)
  bool wait_for_go = false;  // the parent has cgroups to place the child in (cgroup v2)
  std::string seccomp_prog;  // the compiled filter (compile_seccomp); empty = none
  int err_w = -1;   // the child writes why it failed; EOF without data means exec succeeded
  int stdio[3] = {-1, -1, -1};  // TTY mode: the shim's pty slave thrice (the fallback terminal)
  bool tty = false;
  int pty_sock = -1;  // TTY mode: the child sends the master of the container's own pty here
  struct Join {
    int fd;
    int flag;  // CLONE_NEW*
    std::string path;
  };
  std::vector<Join> joins;  // existing namespaces to enter with setns
  bool new_cgroup = false;
  bool new_user = false;  // cloned into a user namespace of its own: see preopen_rootfs
  // The shim writes /proc/PID/oom_score_adj for the child: one in a user namespace of the container's
  // may neither open its own (no longer dumpable once it changed uid) nor lower it (CAP_SYS_RESOURCE of
  // the host's namespace).
  bool oom_by_parent = false;
  bool new_uts = false;
  bool new_net = false;
  // Whether the container has an IPC, network and UTS namespace other than the shim's (the host's):
  // the sysctls of these only may be written.
  bool own_ipc = false;
  bool own_net = false;
  bool own_uts = false;
  // `tasks` files of cgroup v1 hierarchies (opened by the parent) into which the child moves
  // itself by writing "0", and their directories (for the error message).
  std::vector<int> self_cgroup_fds;
  std::vector<std::string> self_cgroup_dirs;
};

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// 0 when path is a file the process could execute, else the errno that explains why not (as Go's
// exec.LookPath decides: a directory is EISDIR, a file without any x bit EACCES).
int check_executable(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  if ((st.st_mode & 0111) == 0) return EACCES;
  return 0;
}

// Resolves args[0] the way runc does before exec: a name without a slash is searched in the PATH of
// the container's environment. The messages match runc's, which the docker CLI matches on.
bool look_path(const Spec& s, std::string& out) {
  const std::string& name = s.args[0];
  if (name.find('/') != std::string::npos) {
    int err = check_executable(name);
    if (err == 0) {
      out = name;
      return true;
    }
    if (err == EISDIR || err == EACCES) return fail_msg("exec: " + quote(name) + ": " + errno_text(err));
    return fail_msg("exec: " + quote(name) + ": stat " + name + ": " + errno_text(err));
  }
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : s.env)  // the last PATH= wins, as when the environment is applied in order
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  size_t i = 0;
  for (;;) {
    size_t j = path.find(':', i);
    std::string dir = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (check_executable(candidate) == 0) {
      out = candidate;
      return true;
    }
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return fail_msg("exec: " + quote(name) + ": executable file not found in $PATH");
}

bool loopback_up() {
  Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.ok()) return fail("socket", "");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) return fail("get flags of", "lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) return fail("bring up", "lo");
  return true;
}

// runc's canonical sysctl name: separators are '.', a name written with '/' ("net/ipv4/ip_forward") is
// turned round ('.' inside a name, as in "eth0.100", becomes '/').
std::string canonical_sysctl(const std::string& key) {
  size_t first = key.find_first_of("./");
  if (first == std::string::npos || key[first] == '.') return key;
  std::string out = key;
  for (char& c : out) c = c == '.' ? '/' : c == '/' ? '.' : c;
  return out;
}

// The file under /proc/sys for a canonical name ('.' and '/' swapped); empty when a part of it is empty,
// '.' or '..', or holds a NUL: such a name could reach outside /proc/sys.
std::string sysctl_path(const std::string& canonical) {
  std::string rel = canonical;
  for (char& c : rel) c = c == '.' ? '/' : c == '/' ? '.' : c;
  size_t i = 0;
  for (;;) {
    size_t j = rel.find('/', i);
    std::string part = rel.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string::npos) return "";
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return rel;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Refuses, before anything is cloned, every sysctl that is not in a namespace of the container's own
// (runc's rules and words): a parameter of the host's kernel must never be written, whatever the spec says.
bool check_sysctls(const Spec& s, const ChildPlan& plan) {
  static const char* const kIpc[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                     "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (const auto& kv : s.sysctl) {
    std::string k = canonical_sysctl(kv.first);
    if (sysctl_path(k).empty()) return fail_msg("sysctl " + quote(kv.first) + " is not a valid sysctl name");
    bool ipc = starts_with(k, "fs.mqueue.");
    for (const char* n : kIpc) ipc = ipc || k == n;
    if (ipc) {
      if (!plan.own_ipc) return fail_msg("sysctl " + quote(k) + " is not allowed in the hosts ipc namespace");
      continue;
    }
    if (starts_with(k, "net.")) {
      if (!plan.own_net) return fail_msg("sysctl " + quote(k) + " not allowed in host network namespace");
      continue;
    }
    if (plan.own_uts && k == "kernel.domainname") continue;
    if (plan.own_uts && k == "kernel.hostname")
      return fail_msg("sysctl " + quote(k) + " is not allowed as it conflicts with the OCI \"hostname\" field");
    return fail_msg("sysctl " + quote(k) + " is not in a separate kernel namespace");
  }
  return true;
}

// Writes the sysctls checked by check_sysctls, from inside the container's namespaces, each only under
// /proc/sys: opened without following a symlink at the end, never created.
bool write_sysctls(const Spec& s) {
  for (const auto& kv : s.sysctl) {
    std::string rel = sysctl_path(canonical_sysctl(kv.first));
    if (rel.empty()) return fail_msg("sysctl " + quote(kv.first) + " is not a valid sysctl name");
    std::string path = "/proc/sys/" + rel;
    Fd fd(open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.ok()) return fail(("write sysctl " + kv.first + " via").c_str(), path);
    if (!write_all(fd.get(), kv.second.data(), kv.second.size()))
      return fail(("write sysctl " + kv.first + " via").c_str(), path);
  }
  return true;
}

bool set_user(const Spec& s) {
  if (setgroups(s.additional_gids.size(), s.additional_gids.data()) < 0) return fail("setgroups", "");
  if (setresgid(s.gid, s.gid, s.gid) < 0) return fail(("setgid " + std::to_string(s.gid)).c_str(), "");
  // Keep the permitted capabilities across the uid change; the configured sets are applied after it.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail("prctl PR_SET_KEEPCAPS", "");
  if (setresuid(s.uid, s.uid, s.uid) < 0) return fail(("setuid " + std::to_string(s.uid)).c_str(), "");
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return fail("prctl PR_SET_KEEPCAPS", "");
  return true;
}

// Sends fd over a unix socket (SCM_RIGHTS).
bool send_fd(int sock, int fd) {
  char byte = 'm';
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) return fail("send terminal to the shim", "");
  return true;
}

// Receives an fd sent with send_fd, if one is queued; -1 otherwise.
int recv_fd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  if (recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0) return -1;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

// Opens a terminal in the container's own devpts (so ttyname() finds /dev/pts/N inside the container,
// as with Docker), hands its master to the shim and returns the slave; -1 when the container has no
// usable /dev/ptmx, in which case the shim's pty is used.
int open_container_pty(const Spec& s, int pty_sock, bool bind_console = true) {
  Fd master(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master.ok() || unlockpt(master.get()) < 0) return -1;
  int slave = ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[64];
  if (ptsname_r(master.get(), name, sizeof name) != 0) name[0] = '\0';
  if (slave < 0 && name[0]) slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return -1;
  if (!send_fd(pty_sock, master.get())) {
    close(slave);
    return -1;
  }
  // The user owns its terminal, as after a login (best effort: the inherited fd works either way).
  if (fchown(slave, s.uid, static_cast<gid_t>(-1)) < 0) {
    // ignored
  }
  // /dev/console is the container's terminal too (best effort: /dev may be read-only or absent).
  if (name[0] && bind_console) {
    int f = open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f >= 0) {
      close(f);
      mount(name, "/dev/console", nullptr, MS_BIND, nullptr);
    }
  }
  return slave;
}

// fds 0-2 of the container's process (init, or an exec: `bind_console` false), in its own session; in TTY
// mode the terminal becomes the controlling one.
bool setup_stdio(const Spec& s, const ChildPlan& plan, bool bind_console = true) {
  if (setsid() < 0) return fail("setsid", "");
  int fds[3] = {plan.stdio[0], plan.stdio[1], plan.stdio[2]};
  if (plan.tty) {
    int slave = open_container_pty(s, plan.pty_sock, bind_console);
    if (slave >= 0) fds[0] = fds[1] = fds[2] = slave;
    if (ioctl(fds[0], TIOCSCTTY, 0) < 0) return fail("set controlling terminal", "");
    if (s.console_rows || s.console_cols) {
      // The size berthd knew at create time, so the first output is already laid out for it.
      struct winsize ws;
      memset(&ws, 0, sizeof ws);
      ws.ws_row = s.console_rows;
      ws.ws_col = s.console_cols;
      ioctl(fds[0], TIOCSWINSZ, &ws);
    }
  }
  for (int i = 0; i < 3; i++)
    if (dup2(fds[i], i) < 0) return fail("dup2 stdio", "");
  return true;
}

// The shim blocks SIGCHLD (for its signalfd) and ignores SIGPIPE and SIGHUP, and whatever started it may
// have left other signals ignored (make, for one, leaves 32 and 33 so); execve keeps both the mask and
// ignored dispositions, and a container's processes must start with neither.
void reset_signals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // The raw system call: libc refuses to touch the signals it reserves for itself (32, 33), and those
  // are the ones left ignored.
  struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  };
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction old;
    if (syscall(SYS_rt_sigaction, sig, nullptr, &old, sizeof old.mask) != 0 || old.handler != SIG_IGN) continue;
    KernelSigaction dfl = {SIG_DFL, 0, nullptr, 0};
    syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  }
}

// The first steps of every child: it must not outlive a shim that dies under it before it execs
// (PDEATHSIG, and the sync pipe's hang-up for a death before the prctl). It waits for the parent only
// when the parent has cgroups to place it in; otherwise it goes on at once, which spares a round trip
// between the two processes on every start and exec.
void await_parent(const ChildPlan& plan) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  reset_signals();
  if (!plan.wait_for_go) {
    struct pollfd p = {plan.sync_r, POLLIN, 0};
    if (poll(&p, 1, 0) != 0) _exit(1);  // hung up: the shim is gone
    close(plan.sync_r);
    return;
  }
  char go;
  ssize_t n;
  do n = read(plan.sync_r, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) _exit(1);  // the shim gave up (cgroup placement failed) or died
  close(plan.sync_r);
}

// AppArmor's change_onexec: the profile takes effect at the execve that follows (as runc applies
// process.apparmorProfile). Through the LSM's own directory (Linux 5.8) first, then the shared one.
bool apparmor_on_exec(const std::string& profile) {
  if (profile.empty()) return true;
  const std::string cmd = "exec " + profile;
  for (const char* file : {"/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"}) {
    Fd fd(open(file, O_WRONLY | O_CLOEXEC));
    if (!fd.ok()) {
      if (errno == ENOENT) continue;
      return fail(("apply AppArmor profile " + profile + ": open").c_str(), file);
    }
    if (write(fd.get(), cmd.data(), cmd.size()) != static_cast<ssize_t>(cmd.size()))
      return fail(("apply AppArmor profile " + profile + ": write").c_str(), file);
    return true;
  }
  return fail_msg("apply AppArmor profile " + profile + ": this kernel has no AppArmor");
}

// The last steps of every process the shim starts, the container's init and an exec alike: limits,
// seccomp, capabilities, user and working directory, then execve. Returns only on failure.
bool become_process(const Spec& s, const ChildPlan& plan) {
  for (const auto& r : s.rlimits) {
    struct rlimit rl;
    rl.rlim_cur = r.soft;
    rl.rlim_max = r.hard;
    if (setrlimit(static_cast<__rlimit_resource>(r.resource), &rl) < 0) return fail("setrlimit", r.type);
  }
  if (s.has_oom_score_adj && !plan.oom_by_parent && !write_file("/proc/self/oom_score_adj", std::to_string(s.oom_score_adj)))
    return false;

  // Before the user and no_new_privs change: as root, as runc does it.
  if (!apparmor_on_exec(s.apparmor_profile)) return false;
  // The filter goes on while the init is still fully privileged (no no_new_privs needed) and after
  // everything that needs mount/setns/unshare; what follows (setgroups, setuid, capset, chdir, execve)
  // is allowed by every profile berth writes.
  if (!load_seccomp_program(plan.seccomp_prog, s.seccomp.flags)) return false;
  if (!cap_apply_bounding(s)) return false;
  // chdir first as root, so a cwd the user cannot search still works (as runc does); retry as the
  // user only when root was refused (root squashing on network filesystems).
  bool chdir_done = chdir(s.cwd.c_str()) == 0;
  int chdir_err = errno;
  if (!chdir_done && chdir_err != EACCES) return fail("chdir to cwd", quote(s.cwd), chdir_err);
  if (!set_user(s)) return false;
  if (!chdir_done && chdir(s.cwd.c_str()) < 0) return fail("chdir to cwd", quote(s.cwd));
  if (!cap_apply_sets(s)) return false;
  if (s.no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail("set no_new_privs", "");

  std::string path;
  if (!look_path(s, path)) return false;
  std::vector<char*> argv, envp;
  for (const auto& a : s.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : s.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // Nothing of the shim's may leak into the container; the error pipe closes on exec and so tells the
  // shim that exec succeeded.
  if (!cloexec_from_3(plan.fd_dir)) return false;
  prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  execve(path.c_str(), argv.data(), envp.data());
  return fail_msg("exec " + path + ": " + errno_text(errno));
}

bool join_own_cgroups(const ChildPlan& plan);

// Everything the container's init does between clone and execve. Returns false (with last_error set)
// on failure; does not return on success.
bool child_init(const Spec& s, const ChildPlan& given) {
  await_parent(given);
  ChildPlan plan = given;
  plan.fd_dir = open_fd_dir();
  umask(022);
  if (!join_own_cgroups(plan)) return false;

  // Existing namespaces (a cgroup one included) are entered before anything is mounted, so that
  // mqueue, sysfs and proc show the namespaces the container lives in.
  for (const auto& j : plan.joins)
    if (setns(j.fd, j.flag) < 0) return fail("setns", j.path);
  // A new cgroup namespace is made only now that the parent has put the pid in its cgroups, so its
  // root is the container's own cgroup.
  if (plan.new_cgroup && unshare(CLONE_NEWCGROUP) < 0) return fail("unshare cgroup namespace", "");

  if (plan.new_user) {
    if (!preopen_rootfs(s)) return false;
    // Until now the init had the host's root uid (unmapped here: it reached the host paths above as
    // their owner); from here it is the namespace's root, and what it creates is owned by that.
    if (setresgid(0, 0, 0) < 0) return fail("setgid 0 in the user namespace", "");
    if (setresuid(0, 0, 0) < 0) return fail("setuid 0 in the user namespace", "");
  }
  if (!setup_rootfs(s)) return false;
  // Sysctls go through /proc/sys, which finish_rootfs makes read-only.
  if (!write_sysctls(s)) return false;
  if (!finish_rootfs(s)) return false;
  // After the root is built: a terminal is opened in the container's /dev/pts.
  if (!setup_stdio(s, plan)) return false;
  // A hostname can only be set in a UTS namespace of the container's own.
  if (plan.new_uts && !s.hostname.empty() && sethostname(s.hostname.data(), s.hostname.size()) < 0)
    return fail("sethostname", s.hostname);
  if (plan.new_uts && !s.domainname.empty() && setdomainname(s.domainname.data(), s.domainname.size()) < 0)
    return fail("setdomainname", s.domainname);
  if (plan.new_net && !loopback_up()) return false;

  return become_process(s, plan);
}

[[noreturn]] void child_main(const Spec& s, const ChildPlan& plan) {
  if (!child_init(s, plan)) {
    const std::string& msg = last_error();
    write_all(plan.err_w, msg.data(), msg.size());
  }
  _exit(1);
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool make_pipe(Fd& r, Fd& w) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return fail("pipe", "");
  r.reset(p[0]);
  w.reset(p[1]);
  return true;
}

// The child's ends of its stdio, held by the shim until the clone; the parent drops them right after.
struct ChildStdio {
  Fd in, out, err, tty_slave, pty_parent, pty_child;
  void drop_child_ends() {
    in.reset();
    out.reset();
    err.reset();
    tty_slave.reset();
    pty_child.reset();
  }
};

// A terminal (a pty here as the fallback, and a socket over which a child that opens its terminal in its
// own devpts sends the master back) or pipes for stdout/stderr and, when asked, stdin (else /dev/null).
bool open_child_stdio(bool terminal, bool stdin_pipe, ChildPlan& plan, ChildStdio& io, Container& out) {
  if (terminal) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0) return fail("socketpair", "");
    io.pty_parent.reset(sp[0]);
    io.pty_child.reset(sp[1]);
    plan.pty_sock = sp[1];
    int master, slave;
    if (openpty(&master, &slave, nullptr, nullptr, nullptr) < 0) return fail("openpty", "");
    out.pty.reset(master);
    io.tty_slave.reset(slave);
    if (!set_cloexec(master) || !set_cloexec(slave)) return false;
    plan.stdio[0] = plan.stdio[1] = plan.stdio[2] = slave;
    return true;
  }
  if (!make_pipe(out.stdout_r, io.out) || !make_pipe(out.stderr_r, io.err)) return false;
  if (stdin_pipe) {
    if (!make_pipe(io.in, out.stdin_w)) return false;
  } else {
    io.in.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!io.in.ok()) return fail("open", "/dev/null");
  }
  plan.stdio[0] = io.in.get();
  plan.stdio[1] = io.out.get();
  plan.stdio[2] = io.err.get();
  return true;
}

// Splits the cgroups a child must join: cgroup v1 directories (with a `tasks` file) are joined by the
// child itself, which writes "0" into the `tasks` files opened here (join_own_cgroups); the others
// (cgroup v2) are returned, for the parent to write the child's pid into their cgroup.procs.
std::vector<std::string> plan_cgroups(const std::vector<std::string>& cgroups, ChildPlan& plan, std::vector<Fd>& task_fds) {
  std::vector<std::string> by_parent;
  for (const auto& dir : cgroups) {
    Fd t(open((dir + "/tasks").c_str(), O_WRONLY | O_CLOEXEC));
    if (!t.ok()) {
      by_parent.push_back(dir);
      continue;
    }
    plan.self_cgroup_fds.push_back(t.get());
    plan.self_cgroup_dirs.push_back(dir);
    task_fds.push_back(std::move(t));
  }
  return by_parent;
}

// The child's side: a pid written to cgroup.procs makes the kernel take its global threadgroup lock for
// writing, which waits for an RCU grace period (5–20 ms here, on every container start and exec); a
// single-threaded task moving itself ("0" into `tasks`) does not need it. Done before any setns, while the
// host's cgroup namespace is still this process's.
bool join_own_cgroups(const ChildPlan& plan) {
  for (size_t i = 0; i < plan.self_cgroup_fds.size(); i++) {
    if (!write_all(plan.self_cgroup_fds[i], "0", 1)) return fail("join cgroup", plan.self_cgroup_dirs[i]);
    close(plan.self_cgroup_fds[i]);
  }
  return true;
}

}  // namespace

// The shim's side after clone, for a container's init and for an exec alike: place the child in its
// cgroups before it runs anything of its own, let it go on, then block until it execs (its CLOEXEC error
// pipe closes) or reports why it could not; a TTY child sends back its pty master.
bool release_child(pid_t pid, const std::vector<std::string>& cgroups, Fd& sync_w, Fd& err_r, Fd& pty_parent,
                   const char* what, Container& out, bool go, const std::string& oom_score_adj) {
  if (!oom_score_adj.empty() && !write_file("/proc/" + std::to_string(pid) + "/oom_score_adj", oom_score_adj)) {
    std::string msg = last_error();
    kill_and_reap(pid);
    return fail_msg(msg);
  }
  for (const auto& dir : cgroups) {
    if (!write_file(dir + "/cgroup.procs", std::to_string(pid))) {
      std::string msg = "join cgroup " + dir + ": " + last_error();
      kill_and_reap(pid);
      return fail_msg(msg);
    }
  }
  if ((go || !cgroups.empty()) && !write_all(sync_w.get(), "1", 1)) {
    int err = errno;
    kill_and_reap(pid);
    return fail((std::string("signal the ") + what).c_str(), "", err);
  }
  std::string msg;
  char buf[512];
  for (;;) {
    ssize_t n = read(err_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  // Kept open until the child has exec'd or failed: its hang-up tells a child that has not waited for
  // the go that the shim is gone.
  sync_w.reset();
  if (!msg.empty()) {
    kill_and_reap(pid);
    return fail_msg(msg);
  }
  if (pty_parent.ok()) {
    int master = recv_fd(pty_parent.get());
    if (master >= 0) out.pty.reset(master);
  }
  out.pid = pid;
  return true;
}

namespace {

void mark_own(ChildPlan& plan, int kind) {
  if (kind == CLONE_NEWIPC) plan.own_ipc = true;
  if (kind == CLONE_NEWNET) plan.own_net = true;
  if (kind == CLONE_NEWUTS) plan.own_uts = true;
}

// Whether fd is the shim's own namespace of that kind (the same inode as /proc/self/ns/<kind>).
bool is_shims_ns(int kind, int fd) {
  const char* name = kind == CLONE_NEWIPC ? "ipc" : kind == CLONE_NEWNET ? "net" : kind == CLONE_NEWUTS ? "uts" : nullptr;
  if (name == nullptr) return false;
  struct stat mine, theirs;
  if (stat((std::string("/proc/self/ns/") + name).c_str(), &mine) < 0 || fstat(fd, &theirs) < 0) return true;
  return mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev;
}

}  // namespace

bool start_container(const Spec& s, const std::vector<std::string>& cgroups, Container& out) {
  ChildPlan plan;
  plan.tty = s.terminal;

  // Namespaces: a new one through the clone flags, or an existing one (path) joined with setns.
  std::vector<Fd> ns_fds;
  int flags = 0;
  bool has_mount_ns = false;
  for (const auto& ns : s.namespaces) {
    int kind = 0;
    for (const auto& k : kNamespaces)
      if (ns.type == k.type) kind = k.flag;
    if (kind == 0) return fail_msg("namespace type " + ns.type + " is not supported by berth-shim");
    if (kind == CLONE_NEWNS) has_mount_ns = true;
    if (kind == CLONE_NEWUSER) {
      if (!ns.path.empty()) return fail_msg("joining an existing user namespace is not supported by berth-shim");
      flags |= CLONE_NEWUSER;
      plan.new_user = true;
      continue;
    }
    if (ns.path.empty()) {
      if (kind == CLONE_NEWCGROUP)
        plan.new_cgroup = true;  // entered later, after the cgroup placement
      else
        flags |= kind;
      if (kind == CLONE_NEWUTS) plan.new_uts = true;
      if (kind == CLONE_NEWNET) plan.new_net = true;
      mark_own(plan, kind);
      continue;
    }
    Fd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.ok()) return fail(("open " + ns.type + " namespace").c_str(), ns.path);
    // A joined namespace (another container's) is the container's own unless it is the host's.
    if (!is_shims_ns(kind, fd.get())) mark_own(plan, kind);
    if (kind == CLONE_NEWPID) {
      // setns to a pid namespace only applies to children created afterwards, so the shim enters it
      // itself (for its children only; the shim's own pid does not change) and clones into it.
      if (setns(fd.get(), CLONE_NEWPID) < 0) return fail("setns pid namespace", ns.path);
      continue;
    }
    plan.joins.push_back({fd.get(), kind, ns.path});
    ns_fds.push_back(std::move(fd));
  }
  // Without its own mount namespace the container's mounts would land on the host.
  if (!has_mount_ns) return fail_msg("config.json: linux.namespaces must include a mount namespace");
  if (plan.new_user && (s.uid_map.empty() || s.gid_map.empty()))
    return fail_msg("config.json: a new user namespace needs linux.uidMappings and linux.gidMappings");
  // A child born in a user namespace of its own has no capability over namespaces the host's owns (the
  // network namespace berthd made, another container's IPC or UTS), so setns from inside fails. The shim
  // enters those itself around the clone, which makes the child start in them; it returns to its own
  // right after (as with the pid namespace, this is fine for a single-threaded process).
  std::vector<Fd> shim_own;  // the shim's own namespaces to return to, per kind entered
  std::vector<int> shim_kinds;
  if (plan.new_user) {
    std::vector<ChildPlan::Join> keep;
    for (const auto& j : plan.joins) {
      if (j.flag != CLONE_NEWNET && j.flag != CLONE_NEWIPC && j.flag != CLONE_NEWUTS) {
        keep.push_back(j);
        continue;
      }
      const char* name = j.flag == CLONE_NEWNET ? "net" : j.flag == CLONE_NEWIPC ? "ipc" : "uts";
      Fd mine(open((std::string("/proc/self/ns/") + name).c_str(), O_RDONLY | O_CLOEXEC));
      if (!mine.ok()) return fail("open", std::string("/proc/self/ns/") + name);
      shim_own.push_back(std::move(mine));
      shim_kinds.push_back(j.flag);
      if (setns(j.fd, j.flag) < 0) {
        int err = errno;
        for (size_t k = 0; k < shim_own.size(); k++) setns(shim_own[k].get(), shim_kinds[k]);
        return fail("setns", j.path, err);
      }
    }
    plan.joins = keep;
  }
  auto back_home = [&]() {
    for (size_t k = 0; k < shim_own.size(); k++)
      if (setns(shim_own[k].get(), shim_kinds[k]) < 0) return fail("return to the shim's namespace", "");
    shim_own.clear();
    return true;
  };
  if (!check_sysctls(s, plan)) return false;

  ChildStdio io;
  if (!open_child_stdio(s.terminal, s.stdin_pipe, plan, io, out)) return false;

  std::vector<Fd> task_fds;
  const std::vector<std::string> by_parent = plan_cgroups(cgroups, plan, task_fds);

  if (!cached_seccomp(s.seccomp, s.seccomp_cache, plan.seccomp_prog)) return false;

  Fd sync_r, sync_w, err_r, err_w;
  if (!make_pipe(sync_r, sync_w) || !make_pipe(err_r, err_w)) return false;
  plan.sync_r = sync_r.get();
  // In a new user namespace the child waits for its uid and gid maps too.
  plan.wait_for_go = !by_parent.empty() || plan.new_user;
  plan.oom_by_parent = plan.new_user && s.has_oom_score_adj;
  plan.err_w = err_w.get();

  // A raw clone without a new stack behaves like fork (the child runs on a copy of this stack), but
  // takes namespace flags. The shim is single-threaded, so the copied libc state is consistent; only
  // libc's cached thread id still names the parent, which matters to raise() and pthread functions,
  // and the child uses neither.
  long pid = syscall(SYS_clone, static_cast<unsigned long>(flags | SIGCHLD), nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) {
    int err = errno;
    back_home();
    return fail("clone", "", err);
  }
  if (pid == 0) child_main(s, plan);
  if (!back_home()) {
    kill_and_reap(static_cast<pid_t>(pid));
    return false;
  }

  // Parent: drop the child's ends, so that EOF on the pipes means the container closed them.
  sync_r.reset();
  err_w.reset();
  io.drop_child_ends();
  ns_fds.clear();
  task_fds.clear();

  // The maps are written by the shim, root in the namespace's parent, before the child goes on.
  if (plan.new_user) {
    const std::string proc = "/proc/" + std::to_string(pid) + "/";
    if (!write_file(proc + "uid_map", s.uid_map) || !write_file(proc + "gid_map", s.gid_map)) {
      std::string msg = "write the user namespace's id maps: " + last_error();
      kill_and_reap(static_cast<pid_t>(pid));
      return fail_msg(msg);
    }
  }

  return release_child(static_cast<pid_t>(pid), by_parent, sync_w, err_r, io.pty_parent, "container init", out, plan.wait_for_go,
                       plan.oom_by_parent ? std::to_string(s.oom_score_adj) : "");
}

// ---- exec mode -------------------------------------------------------------------------------------

namespace {

// The namespaces an exec joins, in the order they are entered: the mount namespace last, since after it
// paths resolve in the container; cgroup after the parent has placed the pid in the cgroups.
// The user namespace comes last of all: every setns before it is made with the host root's capabilities
// (which hold over namespaces of any owner), and after it the process is a root of the container's range.
const NsKind kExecNamespaces[] = {
    {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET}, {"cgroup", CLONE_NEWCGROUP}, {"mnt", CLONE_NEWNS},
    {"user", CLONE_NEWUSER},
};

// Field 22 of /proc/<pid>/stat (start time in clock ticks after boot), "" when there is no such process.
// Counted from the last ')': the command name may hold spaces and parentheses.
std::string process_start_time(pid_t pid) {
  std::string text;
  if (!read_file("/proc/" + std::to_string(pid) + "/stat", text)) return "";
  size_t p = text.rfind(')');
  if (p == std::string::npos) return "";
  int field = 2;
  size_t i = p + 1;
  while (i < text.size() && field < 22) {
    while (i < text.size() && text[i] == ' ') i++;
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    if (++field == 22) return text.substr(i, j - i);
    i = j;
  }
  return "";
}

// Whether /proc/self/ns/<kind> and /proc/<pid>/ns/<kind> are the same namespace (then it is not joined:
// a container that shares the host's network, say, needs nothing, and setns to one's own user or mount
// namespace is refused in some cases).
bool same_ns(const std::string& kind, int fd) {
  struct stat mine, theirs;
  if (stat(("/proc/self/ns/" + kind).c_str(), &mine) < 0 || fstat(fd, &theirs) < 0) return false;
  return mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev;
}

// The exec'd process between clone and execve: it is already in the container's pid namespace (the
// shim entered it for its children); it enters the others, sets up its stdio, limits, credentials and
// seccomp filter as the container's init did, and execs. Nothing of the root is built: it is the
// container's.
bool exec_child_init(const Spec& s, const ChildPlan& given) {
  await_parent(given);
  ChildPlan plan = given;
  plan.fd_dir = open_fd_dir();
  umask(022);

  if (!join_own_cgroups(plan)) return false;
  for (const auto& j : plan.joins)
    if (setns(j.fd, j.flag) < 0) return fail("setns", j.path);
  // After setns into the mount namespace the root and cwd are the container's root.
  if (!setup_stdio(s, plan, /*bind_console=*/false)) return false;
  return become_process(s, plan);
}

}  // namespace

bool start_exec(const Spec& s, pid_t target, const std::string& target_start, const std::vector<std::string>& cgroups, bool stdin_pipe,
                Container& out) {
  ChildPlan plan;
  plan.tty = s.terminal;
  std::string proc = "/proc/" + std::to_string(target) + "/ns/";

  // The pid namespace: entered by the shim for its children, so the clone below lands in it.
  {
    Fd pidns(open((proc + "pid").c_str(), O_RDONLY | O_CLOEXEC));
    if (!pidns.ok()) return fail_msg("container process " + std::to_string(target) + " is not running");
    if (!same_ns("pid", pidns.get()) && setns(pidns.get(), CLONE_NEWPID) < 0) return fail("setns pid namespace", proc + "pid");
  }
  std::vector<Fd> ns_fds;
  for (const auto& k : kExecNamespaces) {
    Fd fd(open((proc + k.type).c_str(), O_RDONLY | O_CLOEXEC));
    // An exited process (a zombie not yet reaped keeps its pid) has no namespaces left.
    if (!fd.ok() && errno == ENOENT) return fail_msg("container process " + std::to_string(target) + " is not running");
    if (!fd.ok()) return fail("open namespace", proc + k.type);
    if (same_ns(k.type, fd.get())) continue;
    plan.joins.push_back({fd.get(), k.flag, proc + k.type});
    ns_fds.push_back(std::move(fd));
  }
  // berthd names the process by pid and start time: checked now that every namespace is open, a process
  // that still has that start time was alive all along, so they are its own and not those of a process
  // that got the pid after it.
  if (!target_start.empty() && process_start_time(target) != target_start)
    return fail_msg("container process " + std::to_string(target) + " is not running");

  ChildStdio io;
  if (!open_child_stdio(s.terminal, stdin_pipe, plan, io, out)) return false;

  // Cgroup v1 directories are joined by the child itself, the others get its pid from here.
  std::vector<Fd> task_fds;
  const std::vector<std::string> by_parent = plan_cgroups(cgroups, plan, task_fds);

  if (!cached_seccomp(s.seccomp, s.seccomp_cache, plan.seccomp_prog, s.seccomp_shared_cache)) return false;

  Fd sync_r, sync_w, err_r, err_w;
  if (!make_pipe(sync_r, sync_w) || !make_pipe(err_r, err_w)) return false;
  plan.sync_r = sync_r.get();
  // A process that joins a user namespace gets its oom_score_adj from the shim, before it goes on.
  bool joins_user = false;
  for (const auto& j : plan.joins) joins_user = joins_user || j.flag == CLONE_NEWUSER;
  plan.oom_by_parent = joins_user && s.has_oom_score_adj;
  plan.wait_for_go = !by_parent.empty() || plan.oom_by_parent;
  plan.err_w = err_w.get();

  // Same raw clone as for the container's init, without new namespaces: a fork into the pid namespace
  // entered above (the container's init being gone shows up as ENOMEM here).
  long pid = syscall(SYS_clone, static_cast<unsigned long>(SIGCHLD), nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) {
    if (errno == ENOMEM) return fail_msg("container process " + std::to_string(target) + " is not running");
    return fail("clone", "");
  }
  if (pid == 0) {
    if (!exec_child_init(s, plan)) {
      const std::string& msg = last_error();
      write_all(plan.err_w, msg.data(), msg.size());
    }
    _exit(1);
  }

  sync_r.reset();
  err_w.reset();
  io.drop_child_ends();
  ns_fds.clear();
  task_fds.clear();

  return release_child(static_cast<pid_t>(pid), by_parent, sync_w, err_r, io.pty_parent, "exec process", out, plan.wait_for_go,
                       plan.oom_by_parent ? std::to_string(s.oom_score_adj) : "");
}
