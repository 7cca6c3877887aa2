#include "net/netns.h"

#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/link.h"

namespace berth {
namespace net {

namespace {

struct ThreadCall {
  const std::function<Status()>* fn;
  Status status;
};

void* ThreadMain(void* arg) {
  auto* call = static_cast<ThreadCall*>(arg);
  call->status = (*call->fn)();
  return nullptr;
}

// Runs fn on a fresh thread and waits: that thread may change namespace and simply ends.
Status OnOwnThread(const std::function<Status()>& fn) {
  ThreadCall call{&fn, Status::Ok()};
  pthread_t t;
  int err = pthread_create(&t, nullptr, ThreadMain, &call);
  if (err != 0) return Status::Sys(err, "pthread_create", {}, "thread for a network namespace");
  pthread_join(t, nullptr);
  return call.status;
}

Status Join(const std::string& netns) {
  int fd = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Sys(errno, "open", netns, "network namespace");
  UniqueFd owned(fd);
  if (::setns(fd, CLONE_NEWNET) < 0) return Status::Sys(errno, "setns", netns, "network namespace");
  return Status::Ok();
}

Status WriteFile(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::Sys(errno, "open", path);
  UniqueFd owned(fd);
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::Sys(errno, "write", path);
  return Status::Ok();
}

}  // namespace

Status RunInNetns(const std::string& netns, const std::function<Status()>& fn) {
  return OnOwnThread([&]() -> Status {
    Status s = Join(netns);
    if (!s.ok()) return s;
    return fn();
  });
}

Status OpenSocket(const std::string& netns, Socket* out) {
  if (netns.empty()) return Socket::Open(out);
  return RunInNetns(netns, [out]() { return Socket::Open(out); });
}

Status PrepareNetnsDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return Status::Sys(errno, "mkdir", dir);
  if (::mount(nullptr, dir.c_str(), nullptr, MS_PRIVATE, nullptr) == 0) return Status::Ok();
  if (errno != EINVAL) return Status::Sys(errno, "mount", dir, "make private");
  // EINVAL: not a mount point yet.
  if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) < 0) return Status::Sys(errno, "mount", dir, "bind to itself");
  if (::mount(nullptr, dir.c_str(), nullptr, MS_PRIVATE, nullptr) < 0) return Status::Sys(errno, "mount", dir, "make private");
  return Status::Ok();
}

Status CreateNetns(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
  if (fd < 0) return Status::Sys(errno, "open", path, "namespace file");
  ::close(fd);
  // A namespace left mounted here (a crash between mount and clean-up) goes first; EINVAL: none.
  if (::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL) return Status::Sys(errno, "umount2", path);
  return OnOwnThread([&]() -> Status {
    if (::unshare(CLONE_NEWNET) < 0) return Status::Sys(errno, "unshare", {}, "CLONE_NEWNET");
    if (::mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) < 0) {
      return Status::Sys(errno, "mount", path, "bind the new network namespace");
    }
    Socket sock;
    Status s = Socket::Open(&sock);
    if (s.ok()) {
      LinkChange lo;
      lo.name = "lo";
      lo.up = true;
      s = SetLink(sock, lo);
    }
    if (!s.ok()) ::umount2(path.c_str(), MNT_DETACH);
    return s.Context("set up the loopback of a new network namespace");
  });
}

Status DeleteNetns(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
    return Status::Sys(errno, "umount2", path, "network namespace");
  }
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) return Status::Sys(errno, "unlink", path, "network namespace");
  return Status::Ok();
}

Status WriteSysctl(const std::string& netns, const std::string& key, const std::string& value) {
  if (key.empty() || key[0] == '/' || key.find("..") != std::string::npos) {
    return Status::Invalid(EINVAL, "not a sysctl key", key);
  }
  const std::string path = "/proc/sys/" + key;
  if (netns.empty()) return WriteFile(path, value);
  return RunInNetns(netns, [&]() { return WriteFile(path, value); });
}

}  // namespace net
}  // namespace berth
