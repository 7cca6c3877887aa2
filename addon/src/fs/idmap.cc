#include "fs/idmap.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "util/fd.h"
#include "util/file.h"

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

namespace berth {
namespace fs {

namespace {

// One user namespace per mapping for the daemon's life: an idmapped mount only needs the namespace's
// mapping, not a process in it, so the fd alone keeps it.
std::mutex g_userns_mu;
std::map<std::string, int> g_userns;

Status WriteMap(pid_t pid, const char* file, const std::string& map) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::Sys(errno, "open", path);
  if (::write(fd.get(), map.data(), map.size()) != static_cast<ssize_t>(map.size()))
    return Status::Sys(errno, "write", path, "mapping " + map);
  return Status::Ok();
}

// A user namespace holding `map`: a child is cloned into a new one (it only waits to be killed: after a
// fork of this multi-threaded process it may call nothing but system calls), its maps are written from
// here, and /proc/PID/ns/user is kept open.
Status UsernsFor(const IdMapping& map, int* out) {
  std::lock_guard<std::mutex> lock(g_userns_mu);
  const std::string key = map.uid_map + "|" + map.gid_map;
  auto it = g_userns.find(key);
  if (it != g_userns.end()) {
    *out = it->second;
    return Status::Ok();
  }
  long pid = ::syscall(SYS_clone, static_cast<unsigned long>(CLONE_NEWUSER | SIGCHLD), nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) return Status::Sys(errno, "clone", "", "a user namespace for idmapped mounts");
  if (pid == 0) {
    for (;;) ::syscall(SYS_pause);
  }
  Status st = WriteMap(static_cast<pid_t>(pid), "uid_map", map.uid_map);
  if (st.ok()) st = WriteMap(static_cast<pid_t>(pid), "gid_map", map.gid_map);
  int fd = -1;
  if (st.ok()) {
    std::string path = "/proc/" + std::to_string(pid) + "/ns/user";
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) st = Status::Sys(errno, "open", path);
  }
  ::kill(static_cast<pid_t>(pid), SIGKILL);
  while (::waitpid(static_cast<pid_t>(pid), nullptr, 0) < 0 && errno == EINTR) {
  }
  if (!st.ok()) return st;
  g_userns[key] = fd;
  *out = fd;
  return Status::Ok();
}

// A detached clone of `dir`'s mount at `dir`, idmapped through userns_fd.
Status IdmappedClone(const std::string& dir, int userns_fd, UniqueFd* out) {
  UniqueFd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!tree.valid()) return Status::Sys(errno, "open_tree", dir);
  struct mount_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
    return Status::Sys(errno, "mount_setattr", dir, "idmapped mount (Linux 5.12, and a file system that supports it)");
  *out = std::move(tree);
  return Status::Ok();
}

// Whether overlayfs takes detached mounts as layers (Linux 6.15 lets clone_private_mount take them):
// then the idmapped clones are passed as /proc/self/fd/N and never attached anywhere. Unknown until the
// first try; a refusal (EINVAL) sends this and every later mount through the staging directory.
enum { kDetachedUnknown, kDetachedYes, kDetachedNo };
std::atomic<int> g_detached{kDetachedUnknown};

Status MountDetached(const OverlaySpec& spec, int userns, bool* refused) {
  std::vector<UniqueFd> trees;
  OverlaySpec mapped = spec;
  mapped.lowerdirs.clear();
  for (const auto& dir : spec.lowerdirs) {
    UniqueFd tree;
    Status st = IdmappedClone(dir, userns, &tree);
    if (!st.ok()) return st;
    mapped.lowerdirs.push_back("/proc/self/fd/" + std::to_string(tree.get()));
    trees.push_back(std::move(tree));
  }
  Status st = MountOverlay(mapped);
  *refused = !st.ok() && st.err() == EINVAL;
  return st;
}

}  // namespace

Status MountOverlayIdmapped(const OverlaySpec& spec, const IdMapping& map) {
  int userns = -1;
  Status st = UsernsFor(map, &userns);
  if (!st.ok()) return st;
  // BERTH_TEST_IDMAP_ATTACHED=1 (tests only) takes the path of kernels before 6.15 on any kernel.
  static const bool force_attached = [] {
    const char* v = std::getenv("BERTH_TEST_IDMAP_ATTACHED");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  if (force_attached) g_detached.store(kDetachedNo);
  if (g_detached.load() != kDetachedNo) {
    bool refused = false;
    st = MountDetached(spec, userns, &refused);
    if (st.ok()) {
      g_detached.store(kDetachedYes);
      return st;
    }
    if (!refused || g_detached.load() == kDetachedYes) return st.Context("idmapped overlay");
    g_detached.store(kDetachedNo);
  }
  // The idmapped layers are attached in a directory next to the target only while the overlay is made:
  // overlayfs before Linux 6.15 takes only layers of the caller's mount namespace, not detached mounts.
  const std::string staging = spec.target + ".idmap";
  if (::mkdir(staging.c_str(), 0700) != 0 && errno != EEXIST) return Status::Sys(errno, "mkdir", staging);
  std::vector<std::string> attached;
  auto release = [&]() {
    for (const auto& p : attached) {
      ::umount2(p.c_str(), MNT_DETACH);
      ::rmdir(p.c_str());
    }
    ::rmdir(staging.c_str());
  };
  OverlaySpec mapped = spec;
  mapped.lowerdirs.clear();
  for (size_t i = 0; i < spec.lowerdirs.size() && st.ok(); i++) {
    const std::string at = staging + "/" + std::to_string(i);
    if (::mkdir(at.c_str(), 0700) != 0 && errno != EEXIST) {
      st = Status::Sys(errno, "mkdir", at);
      break;
    }
    UniqueFd tree;
    st = IdmappedClone(spec.lowerdirs[i], userns, &tree);
    if (!st.ok()) {
      ::rmdir(at.c_str());
      break;
    }
    if (::syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, at.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      st = Status::Sys(errno, "move_mount", at);
      ::rmdir(at.c_str());
      break;
    }
    attached.push_back(at);
    mapped.lowerdirs.push_back(at);
  }
  if (st.ok()) st = MountOverlay(mapped);
  release();
  return st.Context("idmapped overlay");
}

Status ProbeIdmappedOverlay(const std::string& scratch, const IdMapping& map, unsigned host_uid) {
  const std::string lower = scratch + "/lower", upper = scratch + "/upper", work = scratch + "/work",
                    merged = scratch + "/merged";
  auto cleanup = [&]() {
    ::umount2(merged.c_str(), MNT_DETACH);
    for (const std::string& d : {work + "/work", work + "/index", lower, upper, work, merged, scratch}) ::rmdir(d.c_str());
  };
  for (const std::string& d : {scratch, lower, upper, work, merged}) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
      Status st = Status::Sys(errno, "mkdir", d);
      cleanup();
      return st;
    }
  }
  OverlaySpec spec;
  spec.lowerdirs = {lower};
  spec.upperdir = upper;
  spec.workdir = work;
  spec.target = merged;
  // A directory of the lower layer, root's on disk, must show as the range's first uid in the overlay.
  if (::chown(upper.c_str(), host_uid, static_cast<gid_t>(-1)) != 0) {
    Status st = Status::Sys(errno, "chown", upper);
    cleanup();
    return st;
  }
  if (::mkdir((lower + "/d").c_str(), 0755) != 0 && errno != EEXIST) {
    Status st = Status::Sys(errno, "mkdir", lower + "/d");
    cleanup();
    return st;
  }
  Status st = MountOverlayIdmapped(spec, map);
  if (st.ok()) {
    struct stat sb;
    if (::stat((merged + "/d").c_str(), &sb) != 0) {
      st = Status::Sys(errno, "stat", merged + "/d");
    } else if (sb.st_uid != host_uid) {
      st = Status::Invalid(ENOTSUP, "an overlay over an idmapped lower dir shows it owned by " + std::to_string(sb.st_uid) +
                                        ", not " + std::to_string(host_uid), merged);
    }
    ::umount2(merged.c_str(), MNT_DETACH);
  }
  ::rmdir((lower + "/d").c_str());
  cleanup();
  return st;
}

}  // namespace fs
}  // namespace berth
