// Works out the host's cgroup layout from mountinfo (proc(5)): which v1 controllers are mounted where,
// and where the unified (cgroup2) hierarchy is.
#pragma once

#include <string>
#include <vector>

#include "cgroup/layout.h"
#include "util/status.h"

namespace berth {
namespace cgroup {

// One line of mountinfo, the fields this code needs.
struct MountEntry {
  std::string mount_point;  // octal escapes (\040 …) decoded
  std::string fstype;       // "cgroup", "cgroup2", …
  std::string super_options;
};

// Parses mountinfo text; malformed lines are skipped (the kernel writes the file, so they do not occur).
std::vector<MountEntry> ParseMountinfo(const std::string& text);

// Reads mountinfo_path (normally /proc/self/mountinfo) and fills *layout.
// Version 1 when any v1 hierarchy carries a real controller (a hybrid host, with only an empty cgroup2
// beside it, counts as 1); otherwise 2 when a cgroup2 mount exists; otherwise ENOENT.
Status Detect(const std::string& mountinfo_path, Layout* layout);

}  // namespace cgroup
}  // namespace berth
