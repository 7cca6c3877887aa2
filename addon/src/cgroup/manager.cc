#include "cgroup/manager.h"

#include "cgroup/v1.h"
#include "cgroup/v2.h"

namespace berth {
namespace cgroup {

bool ValidRelPath(const std::string& rel) {
  if (rel.empty() || rel.front() == '/' || rel.back() == '/') return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string part = rel.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

Status NewManager(const Layout& layout, const std::string& rel_path, std::unique_ptr<Manager>* out) {
  if (!ValidRelPath(rel_path)) return Status::Invalid(EINVAL, "not a relative cgroup path: '" + rel_path + "'");
  switch (layout.version) {
    case 1:
      if (layout.controllers.empty()) return Status::Invalid(EINVAL, "cgroup v1 layout without controllers");
      *out = std::make_unique<V1Manager>(layout, rel_path);
      return Status::Ok();
    case 2:
      if (layout.unified.empty()) return Status::Invalid(EINVAL, "cgroup v2 layout without a unified mount");
      *out = std::make_unique<V2Manager>(layout, rel_path);
      return Status::Ok();
    default:
      return Status::Invalid(EINVAL, "cgroup layout version " + std::to_string(layout.version));
  }
}

}  // namespace cgroup
}  // namespace berth
