#include "napi/args.h"

#include <cmath>

#include "napi/error.h"

namespace berth {
namespace napi {

namespace {

const char* TypeName(Napi::Value v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return v.IsArray() ? "array" : "object";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    default: return "value";
  }
}

bool Absent(Napi::Value v) { return v.IsEmpty() || v.IsUndefined(); }

}  // namespace

Napi::Error ArgReader::Error() const { return ArgumentError(env_, code_, message_); }

void ArgReader::Invalid(const std::string& name, const std::string& why) {
  if (Failed()) return;
  code_ = "ERR_INVALID_ARG_VALUE";
  message_ = "The argument '" + name + "' " + why;
}

void ArgReader::WrongType(const std::string& name, const char* expected, Napi::Value v) {
  if (Failed()) return;
  code_ = "ERR_INVALID_ARG_TYPE";
  message_ = "The \"" + name + "\" argument must be " + expected + ". Received " +
             (v.IsEmpty() ? "nothing" : TypeName(v));
}

Napi::Object ArgReader::Object(Napi::Value v, const std::string& name) {
  if (Failed()) return Napi::Object::New(env_);
  if (v.IsEmpty() || !v.IsObject() || v.IsArray()) {
    WrongType(name, "of type object", v);
    return Napi::Object::New(env_);
  }
  return v.As<Napi::Object>();
}

std::string ArgReader::String(Napi::Value v, const std::string& name) {
  if (Failed()) return {};
  if (v.IsEmpty() || !v.IsString()) {
    WrongType(name, "of type string", v);
    return {};
  }
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) Invalid(name, "must not contain null bytes");
  return s;
}

std::optional<std::string> ArgReader::OptString(Napi::Value v, const std::string& name) {
  if (Failed() || Absent(v)) return std::nullopt;
  return String(v, name);
}

int64_t ArgReader::Integer(Napi::Value v, const std::string& name) {
  if (Failed()) return 0;
  if (v.IsEmpty() || !v.IsNumber()) {
    WrongType(name, "of type number", v);
    return 0;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  // ±2^63 is outside int64; everything strictly inside converts exactly once it is integral.
  if (!std::isfinite(d) || std::trunc(d) != d || d >= 9223372036854775808.0 || d < -9223372036854775808.0) {
    Invalid(name, "must be an integer. Received " + std::to_string(d));
    return 0;
  }
  return static_cast<int64_t>(d);
}

std::optional<int64_t> ArgReader::OptInteger(Napi::Value v, const std::string& name) {
  if (Failed() || Absent(v)) return std::nullopt;
  return Integer(v, name);
}

bool ArgReader::OptBool(Napi::Value v, const std::string& name, bool fallback) {
  if (Failed() || Absent(v)) return fallback;
  if (!v.IsBoolean()) {
    WrongType(name, "of type boolean", v);
    return fallback;
  }
  return v.As<Napi::Boolean>().Value();
}

std::vector<std::string> ArgReader::StringArray(Napi::Value v, const std::string& name) {
  std::vector<std::string> out;
  if (Failed()) return out;
  if (v.IsEmpty() || !v.IsArray()) {
    WrongType(name, "an array of strings", v);
    return out;
  }
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length() && !Failed(); i++) {
    out.push_back(String(a.Get(i), name + "[" + std::to_string(i) + "]"));
  }
  return out;
}

std::map<std::string, std::string> ArgReader::StringMap(Napi::Value v, const std::string& name) {
  std::map<std::string, std::string> out;
  Napi::Object o = Object(v, name);
  if (Failed()) return out;
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length() && !Failed(); i++) {
    std::string key = String(keys.Get(i), name + " key");
    out[key] = String(o.Get(key), name + "." + key);
  }
  return out;
}

std::string ArgReader::AbsPath(Napi::Value v, const std::string& name) {
  std::string s = String(v, name);
  if (!Failed() && (s.empty() || s[0] != '/')) Invalid(name, "must be an absolute path. Received '" + s + "'");
  return s;
}

}  // namespace napi
}  // namespace berth
