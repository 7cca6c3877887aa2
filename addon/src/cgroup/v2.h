// cgroup v2: a single unified hierarchy. A controller works in a cgroup only once every ancestor lists it
// in cgroup.subtree_control, so Create enables them on the way down. The container's own cgroup enables
// nothing: under the no-internal-process rule its processes must live in a leaf.
#pragma once

#include <string>
#include <vector>

#include "cgroup/hierarchy.h"
#include "cgroup/manager.h"

namespace berth {
namespace cgroup {

class V2Manager : public Manager {
 public:
  V2Manager(Layout layout, std::string rel) : layout_(std::move(layout)), rel_(std::move(rel)) {}

  Status Create(const Resources& res, std::vector<std::string>* dirs) override;
  Status Update(const Resources& res) override;
  Status Remove() override;
  Status Freeze(bool frozen) override;

  // Docker's mapping of v1 values onto v2 scales (cpu.shares 2..262144 → cpu.weight 1..10000;
  // blkio weight 10..1000 → io.weight 1..10000).
  static int64_t CpuWeight(int64_t shares);
  static int64_t IoWeight(int64_t blkio_weight);

 private:
  Status EnableControllers() const;
  Status Apply(const Resources& res) const;
  Status ApplyMemory(const Resources& res) const;
  Status ApplyCpuMax(const Resources& res) const;

  Layout layout_;
  std::string rel_;
  Hierarchy h_;
};

}  // namespace cgroup
}  // namespace berth
