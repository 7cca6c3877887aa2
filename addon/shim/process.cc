// What every process the shim starts does last: limits, seccomp, capabilities, credentials, AppArmor, execve.

#include "child.h"

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

namespace {

// 0 when path is a file the process could execute, else the errno that explains why not (as Go's
// exec.LookPath decides: a directory is EISDIR, a file without any x bit EACCES).
int check_executable(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  if ((st.st_mode & 0111) == 0) return EACCES;
  return 0;
}

}  // namespace

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
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

bool set_user(const Spec& s) {
  if (setgroups(s.additional_gids.size(), s.additional_gids.data()) < 0) return fail("setgroups", "");
  if (setresgid(s.gid, s.gid, s.gid) < 0) return fail(("setgid " + std::to_string(s.gid)).c_str(), "");
  // Keep the permitted capabilities across the uid change; the configured sets are applied after it.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail("prctl PR_SET_KEEPCAPS", "");
  if (setresuid(s.uid, s.uid, s.uid) < 0) return fail(("setuid " + std::to_string(s.uid)).c_str(), "");
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return fail("prctl PR_SET_KEEPCAPS", "");
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
