#include "cgroup/detect.h"

#include <set>
#include <sstream>

#include "util/file.h"

namespace berth {
namespace cgroup {

namespace {

// The v1 controllers the kernel knows. Other v1 mount options (xattr, noprefix, clone_children,
// release_agent=…, cpuset_v2_mode, favordynmods) are not controllers; "name=X" hierarchies have none.
const std::set<std::string>& KnownControllers() {
  static const std::set<std::string> known = {
      "blkio", "cpu",     "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory",
      "misc",  "net_cls", "net_prio", "perf_event", "pids", "rdma", "debug"};
  return known;
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    const bool octal = s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
                       s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7';
    if (octal) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<MountEntry> ParseMountinfo(const std::string& text) {
  // id parent major:minor root mount-point mount-options [optional-fields…] - fstype source super-options
  std::vector<MountEntry> entries;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> f = SplitAny(line, " ");
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") sep++;
    if (f.size() < 5 || sep + 2 >= f.size()) continue;  // no "- fstype source"
    MountEntry e;
    e.mount_point = Unescape(f[4]);
    e.fstype = f[sep + 1];
    e.super_options = sep + 3 < f.size() ? f[sep + 3] : "";
    entries.push_back(std::move(e));
  }
  return entries;
}

Status Detect(const std::string& mountinfo_path, Layout* layout) {
  std::string text;
  Status st = ReadFile(mountinfo_path, &text);
  if (!st.ok()) return st;

  Layout v1;
  std::string first_unified;
  std::string sys_unified;  // a cgroup2 mount at the conventional /sys/fs/cgroup wins over others
  bool real_v1_controller = false;
  for (const MountEntry& m : ParseMountinfo(text)) {
    if (m.fstype == "cgroup2") {
      if (first_unified.empty()) first_unified = m.mount_point;
      if (m.mount_point == "/sys/fs/cgroup") sys_unified = m.mount_point;
      continue;
    }
    if (m.fstype != "cgroup") continue;
    for (const std::string& opt : SplitAny(m.super_options, ",")) {
      bool known = KnownControllers().count(opt) > 0;
      if (!known && opt.rfind("name=", 0) != 0) continue;
      // The first mount of a hierarchy wins; later ones are bind mounts of the same thing.
      v1.controllers.emplace(opt, m.mount_point);
      real_v1_controller = real_v1_controller || known;
    }
  }
  const std::string unified = sys_unified.empty() ? first_unified : sys_unified;

  if (real_v1_controller) {
    v1.version = 1;
    v1.unified = unified;
    *layout = std::move(v1);
    return Status::Ok();
  }
  if (!unified.empty()) {
    layout->version = 2;
    layout->controllers.clear();
    layout->unified = unified;
    return Status::Ok();
  }
  return Status::Invalid(ENOENT, "no cgroup v1 controller and no cgroup2 mount found", mountinfo_path);
}

}  // namespace cgroup
}  // namespace berth
