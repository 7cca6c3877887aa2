// Namespaces of a child of the shim, and the sysctls that may be written in them (runc's rules).

#include "child.h"

#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <pty.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace {

// runc's canonical sysctl name: separators are '.', a name written with '/' ("net/ipv4/ip_forward") is
// turned round ('.' inside a name, as in "eth0.100", becomes '/').
std::string canonical_sysctl(const std::string& key) {
  size_t first = key.find_first_of("./");
  if (first == std::string::npos || key[first] == '.') return key;
  std::string out = key;
  for (char& c : out) c = c == '.' ? '/' : c == '/' ? '.' : c;
  return out;
}

// The file under /proc/sys for a canonical name ('.' and '/' swapped); empty when a part of it is empty,
// '.' or '..', or holds a NUL: such a name could reach outside /proc/sys.
std::string sysctl_path(const std::string& canonical) {
  std::string rel = canonical;
  for (char& c : rel) c = c == '.' ? '/' : c == '/' ? '.' : c;
  size_t i = 0;
  for (;;) {
    size_t j = rel.find('/', i);
    std::string part = rel.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string::npos) return "";
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return rel;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

const NsKind kNamespaces[] = {
    {"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID},     {"uts", CLONE_NEWUTS},
    {"ipc", CLONE_NEWIPC},  {"network", CLONE_NEWNET}, {"cgroup", CLONE_NEWCGROUP},
    {"user", CLONE_NEWUSER},
};

bool loopback_up() {
  Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.ok()) return fail("socket", "");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) return fail("get flags of", "lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) return fail("bring up", "lo");
  return true;
}

// Refuses, before anything is cloned, every sysctl that is not in a namespace of the container's own
// (runc's rules and words): a parameter of the host's kernel must never be written, whatever the spec says.
bool check_sysctls(const Spec& s, const ChildPlan& plan) {
  static const char* const kIpc[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                     "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (const auto& kv : s.sysctl) {
    std::string k = canonical_sysctl(kv.first);
    if (sysctl_path(k).empty()) return fail_msg("sysctl " + quote(kv.first) + " is not a valid sysctl name");
    bool ipc = starts_with(k, "fs.mqueue.");
    for (const char* n : kIpc) ipc = ipc || k == n;
    if (ipc) {
      if (!plan.own_ipc) return fail_msg("sysctl " + quote(k) + " is not allowed in the hosts ipc namespace");
      continue;
    }
    if (starts_with(k, "net.")) {
      if (!plan.own_net) return fail_msg("sysctl " + quote(k) + " not allowed in host network namespace");
      continue;
    }
    if (plan.own_uts && k == "kernel.domainname") continue;
    if (plan.own_uts && k == "kernel.hostname")
      return fail_msg("sysctl " + quote(k) + " is not allowed as it conflicts with the OCI \"hostname\" field");
    return fail_msg("sysctl " + quote(k) + " is not in a separate kernel namespace");
  }
  return true;
}

// "LOW HIGH" of container gids as the host's gids through the gid map ("inside outside count" lines).
// Both ends must fall in one extent, as the kernel refuses a gid the writer's namespace does not map
// and a range split over extents would take in host gids between them.
bool host_gid_range(const std::string& gid_map, std::string& value) {
  unsigned long long low = 0, high = 0;
  char tail = 0;
  if (sscanf(value.c_str(), "%llu %llu %c", &low, &high, &tail) != 2) return false;
  std::istringstream in(gid_map);
  unsigned long long inside = 0, outside = 0, count = 0;
  while (in >> inside >> outside >> count) {
    if (low < inside || high >= inside + count) continue;
    value = std::to_string(outside + (low - inside)) + " " + std::to_string(outside + (high - inside));
    return true;
  }
  return false;
}

// Writes the sysctls checked by check_sysctls, from inside the container's namespaces, each only under
// /proc/sys: opened without following a symlink at the end, never created.
bool write_sysctls(const Spec& s, int net) {
  for (const auto& kv : s.sysctl) {
    if (net >= 0 && starts_with(canonical_sysctl(kv.first), "net.") != (net == 1)) continue;
    std::string rel = sysctl_path(canonical_sysctl(kv.first));
    if (rel.empty()) return fail_msg("sysctl " + quote(kv.first) + " is not a valid sysctl name");
    std::string path = "/proc/sys/" + rel;
    std::string value = kv.second;
    // The kernel reads ping_group_range's gids in the writer's user namespace: written by the shim for a
    // remapped container (net == 1), the container's gids are turned into the host's ones first.
    if (net == 1 && rel == "net/ipv4/ping_group_range" && !host_gid_range(s.gid_map, value)) {
      errno = EINVAL;
      return fail(("write sysctl " + kv.first + " via").c_str(), path);
    }
    Fd fd(open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.ok()) return fail(("write sysctl " + kv.first + " via").c_str(), path);
    if (!write_all(fd.get(), value.data(), value.size()))
      return fail(("write sysctl " + kv.first + " via").c_str(), path);
  }
  return true;
}

void mark_own(ChildPlan& plan, int kind) {
  if (kind == CLONE_NEWIPC) plan.own_ipc = true;
  if (kind == CLONE_NEWNET) plan.own_net = true;
  if (kind == CLONE_NEWUTS) plan.own_uts = true;
}

// Whether fd is the shim's own namespace of that kind (the same inode as /proc/self/ns/<kind>).
bool is_shims_ns(int kind, int fd) {
  const char* name = kind == CLONE_NEWIPC ? "ipc" : kind == CLONE_NEWNET ? "net" : kind == CLONE_NEWUTS ? "uts" : nullptr;
  if (name == nullptr) return false;
  struct stat mine, theirs;
  if (stat((std::string("/proc/self/ns/") + name).c_str(), &mine) < 0 || fstat(fd, &theirs) < 0) return true;
  return mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev;
}
