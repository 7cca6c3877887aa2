// The container's seccomp filter: OCI `linux.seccomp` read into plain structs, compiled with libseccomp
// by the shim before it clones, and loaded by the child just before its user and capabilities are set.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct SpecSeccompArg {
  unsigned index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  int op = 0;  // enum scmp_compare
};

struct SpecSeccompRule {
  std::vector<std::string> names;
  uint32_t action = 0;  // SCMP_ACT_* (errno folded in)
  std::vector<SpecSeccompArg> args;
};

struct SpecSeccomp {
  bool present = false;
  uint32_t default_action = 0;
  std::vector<SpecSeccompRule> rules;
};

// Maps an OCI action name ("SCMP_ACT_ERRNO", …) with its errnoRet to a libseccomp action; false if unknown.
bool seccomp_action(const std::string& name, int errno_ret, uint32_t& out);
// Maps an OCI comparison name ("SCMP_CMP_MASKED_EQ", …) to libseccomp's enum; false if unknown.
bool seccomp_compare(const std::string& name, int& out);
// Builds the filter into a classic BPF program (the bytes of its sock_filter array); empty when the spec
// has none. Syscall names the kernel or libseccomp does not know are skipped (profiles name syscalls of
// every architecture and kernel). Returns false with last_error set.
bool compile_seccomp(const SpecSeccomp& s, std::string& prog);
// compile_seccomp through a cache file (an exec's filter is its container's: compiled by the first exec
// after a start, read back by the others). An empty `cache` compiles.
bool cached_seccomp(const SpecSeccomp& s, const std::string& cache, std::string& prog);
// Loads a compiled program for the calling process, as libseccomp would (no flags, no no_new_privs).
bool load_seccomp_program(const std::string& prog);
