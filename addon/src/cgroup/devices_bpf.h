// Device access on cgroup v2: there is no devices.allow file; the kernel runs the eBPF programs of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to a task's cgroup and its ancestors on every device open, mknod
// and access check, and allows the access only when every one of them returns 1.
//
// The program berth attaches is made from a DeviceRule list (OCI linux.resources.devices): the rules are
// read in order and the LAST one that matches decides; when none matches the access is denied. The
// program tests them in reverse, returning at the first match, so the last matching rule is the one
// that answers. What "matches" means follows the v1 kernel controller:
//   - type 'a' matches every device, 'c' char devices, 'b' block devices; major/minor -1 match any;
//   - an allow rule matches a request whose access bits all lie within its access (an open for read and
//     write is not allowed by a rule that grants only "r");
//   - a deny rule matches a request that asks for any of its access bits (a rule denying "w" denies an
//     open for read and write).
// An empty access string is read as "rwm".
//
// The program is attached with BPF_F_ALLOW_MULTI: programs attached to ancestors (a systemd slice, say)
// still run, and this one can only narrow what they allow. It lives as long as the cgroup directory does.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "cgroup/layout.h"
#include "util/fd.h"
#include "util/status.h"

namespace berth {
namespace cgroup {

// Builds the program's instructions. Fails with EINVAL on a rule that cannot be expressed (a type other
// than a/b/c, access letters other than r/w/m, a major or minor below -1 or above 2^32-1).
Status BuildDeviceProgram(const std::vector<DeviceRule>& rules, std::vector<bpf_insn>* out);

// Loads instructions as a BPF_PROG_TYPE_CGROUP_DEVICE program. On failure the error carries the
// verifier's log when it gave one.
Status LoadDeviceProgram(const std::vector<bpf_insn>& insns, UniqueFd* out);

// Builds, loads and attaches the program for rules to the cgroup v2 directory open at cgroup_fd
// (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI). path only names the directory in errors.
Status AttachDeviceFilter(int cgroup_fd, const std::string& path, const std::vector<DeviceRule>& rules);

// The same for a cgroup v2 directory given by path.
Status AttachDeviceFilter(const std::string& dir, const std::vector<DeviceRule>& rules);

}  // namespace cgroup
}  // namespace berth
