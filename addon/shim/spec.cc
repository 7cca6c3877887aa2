// Reading config.json. This is the only file that uses nlohmann/json.
#include "spec.h"

#include <sys/resource.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "caps.h"
#include "util.h"

using nlohmann::json;

namespace {

struct RlimitName {
  const char* name;
  int resource;
};
const RlimitName kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

const char* const kNamespaceTypes[] = {"pid", "network", "mount", "ipc", "uts", "cgroup", "user", "time"};

// Thrown for a config that is valid JSON but not a usable spec; caught in load_spec.
struct SpecError {
  std::string message;
};

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string get_string(const json& obj, const char* key, const std::string& dflt = "") {
  const json* v = member(obj, key);
  if (!v) return dflt;
  if (!v->is_string()) throw SpecError{std::string(key) + " must be a string"};
  return v->get<std::string>();
}

bool get_bool(const json& obj, const char* key) {
  const json* v = member(obj, key);
  if (!v) return false;
  if (!v->is_boolean()) throw SpecError{std::string(key) + " must be a boolean"};
  return v->get<bool>();
}

uint64_t as_u64(const json& v, const char* what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    // A negative limit (-1) is how some tools spell "unlimited".
    return i < 0 ? RLIM_INFINITY : static_cast<uint64_t>(i);
  }
  throw SpecError{std::string(what) + " must be a number"};
}

std::vector<std::string> get_strings(const json& obj, const char* key) {
  std::vector<std::string> out;
  const json* v = member(obj, key);
  if (!v) return out;
  if (!v->is_array()) throw SpecError{std::string(key) + " must be an array"};
  for (const auto& e : *v) {
    if (!e.is_string()) throw SpecError{std::string(key) + " must hold strings"};
    out.push_back(e.get<std::string>());
  }
  return out;
}

CapSet get_caps(const json& obj, const char* key) {
  CapSet set = 0;
  for (const auto& name : get_strings(obj, key)) {
    // Names this build does not know are ignored, as runc does, so a newer daemon's config still runs.
    int c = cap_from_name(name);
    if (c >= 0) set |= CapSet(1) << c;
  }
  return set;
}

void read_process(const json& p, Spec& s) {
  s.terminal = get_bool(p, "terminal");
  if (const json* cs = member(p, "consoleSize")) {
    if (const json* v = member(*cs, "height")) s.console_rows = static_cast<unsigned short>(as_u64(*v, "consoleSize"));
    if (const json* v = member(*cs, "width")) s.console_cols = static_cast<unsigned short>(as_u64(*v, "consoleSize"));
  }
  if (const json* u = member(p, "user")) {
    if (const json* v = member(*u, "uid")) s.uid = static_cast<uid_t>(as_u64(*v, "uid"));
    if (const json* v = member(*u, "gid")) s.gid = static_cast<gid_t>(as_u64(*v, "gid"));
    if (const json* v = member(*u, "additionalGids")) {
      if (!v->is_array()) throw SpecError{"additionalGids must be an array"};
      for (const auto& g : *v) s.additional_gids.push_back(static_cast<gid_t>(as_u64(g, "additionalGids")));
    }
  }
  s.args = get_strings(p, "args");
  s.env = get_strings(p, "env");
  s.cwd = get_string(p, "cwd", "/");
  if (s.cwd.empty()) s.cwd = "/";
  if (const json* c = member(p, "capabilities")) {
    s.has_caps = true;
    s.cap_bounding = get_caps(*c, "bounding");
    s.cap_effective = get_caps(*c, "effective");
    s.cap_inheritable = get_caps(*c, "inheritable");
    s.cap_permitted = get_caps(*c, "permitted");
    s.cap_ambient = get_caps(*c, "ambient");
  }
  if (const json* rl = member(p, "rlimits")) {
    if (!rl->is_array()) throw SpecError{"rlimits must be an array"};
    for (const auto& r : *rl) {
      std::string type = get_string(r, "type");
      int resource = -1;
      for (const auto& n : kRlimits)
        if (type == n.name) resource = n.resource;
      if (resource < 0) throw SpecError{"unknown rlimit type " + type};
      SpecRlimit lim{type, resource, 0, 0};
      if (const json* v = member(r, "hard")) lim.hard = as_u64(*v, "rlimit hard");
      if (const json* v = member(r, "soft")) lim.soft = as_u64(*v, "rlimit soft");
      s.rlimits.push_back(lim);
    }
  }
  s.no_new_privileges = get_bool(p, "noNewPrivileges");
  s.apparmor_profile = get_string(p, "apparmorProfile");
  if (const json* v = member(p, "oomScoreAdj")) {
    if (!v->is_number_integer()) throw SpecError{"oomScoreAdj must be an integer"};
    s.has_oom_score_adj = true;
    s.oom_score_adj = v->get<int>();
  }
}

void read_seccomp(const json& j, SpecSeccomp& out) {
  if (!j.is_object()) throw SpecError{"seccomp must be an object"};
  out.present = true;
  int default_errno = EPERM;
  if (const json* v = member(j, "defaultErrnoRet")) default_errno = static_cast<int>(as_u64(*v, "defaultErrnoRet"));
  if (!seccomp_action(get_string(j, "defaultAction", "SCMP_ACT_ALLOW"), default_errno, out.default_action))
    throw SpecError{"unknown seccomp defaultAction " + get_string(j, "defaultAction")};
  for (const auto& a : get_strings(j, "architectures")) {
    uint32_t token;
    if (!seccomp_arch(a, token)) throw SpecError{"seccomp architecture " + a + " is not supported by this libseccomp"};
    out.arches.push_back(token);
  }
  for (const auto& f : get_strings(j, "flags")) {
    unsigned bit;
    if (!seccomp_flag(f, bit)) throw SpecError{"seccomp flag " + f + " is not supported"};
    out.flags |= bit;
  }
  if (const json* rules = member(j, "syscalls")) {
    if (!rules->is_array()) throw SpecError{"seccomp syscalls must be an array"};
    for (const auto& r : *rules) {
      SpecSeccompRule rule;
      rule.names = get_strings(r, "names");
      int err = EPERM;
      if (const json* v = member(r, "errnoRet")) err = static_cast<int>(as_u64(*v, "errnoRet"));
      rule.action_name = get_string(r, "action");
      if (!seccomp_action(rule.action_name, err, rule.action))
        throw SpecError{"unknown seccomp action " + rule.action_name};
      if (const json* args = member(r, "args")) {
        if (!args->is_array()) throw SpecError{"seccomp args must be an array"};
        for (const auto& a : *args) {
          SpecSeccompArg arg;
          arg.index = static_cast<unsigned>(as_u64(a.at("index"), "seccomp arg index"));
          if (const json* v = member(a, "value")) arg.value = as_u64(*v, "seccomp arg value");
          if (const json* v = member(a, "valueTwo")) arg.value_two = as_u64(*v, "seccomp arg valueTwo");
          if (!seccomp_compare(get_string(a, "op"), arg.op)) throw SpecError{"unknown seccomp op " + get_string(a, "op")};
          rule.args.push_back(arg);
        }
      }
      out.rules.push_back(std::move(rule));
    }
  }
}

void read_linux(const json& l, Spec& s) {
  if (const json* nss = member(l, "namespaces")) {
    if (!nss->is_array()) throw SpecError{"namespaces must be an array"};
    for (const auto& n : *nss) {
      SpecNamespace ns{get_string(n, "type"), get_string(n, "path")};
      bool known = false;
      for (const char* t : kNamespaceTypes) known = known || ns.type == t;
      if (!known) throw SpecError{"unknown namespace type " + ns.type};
      s.namespaces.push_back(ns);
    }
  }
  // The user namespace's mappings, written by the shim into /proc/PID/uid_map and gid_map as the
  // kernel takes them ("containerID hostID size" a line).
  for (const char* key : {"uidMappings", "gidMappings"}) {
    const json* maps = member(l, key);
    if (!maps) continue;
    if (!maps->is_array()) throw SpecError{std::string(key) + " must be an array"};
    std::string& out = key[0] == 'u' ? s.uid_map : s.gid_map;
    for (const auto& m : *maps) {
      out += std::to_string(as_u64(m.at("containerID"), "containerID")) + " " + std::to_string(as_u64(m.at("hostID"), "hostID")) +
             " " + std::to_string(as_u64(m.at("size"), "size")) + "\n";
    }
  }
  if (const json* sc = member(l, "seccomp")) read_seccomp(*sc, s.seccomp);
  // berth's own: where the compiled filter of this profile is kept.
  s.seccomp_cache = get_string(l, "seccompCache");
  s.masked_paths = get_strings(l, "maskedPaths");
  s.readonly_paths = get_strings(l, "readonlyPaths");
  if (const json* sc = member(l, "sysctl")) {
    if (!sc->is_object()) throw SpecError{"sysctl must be an object"};
    for (auto it = sc->begin(); it != sc->end(); ++it) {
      if (!it.value().is_string()) throw SpecError{"sysctl values must be strings"};
      s.sysctl.emplace_back(it.key(), it.value().get<std::string>());
    }
  }
  if (const json* devs = member(l, "devices")) {
    if (!devs->is_array()) throw SpecError{"devices must be an array"};
    for (const auto& d : *devs) {
      SpecDevice dev;
      dev.path = get_string(d, "path");
      std::string type = get_string(d, "type", "c");
      if (type.size() != 1 || strchr("cbup", type[0]) == nullptr)
        throw SpecError{"unknown device type " + type + " for " + dev.path};
      dev.type = type[0] == 'u' ? 'c' : type[0];
      if (const json* v = member(d, "major")) dev.major = as_u64(*v, "device major");
      if (const json* v = member(d, "minor")) dev.minor = as_u64(*v, "device minor");
      if (const json* v = member(d, "fileMode")) {
        dev.has_mode = true;
        dev.mode = static_cast<mode_t>(as_u64(*v, "device fileMode") & 07777);
      }
      if (const json* v = member(d, "uid")) dev.uid = static_cast<uid_t>(as_u64(*v, "device uid"));
      if (const json* v = member(d, "gid")) dev.gid = static_cast<gid_t>(as_u64(*v, "device gid"));
      s.devices.push_back(dev);
    }
  }
}

}  // namespace

bool load_spec(const std::string& bundle, Spec& s) {
  std::string text;
  if (!read_file(bundle + "/config.json", text)) return false;
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  text.clear();
  text.shrink_to_fit();
  if (doc.is_discarded() || !doc.is_object()) return fail_msg("config.json: not a JSON object");
  try {
    if (const json* p = member(doc, "process")) read_process(*p, s);
    if (const json* r = member(doc, "root")) {
      s.root_path = get_string(*r, "path");
      s.root_readonly = get_bool(*r, "readonly");
    }
    if (s.root_path.empty()) throw SpecError{"root.path is required"};
    if (s.root_path[0] != '/') s.root_path = bundle + "/" + s.root_path;
    s.hostname = get_string(doc, "hostname");
    s.domainname = get_string(doc, "domainname");
    if (const json* ms = member(doc, "mounts")) {
      if (!ms->is_array()) throw SpecError{"mounts must be an array"};
      for (const auto& m : *ms) {
        SpecMount mount{get_string(m, "destination"), get_string(m, "type"), get_string(m, "source"),
                        get_strings(m, "options")};
        if (mount.destination.empty()) throw SpecError{"a mount has no destination"};
        // OCI: a relative bind source is relative to the bundle.
        if (!mount.source.empty() && mount.source[0] != '/' &&
            (mount.type == "bind" || mount.type.empty()))
          mount.source = bundle + "/" + mount.source;
        s.mounts.push_back(std::move(mount));
      }
    }
    if (const json* l = member(doc, "linux")) read_linux(*l, s);
    if (const json* a = member(doc, "annotations")) s.stdin_pipe = get_string(*a, "org.berth.stdin") == "true";
  } catch (const SpecError& e) {
    return fail_msg("config.json: " + e.message);
  } catch (const std::exception& e) {
    return fail_msg(std::string("config.json: ") + e.what());
  }
  if (s.args.empty()) return fail_msg("config.json: process.args must not be empty");
  return true;
}

bool load_exec_spec(const std::string& file, Spec& s) {
  std::string text;
  if (!read_file(file, text)) return false;
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  text.clear();
  text.shrink_to_fit();
  if (doc.is_discarded() || !doc.is_object()) return fail_msg("process.json: not a JSON object");
  try {
    if (const json* p = member(doc, "process")) read_process(*p, s);
    // Only linux.seccomp is expected here (and berth's seccompCache: where the container's compiled
    // filter is kept); namespaces, mounts and devices are the container's already.
    if (const json* l = member(doc, "linux")) {
      read_linux(*l, s);
      s.seccomp_cache = get_string(*l, "seccompCache");
      s.seccomp_shared_cache = get_string(*l, "seccompSharedCache");
    }
  } catch (const SpecError& e) {
    return fail_msg("process.json: " + e.message);
  } catch (const std::exception& e) {
    return fail_msg(std::string("process.json: ") + e.what());
  }
  if (s.args.empty()) return fail_msg("process.json: process.args must not be empty");
  return true;
}
