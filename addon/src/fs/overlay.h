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
// Setting BERTH_OVERLAY_MOUNT_API=legacy in the environment forces the mount(2) path (tests use it).
Status MountOverlay(const OverlaySpec& spec);

// umount2(target, MNT_DETACH when detach). Not mounted or missing is not an error.
Status Unmount(const std::string& target, bool detach);

}  // namespace fs
}  // namespace berth
