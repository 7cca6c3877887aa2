// The cgroup manager: one interface, a v1 and a v2 implementation, picked once from the detected layout.
//
// Lifecycle of a container's cgroup, named by a relative path such as "berth/<id>":
//   Create  makes the path in every hierarchy (parents such as "berth" are shared and made on demand),
//           prepares it (v1: cpuset copied from the parent; v2: controllers enabled in the ancestors),
//           applies the resources, and reports the directories a process must join. A failure undoes
//           what the call made.
//   Update  applies resources to the existing cgroup; absent fields are left alone (docker update).
//   Remove  kills whatever is left, removes the leaf (and any cgroups a container made below it);
//           the shared parents stay.
// A Manager is made per call from plain data and does its work on a pool thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cgroup/layout.h"
#include "util/status.h"

namespace berth {
namespace cgroup {

class Manager {
 public:
  virtual ~Manager() = default;

  // *dirs gets the cgroup directory of each hierarchy, the ones the shim writes the container's pid to.
  virtual Status Create(const Resources& res, std::vector<std::string>* dirs) = 0;
  virtual Status Update(const Resources& res) = 0;
  virtual Status Remove() = 0;
  // Freezes (pause) or thaws (unpause) every task of the cgroup and waits until the kernel reports it done.
  virtual Status Freeze(bool frozen) = 0;
};

// A relative path of plain names: no leading '/', no empty, "." or ".." component.
bool ValidRelPath(const std::string& rel);

// The manager for layout.version (1 or 2), working on rel_path.
Status NewManager(const Layout& layout, const std::string& rel_path, std::unique_ptr<Manager>* out);

}  // namespace cgroup
}  // namespace berth
