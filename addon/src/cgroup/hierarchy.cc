#include "cgroup/hierarchy.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "util/file.h"

namespace berth {
namespace cgroup {

namespace {

// statfs(2) f_type of the two cgroup file systems (linux/magic.h).
constexpr long kCgroupMagic = 0x27e0eb;
constexpr long kCgroup2Magic = 0x63677270;

// How long RemoveDir keeps retrying while killed processes exit. Bounded so a process stuck in
// uninterruptible sleep turns into an EBUSY the daemon can report and retry, not a hung pool thread.
constexpr auto kRemoveTimeout = std::chrono::seconds(5);

// Every cgroup at or below dir, deepest first, so each can be removed after its children.
Status CollectPostOrder(const std::string& dir, std::vector<std::string>* out) {
  std::vector<std::string> children;
  Status st = ListSubdirs(dir, &children);
  if (!st.ok()) return st;
  for (const std::string& c : children) {
    st = CollectPostOrder(dir + "/" + c, out);
    if (!st.ok() && st.err() != ENOENT) return st;
  }
  out->push_back(dir);
  return Status::Ok();
}

}  // namespace

std::vector<std::string> Levels(const std::string& rel) {
  std::vector<std::string> out;
  std::string prefix;
  for (const std::string& part : SplitAny(rel, "/")) {
    prefix = prefix.empty() ? part : prefix + "/" + part;
    out.push_back(prefix);
  }
  return out;
}

std::vector<std::string> Ancestors(const std::string& rel) {
  std::vector<std::string> out{""};
  std::vector<std::string> levels = Levels(rel);
  if (!levels.empty()) levels.pop_back();
  out.insert(out.end(), levels.begin(), levels.end());
  return out;
}

Status Hierarchy::Open(const std::string& root, Hierarchy* out) {
  struct statfs fs;
  if (::statfs(root.c_str(), &fs) != 0) return Status::Sys(errno, "statfs", root);
  out->root_ = root;
  while (out->root_.size() > 1 && out->root_.back() == '/') out->root_.pop_back();
  out->fake_ = fs.f_type != kCgroupMagic && fs.f_type != kCgroup2Magic;
  return Status::Ok();
}

Status Hierarchy::Write(const std::string& dir, const std::string& file, const std::string& value) const {
  return WriteFile(dir + "/" + file, value, fake_);
}

bool Hierarchy::Has(const std::string& dir, const std::string& file) const {
  return PathExists(dir + "/" + file);
}

Status Hierarchy::Read(const std::string& dir, const std::string& file, std::string* out, bool missing_ok) const {
  Status st = ReadFile(dir + "/" + file, out);
  if (!st.ok() && st.err() == ENOENT && missing_ok) {
    out->clear();
    return Status::Ok();
  }
  *out = Trim(*out);
  return st;
}

Status Hierarchy::MakeDirs(const std::string& rel, std::vector<std::string>* made) const {
  for (const std::string& level : Levels(rel)) {
    std::string dir = Dir(level);
    if (::mkdir(dir.c_str(), 0755) == 0) {
      made->push_back(dir);
      continue;
    }
    int err = errno;
    struct stat st;
    if (err == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    return Status::Sys(err == EEXIST ? ENOTDIR : err, "mkdir", dir);
  }
  return Status::Ok();
}

Status Hierarchy::RemoveDir(const std::string& dir) const {
  if (!PathExists(dir)) return Status::Ok();
  return fake_ ? RemoveFake(dir) : RemoveReal(dir);
}

void Hierarchy::KillMembers(const std::string& dir) const {
  if (fake_) return;
  std::string procs;
  if (!ReadFile(dir + "/cgroup.procs", &procs).ok()) return;
  const pid_t self = ::getpid();
  for (const std::string& tok : SplitAny(procs, " \n")) {
    char* end = nullptr;
    long pid = std::strtol(tok.c_str(), &end, 10);
    // Only plain positive pids: 0 or -1 would signal a whole process group or every process. berthd itself
    // never belongs to a container cgroup, but if it ever did it must not kill itself here.
    if (end == tok.c_str() || *end != '\0' || pid <= 0 || pid == self) continue;
    ::kill(static_cast<pid_t>(pid), SIGKILL);  // ESRCH: it exited meanwhile
  }
}

void Hierarchy::Thaw(const std::string& dir) const {
  if (fake_) return;
  std::vector<std::string> dirs;
  if (!CollectPostOrder(dir, &dirs).ok()) return;
  // Parents first: a child cannot thaw while an ancestor is frozen.
  for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) {
    if (Has(*d, "freezer.state")) Write(*d, "freezer.state", "THAWED");
    if (Has(*d, "cgroup.freeze")) Write(*d, "cgroup.freeze", "0");
  }
}

Status Hierarchy::RemoveReal(const std::string& dir) const {
  std::vector<std::string> dirs;
  Status st = CollectPostOrder(dir, &dirs);
  if (!st.ok()) return st.err() == ENOENT ? Status::Ok() : st;

  // A frozen task cannot act on SIGKILL: a paused container is removed like any other.
  Thaw(dir);

  const auto deadline = std::chrono::steady_clock::now() + kRemoveTimeout;
  auto pause = std::chrono::milliseconds(5);
  for (;;) {
    // cgroup.kill (v2, Linux ≥ 5.14) kills the whole subtree atomically, even tasks forking meanwhile;
    // otherwise signal each member of each cgroup, again on every round to catch late forks.
    if (Has(dir, "cgroup.kill")) {
      Write(dir, "cgroup.kill", "1");
    } else {
      for (const std::string& d : dirs) KillMembers(d);
    }

    Status busy;
    for (const std::string& d : dirs) {
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) continue;
      int err = errno;
      if (err != EBUSY) return Status::Sys(err, "rmdir", d);
      busy = Status::Sys(err, "rmdir", d);
      break;
    }
    if (busy.ok()) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return busy.Context("processes were still in the cgroup " +
                          std::to_string(std::chrono::seconds(kRemoveTimeout).count()) + "s after SIGKILL");
    }
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(50)) pause *= 2;

    dirs.clear();
    st = CollectPostOrder(dir, &dirs);
    if (!st.ok()) return st.err() == ENOENT ? Status::Ok() : st;
  }
}

Status Hierarchy::RemoveFake(const std::string& dir) const {
  // Plain files stand in for control files here, and must go before the directory can.
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT ? Status::Ok() : Status::Sys(errno, "opendir", dir);
  std::vector<std::string> files, subdirs;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    (S_ISDIR(st.st_mode) ? subdirs : files).push_back(dir + "/" + e->d_name);
  }
  ::closedir(d);
  for (const std::string& s : subdirs) {
    Status st = RemoveFake(s);
    if (!st.ok()) return st;
  }
  for (const std::string& f : files) {
    if (::unlink(f.c_str()) != 0 && errno != ENOENT) return Status::Sys(errno, "unlink", f);
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return Status::Sys(errno, "rmdir", dir);
  return Status::Ok();
}

}  // namespace cgroup
}  // namespace berth
