/*
 * berth-init: the process `docker run --init` puts at pid 1 of a container, bind-mounted read-only at
 * /sbin/docker-init. Usage: docker-init [--] command [args...]
 *
 * A pid 1 has two duties ordinary programs do not fulfil: it must reap every orphan that the kernel
 * re-parents to it (or zombies pile up), and it must pass on the signals sent to the container, since the
 * kernel drops signals to pid 1 that it has no handler for. This init forks the command as its only
 * child, forwards every catchable signal to it (to its process group when the child made one), reaps
 * whatever exits, and when the command itself exits, exits with its status: the exit code, or 128 + the
 * signal number that killed it (what a shell reports and what Docker shows).
 *
 * Built statically (no libc is assumed inside the container).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(void) {
  fputs("usage: docker-init [--] command [args...]\n", stderr);
  exit(2);
}

int main(int argc, char **argv) {
  int first = 1;
  if (first < argc && strcmp(argv[first], "--") == 0) first++;
  if (first >= argc) usage();

  /* Block every signal; they are taken synchronously with sigtimedwait below. The child gets the mask
   * back to what it was before it runs the command. */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);

  /* When not pid 1 (an outer init exists), become a subreaper so orphans still come to us. */
  if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  pid_t child = fork();
  if (child < 0) {
    perror("docker-init: fork");
    return 1;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* A process group of its own, so that a terminal's job control and a forwarded signal reach the
     * whole command; with a controlling terminal the group is made the foreground one. */
    setpgid(0, 0);
    if (isatty(STDIN_FILENO)) {
      signal(SIGTTOU, SIG_IGN);
      tcsetpgrp(STDIN_FILENO, getpid());
      signal(SIGTTOU, SIG_DFL);
    }
    execvp(argv[first], &argv[first]);
    fprintf(stderr, "docker-init: exec %s: %s\n", argv[first], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }

  int exit_status = -1;
  for (;;) {
    /* Reap everything that has exited; remember the command's own status. */
    for (;;) {
      int status;
      pid_t p = waitpid(-1, &status, WNOHANG);
      if (p <= 0) break;
      if (p == child) {
        if (WIFEXITED(status)) exit_status = WEXITSTATUS(status);
        else if (WIFSIGNALED(status)) exit_status = 128 + WTERMSIG(status);
      }
    }
    if (exit_status >= 0) return exit_status;

    struct timespec tick = {1, 0};
    siginfo_t info;
    int sig = sigtimedwait(&all, &info, &tick);
    if (sig < 0) continue; /* EAGAIN (tick) or EINTR: go round and reap */
    if (sig == SIGCHLD) continue;
    /* Signals the tty sends to stop us are meaningless for an init; everything else goes on. */
    if (sig == SIGTTIN || sig == SIGTTOU || sig == SIGTSTP) {
      kill(-child, sig);
      continue;
    }
    if (kill(-child, sig) < 0) kill(child, sig);
  }
}
