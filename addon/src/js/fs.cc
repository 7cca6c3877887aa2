#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fs/idmap.h"
#include "fs/nodes.h"
#include "fs/overlay.h"
#include "js/bindings.h"
#include "napi/args.h"
#include "napi/error.h"
#include "napi/worker.h"

namespace berth {
namespace js {

namespace {

using napi::ArgReader;

// A worker around one host call that has everything it needs bound in: the fs verbs differ only in
// the call, so each is a lambda rather than a class of its own.
class CallWorker : public napi::PromiseWorker {
 public:
  using Call = std::function<Status()>;
  CallWorker(Napi::Env env, const char* name, Call call) : PromiseWorker(env, name), call_(std::move(call)) {}

 protected:
  Status Run() override { return call_(); }

 private:
  Call call_;
};

Napi::Value Finish(Napi::Env env, ArgReader& args, const char* name, CallWorker::Call call) {
  if (!args.ok()) return env.IsExceptionPending() ? env.Undefined() : napi::Rejected(env, args.Error());
  return napi::StartWorker<CallWorker>(env, name, std::move(call));
}

Napi::Value MountOverlay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  fs::OverlaySpec spec;
  Napi::Object o = args.Object(info[0], "spec");
  if (args.ok()) {
    spec.lowerdirs = args.StringArray(o.Get("lowerdirs"), "spec.lowerdirs");
    spec.upperdir = args.String(o.Get("upperdir"), "spec.upperdir");
    spec.workdir = args.String(o.Get("workdir"), "spec.workdir");
    spec.target = args.AbsPath(o.Get("target"), "spec.target");
    if (args.ok() && spec.lowerdirs.empty()) args.Invalid("spec.lowerdirs", "must name at least one directory");
  }
  std::optional<fs::IdMapping> idmap;
  if (args.ok() && !o.Get("idmap").IsUndefined()) {
    Napi::Object m = args.Object(o.Get("idmap"), "spec.idmap");
    if (args.ok()) idmap = fs::IdMapping{args.String(m.Get("uidMap"), "spec.idmap.uidMap"), args.String(m.Get("gidMap"), "spec.idmap.gidMap")};
  }
  return Finish(env, args, "berth:mountOverlay", [spec, idmap]() {
    return idmap ? fs::MountOverlayIdmapped(spec, *idmap) : fs::MountOverlay(spec);
  });
}

Napi::Value ProbeIdmappedOverlay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string scratch = args.AbsPath(info[0], "scratch");
  std::string uid_map = args.String(info[1], "uidMap");
  std::string gid_map = args.String(info[2], "gidMap");
  int64_t host_uid = args.Integer(info[3], "hostUid");
  if (args.ok() && (host_uid < 0 || host_uid > 0xfffffffeLL)) args.Invalid("hostUid", "must be a uid");
  fs::IdMapping map{uid_map, gid_map};
  return Finish(env, args, "berth:probeIdmappedOverlay", [scratch, map, host_uid]() {
    return fs::ProbeIdmappedOverlay(scratch, map, static_cast<unsigned>(host_uid));
  });
}

Napi::Value Unmount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string target = args.AbsPath(info[0], "target");
  bool detach = args.OptBool(info[1], "detach", false);
  return Finish(env, args, "berth:unmount", [target, detach]() { return fs::Unmount(target, detach); });
}

Napi::Value MkWhiteout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string path = args.String(info[0], "path");
  return Finish(env, args, "berth:mkWhiteout", [path]() { return fs::MakeWhiteout(path); });
}

Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string path = args.String(info[0], "path");
  std::string type = args.String(info[1], "type");
  int64_t mode = args.Integer(info[2], "mode");
  int64_t major = args.Integer(info[3], "major");
  int64_t minor = args.Integer(info[4], "minor");
  if (args.ok() && type != "c" && type != "b" && type != "p") args.Invalid("type", "must be 'c', 'b' or 'p'");
  if (args.ok() && (mode < 0 || mode > 07777)) args.Invalid("mode", "must be permission bits (0 to 0o7777)");
  if (args.ok() && (major < 0 || major > 0xffffffffLL)) args.Invalid("major", "must be a device major number");
  if (args.ok() && (minor < 0 || minor > 0xffffffffLL)) args.Invalid("minor", "must be a device minor number");
  const char t = type.empty() ? '?' : type[0];
  return Finish(env, args, "berth:mknod", [=]() {
    return fs::MakeNode(path, t, static_cast<uint32_t>(mode), static_cast<uint32_t>(major),
                        static_cast<uint32_t>(minor));
  });
}

Napi::Value SetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string path = args.String(info[0], "path");
  std::string name = args.String(info[1], "name");
  std::string value = args.String(info[2], "value");
  return Finish(env, args, "berth:setXattr", [path, name, value]() { return fs::SetXattr(path, name, value); });
}

// Resolves with the attribute's value as a string, or null when it is not set.
class GetXattrWorker : public napi::PromiseWorker {
 public:
  GetXattrWorker(Napi::Env env, std::string path, std::string name)
      : PromiseWorker(env, "berth:getXattr"), path_(std::move(path)), name_(std::move(name)) {}

 protected:
  Status Run() override { return fs::GetXattr(path_, name_, &value_, &found_); }
  Napi::Value Result(Napi::Env env) override {
    return found_ ? Napi::String::New(env, value_) : env.Null();
  }

 private:
  std::string path_, name_, value_;
  bool found_ = false;
};

Napi::Value GetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string path = args.String(info[0], "path");
  std::string name = args.String(info[1], "name");
  if (!args.ok()) return env.IsExceptionPending() ? env.Undefined() : napi::Rejected(env, args.Error());
  return napi::StartWorker<GetXattrWorker>(env, path, name);
}

}  // namespace

void RegisterFs(Napi::Env env, Napi::Object exports) {
  exports.Set("mountOverlay", Napi::Function::New(env, MountOverlay, "mountOverlay"));
  exports.Set("unmount", Napi::Function::New(env, Unmount, "unmount"));
  exports.Set("probeIdmappedOverlay", Napi::Function::New(env, ProbeIdmappedOverlay, "probeIdmappedOverlay"));
  exports.Set("mkWhiteout", Napi::Function::New(env, MkWhiteout, "mkWhiteout"));
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
  exports.Set("setXattr", Napi::Function::New(env, SetXattr, "setXattr"));
  exports.Set("getXattr", Napi::Function::New(env, GetXattr, "getXattr"));
}

}  // namespace js
}  // namespace berth
