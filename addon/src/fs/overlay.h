// overlayfs mounts for container root file systems, and unmounting.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace berth {
namespace fs {

struct OverlaySpec {
  std::vector<std::string> lowerdirs;  // topmost first
  std::string upperdir;                // "" together with workdir: a read-only overlay of the lowers
  std::string workdir;
  std::string target;                  // must exist
};

// Mounts spec.target. The new mount API (fsopen/fsconfig, Linux ≥ 6.8 for "lowerdir+") passes each layer
// as its own parameter, so the number of layers is not bounded by an option string. On older kernels it
// falls back to mount(2), whose option string must fit in one page; when the real paths do not fit, each
// lower dir is passed as a short /proc/self/fd/N of an O_PATH descriptor instead (thread-safe, unlike a
// chdir to a common parent), and only if that too is over the page is the answer E2BIG.
// Before 6.5 the new API takes "lowerdir+" and refuses it only when the superblock is made; that refusal
// sends this and every later mount to mount(2) as well.
// Setting BERTH_OVERLAY_MOUNT_API=legacy in the environment forces the mount(2) path (tests use it), and
// BERTH_TEST_OVERLAY_LEGACY_PARSER=1 makes the new API fail at create as a kernel before 6.5 does.
Status MountOverlay(const OverlaySpec& spec);

// What the probe at berthd's start found: whether fsopen("overlay") works, and whether an overlay of
// "lowerdir+" layers can be made (Linux 6.8); detail holds the kernel's words when not.
struct OverlayProbe {
  bool new_api = false;
  bool lowerdir_plus = false;
  std::string detail;
};

// Makes and drops (never mounts) an overlay of two empty dirs under scratch (created, then removed), and
// remembers the answer for MountOverlay.
OverlayProbe ProbeOverlay(const std::string& scratch);

// umount2(target, MNT_DETACH when detach). Not mounted or missing is not an error.
Status Unmount(const std::string& target, bool detach);

}  // namespace fs
}  // namespace berth
