#include "caps.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>

#include "util.h"

namespace {

// Index = capability number (include/uapi/linux/capability.h).
const char* const kCapNames[] = {
    "CHOWN",           "DAC_OVERRIDE",    "DAC_READ_SEARCH", "FOWNER",      "FSETID",
    "KILL",            "SETGID",          "SETUID",          "SETPCAP",     "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST",  "NET_ADMIN",       "NET_RAW",     "IPC_LOCK",
    "IPC_OWNER",       "SYS_MODULE",      "SYS_RAWIO",       "SYS_CHROOT",  "SYS_PTRACE",
    "SYS_PACCT",       "SYS_ADMIN",       "SYS_BOOT",        "SYS_NICE",    "SYS_RESOURCE",
    "SYS_TIME",        "SYS_TTY_CONFIG",  "MKNOD",           "LEASE",       "AUDIT_WRITE",
    "AUDIT_CONTROL",   "SETFCAP",         "MAC_OVERRIDE",    "MAC_ADMIN",   "SYSLOG",
    "WAKE_ALARM",      "BLOCK_SUSPEND",   "AUDIT_READ",      "PERFMON",     "BPF",
    "CHECKPOINT_RESTORE",
};
constexpr int kNumCapNames = sizeof kCapNames / sizeof kCapNames[0];

// The highest capability the running kernel knows: PR_CAPBSET_READ fails with EINVAL past it. Probing
// needs no /proc, which may not be mounted in the container.
int kernel_last_cap() {
  int last = -1;
  for (int c = 0; c < 64; c++) {
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0) break;
    last = c;
  }
  return last;
}

CapSet known_mask() {
  int last = kernel_last_cap();
  return last >= 63 ? ~CapSet(0) : ((CapSet(1) << (last + 1)) - 1);
}

}  // namespace

int cap_from_name(const std::string& name) {
  std::string n;
  for (char c : name) n += static_cast<char>(toupper(static_cast<unsigned char>(c)));
  if (n.rfind("CAP_", 0) == 0) n = n.substr(4);
  for (int i = 0; i < kNumCapNames; i++)
    if (n == kCapNames[i]) return i;
  return -1;
}

bool cap_apply_bounding(const Spec& s) {
  if (!s.has_caps) return true;
  int last = kernel_last_cap();
  for (int c = 0; c <= last; c++) {
    if (s.cap_bounding & (CapSet(1) << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
      if (errno == EINVAL) continue;  // not known to this kernel
      return fail("drop capability from bounding set", c < kNumCapNames ? kCapNames[c] : "");
    }
  }
  return true;
}

bool cap_apply_sets(const Spec& s) {
  if (!s.has_caps) return true;
  CapSet known = known_mask();
  CapSet permitted = s.cap_permitted & known;
  // capset(2) refuses an effective bit outside permitted, and an inheritable bit outside the bounding
  // set; runtimes accept such configs, so they are trimmed here rather than failing the start.
  CapSet effective = s.cap_effective & permitted;
  CapSet inheritable = s.cap_inheritable & s.cap_bounding & known;

  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; i++) {
    data[i].effective = static_cast<uint32_t>(effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) < 0) return fail("capset", "");

  // Ambient capabilities survive execve for a non-root user; each needs to be both permitted and
  // inheritable.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return fail("clear ambient capabilities", "");
  CapSet ambient = s.cap_ambient & permitted & inheritable;
  for (int c = 0; c < 64; c++) {
    if (!(ambient & (CapSet(1) << c))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
      return fail("raise ambient capability", c < kNumCapNames ? kCapNames[c] : "");
  }
  return true;
}
