// Creating the container: clone(2) into new namespaces, place the child in its cgroups, let it build its
// root and credentials, and exec the user's process.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "spec.h"
#include "util.h"

// The shim's side of a started container.
struct Container {
  pid_t pid = -1;  // host pid of the container's init (the shim's child)
  Fd pty;          // TTY mode: the terminal's master; output and input go through it
  Fd stdin_w;      // non-TTY with org.berth.stdin: write end of the stdin pipe
  Fd stdout_r;     // non-TTY: read ends of the output pipes
  Fd stderr_r;
};

// Starts the container described by s. Its pid is written to DIR/cgroup.procs for every entry of
// cgroups before it does anything else. Returns true once the user's process was exec'd; on failure
// the child has been reaped and last_error() holds the message for START_FAILED (for exec failures in
// the wording the docker CLI maps to exit codes 126/127).
bool start_container(const Spec& s, const std::vector<std::string>& cgroups, Container& out);

// Exec mode: starts s.args as one more process of the running container whose init has host pid target.
// The process joins every namespace of that init (pid through a fork after setns), is placed in the
// given cgroup directories before it runs, and gets the credentials, capabilities, rlimits and seccomp
// filter of s. stdin_pipe: a stdin pipe (Container::stdin_w) instead of /dev/null. Same contract as
// start_container otherwise.
bool start_exec(const Spec& s, pid_t target, const std::string& target_start, const std::vector<std::string>& cgroups, bool stdin_pipe,
                Container& out);
