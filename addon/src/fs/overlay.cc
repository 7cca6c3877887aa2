#include "fs/overlay.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "util/fd.h"
#include "util/file.h"

// The new mount API through syscall(2) with the uapi constants, not glibc's wrappers (2.36+), so the addon
// builds and loads on older C libraries too.
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 0x00000008
#endif

namespace berth {
namespace fs {

namespace {

// fsconfig(2) commands (enum fsconfig_command in linux/mount.h).
constexpr unsigned kFsconfigSetString = 1;
constexpr unsigned kFsconfigCmdCreate = 6;

// Options that keep the upper dir a plain, self-contained diff of the container, which is what berth
// turns into a layer on commit: no inode index tying the upper dir to one exact set of lowers (index), no
// metadata-only copy-ups without their data (metacopy), no renamed directories recorded as redirects to
// lower paths (redirect_dir). They are the kernel's defaults, but a kernel may be built or booted with
// them on; Docker's overlay2 passes index=off for the same reason.
const char* const kOffOptions[] = {"index", "metacopy", "redirect_dir"};

// The option string of mount(2) is copied in one page and must end in a NUL within it.
size_t OptionLimit() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)) - 1; }

// ',' separates options, ':' lower dirs, '\' escapes either; the two APIs unescape differently from one
// kernel version to the next, so paths holding them are refused instead of escaped.
Status CheckPath(const std::string& path, const char* what) {
  if (path.empty() || path[0] != '/') {
    return Status::Invalid(EINVAL, std::string(what) + " must be an absolute path", path);
  }
  if (path.find_first_of(",:\\\n") != std::string::npos) {
    return Status::Invalid(
        EINVAL, std::string(what) + " contains one of , : \\ or a newline, which overlayfs options cannot carry", path);
  }
  return Status::Ok();
}

// The kernel's own words about a failed fsconfig, queued on the context fd ("e overlayfs: …").
std::string DrainMessages(int fs_fd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fs_fd, buf, sizeof buf - 1);
    if (n <= 0) break;
    std::string m(buf, static_cast<size_t>(n));
    if (m.size() > 2 && m[1] == ' ') m.erase(0, 2);
    out += out.empty() ? m : "; " + m;
  }
  return out;
}

enum class ApiResult { kDone, kUnsupported };

// Whether this kernel's overlayfs takes "lowerdir+" through fsconfig (Linux 6.8): unknown until the
// probe (ProbeOverlay, at berthd's start) or the first mount finds out; then every mount takes the one
// path that works without trying the other first.
enum Verdict : int { kUnknown = 0, kYes = 1, kNo = 2 };
std::atomic<int> g_lowerdir_plus{kUnknown};

// Tests set BERTH_TEST_OVERLAY_LEGACY_PARSER=1 to get, on any kernel, what a kernel before 6.5 does:
// its legacy option parser takes every key at FSCONFIG_SET_STRING and refuses an unknown one only at
// FSCONFIG_CMD_CREATE, with EINVAL and this message.
bool FakeLegacyParser() {
  const char* v = std::getenv("BERTH_TEST_OVERLAY_LEGACY_PARSER");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

// FSCONFIG_CMD_CREATE; on failure *err and *messages say why.
bool CreateSuperblock(int fs_fd, const std::string& first_lower, int* err, std::string* messages) {
  if (FakeLegacyParser()) {
    *err = EINVAL;
    *messages = "overlayfs: unrecognized mount option \"lowerdir+=" + first_lower + "\" or missing value";
    return false;
  }
  if (::syscall(SYS_fsconfig, fs_fd, kFsconfigCmdCreate, nullptr, nullptr, 0) == 0) return true;
  *err = errno;
  *messages = DrainMessages(fs_fd);
  return false;
}

// Before 6.5 the new mount API hands overlayfs the legacy parser, which only at create says that it does
// not know "lowerdir+" (and says so in the messages of the context).
bool UnknownLowerdirPlus(int err, const std::string& messages) {
  return err == EINVAL && messages.find("lowerdir+") != std::string::npos;
}

// fsopen → fsconfig per parameter → fsmount → move_mount. *result says whether this kernel could take
// the request at all; when it cannot, the caller falls back to mount(2).
Status MountNewApi(const OverlaySpec& spec, ApiResult* result) {
  *result = ApiResult::kDone;
  UniqueFd fs_fd(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!fs_fd.valid()) {
    // No new mount API (ENOSYS), or a filter that blocks it: mount(2) decides, and reports its own error.
    *result = ApiResult::kUnsupported;
    return Status::Ok();
  }
  auto set = [&fs_fd](const char* key, const std::string& value) -> Status {
    if (::syscall(SYS_fsconfig, fs_fd.get(), kFsconfigSetString, key, value.c_str(), 0) == 0) {
      return Status::Ok();
    }
    int err = errno;
    return Status::Sys(err, std::string("fsconfig ") + key, value, DrainMessages(fs_fd.get()));
  };

  Status st = set("source", "overlay");
  if (!st.ok()) return st;
  for (const char* opt : kOffOptions) {
    // A kernel without the option has the feature off anyway.
    if (!set(opt, "off").ok()) DrainMessages(fs_fd.get());
  }
  for (size_t i = 0; i < spec.lowerdirs.size(); i++) {
    st = set("lowerdir+", spec.lowerdirs[i]);
    if (!st.ok() && i == 0 && st.err() == EINVAL) {
      // 6.5 to 6.7: the new parser refuses the unknown parameter here.
      g_lowerdir_plus = kNo;
      *result = ApiResult::kUnsupported;
      return Status::Ok();
    }
    if (!st.ok()) return st;
  }
  if (!spec.upperdir.empty()) {
    st = set("upperdir", spec.upperdir);
    if (st.ok()) st = set("workdir", spec.workdir);
    if (!st.ok()) return st;
  }
  int err = 0;
  std::string messages;
  if (!CreateSuperblock(fs_fd.get(), spec.lowerdirs[0], &err, &messages)) {
    if (UnknownLowerdirPlus(err, messages)) {
      g_lowerdir_plus = kNo;
      *result = ApiResult::kUnsupported;
      return Status::Ok();
    }
    return Status::Sys(err, "fsconfig create", spec.target, messages);
  }
  g_lowerdir_plus = kYes;
  UniqueFd mnt_fd(static_cast<int>(::syscall(SYS_fsmount, fs_fd.get(), FSMOUNT_CLOEXEC, 0)));
  if (!mnt_fd.valid()) return Status::Sys(errno, "fsmount", spec.target, DrainMessages(fs_fd.get()));
  const char* target = spec.target.c_str();
  if (::syscall(SYS_move_mount, mnt_fd.get(), "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return Status::Sys(errno, "move_mount", spec.target);
  }
  return Status::Ok();
}

std::string LegacyOptions(const std::vector<std::string>& lowers, const OverlaySpec& spec) {
  std::string opts;
  for (const char* opt : kOffOptions) {
    // mount(2) refuses the whole string over one unknown option, so only name those the module has.
    if (PathExists(std::string("/sys/module/overlay/parameters/") + opt)) opts += std::string(opt) + "=off,";
  }
  opts += "lowerdir=";
  for (size_t i = 0; i < lowers.size(); i++) opts += (i ? ":" : "") + lowers[i];
  if (!spec.upperdir.empty()) opts += ",upperdir=" + spec.upperdir + ",workdir=" + spec.workdir;
  return opts;
}

// mount(2) says ENOENT without saying which of its many paths is missing; find it, so the error names it.
std::string FirstMissing(const OverlaySpec& spec) {
  std::vector<std::string> paths = {spec.target};
  paths.insert(paths.end(), spec.lowerdirs.begin(), spec.lowerdirs.end());
  for (const std::string& p : {spec.upperdir, spec.workdir}) {
    if (!p.empty()) paths.push_back(p);
  }
  for (const std::string& p : paths) {
    if (!PathExists(p)) return p;
  }
  return spec.target;
}

Status MountLegacy(const OverlaySpec& spec) {
  std::string opts = LegacyOptions(spec.lowerdirs, spec);
  std::vector<UniqueFd> held;  // must stay open until mount(2) has resolved the paths
  if (opts.size() > OptionLimit()) {
    std::vector<std::string> short_lowers;
    for (const std::string& dir : spec.lowerdirs) {
      UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!fd.valid()) return Status::Sys(errno, "open", dir);
      short_lowers.push_back("/proc/self/fd/" + std::to_string(fd.get()));
      held.push_back(std::move(fd));
    }
    opts = LegacyOptions(short_lowers, spec);
    if (opts.size() > OptionLimit()) {
      return Status::Invalid(E2BIG,
                             "overlay options for " + std::to_string(spec.lowerdirs.size()) + " layers take " +
                                 std::to_string(opts.size()) + " bytes even with short paths; mount(2) takes at most " +
                                 std::to_string(OptionLimit()) + " (Linux ≥ 6.8 has no such limit)",
                             spec.target);
    }
  }
  if (::mount("overlay", spec.target.c_str(), "overlay", 0, opts.c_str()) != 0) {
    int err = errno;
    return Status::Sys(err, "mount", err == ENOENT ? FirstMissing(spec) : spec.target);
  }
  return Status::Ok();
}

}  // namespace

Status MountOverlay(const OverlaySpec& spec) {
  if (spec.lowerdirs.empty()) {
    return Status::Invalid(EINVAL, "an overlay needs at least one lower dir", spec.target);
  }
  if (spec.upperdir.empty() != spec.workdir.empty()) {
    return Status::Invalid(EINVAL, "upperdir and workdir go together", spec.target);
  }
  if (spec.upperdir.empty() && spec.lowerdirs.size() < 2) {
    return Status::Invalid(EINVAL, "a read-only overlay needs at least two lower dirs", spec.target);
  }
  Status st = CheckPath(spec.target, "target");
  for (const std::string& d : spec.lowerdirs) {
    if (st.ok()) st = CheckPath(d, "lowerdir");
  }
  if (st.ok() && !spec.upperdir.empty()) st = CheckPath(spec.upperdir, "upperdir");
  if (st.ok() && !spec.workdir.empty()) st = CheckPath(spec.workdir, "workdir");
  if (!st.ok()) return st;

  const char* api = std::getenv("BERTH_OVERLAY_MOUNT_API");
  bool forced_legacy = api != nullptr && std::strcmp(api, "legacy") == 0;
  if (!forced_legacy && g_lowerdir_plus != kNo) {
    ApiResult result;
    st = MountNewApi(spec, &result);
    if (result == ApiResult::kDone) return st;
  }
  return MountLegacy(spec);
}

OverlayProbe ProbeOverlay(const std::string& scratch) {
  OverlayProbe out;
  UniqueFd fs_fd(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!fs_fd.valid()) {
    int err = errno;
    out.new_api = false;
    out.detail = std::string("fsopen: ") + std::strerror(err);
    g_lowerdir_plus = kNo;
    return out;
  }
  out.new_api = true;
  // Two empty lower dirs: the smallest overlay there is, made and dropped without being mounted.
  const std::string l1 = scratch + "/l1", l2 = scratch + "/l2";
  auto cleanup = [&]() {
    ::rmdir(l1.c_str());
    ::rmdir(l2.c_str());
    ::rmdir(scratch.c_str());
  };
  for (const std::string& d : {scratch, l1, l2}) {
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      out.detail = "mkdir " + d + ": " + std::strerror(errno);
      cleanup();
      return out;  // the verdict stays unknown; the first mount decides
    }
  }
  bool set_ok = true;
  for (const std::string& d : {l1, l2}) {
    if (::syscall(SYS_fsconfig, fs_fd.get(), kFsconfigSetString, "lowerdir+", d.c_str(), 0) != 0) set_ok = false;
  }
  int err = 0;
  std::string messages;
  if (!set_ok) {
    out.detail = DrainMessages(fs_fd.get());
    g_lowerdir_plus = kNo;
  } else if (!CreateSuperblock(fs_fd.get(), l1, &err, &messages)) {
    out.detail = messages.empty() ? std::strerror(err) : messages;
    if (UnknownLowerdirPlus(err, messages)) g_lowerdir_plus = kNo;
  } else {
    out.lowerdir_plus = true;
    g_lowerdir_plus = kYes;
  }
  fs_fd.Reset();
  cleanup();
  return out;
}

Status Unmount(const std::string& target, bool detach) {
  // NOFOLLOW: a symlink planted at the target must not redirect the unmount elsewhere.
  if (::umount2(target.c_str(), (detach ? MNT_DETACH : 0) | UMOUNT_NOFOLLOW) == 0) return Status::Ok();
  int err = errno;
  if (err == EINVAL || err == ENOENT) return Status::Ok();  // not a mount point / gone already
  return Status::Sys(err, "umount2", target);
}

}  // namespace fs
}  // namespace berth
