/* seccomp-probe: calls the syscalls named on its command line and prints, for each, "name=ok" or
 * "name=ERRNO" (EPERM, ENOSYS, …), so that a test can see what a container's seccomp filter lets through.
 * Built static, for the host's ABI and (with gcc -m32) for i386, and bind-mounted into containers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif

static const char *errname(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return NULL;
  }
}

/* One syscall, by name; returns its raw result (-1 with errno set on failure). */
static long call(const char *name) {
  if (!strcmp(name, "getpid")) return syscall(__NR_getpid);
  if (!strcmp(name, "io_uring_setup")) {
    unsigned char params[120];
    memset(params, 0, sizeof params);
    return syscall(__NR_io_uring_setup, 1, params);
  }
  /* keyctl is not in Docker's allow list; here it would otherwise find the session keyring. */
  if (!strcmp(name, "keyctl")) return syscall(__NR_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  /* personality: PER_LINUX32 is allowed by the profile, ADDR_NO_RANDOMIZE is not; both then restored. */
  if (!strcmp(name, "personality-linux32")) {
    long r = syscall(__NR_personality, PER_LINUX32);
    if (r >= 0) syscall(__NR_personality, PER_LINUX);
    return r;
  }
  if (!strcmp(name, "personality-norandom")) {
    long r = syscall(__NR_personality, PER_LINUX | ADDR_NO_RANDOMIZE);
    if (r >= 0) syscall(__NR_personality, PER_LINUX);
    return r;
  }
  /* kcmp (KCMP_VM of itself): the profile lets it through with CAP_SYS_PTRACE only. */
  if (!strcmp(name, "kcmp")) return syscall(__NR_kcmp, getpid(), getpid(), 1, 0, 0);
  if (!strcmp(name, "unshare-uts")) return syscall(__NR_unshare, CLONE_NEWUTS);
  if (!strcmp(name, "socket-vsock")) return syscall(__NR_socket, 40 /* AF_VSOCK */, SOCK_STREAM, 0);
  if (!strcmp(name, "socket-unix")) return socket(AF_UNIX, SOCK_STREAM, 0);
  /* fchmodat2 (Linux 6.6), on a path that does not exist, so that it changes nothing when it is let
   * through (ENOENT). */
  if (!strcmp(name, "fchmodat2")) return syscall(__NR_fchmodat2, AT_FDCWD, "/nonexistent-seccomp-probe", 0755, 0);
  /* mseal (Linux 6.10), of nothing: newer than every syscall this libseccomp knows. */
  if (!strcmp(name, "mseal")) return syscall(462, 0, 0, 0);
  if (!strncmp(name, "nr:", 3)) return syscall(strtol(name + 3, NULL, 10), 0, 0, 0, 0, 0, 0);
  fprintf(stderr, "seccomp-probe: unknown call %s\n", name);
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    errno = 0;
    long r = call(argv[i]);
    if (r >= 0) {
      printf("%s=ok\n", argv[i]);
      continue;
    }
    const char *n = errname(errno);
    if (n) printf("%s=%s\n", argv[i], n);
    else printf("%s=errno%d\n", argv[i], errno);
  }
  printf("abi=%d\n", (int)(8 * sizeof(void *)));
  return 0;
}
