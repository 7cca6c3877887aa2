#include "cgroup/devices_bpf.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace berth {
namespace cgroup {

namespace {

// Registers of the program. r1 holds the context on entry (struct bpf_cgroup_dev_ctx *); the rest are
// ours, as the program calls no helpers.
constexpr uint8_t kCtx = 1;
constexpr uint8_t kType = 2;    // BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR
constexpr uint8_t kAccess = 3;  // BPF_DEVCG_ACC_* bits asked for
constexpr uint8_t kMajor = 4;
constexpr uint8_t kMinor = 5;
constexpr uint8_t kScratch = 6;
constexpr uint8_t kRet = 0;

constexpr int32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i;
  std::memset(&i, 0, sizeof(i));
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

// dst = *(u32 *)(src + off)
bpf_insn LoadWord(uint8_t dst, uint8_t src, int16_t off) { return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0); }
// 32-bit ALU operations; each clears the upper half of dst.
bpf_insn Mov32Reg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn And32(uint8_t dst, int32_t imm) { return Insn(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm); }
bpf_insn Rsh32(uint8_t dst, int32_t imm) { return Insn(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm); }
bpf_insn Mov64Imm(uint8_t dst, int32_t imm) { return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
// if ((u32)dst <op> (u32)imm) goto pc + 1 + off; off is patched once the rule's block is complete.
bpf_insn Jump32(uint8_t op, uint8_t dst, int32_t imm) { return Insn(BPF_JMP32 | op | BPF_K, dst, 0, 0, imm); }
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

Status Bad(const std::string& what, size_t index) {
  return Status::Invalid(EINVAL, "device rule " + std::to_string(index) + ": " + what);
}

// The access letters of a rule as BPF_DEVCG_ACC_* bits.
Status AccessBits(const std::string& access, size_t index, int32_t* bits) {
  *bits = 0;
  for (char c : access) {
    switch (c) {
      case 'm': *bits |= BPF_DEVCG_ACC_MKNOD; break;
      case 'r': *bits |= BPF_DEVCG_ACC_READ; break;
      case 'w': *bits |= BPF_DEVCG_ACC_WRITE; break;
      default: return Bad(std::string("access '") + access + "' has a letter other than r, w, m", index);
    }
  }
  if (*bits == 0) *bits = kAllAccess;
  return Status::Ok();
}

Status DeviceNumber(int64_t v, const char* what, size_t index) {
  if (v < -1 || v > int64_t{UINT32_MAX}) return Bad(std::string(what) + " " + std::to_string(v) + " is out of range", index);
  return Status::Ok();
}

// One rule as a block that returns its verdict when the request matches and otherwise falls through to
// the next block. *unconditional is set when the block matches every request.
Status RuleBlock(const DeviceRule& r, size_t index, std::vector<bpf_insn>* block, bool* unconditional) {
  int32_t bits;
  Status st = AccessBits(r.access, index, &bits);
  if (st.ok()) st = DeviceNumber(r.major, "major", index);
  if (st.ok()) st = DeviceNumber(r.minor, "minor", index);
  if (!st.ok()) return st;

  block->clear();
  std::vector<size_t> jumps;  // instructions whose target is the end of the block
  auto skip_unless = [&](bpf_insn jump) {
    jumps.push_back(block->size());
    block->push_back(jump);
  };
  switch (r.type) {
    case 'a': break;
    case 'c': skip_unless(Jump32(BPF_JNE, kType, BPF_DEVCG_DEV_CHAR)); break;
    case 'b': skip_unless(Jump32(BPF_JNE, kType, BPF_DEVCG_DEV_BLOCK)); break;
    default: return Bad(std::string("type '") + r.type + "' is none of a, b, c", index);
  }
  if (r.major >= 0) skip_unless(Jump32(BPF_JNE, kMajor, static_cast<int32_t>(static_cast<uint32_t>(r.major))));
  if (r.minor >= 0) skip_unless(Jump32(BPF_JNE, kMinor, static_cast<int32_t>(static_cast<uint32_t>(r.minor))));
  if (bits != kAllAccess) {
    block->push_back(Mov32Reg(kScratch, kAccess));
    if (r.allow) {
      // Allowed only when nothing outside the rule's access is asked for.
      block->push_back(And32(kScratch, kAllAccess & ~bits));
      skip_unless(Jump32(BPF_JNE, kScratch, 0));
    } else {
      // Denied as soon as any of the rule's access is asked for.
      block->push_back(And32(kScratch, bits));
      skip_unless(Jump32(BPF_JEQ, kScratch, 0));
    }
  }
  *unconditional = jumps.empty();
  block->push_back(Mov64Imm(kRet, r.allow ? 1 : 0));
  block->push_back(Exit());
  for (size_t j : jumps) (*block)[j].off = static_cast<int16_t>(block->size() - (j + 1));
  return Status::Ok();
}

long Bpf(int cmd, bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

}  // namespace

Status BuildDeviceProgram(const std::vector<DeviceRule>& rules, std::vector<bpf_insn>* out) {
  out->clear();
  // Split the context into type, access, major and minor once.
  out->push_back(LoadWord(kType, kCtx, offsetof(bpf_cgroup_dev_ctx, access_type)));
  out->push_back(Mov32Reg(kAccess, kType));
  out->push_back(And32(kType, 0xffff));
  out->push_back(Rsh32(kAccess, 16));
  out->push_back(LoadWord(kMajor, kCtx, offsetof(bpf_cgroup_dev_ctx, major)));
  out->push_back(LoadWord(kMinor, kCtx, offsetof(bpf_cgroup_dev_ctx, minor)));

  // Last rule first. A rule that matches everything answers for every request that reaches it, so the
  // rules before it can never decide: they are left out (the verifier refuses unreachable code).
  bool unconditional = false;
  std::vector<bpf_insn> block;
  for (size_t i = rules.size(); i-- > 0 && !unconditional;) {
    Status st = RuleBlock(rules[i], i, &block, &unconditional);
    if (!st.ok()) return st;
    out->insert(out->end(), block.begin(), block.end());
  }
  if (!unconditional) {
    out->push_back(Mov64Imm(kRet, 0));  // nothing matched
    out->push_back(Exit());
  }
  if (out->size() > BPF_MAXINSNS) return Status::Invalid(E2BIG, "too many device rules: " + std::to_string(rules.size()));
  return Status::Ok();
}

Status LoadDeviceProgram(const std::vector<bpf_insn>& insns, UniqueFd* out) {
  static const char kLicense[] = "GPL";
  auto load = [&](char* log, uint32_t log_size) {
    bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insn_cnt = static_cast<uint32_t>(insns.size());
    attr.insns = reinterpret_cast<uintptr_t>(insns.data());
    attr.license = reinterpret_cast<uintptr_t>(kLicense);
    std::strncpy(attr.prog_name, "berth_devices", sizeof(attr.prog_name) - 1);
    if (log != nullptr) {
      attr.log_level = 1;
      attr.log_buf = reinterpret_cast<uintptr_t>(log);
      attr.log_size = log_size;
    }
    long fd;
    int tries = 0;
    do {
      fd = Bpf(BPF_PROG_LOAD, &attr);
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 5);
    return fd;
  };

  long fd = load(nullptr, 0);
  if (fd >= 0) {
    *out = UniqueFd(static_cast<int>(fd));
    return Status::Ok();
  }
  const int err = errno;
  // Load again with the verifier's log, only to say why.
  std::string log(64 * 1024, '\0');
  long again = load(&log[0], static_cast<uint32_t>(log.size()));
  if (again >= 0) {
    ::close(static_cast<int>(again));
    log.clear();
  }
  log.resize(std::strlen(log.c_str()));
  while (!log.empty() && (log.back() == '\n' || log.back() == ' ')) log.pop_back();
  // The reason is at the end; a long trace before it would only bury the message.
  constexpr size_t kKeep = 2000;
  if (log.size() > kKeep) log = "..." + log.substr(log.size() - kKeep);
  std::string detail = "loading the device filter (" + std::to_string(insns.size()) + " instructions)";
  if (!log.empty()) detail += "; verifier: " + log;
  return Status::Sys(err, "bpf", {}, detail);
}

Status AttachDeviceFilter(int cgroup_fd, const std::string& path, const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> insns;
  Status st = BuildDeviceProgram(rules, &insns);
  UniqueFd prog;
  if (st.ok()) st = LoadDeviceProgram(insns, &prog);
  if (!st.ok()) return st.Context("device filter for " + path);

  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &attr) != 0) {
    return Status::Sys(errno, "bpf", path, "attaching the device filter (BPF_PROG_ATTACH)");
  }
  // The cgroup holds its own reference to the program now; our fd closes here.
  return Status::Ok();
}

Status AttachDeviceFilter(const std::string& dir, const std::vector<DeviceRule>& rules) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::Sys(errno, "open", dir, "device filter");
  return AttachDeviceFilter(fd.get(), dir, rules);
}

}  // namespace cgroup
}  // namespace berth
