#include "seccomp.h"

#include <seccomp.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util.h"

bool seccomp_action(const std::string& name, int errno_ret, uint32_t& out) {
  if (name == "SCMP_ACT_ALLOW") out = SCMP_ACT_ALLOW;
  else if (name == "SCMP_ACT_ERRNO") out = SCMP_ACT_ERRNO(static_cast<uint16_t>(errno_ret));
  else if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") out = SCMP_ACT_KILL;
  else if (name == "SCMP_ACT_KILL_PROCESS") out = SCMP_ACT_KILL_PROCESS;
  else if (name == "SCMP_ACT_TRAP") out = SCMP_ACT_TRAP;
  else if (name == "SCMP_ACT_LOG") out = SCMP_ACT_LOG;
  else if (name == "SCMP_ACT_TRACE") out = SCMP_ACT_TRACE(static_cast<uint16_t>(errno_ret));
  else return false;
  return true;
}

bool seccomp_compare(const std::string& name, int& out) {
  static const struct { const char* name; scmp_compare op; } kOps[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (const auto& o : kOps)
    if (name == o.name) {
      out = o.op;
      return true;
    }
  return false;
}

namespace {

// The filter built with libseccomp; nullptr (with last_error set) on failure.
scmp_filter_ctx build_filter(const SpecSeccomp& s) {
  scmp_filter_ctx ctx = seccomp_init(s.default_action);
  if (ctx == nullptr) {
    fail_msg("seccomp: cannot initialise the filter");
    return nullptr;
  }
  // The process still holds CAP_SYS_ADMIN when the filter goes on, so it needs no no_new_privs of its
  // own; that flag is set (or not) by the spec's noNewPrivileges, as Docker does.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  for (const auto& r : s.rules) {
    if (r.action == s.default_action) continue;
    std::vector<scmp_arg_cmp> cmps;
    for (const auto& a : r.args)
      cmps.push_back(scmp_arg_cmp{a.index, static_cast<scmp_compare>(a.op), a.value, a.value_two});
    for (const auto& n : r.names) {
      int nr = seccomp_syscall_resolve_name(n.c_str());
      if (nr == __NR_SCMP_ERROR) continue;
      int rc = seccomp_rule_add_array(ctx, r.action, nr, static_cast<unsigned>(cmps.size()), cmps.empty() ? nullptr : cmps.data());
      // A pseudo-syscall of another architecture, or a rule libseccomp cannot express here: skip it.
      if (rc == -EDOM || rc == -EINVAL) continue;
      if (rc < 0) {
        seccomp_release(ctx);
        fail("seccomp: add rule for", n, -rc);
        return nullptr;
      }
    }
  }
  return ctx;
}

}  // namespace

bool compile_seccomp(const SpecSeccomp& s, std::string& prog) {
  prog.clear();
  if (!s.present) return true;
  scmp_filter_ctx ctx = build_filter(s);
  if (ctx == nullptr) return false;
  // libseccomp (2.5) exports only to a file descriptor.
  Fd mem(static_cast<int>(syscall(SYS_memfd_create, "seccomp", MFD_CLOEXEC)));
  int rc = mem.ok() ? seccomp_export_bpf(ctx, mem.get()) : -errno;
  seccomp_release(ctx);
  if (rc < 0) return fail("seccomp: export the filter", "", -rc);
  struct stat st;
  if (fstat(mem.get(), &st) < 0) return fail("seccomp: export the filter", "");
  prog.resize(static_cast<size_t>(st.st_size));
  if (pread(mem.get(), &prog[0], prog.size(), 0) != static_cast<ssize_t>(prog.size()))
    return fail("seccomp: read the exported filter", "");
  if (prog.empty() || prog.size() % sizeof(struct sock_filter) != 0) return fail_msg("seccomp: empty filter");
  return true;
}

namespace {

// The cache file: a magic, the FNV-1a hash of the program, the program. A file that does not check out
// (torn, damaged, of another version) is compiled again, never loaded.
const char kCacheMagic[8] = {'b', 'e', 'r', 't', 'h', 'b', 'p', 'f'};

uint64_t fnv1a(const std::string& data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool read_cache(const std::string& cache, std::string& prog) {
  std::string file;
  if (!read_file(cache, file) || file.size() <= 16 || memcmp(file.data(), kCacheMagic, 8) != 0) return false;
  uint64_t want;
  memcpy(&want, file.data() + 8, 8);
  prog = file.substr(16);
  return prog.size() % sizeof(struct sock_filter) == 0 && fnv1a(prog) == want;
}

}  // namespace

bool cached_seccomp(const SpecSeccomp& s, const std::string& cache, std::string& prog) {
  if (!s.present) {
    prog.clear();
    return true;
  }
  if (!cache.empty() && read_cache(cache, prog)) return true;
  if (!compile_seccomp(s, prog)) return false;
  // Written once per container start (its state directory is new each time); a failed write only
  // means the next exec compiles again.
  if (!cache.empty()) {
    uint64_t h = fnv1a(prog);
    std::string file(kCacheMagic, 8);
    file.append(reinterpret_cast<const char*>(&h), 8);
    file += prog;
    write_file_atomic(cache, file, /*durable=*/false);
  }
  return true;
}

bool load_seccomp_program(const std::string& prog) {
  if (prog.empty()) return true;
  struct sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(prog.size() / sizeof(struct sock_filter));
  fprog.filter = reinterpret_cast<struct sock_filter*>(const_cast<char*>(prog.data()));
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) return fail("seccomp: load filter", "");
  return true;
}
