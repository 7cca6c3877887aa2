// The shim's command line (PROTOCOL.md, "Command line").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct Args {
  std::string id;
  std::string bundle;                // directory holding config.json
  std::string state;                 // exists; gets shim.pid, shim.sock, exit.json
  std::string log_driver = "json-file";  // json-file, local, none or syslog (PROTOCOL.md, "Logging")
  std::string log;                   // the log file (json-file, local, the syslog driver's cache); may be empty
  std::vector<std::string> cgroups;  // cgroup directories to put the container's pid into
  bool attach = false;               // fd 3 starts subscribed to the output
  uint64_t log_max_size = 0;         // 0 = no rotation
  unsigned log_max_file = 1;
  bool log_compress = false;         // rotated files become FILE.N.gz
  std::string log_attrs;             // a JSON object written as "attrs" in every entry (json-file)
  std::string syslog_address;        // unix:///p, unixgram:///p, udp://ip:port, tcp://ip:port; "" = local syslog
  unsigned syslog_facility = 3;      // daemon
  std::string syslog_tag;
  std::string syslog_format;         // "", rfc3164, rfc5424, rfc5424micro
  bool log_nonblock = false;         // log-opt mode=non-blocking: drop what a slow receiver cannot take now

  // `berth-shim exec …` (PROTOCOL.md, "Exec mode"): run one more process in a running container.
  bool exec_mode = false;
  int target_pid = 0;       // --pid: host pid of the container's init, whose namespaces are joined
  std::string target_start; // --pid-start: its start time (field 22 of /proc/PID/stat), checked once joined
  std::string process;      // --process: JSON file with the exec's OCI `process` (and `linux.seccomp`)
  bool stdin_pipe = false;  // --stdin: the process gets a stdin pipe (else /dev/null)
};

// Parses argv into out. Relative paths are made absolute against the current directory, because the
// shim later changes directory to the state dir. Records an error and returns false on bad usage.
bool parse_args(int argc, char** argv, Args& out);
