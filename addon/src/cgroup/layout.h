// Plain mirrors of index.d.ts's CgroupLayout and CgroupResources, filled at entry by js/cgroup.cc.
#pragma once

#include <cstdint>
#include <cstdio>
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
  // Per-device throttles, "MAJOR:MINOR KEY=N" with KEY one of rbps, wbps, riops, wiops (v2 io.max's
  // words); N = 0 lifts the limit. Checked at entry (ParseIoLimit).
  std::optional<std::vector<std::string>> io_limits;
  // Device access, applied at create only, in order (later rules win): v1 devices.deny/devices.allow,
  // v2 a BPF_PROG_TYPE_CGROUP_DEVICE program. Absent = every device (the host's default).
  std::optional<std::vector<DeviceRule>> devices;
};

// Splits "8:0 rbps=1048576" into "8:0", "rbps" and 1048576; false when it is not of that form. Inline:
// both managers use it, and the device-filter test links v2.cc alone.
inline bool ParseIoLimit(const std::string& text, std::string* dev, std::string* key, int64_t* value) {
  unsigned major = 0, minor = 0;
  char k[8] = {0};
  long long n = -1;
  int used = 0;
  if (std::sscanf(text.c_str(), "%u:%u %7[a-z]=%lld%n", &major, &minor, k, &n, &used) != 4) return false;
  if (static_cast<size_t>(used) != text.size() || n < 0) return false;
  const std::string kk(k);
  if (kk != "rbps" && kk != "wbps" && kk != "riops" && kk != "wiops") return false;
  *dev = std::to_string(major) + ":" + std::to_string(minor);
  *key = kk;
  *value = n;
  return true;
}

}  // namespace cgroup
}  // namespace berth
