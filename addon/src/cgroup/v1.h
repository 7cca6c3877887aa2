// cgroup v1: one hierarchy per mounted controller group (cpu and cpuacct often share one). The container's
// cgroup is made in every hierarchy of the layout, name=systemd included, so its processes are accounted
// everywhere; the empty cgroup2 of a hybrid host carries no controller and is left alone.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cgroup/hierarchy.h"
#include "cgroup/manager.h"

namespace berth {
namespace cgroup {

class V1Manager : public Manager {
 public:
  V1Manager(Layout layout, std::string rel) : layout_(std::move(layout)), rel_(std::move(rel)) {}

  Status Create(const Resources& res, std::vector<std::string>* dirs) override;
  Status Update(const Resources& res) override;
  Status Remove() override;
  Status Freeze(bool frozen) override;

 private:
  // Opens each distinct mount point of the layout once.
  Status OpenHierarchies();
  // The hierarchy that holds controller, or nullptr when it is not mounted. Asking for an actual limit
  // (limiting) on an unmounted controller is EOPNOTSUPP; resetting one to "unlimited" is a no-op.
  Status Find(const char* controller, bool limiting, const Hierarchy** h) const;
  // A new cpuset cgroup has empty cpuset.cpus/mems and refuses tasks until they are set: copy them down
  // from the parent at each level that is still empty.
  Status InitCpuset() const;
  Status Apply(const Resources& res) const;
  Status ApplyMemory(const Resources& res) const;
  Status ApplyDevices(const Resources& res) const;
  Status ApplyCpu(const Resources& res) const;

  Layout layout_;
  std::string rel_;
  std::map<std::string, Hierarchy> hierarchies_;  // mount point → hierarchy
};

}  // namespace cgroup
}  // namespace berth
