// Idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP, Linux 5.12; overlayfs on idmapped lower layers, 5.19)
// for --userns-remap: the image layers stay as they are on disk (owned by 0..65535) and one overlay shows
// them to the container's user namespace shifted into its range, so every container of every remap shares
// the same layer directories instead of a chowned copy per remap (Docker's way).
#pragma once

#include <string>

#include "fs/overlay.h"
#include "util/status.h"

namespace berth {
namespace fs {

// A mapping as /proc/PID/uid_map takes it: lines of "inside outside count".
struct IdMapping {
  std::string uid_map;
  std::string gid_map;
};

// The overlay of spec, its lower dirs seen through an idmapped mount of `map` each: every lower is cloned
// (open_tree), idmapped, attached on `<target>.idmap/<n>` for the time of the overlay mount (overlayfs
// clones a private mount of each layer and keeps that), then detached again. The upper and work dirs are
// used as they are: the caller creates them owned by the range's root.
Status MountOverlayIdmapped(const OverlaySpec& spec, const IdMapping& map);

// Whether idmapped overlays work here: an overlay over an idmapped scratch dir under `scratch` (created,
// then removed) must show the lower's root-owned directory as owned by the range's first uid. Ok, or the
// reason with the kernel's errno.
Status ProbeIdmappedOverlay(const std::string& scratch, const IdMapping& map, unsigned host_uid);

}  // namespace fs
}  // namespace berth
