// Host-side file work inside a container's root (or a volume, or a build context) that cannot leave it.
//
// A "root" is a directory file descriptor. Every path given here is resolved beneath it: an absolute
// path or symlink starts again at the root, ".." never climbs above it, and /proc magic links are never
// followed. The kernel does that in one call with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) (Linux
// 5.6); where openat2 is missing, or BERTH_INROOT_WALK=1 asks for it, paths are walked one component at a
// time with O_PATH | O_NOFOLLOW opens relative to the directory before, reading each symlink and resolving
// its text ourselves. Either way a directory swapped for a symlink between two calls (a running
// container racing berthd) can only lead somewhere else inside the same root.
//
// What is then done to the file found is done through its fd, or by a single name relative to the fd
// of its parent directory with AT_SYMLINK_NOFOLLOW/O_NOFOLLOW, never by a host path.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util/fd.h"
#include "util/status.h"

namespace berth {
namespace fs {

// "openat2" or "walk": how paths are being resolved on this kernel (and under BERTH_INROOT_WALK).
const char* InRootResolver();

// Opens `path` beneath `root` with open(2) `flags` (O_PATH, O_RDONLY|O_DIRECTORY, …; O_CREAT is not
// accepted). follow_final: whether a symlink in the last component is followed (else O_NOFOLLOW: an
// O_PATH fd of the link itself, or ELOOP for other opens).
Status OpenInRoot(int root, const std::string& path, int flags, bool follow_final, UniqueFd* out);

// Resolves `path` beneath `root` by the component walk and says where it led: `inner` is the clean
// absolute path inside the root after every symlink (components that do not exist are kept as given),
// `exists` whether it is there, and `st` its lstat when it is.
struct Resolved {
  std::string inner;
  bool exists = false;
  struct stat st {};
};
Status ResolveInRoot(int root, const std::string& path, bool follow_final, Resolved* out);

// One directory entry, lstat'ed.
struct Entry {
  std::string name;
  struct stat st;
};
// The entries of directory `path` (not following a final symlink), without "." and "..", sorted by name.
Status ListInRoot(int root, const std::string& path, std::vector<Entry>* out);

// Opens regular file `path` for reading (the last component not followed); its fstat in *st.
Status OpenFileInRoot(int root, const std::string& path, UniqueFd* out, struct stat* st);

// readlink of `path` itself.
Status ReadlinkInRoot(int root, const std::string& path, std::string* out);

// Reads regular file `path` (symlinks followed inside the root) up to `limit` bytes. *found is false
// when it does not exist or is not a regular file.
Status ReadFileInRoot(int root, const std::string& path, size_t limit, std::string* out, bool* found);

// The owner and mode of directories made on the way.
struct DirOwner {
  uint32_t mode = 0755;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// Makes directory `path` and the missing ones above it (symlinks on the way followed inside the root).
// ENOTDIR when something on the way is not a directory.
Status MkdirAllInRoot(int root, const std::string& path, const DirOwner& owner, UniqueFd* out);

// One file system object to put at `path`, replacing what is there (a directory over a directory is
// kept and only takes the new owner and mode).
struct PlaceSpec {
  std::string path;
  char type = 'f';           // 'f' file, 'd' directory, 'l' symlink, 'h' hard link
  uint32_t mode = 0644;      // permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string linkname;      // 'l': the link's text; 'h': the existing file's path inside the root
  bool has_mtime = false;    // set on symlinks and hard links here; files and directories: by the caller
  struct timespec mtime {};
  bool make_parents = false; // missing parent directories are made with `parents`, else ENOENT
  DirOwner parents;
  // Refuse to replace a directory with a non-directory (EISDIR) or the reverse (ENOTDIR).
  bool no_overwrite_dir_nondir = false;
};
// For a file, *file_out is its fd, open for writing (made with O_EXCL, owner and mode already set). An
// owner the file system cannot keep (EPERM, EINVAL, EOPNOTSUPP from chown) is let go, as docker cp does.
Status PlaceInRoot(int root, const PlaceSpec& spec, UniqueFd* file_out);

// Sets the access and modification times of `path` itself (not following a final symlink).
Status SetTimesInRoot(int root, const std::string& path, const struct timespec& mtime);

// Docker's copy of an image's files into a new volume: the contents of directory `src_path` in
// `src_root` (symlinks followed inside it) are copied into the directory `dst` with owners, modes, times
// and hard links kept, when `dst` is empty and the source is a non-empty directory. *copied says whether
// anything was copied.
Status CopyUpInRoot(int src_root, const std::string& src_path, int dst, bool* copied);

// A bind mount of the object `source` (an fd, e.g. from OpenInRoot with O_PATH) on `path` beneath `root`,
// which is made first when missing (a directory, or an empty file when `file`). *mounted is an O_PATH fd
// of the new mount's root, for UnmountFd. read_only: made read-only (the top mount).
Status BindMountInRoot(int source, int root, const std::string& path, bool file, bool read_only, UniqueFd* mounted);

// umount2(MNT_DETACH) of the mount whose root `fd` is.
Status UnmountFd(int fd);

// Opens `path` (a host path berthd controls, or /proc/PID/root) as an O_PATH directory fd. With pid
// set, the path is one of that process's, and it must still be the process that started at `start_time`
// (field 22 of /proc/PID/stat) once the fd is open: a pid reused meanwhile gives ESRCH.
Status OpenRoot(const std::string& path, int pid, const std::string& start_time, UniqueFd* out);

// Field 22 of /proc/PID/stat (the start time in clock ticks after boot), or "" when there is no such
// process.
std::string ProcessStartTime(int pid);

}  // namespace fs
}  // namespace berth
