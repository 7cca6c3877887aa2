// JS values → plain C++ at entry. Each read names the argument it is reading; the first mistake is kept
// and later reads return empty values, so an entry point reads everything, then checks ok() once.
#pragma once

#include <napi.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {
namespace napi {

class ArgReader {
 public:
  explicit ArgReader(Napi::Env env) : env_(env) {}

  bool ok() const { return code_.empty() && !env_.IsExceptionPending(); }
  // The TypeError for the first mistake (only meaningful when !ok() and no JS exception is pending).
  Napi::Error Error() const;

  // Records a mistake found by the caller's own checks (ERR_INVALID_ARG_VALUE).
  void Invalid(const std::string& name, const std::string& why);

  Napi::Object Object(Napi::Value v, const std::string& name);
  std::string String(Napi::Value v, const std::string& name);
  std::optional<std::string> OptString(Napi::Value v, const std::string& name);
  int64_t Integer(Napi::Value v, const std::string& name);
  std::optional<int64_t> OptInteger(Napi::Value v, const std::string& name);
  bool OptBool(Napi::Value v, const std::string& name, bool fallback);
  std::vector<std::string> StringArray(Napi::Value v, const std::string& name);
  std::map<std::string, std::string> StringMap(Napi::Value v, const std::string& name);

  // An absolute path without NUL bytes.
  std::string AbsPath(Napi::Value v, const std::string& name);

 private:
  bool Failed() const { return !ok(); }
  void WrongType(const std::string& name, const char* expected, Napi::Value v);

  Napi::Env env_;
  std::string code_;
  std::string message_;
};

}  // namespace napi
}  // namespace berth
