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

namespace {

// A device number field: "*" (any, -1) or a decimal number.
bool ParseDeviceNumber(const std::string& text, int64_t* out) {
  if (text == "*") {
    *out = -1;
    return true;
  }
  if (text.empty() || text.size() > 9) return false;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  *out = n;
  return true;
}

}  // namespace

bool ParseDeviceRule(const std::string& text, DeviceRule* out) {
  // verb type major:minor access, single spaces
  size_t a = text.find(' ');
  size_t b = a == std::string::npos ? a : text.find(' ', a + 1);
  size_t c = b == std::string::npos ? b : text.find(' ', b + 1);
  if (c == std::string::npos || text.find(' ', c + 1) != std::string::npos) return false;
  const std::string verb = text.substr(0, a), type = text.substr(a + 1, b - a - 1);
  const std::string numbers = text.substr(b + 1, c - b - 1), access = text.substr(c + 1);
  if (verb != "allow" && verb != "deny") return false;
  if (type != "a" && type != "c" && type != "b") return false;
  size_t colon = numbers.find(':');
  if (colon == std::string::npos) return false;
  DeviceRule r;
  r.allow = verb == "allow";
  r.type = type[0];
  if (!ParseDeviceNumber(numbers.substr(0, colon), &r.major) || !ParseDeviceNumber(numbers.substr(colon + 1), &r.minor)) return false;
  if (access.empty() || access.size() > 3) return false;
  for (char ch : access)
    if (ch != 'r' && ch != 'w' && ch != 'm') return false;
  r.access = access;
  *out = r;
  return true;
}

std::string DeviceRuleLine(const DeviceRule& rule) {
  auto num = [](int64_t n) { return n < 0 ? std::string("*") : std::to_string(n); };
  return std::string(1, rule.type) + " " + num(rule.major) + ":" + num(rule.minor) + " " + rule.access;
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
