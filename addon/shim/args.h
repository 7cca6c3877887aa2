// The shim's command line (PROTOCOL.md, "Command line").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct Args {
  std::string id;
  std::string bundle;                // directory holding config.json
  std::string state;                 // exists; gets shim.pid, shim.sock, exit.json
  std::string log;                   // json-file log path
  std::vector<std::string> cgroups;  // cgroup directories to put the container's pid into
  bool attach = false;               // fd 3 starts subscribed to the output
  uint64_t log_max_size = 0;         // 0 = no rotation
  unsigned log_max_file = 1;
};

// Parses argv into out. Relative paths are made absolute against the current directory, because the
// shim later changes directory to the state dir. Records an error and returns false on bad usage.
bool parse_args(int argc, char** argv, Args& out);
