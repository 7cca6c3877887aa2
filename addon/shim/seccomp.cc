#include "seccomp.h"

#include <seccomp.h>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <cctype>

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

bool seccomp_arch(const std::string& name, uint32_t& out) {
  const std::string prefix = "SCMP_ARCH_";
  if (name.rfind(prefix, 0) != 0) return false;
  std::string lower = name.substr(prefix.size());
  for (char& c : lower) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  out = seccomp_arch_resolve_name(lower.c_str());
  return out != 0;
}

bool seccomp_flag(const std::string& name, unsigned& out) {
  // TSYNC changes nothing for the single-threaded child; LOG and SPEC_ALLOW are passed to seccomp(2).
  if (name == "SECCOMP_FILTER_FLAG_TSYNC") out = 0;
  else if (name == "SECCOMP_FILTER_FLAG_LOG") out = SECCOMP_FILTER_FLAG_LOG;
  else if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") out = SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  else return false;
  return true;
}

namespace {

// What a rule looks like, for an error message: "SCMP_ACT_ERRNO if arg0 EQ 1 and arg1 & 0x8 == 0".
std::string describe(const SpecSeccompRule& r) {
  std::string d = r.action_name;
  static const char* const kOps[] = {"?", "NE", "LT", "LE", "EQ", "GE", "GT"};
  for (size_t i = 0; i < r.args.size(); i++) {
    const auto& a = r.args[i];
    char buf[128];
    const char* join = i == 0 ? " if" : " and";
    if (a.op == SCMP_CMP_MASKED_EQ)
      snprintf(buf, sizeof buf, "%s arg%u & %#llx == %llu", join, a.index, static_cast<unsigned long long>(a.value),
               static_cast<unsigned long long>(a.value_two));
    else
      snprintf(buf, sizeof buf, "%s arg%u %s %llu", join, a.index, a.op > 0 && a.op < 7 ? kOps[a.op] : "?",
               static_cast<unsigned long long>(a.value));
    d += buf;
  }
  return d;
}

// The architectures of a filter: the native one, then the spec's.
std::vector<uint32_t> filter_arches(const SpecSeccomp& s) {
  std::vector<uint32_t> out{seccomp_arch_native()};
  for (uint32_t a : s.arches)
    if (a != out[0]) out.push_back(a);
  return out;
}

// The filter built with libseccomp; nullptr (with last_error set) on failure.
scmp_filter_ctx build_filter(const SpecSeccomp& s) {
  scmp_filter_ctx ctx = seccomp_init(s.default_action);
  if (ctx == nullptr) {
    fail_msg("seccomp: cannot initialise the filter (default action not supported by this kernel?)");
    return nullptr;
  }
  // The process still holds CAP_SYS_ADMIN when the filter goes on, so it needs no no_new_privs of its
  // own; that flag is set (or not) by the spec's noNewPrivileges, as Docker does.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  // A binary tree of syscall numbers: a few comparisons per syscall instead of a walk down the list.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  const std::vector<uint32_t> arches = filter_arches(s);
  for (size_t i = 1; i < arches.size(); i++) {
    int rc = seccomp_arch_add(ctx, arches[i]);
    if (rc < 0 && rc != -EEXIST) {
      seccomp_release(ctx);
      char hex[16];
      snprintf(hex, sizeof hex, "%#x", arches[i]);
      fail_msg(std::string("seccomp: architecture ") + hex + " cannot be added: " + errno_text(-rc));
      return nullptr;
    }
  }
  for (const auto& r : s.rules) {
    if (r.action == s.default_action) continue;
    std::vector<scmp_arg_cmp> cmps;
    for (const auto& a : r.args)
      cmps.push_back(scmp_arg_cmp{a.index, static_cast<scmp_compare>(a.op), a.value, a.value_two});
    for (const auto& n : r.names) {
      // Named on none of the filter's architectures, or unknown to this libseccomp: nothing to filter.
      bool here = false;
      for (uint32_t a : arches) here = here || seccomp_syscall_resolve_name_arch(a, n.c_str()) >= 0;
      if (!here) continue;
      int nr = seccomp_syscall_resolve_name(n.c_str());
      int rc = seccomp_rule_add_array(ctx, r.action, nr, static_cast<unsigned>(cmps.size()), cmps.empty() ? nullptr : cmps.data());
      if (rc < 0) {
        seccomp_release(ctx);
        fail_msg("seccomp: the rule for " + n + " (" + describe(r) + ") cannot be added: " + errno_text(-rc));
        return nullptr;
      }
    }
  }
  return ctx;
}

// A classic BPF program being assembled with symbolic jump targets (instruction indexes).
struct Asm {
  struct Insn {
    uint16_t code;
    uint32_t k;
    int jt = -1, jf = -1;  // targets of a conditional jump; -1 = the next instruction
  };
  std::vector<Insn> code;
  int at() const { return static_cast<int>(code.size()); }
  int emit(uint16_t c, uint32_t k, int jt = -1, int jf = -1) {
    code.push_back({c, k, jt, jf});
    return at() - 1;
  }
  // Resolves the targets into offsets; false when one does not fit a conditional jump's 8 bits.
  bool assemble(std::string& out) const {
    out.clear();
    for (int i = 0; i < at(); i++) {
      const Insn& in = code[i];
      struct sock_filter f = {in.code, 0, 0, in.k};
      auto off = [&](int target) { return target < 0 ? 0 : target - (i + 1); };
      if (BPF_CLASS(in.code) == BPF_JMP && BPF_OP(in.code) == BPF_JA) {
        f.k = static_cast<uint32_t>(off(in.jt));
      } else if (BPF_CLASS(in.code) == BPF_JMP) {
        int t = off(in.jt), e = off(in.jf);
        if (t < 0 || t > 255 || e < 0 || e > 255) return false;
        f.jt = static_cast<uint8_t>(t);
        f.jf = static_cast<uint8_t>(e);
      }
      out.append(reinterpret_cast<const char*>(&f), sizeof f);
    }
    return true;
  }
};

const uint32_t kX32Bit = 0x40000000;

// the -ENOSYS prelude (as runc has one), put in front of libseccomp's program: for each architecture of the filter, a syscall
// numbered above the largest the profile names answers ENOSYS; everything else goes on to the filter.
// Empty when the default action lets syscalls through anyway, or already answers ENOSYS.
bool enosys_prelude(const SpecSeccomp& s, std::string& out) {
  out.clear();
  uint32_t def = s.default_action;
  // ALLOW, LOG and TRACE(n) share these high bits; a tracer handles new syscalls itself (as runc says).
  bool lets_through = (def & 0xfff00000u) == SCMP_ACT_TRACE(0);
  if (lets_through || def == SCMP_ACT_ERRNO(ENOSYS))
    return true;
  // The largest syscall number per architecture; x86_64 and x32 share the kernel's AUDIT_ARCH_X86_64 and
  // are told apart by the x32 bit of the number.
  struct Arch {
    uint32_t audit;
    int max_native = -1;  // x86_64, or the only ABI of the architecture
    int max_x32 = -1;
  };
  std::vector<Arch> found;
  for (uint32_t a : filter_arches(s)) {
    bool x32 = a == SCMP_ARCH_X32;
    uint32_t audit = x32 ? SCMP_ARCH_X86_64 : a;  // SCMP_ARCH_* are AUDIT_ARCH_*, x32's excepted
    int max = -1;
    for (const auto& r : s.rules)
      for (const auto& n : r.names) {
        int nr = seccomp_syscall_resolve_name_arch(a, n.c_str());
        if (nr > max) max = nr;
      }
    if (max < 0) continue;
    Arch* e = nullptr;
    for (auto& f : found)
      if (f.audit == audit) e = &f;
    if (e == nullptr) {
      found.push_back(Arch{audit});
      e = &found.back();
    }
    (x32 ? e->max_x32 : e->max_native) = max;
  }
  if (found.empty()) return true;

  Asm p;
  p.emit(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  std::vector<int> dispatch;
  for (const auto& f : found) dispatch.push_back(p.emit(BPF_JMP | BPF_JEQ | BPF_K, f.audit));
  int to_filter_unknown = p.emit(BPF_JMP | BPF_JA, 0);
  // Jumps to the ENOSYS return and to the filter are patched once their places are known.
  std::vector<int> to_enosys, to_filter{to_filter_unknown};
  for (size_t i = 0; i < found.size(); i++) {
    const Arch& f = found[i];
    p.code[dispatch[i]].jt = p.emit(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    if (f.audit == SCMP_ARCH_X86_64) {
      int jset = p.emit(BPF_JMP | BPF_JSET | BPF_K, kX32Bit);
      // x86_64 numbers (bit clear).
      if (f.max_native >= 0) {
        int c = p.emit(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(f.max_native));
        to_enosys.push_back(c);
        to_filter.push_back(p.emit(BPF_JMP | BPF_JA, 0));
      } else {
        to_filter.push_back(p.emit(BPF_JMP | BPF_JA, 0));
      }
      // x32 numbers (bit set): the x32 maximum carries the bit too.
      p.code[jset].jt = p.at();
      if (f.max_x32 >= 0) {
        to_enosys.push_back(p.emit(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(f.max_x32)));
      }
      to_filter.push_back(p.emit(BPF_JMP | BPF_JA, 0));
    } else {
      to_enosys.push_back(p.emit(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(f.max_native)));
      to_filter.push_back(p.emit(BPF_JMP | BPF_JA, 0));
    }
  }
  int enosys = p.emit(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
  int filter = p.at();
  for (int i : to_enosys) p.code[i].jt = enosys;
  for (int i : to_filter) p.code[i].jt = filter;
  if (!p.assemble(out)) return fail_msg("seccomp: the ENOSYS prelude does not fit its jumps");
  return true;
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
  std::string body(static_cast<size_t>(st.st_size), '\0');
  if (pread(mem.get(), &body[0], body.size(), 0) != static_cast<ssize_t>(body.size()))
    return fail("seccomp: read the exported filter", "");
  if (body.empty() || body.size() % sizeof(struct sock_filter) != 0) return fail_msg("seccomp: empty filter");
  if (!enosys_prelude(s, prog)) return false;
  prog += body;
  // The kernel takes at most BPF_MAXINSNS instructions: say so here rather than as EINVAL at load.
  if (prog.size() / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return fail_msg("seccomp: the profile compiles to " + std::to_string(prog.size() / sizeof(struct sock_filter)) +
                    " BPF instructions, more than the kernel's limit of " + std::to_string(BPF_MAXINSNS));
  return true;
}

namespace {

// The cache file: a magic, the key (the profile and this shim binary), the FNV-1a hash of the program, the
// program. A file that does not check out (torn, damaged, another profile's, an older shim's) is compiled
// again, never loaded.
const char kCacheMagic[8] = {'b', 'e', 'r', 't', 'h', 'b', 'p', '2'};

uint64_t fnv1a(const std::string& data, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

template <typename T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Everything the program is made of: the profile as read, and the shim binary that compiles it (another
// libseccomp may know other syscalls).
uint64_t cache_key(const SpecSeccomp& s) {
  std::string k;
  put(k, s.default_action);
  put(k, s.flags);
  for (uint32_t a : s.arches) put(k, a);
  for (const auto& r : s.rules) {
    k += '\n';
    put(k, r.action);
    for (const auto& n : r.names) k += n + ",";
    for (const auto& a : r.args) {
      put(k, a.index);
      put(k, a.op);
      put(k, a.value);
      put(k, a.value_two);
    }
  }
  struct stat self;
  if (stat("/proc/self/exe", &self) == 0) {
    put(k, self.st_ino);
    put(k, self.st_size);
    put(k, self.st_mtim.tv_sec);
    put(k, self.st_mtim.tv_nsec);
  }
  return fnv1a(k);
}

bool read_cache(const std::string& cache, uint64_t key, std::string& prog) {
  std::string file;
  if (!read_file(cache, file) || file.size() <= 24 || memcmp(file.data(), kCacheMagic, 8) != 0) return false;
  uint64_t have_key, want;
  memcpy(&have_key, file.data() + 8, 8);
  memcpy(&want, file.data() + 16, 8);
  if (have_key != key) return false;
  prog = file.substr(24);
  return prog.size() % sizeof(struct sock_filter) == 0 && fnv1a(prog) == want;
}

// Written under a name of this process's own and renamed into place, so that shims compiling the same
// profile at once never mix their bytes.
void write_cache(const std::string& cache, uint64_t key, const std::string& prog) {
  size_t slash = cache.rfind('/');
  if (slash != std::string::npos && slash > 0) mkdir(cache.substr(0, slash).c_str(), 0700);
  std::string file(kCacheMagic, 8);
  put(file, key);
  put(file, fnv1a(prog));
  file += prog;
  std::string tmp = cache + "." + std::to_string(getpid()) + ".tmp";
  {
    Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.ok() || !write_all(fd.get(), file.data(), file.size())) {
      unlink(tmp.c_str());
      return;
    }
  }
  if (rename(tmp.c_str(), cache.c_str()) < 0) unlink(tmp.c_str());
}

}  // namespace

bool cached_seccomp(const SpecSeccomp& s, const std::string& cache, std::string& prog, const std::string& shared) {
  if (!s.present) {
    prog.clear();
    return true;
  }
  if (cache.empty()) return compile_seccomp(s, prog);
  uint64_t key = cache_key(s);
  if (read_cache(cache, key, prog)) return true;
  // An exec's own cache missed: the profile's, written when the container started, saves the compile.
  bool from_shared = !shared.empty() && read_cache(shared, key, prog);
  if (!from_shared && !compile_seccomp(s, prog)) return false;
  // A failed write only means the next start or exec compiles again.
  write_cache(cache, key, prog);
  if (!shared.empty() && !from_shared) write_cache(shared, key, prog);
  return true;
}

bool load_seccomp_program(const std::string& prog, unsigned flags) {
  if (prog.empty()) return true;
  struct sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(prog.size() / sizeof(struct sock_filter));
  fprog.filter = reinterpret_cast<struct sock_filter*>(const_cast<char*>(prog.data()));
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog) < 0) return fail("seccomp: load the filter", "");
  return true;
}
