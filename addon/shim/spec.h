// The part of the OCI runtime spec (config.json) that berth-shim reads, as plain structs.
//
// config.json is parsed once, before the container is cloned, into these structs; the JSON document is
// then freed. The container's init works from the structs only, and the supervising shim keeps no JSON
// library state around, which keeps its resident memory small.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "seccomp.h"

struct SpecMount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct SpecRlimit {
  std::string type;  // "RLIMIT_NOFILE", for messages
  int resource;      // RLIMIT_*
  uint64_t hard;
  uint64_t soft;
};

struct SpecDevice {
  std::string path;
  char type = 'c';  // c, b, u (= c) or p
  uint64_t major = 0;
  uint64_t minor = 0;
  bool has_mode = false;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct SpecNamespace {
  std::string type;  // pid, network, mount, ipc, uts, cgroup, user
  std::string path;  // empty: create a new one; else join this one (setns)
};

// A set of capabilities as a bit mask indexed by capability number (CAP_CHOWN = bit 0 ...).
using CapSet = uint64_t;

struct Spec {
  // process
  bool terminal = false;
  unsigned short console_rows = 0, console_cols = 0;  // process.consoleSize: the terminal's first size
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  bool has_caps = false;  // false: capabilities are left as they are (full root)
  CapSet cap_bounding = 0, cap_effective = 0, cap_inheritable = 0, cap_permitted = 0, cap_ambient = 0;
  std::vector<SpecRlimit> rlimits;
  bool no_new_privileges = false;
  std::string apparmor_profile;  // process.apparmorProfile: switched to on exec; empty = none
  bool has_oom_score_adj = false;
  int oom_score_adj = 0;

  // root
  std::string root_path;  // absolute (made so against the bundle)
  bool root_readonly = false;

  std::string hostname;
  std::string domainname;  // OCI "domainname" (NIS domain), set next to the hostname
  std::vector<SpecMount> mounts;

  // linux
  std::vector<SpecNamespace> namespaces;
  // linux.uidMappings / gidMappings as uid_map and gid_map text (a new user namespace only).
  std::string uid_map, gid_map;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::vector<std::pair<std::string, std::string>> sysctl;
  std::vector<SpecDevice> devices;
  SpecSeccomp seccomp;  // linux.seccomp; absent = unconfined
  std::string seccomp_cache;  // linux.seccompCache: the file holding the compiled filter (per profile, or per container for execs)
  std::string seccomp_shared_cache;  // exec mode: linux.seccompSharedCache, the profile's (the container start's)

  // annotations
  bool stdin_pipe = false;  // org.berth.stdin == "true"

  // Finds a namespace entry by type; nullptr when the config does not list it.
  const SpecNamespace* find_ns(const char* type) const {
    for (const auto& ns : namespaces)
      if (ns.type == type) return &ns;
    return nullptr;
  }
};

// Reads BUNDLE/config.json. Records an error ("config.json: ...") and returns false when the file is
// missing, not JSON, or holds a value of the wrong type or an unknown rlimit/namespace type.
bool load_spec(const std::string& bundle, Spec& out);

// Exec mode: reads a JSON file holding {"process": <OCI process>, "linux": {"seccomp": …, "seccompCache":
// path}} into out (only the process fields, linux.seccomp and seccomp_cache are filled).
bool load_exec_spec(const std::string& file, Spec& out);
