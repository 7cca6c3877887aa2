// One mounted cgroup hierarchy (a v1 controller mount, or the v2 unified mount) and the file-level work
// both managers share: writing control files, making and removing cgroup directories.
//
// Fake trees. Tests drive this code against a temporary directory of plain files. A real cgroupfs makes a
// new cgroup's control files itself; a plain mkdir does not. So Open() statfs()es the root: when it is not
// cgroupfs/cgroup2fs the hierarchy is fake, and Write() then opens with O_CREAT|O_TRUNC, so a fake tree needs
// no preparation for the files berth always writes. On a real hierarchy Write() never creates anything — a
// missing control file is an error (the controller is not there). The file system type decides, not a
// flag a caller could get wrong. Optional files (memsw, memory.swap.max, io/blkio weights) are written only
// when they exist, on both kinds: a test that wants them pre-creates them. Nothing is ever killed in a fake
// tree, since the pids in its cgroup.procs are not members of it.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace berth {
namespace cgroup {

class Hierarchy {
 public:
  Hierarchy() = default;

  // Checks that root exists and finds out whether it is a real cgroup file system.
  static Status Open(const std::string& root, Hierarchy* out);

  const std::string& root() const { return root_; }
  bool fake() const { return fake_; }

  // The directory of cgroup rel ("" is the root).
  std::string Dir(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }

  // Writes one control file (created first only in a fake tree).
  Status Write(const std::string& dir, const std::string& file, const std::string& value) const;
  // Whether a control file exists.
  bool Has(const std::string& dir, const std::string& file) const;
  // Reads a control file, trimmed. A missing file reads as "" when missing_ok.
  Status Read(const std::string& dir, const std::string& file, std::string* out, bool missing_ok) const;

  // Makes every missing level of rel, top down, and appends each directory it made to *made.
  Status MakeDirs(const std::string& rel, std::vector<std::string>* made) const;

  // Removes cgroup directory dir and any cgroups below it. Processes left inside are thawed and sent
  // SIGKILL, and the removal is retried until they are gone or a few seconds have passed (then EBUSY).
  // A missing dir is not an error.
  Status RemoveDir(const std::string& dir) const;

  // Thaws dir and the cgroups below it (v1 freezer.state, v2 cgroup.freeze), so that frozen tasks can act
  // on SIGKILL. Best effort: a cgroup that stays frozen shows up as RemoveDir's EBUSY.
  void Thaw(const std::string& dir) const;

 private:
  Status RemoveReal(const std::string& dir) const;
  Status RemoveFake(const std::string& dir) const;
  void KillMembers(const std::string& dir) const;

  std::string root_;
  bool fake_ = false;
};

// The ancestors of rel that lie inside the hierarchy, root first: "a/b/c" → "", "a", "a/b".
std::vector<std::string> Ancestors(const std::string& rel);
// rel and its ancestors below the root, top down: "a/b/c" → "a", "a/b", "a/b/c".
std::vector<std::string> Levels(const std::string& rel);

}  // namespace cgroup
}  // namespace berth
