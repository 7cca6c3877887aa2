#include "seccomp.h"

#include <seccomp.h>

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

bool load_seccomp(const SpecSeccomp& s) {
  if (!s.present) return true;
  scmp_filter_ctx ctx = seccomp_init(s.default_action);
  if (ctx == nullptr) return fail_msg("seccomp: cannot initialise the filter");
  // The init still holds CAP_SYS_ADMIN here, so the filter needs no no_new_privs of its own; that flag is
  // set (or not) by the spec's noNewPrivileges, as Docker does.
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
        return fail("seccomp: add rule for", n, -rc);
      }
    }
  }
  int rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc < 0) return fail("seccomp: load filter", "", -rc);
  return true;
}
