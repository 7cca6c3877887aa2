#include "cgroup/v1.h"

#include <errno.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace berth {
namespace cgroup {

namespace {

std::string Num(int64_t v) { return std::to_string(v); }

}  // namespace

Status V1Manager::OpenHierarchies() {
  hierarchies_.clear();
  for (const auto& [controller, mount_point] : layout_.controllers) {
    if (hierarchies_.count(mount_point)) continue;
    Hierarchy h;
    Status st = Hierarchy::Open(mount_point, &h);
    if (!st.ok()) return st.Context("cgroup v1 hierarchy of " + controller);
    hierarchies_.emplace(mount_point, h);
  }
  return Status::Ok();
}

Status V1Manager::Find(const char* controller, bool limiting, const Hierarchy** h) const {
  *h = nullptr;
  auto c = layout_.controllers.find(controller);
  if (c != layout_.controllers.end()) {
    auto it = hierarchies_.find(c->second);
    if (it != hierarchies_.end()) *h = &it->second;
  }
  if (*h == nullptr && limiting) {
    return Status::Invalid(EOPNOTSUPP, std::string("cgroup v1 controller '") + controller + "' is not mounted");
  }
  return Status::Ok();
}

Status V1Manager::Create(const Resources& res, std::vector<std::string>* dirs) {
  Status st = OpenHierarchies();
  if (!st.ok()) return st;

  // What this call made, per hierarchy, so a failure can take exactly that back.
  std::vector<std::pair<const Hierarchy*, std::vector<std::string>>> made;
  auto undo = [&made, this]() {
    for (auto it = made.rbegin(); it != made.rend(); ++it) {
      const Hierarchy* h = it->first;
      const std::vector<std::string>& m = it->second;
      // The leaf, if this call made it, goes whole. Parents it made go only if still empty: another
      // container may have been created in them meanwhile.
      for (auto d = m.rbegin(); d != m.rend(); ++d) {
        if (*d == h->Dir(rel_)) {
          h->RemoveDir(*d);
        } else {
          ::rmdir(d->c_str());
        }
      }
    }
  };

  for (const auto& [mount_point, h] : hierarchies_) {
    made.emplace_back(&h, std::vector<std::string>{});
    st = h.MakeDirs(rel_, &made.back().second);
    if (!st.ok()) break;
  }
  if (st.ok()) st = InitCpuset();
  if (st.ok()) st = Apply(res);
  if (!st.ok()) {
    undo();
    return st.Context("creating cgroup " + rel_);
  }

  dirs->clear();
  for (const auto& [mount_point, h] : hierarchies_) dirs->push_back(h.Dir(rel_));
  return Status::Ok();
}

Status V1Manager::Update(const Resources& res) {
  Status st = OpenHierarchies();
  if (st.ok()) st = Apply(res);
  return st.ok() ? st : st.Context("updating cgroup " + rel_);
}

Status V1Manager::Remove() {
  Status st = OpenHierarchies();
  if (!st.ok()) return st.Context("removing cgroup " + rel_);
  // The container's tasks are members of every hierarchy, and a frozen one dies in none until the freezer
  // hierarchy lets it go, so thaw there before killing anywhere.
  const Hierarchy* freezer = nullptr;
  Find("freezer", false, &freezer);
  if (freezer != nullptr) freezer->Thaw(freezer->Dir(rel_));
  // Every hierarchy is tried even after a failure, so one stuck hierarchy does not leak the others.
  Status first;
  for (const auto& [mount_point, h] : hierarchies_) {
    Status r = h.RemoveDir(h.Dir(rel_));
    if (!r.ok() && first.ok()) first = r;
  }
  return first.ok() ? first : first.Context("removing cgroup " + rel_);
}

Status V1Manager::Freeze(bool frozen) {
  Status st = OpenHierarchies();
  if (!st.ok()) return st.Context("freezing cgroup " + rel_);
  const Hierarchy* h = nullptr;
  st = Find("freezer", true, &h);
  if (!st.ok()) return st;
  const std::string dir = h->Dir(rel_);
  const std::string want = frozen ? "FROZEN" : "THAWED";
  // freezer.state goes through FREEZING while tasks are being stopped; a task in an uninterruptible sleep
  // can hold it there, so the write is repeated until the state sticks or a few seconds have passed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    st = h->Write(dir, "freezer.state", want);
    if (!st.ok()) return st.Context("freezing cgroup " + rel_);
    if (h->fake()) return Status::Ok();
    std::string state;
    st = h->Read(dir, "freezer.state", &state, false);
    if (!st.ok()) return st.Context("freezing cgroup " + rel_);
    if (state == want) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      if (frozen) h->Write(dir, "freezer.state", "THAWED");
      return Status::Invalid(EBUSY, "cgroup " + rel_ + " did not reach " + want + " (is " + state + ")", dir);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Status V1Manager::InitCpuset() const {
  const Hierarchy* h = nullptr;
  Find("cpuset", false, &h);
  if (h == nullptr) return Status::Ok();
  std::string parent = h->root();
  for (const std::string& level : Levels(rel_)) {
    std::string dir = h->Dir(level);
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      std::string own, inherited;
      Status st = h->Read(dir, file, &own, true);
      if (st.ok() && own.empty()) st = h->Read(parent, file, &inherited, true);
      if (st.ok() && own.empty() && !inherited.empty()) st = h->Write(dir, file, inherited);
      if (!st.ok()) return st.Context("initialising the cpuset");
    }
    parent = dir;
  }
  return Status::Ok();
}

Status V1Manager::Apply(const Resources& res) const {
  Status st = ApplyDevices(res);
  if (st.ok()) st = ApplyMemory(res);
  if (st.ok()) st = ApplyCpu(res);

  const Hierarchy* h = nullptr;
  if (st.ok() && res.pids_limit) {
    const int64_t n = *res.pids_limit;
    st = Find("pids", n > 0, &h);
    if (st.ok() && h) st = h->Write(h->Dir(rel_), "pids.max", n > 0 ? Num(n) : "max");
  }

  for (const auto& [value, file] : {std::make_pair(&res.cpuset_cpus, "cpuset.cpus"),
                                    std::make_pair(&res.cpuset_mems, "cpuset.mems")}) {
    if (!st.ok() || !*value || (*value)->empty()) continue;
    st = Find("cpuset", true, &h);
    if (st.ok()) st = h->Write(h->Dir(rel_), file, **value);
  }

  if (st.ok() && res.blkio_weight && *res.blkio_weight > 0) {
    // blkio.weight belongs to CFQ, gone since Linux 5.0; with BFQ the knob is blkio.bfq.weight (same
    // 10..1000 range). Neither exists when the block devices use another scheduler: then there is
    // nothing to weigh and the setting is skipped.
    st = Find("blkio", true, &h);
    if (st.ok()) {
      const std::string dir = h->Dir(rel_);
      const char* file = h->Has(dir, "blkio.weight") ? "blkio.weight"
                         : h->Has(dir, "blkio.bfq.weight") ? "blkio.bfq.weight"
                                                            : nullptr;
      if (file) st = h->Write(dir, file, Num(*res.blkio_weight));
    }
  }
  for (const Resources::FileWrite& f : res.files) {
    if (!st.ok()) break;
    st = Find(f.controller.c_str(), true, &h);
    if (st.ok()) st = h->Write(h->Dir(rel_), f.file, f.value);
  }
  return st;
}

// The device rules go in order into devices.deny / devices.allow of the new cgroup (before any task joins
// it): the usual list denies everything, then allows Docker's default devices and the container's own.
Status V1Manager::ApplyDevices(const Resources& res) const {
  if (!res.devices) return Status::Ok();
  const Hierarchy* h = nullptr;
  Status st = Find("devices", true, &h);
  if (!st.ok() || h == nullptr) return st;
  const std::string dir = h->Dir(rel_);
  for (const DeviceRule& rule : *res.devices) {
    st = h->Write(dir, rule.allow ? "devices.allow" : "devices.deny", DeviceRuleLine(rule));
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status V1Manager::ApplyMemory(const Resources& res) const {
  if (!res.memory && !res.memory_swap && !res.memory_reservation) return Status::Ok();
  const bool limiting = (res.memory && *res.memory > 0) || (res.memory_swap && *res.memory_swap > 0) ||
                        (res.memory_reservation && *res.memory_reservation > 0);
  const Hierarchy* h = nullptr;
  Status st = Find("memory", limiting, &h);
  if (!st.ok() || h == nullptr) return st;
  const std::string dir = h->Dir(rel_);

  if (res.memory_reservation) {
    const int64_t r = *res.memory_reservation;
    st = h->Write(dir, "memory.soft_limit_in_bytes", r > 0 ? Num(r) : "-1");
    if (!st.ok()) return st;
  }

  std::string mem, swap;  // "" = not written
  if (res.memory) mem = *res.memory > 0 ? Num(*res.memory) : "-1";
  if (res.memory_swap && *res.memory_swap != 0) swap = *res.memory_swap > 0 ? Num(*res.memory_swap) : "-1";
  // memsw exists only with swap accounting (CONFIG_MEMCG_SWAP, swapaccount=1); without it there is no
  // swap limit to set.
  if (!swap.empty() && !h->Has(dir, "memory.memsw.limit_in_bytes")) swap.clear();

  // The kernel keeps memsw.limit >= limit at every moment, so the order of the two writes depends on
  // whether the limits grow or shrink. Growing: memsw first. If that is refused (EINVAL, it would fall
  // under the current memory limit), they shrink: memory first, then memsw.
  if (!swap.empty()) {
    st = h->Write(dir, "memory.memsw.limit_in_bytes", swap);
    if (st.err() == EINVAL && !mem.empty()) {
      st = h->Write(dir, "memory.limit_in_bytes", mem);
      if (st.ok()) st = h->Write(dir, "memory.memsw.limit_in_bytes", swap);
      return st;
    }
    if (!st.ok()) return st;
  }
  if (!mem.empty()) st = h->Write(dir, "memory.limit_in_bytes", mem);
  return st;
}

Status V1Manager::ApplyCpu(const Resources& res) const {
  const bool shares = res.cpu_shares && *res.cpu_shares > 0;
  const bool period = res.cpu_period && *res.cpu_period > 0;
  const bool quota = res.cpu_quota && *res.cpu_quota != 0;
  if (!shares && !period && !quota) return Status::Ok();
  const Hierarchy* h = nullptr;
  Status st = Find("cpu", shares || period || (quota && *res.cpu_quota > 0), &h);
  if (!st.ok() || h == nullptr) return st;
  const std::string dir = h->Dir(rel_);

  if (shares) st = h->Write(dir, "cpu.shares", Num(*res.cpu_shares));
  // Period before quota: the kernel checks the quota against the period in force.
  if (st.ok() && period) st = h->Write(dir, "cpu.cfs_period_us", Num(*res.cpu_period));
  if (st.ok() && quota) st = h->Write(dir, "cpu.cfs_quota_us", *res.cpu_quota > 0 ? Num(*res.cpu_quota) : "-1");
  return st;
}

}  // namespace cgroup
}  // namespace berth
