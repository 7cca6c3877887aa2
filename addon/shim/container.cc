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
#include "child.h"

namespace {

// Joining another container's user namespace, as Docker does for --pid, --ipc or --network container:X
// under a remap (a PID or IPC namespace owned by X's user namespace can only be used, /proc and
// /dev/mqueue mounted, from inside it). The joins above were made with the host root's capabilities,
// which hold over namespaces of every owner (berthd's network namespace is the host's); inside X's user
// namespace this process has every capability over X's namespaces and none over the host's. So the
// net.* sysctls are written first, and the container's own namespaces are made afterwards, owned by X's
// user namespace. A new pid namespace takes in only children, hence a second clone: its CLONE_PARENT
// makes the init the shim's own child, and this process reports its pid and exits. Returns in the init.
bool enter_user_namespace(const Spec& s, ChildPlan& plan) {
  if (plan.net_sysctls_by_parent && !write_sysctls(s, 1)) return false;
  if (setns(plan.user_fd, CLONE_NEWUSER) < 0) return fail("setns", "user namespace of the container joined");
  long pid = syscall(SYS_clone, static_cast<unsigned long>(plan.inner_flags | CLONE_PARENT), nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) return fail("clone", "");
  if (pid > 0) {
    const int32_t init = static_cast<int32_t>(pid);  // in this process's pid namespace, the shim's
    _exit(write_all(plan.pid_w, &init, sizeof init) ? 0 : 1);
  }
  // The init's parent is the shim now: tied to its life again (PDEATHSIG is not inherited), and gone if
  // the shim died before that (it holds the sync pipe open until the init has exec'd).
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  struct pollfd p = {plan.sync_r, POLLIN, 0};
  if (poll(&p, 1, 0) != 0) _exit(1);
  close(plan.sync_r);
  close(plan.pid_w);
  return true;
}

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
  if (plan.user_fd >= 0 && !enter_user_namespace(s, plan)) return false;
  // A new cgroup namespace is made only now that the parent has put the pid in its cgroups, so its
  // root is the container's own cgroup.
  if (plan.new_cgroup && unshare(CLONE_NEWCGROUP) < 0) return fail("unshare cgroup namespace", "");

  if (plan.new_user || plan.user_fd >= 0) {
    if (!preopen_rootfs(s)) return false;
    // Until now the init had the host's root uid (unmapped here: it reached the host paths above as
    // their owner); from here it is the namespace's root, and what it creates is owned by that.
    if (setresgid(0, 0, 0) < 0) return fail("setgid 0 in the user namespace", "");
    if (setresuid(0, 0, 0) < 0) return fail("setuid 0 in the user namespace", "");
  }
  if (!setup_rootfs(s)) return false;
  // Sysctls go through /proc/sys, which finish_rootfs makes read-only.
  if (!write_sysctls(s, plan.net_sysctls_by_parent ? 0 : -1)) return false;
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

}  // namespace

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
    if (plan.user_fd < 0) close(plan.sync_r);  // else the init checks it again (enter_user_namespace)
    return;
  }
  char go;
  ssize_t n;
  do n = read(plan.sync_r, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) _exit(1);  // the shim gave up (cgroup placement failed) or died
  if (plan.user_fd < 0) close(plan.sync_r);
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

// The shim's side after clone, for a container's init and for an exec alike: place the child in its
// cgroups before it runs anything of its own, let it go on, then block until it execs (its CLOEXEC error
// pipe closes) or reports why it could not; a TTY child sends back its pty master.
bool release_child(pid_t pid, const std::vector<std::string>& cgroups, Fd& sync_w, Fd& err_r, Fd& pty_parent,
                   const char* what, Container& out, bool go, const std::string& oom_score_adj, int pid_r) {
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
  auto read_error = [&]() {
    std::string text;
    char buf[512];
    for (;;) {
      ssize_t n = read(err_r.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    return text;
  };
  // A child that joined a user namespace made the init in a clone of its own and exits: the init (the
  // shim's child too, by CLONE_PARENT) is the process from here on.
  if (pid_r >= 0) {
    int32_t init = 0;
    size_t got = 0;
    while (got < sizeof init) {
      ssize_t n = read(pid_r, reinterpret_cast<char*>(&init) + got, sizeof init - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (got != sizeof init || init <= 0) {
      std::string msg = read_error();
      sync_w.reset();
      return fail_msg(msg.empty() ? std::string(what) + " exited before it started" : msg);
    }
    pid = static_cast<pid_t>(init);
  }
  std::string msg = read_error();
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

bool start_container(const Spec& s, const std::vector<std::string>& cgroups, Container& out) {
  ChildPlan plan;
  plan.tty = s.terminal;

  // Namespaces: a new one through the clone flags, or an existing one (path) joined with setns.
  std::vector<Fd> ns_fds;
  int flags = 0;
  bool has_mount_ns = false;
  Fd user_fd;
  for (const auto& ns : s.namespaces) {
    if (ns.type != "user" || ns.path.empty()) continue;
    user_fd.reset(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!user_fd.ok()) return fail("open user namespace", ns.path);
    plan.user_fd = user_fd.get();
  }
  for (const auto& ns : s.namespaces) {
    int kind = 0;
    for (const auto& k : kNamespaces)
      if (ns.type == k.type) kind = k.flag;
    if (kind == 0) return fail_msg("namespace type " + ns.type + " is not supported by berth-shim");
    if (kind == CLONE_NEWNS) has_mount_ns = true;
    if (kind == CLONE_NEWUSER) {
      if (!ns.path.empty()) continue;  // opened above
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
    if (kind == CLONE_NEWPID && plan.user_fd < 0) {
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
  if (plan.new_user && plan.user_fd >= 0) return fail_msg("config.json: linux.namespaces lists the user namespace twice");
  // Joining a user namespace: the child enters every namespace itself (the pid one for its own clone) and
  // makes the new ones from inside that user namespace (enter_user_namespace); it writes the net.*
  // sysctls of a network namespace it joined while still the host's root.
  Fd pid_r, pid_w;
  if (plan.user_fd >= 0) {
    plan.inner_flags = flags;
    flags = 0;
    for (const auto& j : plan.joins) plan.net_sysctls_by_parent = plan.net_sysctls_by_parent || j.flag == CLONE_NEWNET;
    if (!make_pipe(pid_r, pid_w)) return false;
    plan.pid_w = pid_w.get();
  }
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
  // A remapped container's network namespace was made by berthd, so it belongs to the host's user
  // namespace: the container's root (an unprivileged host uid) may read its net.* sysctls but not write
  // them. The shim, root of the owner and inside that namespace right now (/proc/sys/net answers for the
  // caller's network namespace), writes them before the clone.
  for (int k : shim_kinds) {
    if (k != CLONE_NEWNET) continue;
    if (!write_sysctls(s, 1)) {
      std::string msg = last_error();
      back_home();
      return fail_msg(msg);
    }
    plan.net_sysctls_by_parent = true;
  }

  ChildStdio io;
  if (!open_child_stdio(s.terminal, s.stdin_pipe, plan, io, out)) return false;

  std::vector<Fd> task_fds;
  const std::vector<std::string> by_parent = plan_cgroups(cgroups, plan, task_fds);

  if (!cached_seccomp(s.seccomp, s.seccomp_cache, plan.seccomp_prog)) return false;

  Fd sync_r, sync_w, err_r, err_w;
  if (!make_pipe(sync_r, sync_w) || !make_pipe(err_r, err_w)) return false;
  plan.sync_r = sync_r.get();
  // In a new user namespace the child waits for its uid and gid maps too.
  plan.wait_for_go = !by_parent.empty() || plan.new_user || plan.user_fd >= 0;
  plan.oom_by_parent = (plan.new_user || plan.user_fd >= 0) && s.has_oom_score_adj;
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
  pid_w.reset();
  user_fd.reset();
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
                       plan.oom_by_parent ? std::to_string(s.oom_score_adj) : "", pid_r.ok() ? pid_r.get() : -1);
}
