// Plain mirrors of index.d.ts's CgroupLayout and CgroupResources, filled at entry by js/cgroup.cc.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {
namespace cgroup {

// Where the host mounts its cgroup hierarchies.
struct Layout {
  int version = 0;  // 1: v1 controllers mounted (hybrid hosts too); 2: unified only
  // v1: controller ("memory", "cpu", "name=systemd") → mount point; co-mounted controllers share one.
  // v2: empty.
  std::map<std::string, std::string> controllers;
  // v2: the unified mount point. v1: the cgroup2 mount of a hybrid host, or "".
  std::string unified;
};

// One device cgroup rule, as OCI's linux.resources.devices: allow or deny `access` (a subset of "rwm")
// to devices of `type` ('a' any, 'c' char, 'b' block) with `major`:`minor` (-1 = any).
struct DeviceRule {
  bool allow = false;
  char type = 'a';
  int64_t major = -1;
  int64_t minor = -1;
  std::string access = "rwm";
};

// "allow c 1:3 rwm", "deny a *:* rwm": the text form index.d.ts passes (v1's devices.allow syntax after
// the verb). False when `text` is not one.
bool ParseDeviceRule(const std::string& text, DeviceRule* out);
// The v1 devices.allow / devices.deny line of a rule ("c 1:3 rwm", "a *:* rwm").
std::string DeviceRuleLine(const DeviceRule& rule);

// Limits to apply. An absent field is left as it is (that is what makes docker update partial); the
// meaning of 0 and -1 per field is index.d.ts's.
struct Resources {
  std::optional<int64_t> memory;             // bytes, 0 = unlimited
  std::optional<int64_t> memory_swap;        // memory+swap bytes, -1 = unlimited, 0 = leave as is
  std::optional<int64_t> memory_reservation; // bytes, 0 = none
  std::optional<int64_t> pids_limit;         // 0 or -1 = unlimited
  std::optional<int64_t> cpu_shares;         // v1 cpu.shares (2..262144), 0 = leave as is
  std::optional<int64_t> cpu_quota;          // µs per period, 0 = leave as is, -1 = unlimited
  std::optional<int64_t> cpu_period;         // µs, 0 = leave as is
  std::optional<std::string> cpuset_cpus;    // "" = leave as is
  std::optional<std::string> cpuset_mems;    // "" = leave as is
  std::optional<int64_t> blkio_weight;       // 10..1000, 0 = leave as is
  // Device access, applied at create only, in order (later rules win): v1 devices.deny/devices.allow,
  // v2 a BPF_PROG_TYPE_CGROUP_DEVICE program. Absent = every device (the host's default).
  std::optional<std::vector<DeviceRule>> devices;
  // Files written as given, after everything above: settings whose values berthd works out per host and
  // cgroup version (per-device block I/O weights and limits, swappiness, OOM-kill disable, real-time
  // budgets). v1: in the hierarchy of `controller`; v2: the container's unified directory.
  struct FileWrite {
    std::string controller;
    std::string file;   // a plain file name of the cgroup directory ("blkio.throttle.read_bps_device")
    std::string value;
  };
  std::vector<FileWrite> files;
};

}  // namespace cgroup
}  // namespace berth
