// The pieces of a child of the shim (a container's init, or an exec) shared by the files that make it:
// container.cc (clone, start_container), exec.cc (start_exec), process.cc (credentials, limits, execve),
// stdio.cc (its terminal or pipes), namespaces.cc (namespaces and sysctls) and fds.cc (descriptors).
// Internal to the shim: container.h is what the rest of it uses.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "container.h"
#include "spec.h"
#include "util.h"

struct NsKind {
  const char* type;
  int flag;
};
// The namespace kinds of a spec, with their clone flags (namespaces.cc).
extern const NsKind kNamespaces[7];

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
  // Another container's user namespace to join (Docker's --pid/--ipc/--network container:X under a
  // remap): -1 when none. The child enters it after every other join and makes the container's own
  // namespaces (`inner_flags`) from inside it, in a second clone whose pid it writes to `pid_w`.
  int user_fd = -1;
  int inner_flags = 0;
  int pid_w = -1;
  bool new_cgroup = false;
  bool new_user = false;  // cloned into a user namespace of its own: see preopen_rootfs
  // The shim writes /proc/PID/oom_score_adj for the child: one in a user namespace of the container's
  // may neither open its own (no longer dumpable once it changed uid) nor lower it (CAP_SYS_RESOURCE of
  // the host's namespace).
  bool oom_by_parent = false;
  bool new_uts = false;
  bool new_net = false;
  bool net_sysctls_by_parent = false;  // net.* sysctls were written by the shim (see start_container)
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

// ---- fds.cc ----
// The child's own /proc/self/fd, or -1 when close_range will do (or the directory cannot be opened:
// cloexec_from_3 then says so).
int open_fd_dir();
// Marks every fd from 3 up close-on-exec (close_range, or a walk of fd_dir).
bool cloexec_from_3(int fd_dir);
// Sends fd over a unix socket (SCM_RIGHTS).
bool send_fd(int sock, int fd);
// Receives an fd sent with send_fd, if one is queued; -1 otherwise.
int recv_fd(int sock);
void kill_and_reap(pid_t pid);
bool make_pipe(Fd& r, Fd& w);

// ---- stdio.cc ----
// A terminal in the container's own devpts, its master handed to the shim; -1 without a usable /dev/ptmx.
int open_container_pty(const Spec& s, int pty_sock, bool bind_console = true);
// fds 0-2 of the container's process (init, or an exec: `bind_console` false), in its own session.
bool setup_stdio(const Spec& s, const ChildPlan& plan, bool bind_console = true);
// The shim's side: a terminal or pipes for the child's stdio, before the clone.
bool open_child_stdio(bool terminal, bool stdin_pipe, ChildPlan& plan, ChildStdio& io, Container& out);

// ---- namespaces.cc ----
bool loopback_up();
// Refuses every sysctl not in a namespace of the container's own (before anything is cloned).
bool check_sysctls(const Spec& s, const ChildPlan& plan);
// Writes the sysctls check_sysctls let through, from inside the container's namespaces: the net.* keys
// (net 1), the others (0), or all (-1).
bool write_sysctls(const Spec& s, int net = -1);
void mark_own(ChildPlan& plan, int kind);
// Whether fd is the shim's own namespace of that kind.
bool is_shims_ns(int kind, int fd);

// ---- process.cc ----
// s in double quotes, as runc's messages show names.
std::string quote(const std::string& s);
// Resolves args[0] in the PATH of the container's environment, as runc does before exec.
bool look_path(const Spec& s, std::string& out);
bool set_user(const Spec& s);
// Signal mask and dispositions as a new process expects them.
void reset_signals();
bool apparmor_on_exec(const std::string& profile);
// The last steps of every process the shim starts: limits, seccomp, capabilities, user and working
// directory, then execve. Returns only on failure.
bool become_process(const Spec& s, const ChildPlan& plan);

// ---- container.cc ----
// The first steps of every child: tied to the shim's life, waiting for it when it has cgroups to place it in.
void await_parent(const ChildPlan& plan);
// Splits the cgroups a child must join into those it joins itself and those the parent writes its pid into.
std::vector<std::string> plan_cgroups(const std::vector<std::string>& cgroups, ChildPlan& plan, std::vector<Fd>& task_fds);
bool join_own_cgroups(const ChildPlan& plan);
// The shim's side after clone: cgroups, the go, then the child's exec or its error.
// `pid_r`: where a child that joins a user namespace reports the pid of the init it made (-1: none).
bool release_child(pid_t pid, const std::vector<std::string>& cgroups, Fd& sync_w, Fd& err_r, Fd& pty_parent,
                   const char* what, Container& out, bool go, const std::string& oom_score_adj, int pid_r = -1);
