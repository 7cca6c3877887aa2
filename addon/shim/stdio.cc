// A child's stdio: a terminal in the container's own devpts (or the shim's pty), or pipes.

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

// Opens a terminal in the container's own devpts (so ttyname() finds /dev/pts/N inside the container,
// as with Docker), hands its master to the shim and returns the slave; -1 when the container has no
// usable /dev/ptmx, in which case the shim's pty is used.
int open_container_pty(const Spec& s, int pty_sock, bool bind_console) {
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
bool setup_stdio(const Spec& s, const ChildPlan& plan, bool bind_console) {
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
