#include "args.h"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "util.h"

namespace {

std::string absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return path;
  std::string base = cwd;
  if (base != "/") base += '/';
  return base + path;
}

bool parse_uint(const std::string& s, uint64_t& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '-') return false;
  out = v;
  return true;
}

}  // namespace

bool parse_args(int argc, char** argv, Args& out) {
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "exec") == 0) {
    out.exec_mode = true;
    first = 2;
  }
  for (int i = first; i < argc; i++) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    // Accept both "--opt value" and "--opt=value".
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (arg == "--attach") {
      out.attach = true;
      continue;
    }
    if (arg == "--log-compress") {
      out.log_compress = true;
      continue;
    }
    if (arg == "--log-nonblock") {
      out.log_nonblock = true;
      continue;
    }
    if (arg == "--stdin" && out.exec_mode) {
      out.stdin_pipe = true;
      continue;
    }
    bool known = arg == "--id" || arg == "--bundle" || arg == "--state" || arg == "--log" ||
                 arg == "--cgroup" || arg == "--log-max-size" || arg == "--log-max-file" ||
                 arg == "--log-driver" || arg == "--log-attrs" || arg == "--syslog-address" ||
                 arg == "--syslog-facility" || arg == "--syslog-tag" || arg == "--syslog-format" ||
                 (out.exec_mode && (arg == "--pid" || arg == "--pid-start" || arg == "--process"));
    if (!known) return fail_msg("unknown argument " + arg);
    if (!has_value) {
      if (i + 1 >= argc) return fail_msg(arg + " needs a value");
      value = argv[++i];
    }
    if (arg == "--id") {
      out.id = value;
    } else if (arg == "--bundle") {
      out.bundle = absolute(value);
    } else if (arg == "--state") {
      out.state = absolute(value);
    } else if (arg == "--log") {
      out.log = absolute(value);
    } else if (arg == "--log-driver") {
      if (value != "json-file" && value != "local" && value != "none" && value != "syslog")
        return fail_msg("unknown log driver " + value);
      out.log_driver = value;
    } else if (arg == "--log-attrs") {
      out.log_attrs = value;
    } else if (arg == "--syslog-address") {
      out.syslog_address = value;
    } else if (arg == "--syslog-tag") {
      out.syslog_tag = value;
    } else if (arg == "--syslog-format") {
      out.syslog_format = value;
    } else if (arg == "--cgroup") {
      out.cgroups.push_back(absolute(value));
    } else if (arg == "--process") {
      out.process = absolute(value);
    } else if (arg == "--pid-start") {
      out.target_start = value;
    } else if (arg == "--pid") {
      uint64_t n;
      if (!parse_uint(value, n) || n < 1 || n > 0x7fffffff) return fail_msg("bad pid for --pid: " + value);
      out.target_pid = static_cast<int>(n);
    } else {
      uint64_t n;
      if (!parse_uint(value, n)) return fail_msg("bad number for " + arg + ": " + value);
      if (arg == "--log-max-size") {
        out.log_max_size = n;
      } else if (arg == "--syslog-facility") {
        if (n > 23) return fail_msg("--syslog-facility must be 0..23");
        out.syslog_facility = static_cast<unsigned>(n);
      } else {
        if (n < 1 || n > 1000) return fail_msg("--log-max-file must be 1..1000");
        out.log_max_file = static_cast<unsigned>(n);
      }
    }
  }
  if (out.exec_mode) {
    if (out.state.empty() || out.process.empty() || out.target_pid == 0)
      return fail_msg("exec: --pid, --process and --state are required");
    return true;
  }
  if (out.bundle.empty() || out.state.empty()) return fail_msg("--bundle and --state are required");
  // none writes nothing; syslog keeps a file only as its cache for `docker logs`.
  bool file_driver = out.log_driver == "json-file" || out.log_driver == "local";
  if (file_driver && out.log.empty()) return fail_msg("--log is required with the " + out.log_driver + " log driver");
  if (out.log_driver == "none") out.log.clear();
  return true;
}
