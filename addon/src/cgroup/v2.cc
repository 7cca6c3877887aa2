#include "cgroup/v2.h"

#include <errno.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "cgroup/devices_bpf.h"
#include "util/file.h"

namespace berth {
namespace cgroup {

namespace {

std::string Num(int64_t v) { return std::to_string(v); }

// The controllers a container's limits use, in the order the kernel lists them.
const char* const kWanted[] = {"cpuset", "cpu", "io", "memory", "pids"};

constexpr int64_t kDefaultCpuPeriod = 100000;  // µs, the kernel's default

// "max" and "" (not set) mean no limit; anything else is a byte count.
bool ParseLimit(const std::string& s, int64_t* out) {
  if (s.empty() || s == "max") return false;
  *out = std::strtoll(s.c_str(), nullptr, 10);
  return *out > 0;
}

}  // namespace

int64_t V2Manager::CpuWeight(int64_t shares) {
  shares = std::clamp<int64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

int64_t V2Manager::IoWeight(int64_t blkio_weight) {
  blkio_weight = std::clamp<int64_t>(blkio_weight, 10, 1000);
  return 1 + ((blkio_weight - 10) * 9999) / 990;
}

Status V2Manager::Create(const Resources& res, std::vector<std::string>* dirs) {
  Status st = Hierarchy::Open(layout_.unified, &h_);
  if (!st.ok()) return st.Context("cgroup v2 hierarchy");

  std::vector<std::string> made;
  st = h_.MakeDirs(rel_, &made);
  if (st.ok()) st = EnableControllers();
  if (st.ok()) st = Apply(res);
  // Device access is set once, here, before any process joins. A fake tree is no cgroup2 to attach to.
  if (st.ok() && res.devices && !h_.fake()) st = AttachDeviceFilter(h_.Dir(rel_), *res.devices);
  if (!st.ok()) {
    // Take back what this call made: the leaf whole, parents only while empty (others may share them).
    for (auto d = made.rbegin(); d != made.rend(); ++d) {
      if (*d == h_.Dir(rel_)) {
        h_.RemoveDir(*d);
      } else {
        ::rmdir(d->c_str());
      }
    }
    return st.Context("creating cgroup " + rel_);
  }
  *dirs = {h_.Dir(rel_)};
  return Status::Ok();
}

Status V2Manager::Update(const Resources& res) {
  Status st = Hierarchy::Open(layout_.unified, &h_);
  if (st.ok()) st = Apply(res);
  return st.ok() ? st : st.Context("updating cgroup " + rel_);
}

Status V2Manager::Remove() {
  Status st = Hierarchy::Open(layout_.unified, &h_);
  if (st.ok()) st = h_.RemoveDir(h_.Dir(rel_));
  return st.ok() ? st : st.Context("removing cgroup " + rel_);
}

Status V2Manager::Freeze(bool frozen) {
  Status st = Hierarchy::Open(layout_.unified, &h_);
  if (!st.ok()) return st.Context("freezing cgroup " + rel_);
  const std::string dir = h_.Dir(rel_);
  st = h_.Write(dir, "cgroup.freeze", frozen ? "1" : "0");
  if (!st.ok()) return st.Context(frozen ? "freezing cgroup " + rel_ : "thawing cgroup " + rel_);
  // The write starts the transition; cgroup.events says "frozen 1" once every task has stopped. A fake
  // tree has nobody to wait for.
  if (h_.fake() || !h_.Has(dir, "cgroup.events")) return Status::Ok();
  const std::string want = frozen ? "frozen 1" : "frozen 0";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    std::string events;
    st = h_.Read(dir, "cgroup.events", &events, false);
    if (!st.ok()) return st.Context("freezing cgroup " + rel_);
    if (events.find(want) != std::string::npos) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      if (frozen) h_.Write(dir, "cgroup.freeze", "0");
      return Status::Invalid(EBUSY, "cgroup " + rel_ + " did not reach " + want, dir);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Status V2Manager::EnableControllers() const {
  // What the root offers bounds everything below it. A real child lists what its parent enabled in its
  // own cgroup.controllers; a fake one has no such file and inherits the parent's set.
  std::set<std::string> available;
  for (const std::string& level : Ancestors(rel_)) {
    const std::string dir = h_.Dir(level);
    std::string text;
    Status st = h_.Read(dir, "cgroup.controllers", &text, true);
    if (!st.ok()) return st;
    if (h_.Has(dir, "cgroup.controllers")) {
      std::vector<std::string> listed = SplitAny(text, " ");
      available = std::set<std::string>(listed.begin(), listed.end());
    }

    st = h_.Read(dir, "cgroup.subtree_control", &text, true);
    if (!st.ok()) return st;
    std::set<std::string> enabled;
    for (std::string c : SplitAny(text, " ")) {
      if (!c.empty() && c[0] == '+') c.erase(0, 1);
      enabled.insert(c);
    }

    // One write for all of them: the kernel checks every "+name" before applying any.
    std::string request;
    for (const char* c : kWanted) {
      if (available.count(c) && !enabled.count(c)) request += std::string(request.empty() ? "+" : " +") + c;
    }
    if (request.empty()) continue;
    st = h_.Write(dir, "cgroup.subtree_control", request);
    if (!st.ok()) return st.Context("enabling controllers");
  }
  return Status::Ok();
}

Status V2Manager::Apply(const Resources& res) const {
  const std::string dir = h_.Dir(rel_);
  Status st = ApplyMemory(res);

  if (st.ok() && res.pids_limit) {
    st = h_.Write(dir, "pids.max", *res.pids_limit > 0 ? Num(*res.pids_limit) : "max");
  }
  if (st.ok() && res.cpu_shares && *res.cpu_shares > 0) {
    st = h_.Write(dir, "cpu.weight", Num(CpuWeight(*res.cpu_shares)));
  }
  if (st.ok()) st = ApplyCpuMax(res);
  if (st.ok() && res.cpuset_cpus && !res.cpuset_cpus->empty()) {
    st = h_.Write(dir, "cpuset.cpus", *res.cpuset_cpus);
  }
  if (st.ok() && res.cpuset_mems && !res.cpuset_mems->empty()) {
    st = h_.Write(dir, "cpuset.mems", *res.cpuset_mems);
  }

  if (st.ok() && res.blkio_weight && *res.blkio_weight > 0) {
    // BFQ has its own knob on the v1 scale; io.weight (iocost) uses 1..10000. With neither, the block
    // devices have no proportional scheduler and there is nothing to set.
    if (h_.Has(dir, "io.bfq.weight")) {
      st = h_.Write(dir, "io.bfq.weight", Num(*res.blkio_weight));
    } else if (h_.Has(dir, "io.weight")) {
      st = h_.Write(dir, "io.weight", Num(IoWeight(*res.blkio_weight)));
    }
  }
  for (const Resources::FileWrite& f : res.files) {
    if (!st.ok()) break;
    st = h_.Write(dir, f.file, f.value);
  }
  return st;
}

Status V2Manager::ApplyMemory(const Resources& res) const {
  const std::string dir = h_.Dir(rel_);
  Status st;
  if (res.memory_reservation) {
    st = h_.Write(dir, "memory.low", *res.memory_reservation > 0 ? Num(*res.memory_reservation) : "0");
    if (!st.ok()) return st;
  }
  if (res.memory) {
    st = h_.Write(dir, "memory.max", *res.memory > 0 ? Num(*res.memory) : "max");
    if (!st.ok()) return st;
  }

  // v1 and the API count memory+swap; v2 limits swap alone. memory.swap.max is missing without swap
  // accounting, and then there is nothing to set.
  if (!res.memory_swap || *res.memory_swap == 0 || !h_.Has(dir, "memory.swap.max")) return st;
  if (*res.memory_swap < 0) return h_.Write(dir, "memory.swap.max", "max");

  int64_t memory = 0;
  bool limited;
  if (res.memory) {
    memory = *res.memory;
    limited = memory > 0;
  } else {
    std::string current;
    st = h_.Read(dir, "memory.max", &current, true);
    if (!st.ok()) return st;
    limited = ParseLimit(current, &memory);
  }
  const std::string file = dir + "/memory.swap.max";
  if (!limited) return Status::Invalid(EINVAL, "a memory+swap limit needs a memory limit", file);
  if (*res.memory_swap < memory) {
    return Status::Invalid(
        EINVAL, "memory+swap limit " + Num(*res.memory_swap) + " is below the memory limit " + Num(memory), file);
  }
  return h_.Write(dir, "memory.swap.max", Num(*res.memory_swap - memory));
}

Status V2Manager::ApplyCpuMax(const Resources& res) const {
  const bool quota = res.cpu_quota && *res.cpu_quota != 0;
  const bool period = res.cpu_period && *res.cpu_period > 0;
  if (!quota && !period) return Status::Ok();
  const std::string dir = h_.Dir(rel_);

  // cpu.max holds "QUOTA PERIOD" in one file, so a change to one keeps the other as it is.
  std::string current;
  Status st = h_.Read(dir, "cpu.max", &current, true);
  if (!st.ok()) return st;
  std::vector<std::string> cur = SplitAny(current, " ");
  std::string q = cur.size() > 0 ? cur[0] : "max";
  std::string p = cur.size() > 1 ? cur[1] : Num(kDefaultCpuPeriod);
  if (quota) q = *res.cpu_quota > 0 ? Num(*res.cpu_quota) : "max";
  if (period) p = Num(*res.cpu_period);
  return h_.Write(dir, "cpu.max", q + " " + p);
}

}  // namespace cgroup
}  // namespace berth
