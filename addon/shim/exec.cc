// Exec mode: one more process in a running container, joining its namespaces.

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
