#include "kernel/features.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs/overlay.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
// The generic numbers these calls have on every architecture, for C libraries whose headers predate them.
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

namespace berth {
namespace kernel {

namespace {

Feature Check(const char* name, const char* since, long rc, int err, int ok_err = 0) {
  Feature f;
  f.name = name;
  f.since = since;
  // A call that exists but refuses our harmless arguments with the expected errno counts as present.
  f.available = rc >= 0 || (ok_err != 0 && err == ok_err);
  if (!f.available) f.detail = std::strerror(err);
  return f;
}

}  // namespace

std::vector<Feature> Probe(const std::string& scratch) {
  std::vector<Feature> out;
  long rc;

  fs::OverlayProbe ovl = fs::ProbeOverlay(scratch);
  Feature api{"fsopen/fsconfig/fsmount/move_mount", "5.2", ovl.new_api, ovl.new_api ? "" : ovl.detail};
  out.push_back(api);
  Feature plus{"overlayfs lowerdir+ through fsconfig", "6.8", ovl.lowerdir_plus, ovl.lowerdir_plus ? "" : ovl.detail};
  out.push_back(plus);

  // first = last = the highest fd number: nothing to mark, but the flag must be known (5.9/5.10 have
  // close_range without it and answer EINVAL).
  errno = 0;
  rc = ::syscall(SYS_close_range, ~0U, ~0U, CLOSE_RANGE_CLOEXEC);
  out.push_back(Check("close_range(CLOSE_RANGE_CLOEXEC)", "5.11", rc, errno));

  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT;
  errno = 0;
  rc = ::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
  if (rc >= 0) ::close(static_cast<int>(rc));
  out.push_back(Check("openat2", "5.6", rc, errno));

  // An fd of -1: a kernel with the call says EBADF before looking at anything else.
  unsigned char attr[32] = {0};
  errno = 0;
  rc = ::syscall(SYS_mount_setattr, -1, "", AT_EMPTY_PATH, attr, sizeof attr);
  out.push_back(Check("mount_setattr", "5.12", rc, errno, EBADF));

  errno = 0;
  rc = ::syscall(SYS_pidfd_open, ::getpid(), 0);
  if (rc >= 0) ::close(static_cast<int>(rc));
  out.push_back(Check("pidfd_open", "5.3", rc, errno));

  // A size of 0 is below every version of struct clone_args: EINVAL when the call exists.
  errno = 0;
  rc = ::syscall(SYS_clone3, nullptr, 0);
  out.push_back(Check("clone3", "5.3", rc, errno, EINVAL));

  errno = 0;
  rc = ::syscall(SYS_faccessat2, AT_FDCWD, "/", F_OK, 0);
  out.push_back(Check("faccessat2", "5.8", rc, errno));

  // An unknown command: EINVAL from a kernel with bpf(2), ENOSYS without (CONFIG_BPF_SYSCALL).
  errno = 0;
  unsigned char bpf_attr[128] = {0};
  rc = ::syscall(SYS_bpf, 0x7fff, bpf_attr, sizeof bpf_attr);
  out.push_back(Check("bpf", "4.15", rc, errno, EINVAL));
  return out;
}

}  // namespace kernel
}  // namespace berth
