#include "fs/nodes.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cerrno>

namespace berth {
namespace fs {

Status MakeWhiteout(const std::string& path) {
  if (::mknod(path.c_str(), S_IFCHR, makedev(0, 0)) != 0) return Status::Sys(errno, "mknod", path);
  return Status::Ok();
}

Status MakeNode(const std::string& path, char type, uint32_t mode, uint32_t major, uint32_t minor) {
  mode_t kind;
  switch (type) {
    case 'c': kind = S_IFCHR; break;
    case 'b': kind = S_IFBLK; break;
    case 'p': kind = S_IFIFO; break;
    default: return Status::Invalid(EINVAL, std::string("unknown node type '") + type + "'", path);
  }
  const mode_t perms = mode & 07777;
  const dev_t dev = type == 'p' ? 0 : makedev(major, minor);
  if (::mknod(path.c_str(), kind | perms, dev) != 0) return Status::Sys(errno, "mknod", path);
  // mknod applies the umask, which is process-wide and cannot be changed safely from a pool thread, so set
  // the bits afterwards. chmod on a node changes the node; nothing is opened.
  if (::chmod(path.c_str(), perms) != 0) return Status::Sys(errno, "chmod", path);
  return Status::Ok();
}

Status SetXattr(const std::string& path, const std::string& name, const std::string& value) {
  if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
    return Status::Sys(errno, "lsetxattr", path, name);
  }
  return Status::Ok();
}

Status GetXattr(const std::string& path, const std::string& name, std::string* value, bool* found) {
  *found = false;
  value->clear();
  for (int attempt = 0; attempt < 4; attempt++) {
    ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENODATA || errno == ENOTSUP) return Status::Ok();
      return Status::Sys(errno, "lgetxattr", path, name);
    }
    value->resize(static_cast<size_t>(n));
    ssize_t m = ::lgetxattr(path.c_str(), name.c_str(), value->data(), value->size());
    if (m >= 0) {
      value->resize(static_cast<size_t>(m));
      *found = true;
      return Status::Ok();
    }
    if (errno != ERANGE) return Status::Sys(errno, "lgetxattr", path, name);
    // The value grew between the two calls: ask again.
  }
  return Status::Sys(ERANGE, "lgetxattr", path, name);
}

}  // namespace fs
}  // namespace berth
