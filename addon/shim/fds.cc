// Descriptors of a child of the shim: the shim's own kept out of the container, fds passed over a socket.

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

namespace {

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

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

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

}  // namespace

// The child's own /proc/self/fd, or -1 when close_range will do (or the directory cannot be opened:
// cloexec_from_3 then says so).
int open_fd_dir() {
  if (have_close_range_cloexec()) return -1;
  return open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

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
