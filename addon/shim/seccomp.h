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
  std::string action_name;  // as the spec wrote it, for messages
  std::vector<SpecSeccompArg> args;
};

struct SpecSeccomp {
  bool present = false;
  uint32_t default_action = 0;
  std::vector<uint32_t> arches;  // SCMP_ARCH_* tokens besides the native one
  unsigned flags = 0;            // SECCOMP_FILTER_FLAG_* given to seccomp(2) when the filter is loaded
  std::vector<SpecSeccompRule> rules;
};

// Maps an OCI action name ("SCMP_ACT_ERRNO", …) with its errnoRet to a libseccomp action; false if unknown.
bool seccomp_action(const std::string& name, int errno_ret, uint32_t& out);
// Maps an OCI comparison name ("SCMP_CMP_MASKED_EQ", …) to libseccomp's enum; false if unknown.
bool seccomp_compare(const std::string& name, int& out);
// Maps an OCI architecture ("SCMP_ARCH_X86", …) to libseccomp's token; false if libseccomp lacks it.
bool seccomp_arch(const std::string& name, uint32_t& out);
// Maps an OCI filter flag ("SECCOMP_FILTER_FLAG_LOG", …) to its bit; false if berth does not take it.
bool seccomp_flag(const std::string& name, unsigned& out);
// Builds the filter into a classic BPF program (the bytes of its sock_filter array); empty when the spec
// has none. A syscall name libseccomp does not know, or that none of the filter's architectures has, is
// left out (profiles name syscalls of every architecture and of kernels newer than libseccomp, as runc
// does); a rule libseccomp refuses fails with last_error saying which. When the default action refuses,
// syscalls numbered above every one the profile names answer ENOSYS (a prelude, as runc's): they are newer than
// the profile, and libcs fall back from ENOSYS, not from EPERM.
bool compile_seccomp(const SpecSeccomp& s, std::string& prog);
// compile_seccomp through a cache file: one per profile for containers' inits, one per container for
// its execs (which fall back on the profile's, `shared`, before they compile). What is read back must be
// for this very profile and this shim binary, else it is compiled again. An empty `cache` compiles.
bool cached_seccomp(const SpecSeccomp& s, const std::string& cache, std::string& prog, const std::string& shared = "");
// Loads a compiled program for the calling process with the profile's flags (no no_new_privs).
bool load_seccomp_program(const std::string& prog, unsigned flags);
