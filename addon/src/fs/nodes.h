// Special files met while unpacking layers: overlayfs whiteouts, device nodes and fifos, extended
// attributes (trusted.overlay.opaque marks a directory that hides the lower ones).
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace berth {
namespace fs {

// mknod(path, S_IFCHR, makedev(0, 0)): overlayfs's mark for a deleted file.
Status MakeWhiteout(const std::string& path);

// mknod for type 'c' (character device), 'b' (block device) or 'p' (fifo), with exactly mode's
// permission bits (the process umask does not apply; they come from the layer tar).
Status MakeNode(const std::string& path, char type, uint32_t mode, uint32_t major, uint32_t minor);

// lsetxattr(path, name, value): on the link itself, never where a symlink points.
Status SetXattr(const std::string& path, const std::string& name, const std::string& value);
// lgetxattr: *found is false when the attribute is not set (ENODATA) or not supported here (ENOTSUP).
Status GetXattr(const std::string& path, const std::string& name, std::string* value, bool* found);

}  // namespace fs
}  // namespace berth
