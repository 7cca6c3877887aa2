// enosys-exec: runs a command under a seccomp filter that answers ENOSYS to the system calls named, as a
// kernel that predates them would. Tests start berthd through it (test/e2e/kernel-fallbacks.test.ts) to
// try every fallback of the addon and the shim on this kernel; the filter is inherited by everything the
// command starts (shims, containers).
//
//   build/enosys-exec [--leak-fd N] fsopen,openat2,close_range,... -- COMMAND [ARG]...
//
// --leak-fd N opens /dev/null as fd N without close-on-exec, so the command and whatever it starts
// inherit it: a descriptor the shim must keep out of containers (close_range or its fallback).
//
// The filter is loaded without no_new_privs (the caller is root with CAP_SYS_ADMIN), so set-user-id
// programs in containers behave as they would without it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc > 2 && strcmp(argv[1], "--leak-fd") == 0) {
    int want = atoi(argv[2]);
    int fd = open("/dev/null", O_RDONLY);
    if (want < 3 || fd < 0 || (fd != want && (dup2(fd, want) < 0 || close(fd) < 0))) {
      fprintf(stderr, "enosys-exec: cannot open fd %s\n", argv[2]);
      return 1;
    }
    argv += 2;
    argc -= 2;
  }
  if (argc < 4 || strcmp(argv[2], "--") != 0) {
    fprintf(stderr, "usage: enosys-exec [--leak-fd N] SYSCALL[,SYSCALL]... -- COMMAND [ARG]...\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    fprintf(stderr, "enosys-exec: seccomp_init failed\n");
    return 1;
  }
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  char* list = strdup(argv[1]);
  for (char* name = strtok(list, ","); name != NULL; name = strtok(NULL, ",")) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
      fprintf(stderr, "enosys-exec: unknown system call %s\n", name);
      return 2;
    }
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    if (rc != 0) {
      fprintf(stderr, "enosys-exec: rule for %s: %s\n", name, strerror(-rc));
      return 1;
    }
  }
  free(list);
  int rc = seccomp_load(ctx);
  if (rc != 0) {
    fprintf(stderr, "enosys-exec: loading the filter: %s\n", strerror(-rc));
    return 1;
  }
  seccomp_release(ctx);
  execvp(argv[3], argv + 3);
  fprintf(stderr, "enosys-exec: exec %s: %s\n", argv[3], strerror(errno));
  return 127;
}
