#include <memory>
#include <string>
#include <vector>

#include "cgroup/detect.h"
#include "cgroup/manager.h"
#include "js/bindings.h"
#include "napi/args.h"
#include "napi/error.h"
#include "napi/worker.h"

namespace berth {
namespace js {

namespace {

using cgroup::Layout;
using cgroup::Resources;
using napi::ArgReader;

Layout ReadLayout(ArgReader& args, Napi::Value v) {
  Layout layout;
  Napi::Object o = args.Object(v, "layout");
  if (!args.ok()) return layout;
  layout.version = static_cast<int>(args.Integer(o.Get("version"), "layout.version"));
  layout.controllers = args.StringMap(o.Get("controllers"), "layout.controllers");
  layout.unified = args.OptString(o.Get("unified"), "layout.unified").value_or("");
  if (!args.ok()) return layout;
  if (layout.version != 1 && layout.version != 2) args.Invalid("layout.version", "must be 1 or 2");
  for (const auto& [name, mount_point] : layout.controllers) {
    if (mount_point.empty() || mount_point[0] != '/') {
      args.Invalid("layout.controllers." + name, "must be an absolute path");
    }
  }
  if (layout.version == 1 && layout.controllers.empty()) {
    args.Invalid("layout.controllers", "must name the v1 hierarchies");
  }
  if (layout.version == 2 && (layout.unified.empty() || layout.unified[0] != '/')) {
    args.Invalid("layout.unified", "must be the absolute path of the cgroup2 mount");
  }
  return layout;
}

std::string ReadRelPath(ArgReader& args, Napi::Value v) {
  std::string rel = args.String(v, "relPath");
  if (args.ok() && !cgroup::ValidRelPath(rel)) {
    args.Invalid("relPath", "must be a relative path of plain names (e.g. \"berth/<id>\"). Received '" + rel + "'");
  }
  return rel;
}

Resources ReadResources(ArgReader& args, Napi::Value v) {
  Resources r;
  Napi::Object o = args.Object(v, "res");
  if (!args.ok()) return r;
  r.memory = args.OptInteger(o.Get("memory"), "res.memory");
  r.memory_swap = args.OptInteger(o.Get("memorySwap"), "res.memorySwap");
  r.memory_reservation = args.OptInteger(o.Get("memoryReservation"), "res.memoryReservation");
  r.pids_limit = args.OptInteger(o.Get("pidsLimit"), "res.pidsLimit");
  r.cpu_shares = args.OptInteger(o.Get("cpuShares"), "res.cpuShares");
  r.cpu_quota = args.OptInteger(o.Get("cpuQuota"), "res.cpuQuota");
  r.cpu_period = args.OptInteger(o.Get("cpuPeriod"), "res.cpuPeriod");
  r.cpuset_cpus = args.OptString(o.Get("cpusetCpus"), "res.cpusetCpus");
  r.cpuset_mems = args.OptString(o.Get("cpusetMems"), "res.cpusetMems");
  r.blkio_weight = args.OptInteger(o.Get("blkioWeight"), "res.blkioWeight");
  Napi::Value files = o.Get("files");
  if (args.ok() && !files.IsUndefined() && !files.IsNull()) {
    if (!files.IsArray()) args.Invalid("res.files", "must be an array of { controller, file, value }");
    Napi::Array list = files.IsArray() ? files.As<Napi::Array>() : Napi::Array::New(files.Env());
    for (uint32_t i = 0; args.ok() && i < list.Length(); i++) {
      Napi::Object f = args.Object(list.Get(i), "res.files[]");
      if (!args.ok()) break;
      Resources::FileWrite w{args.String(f.Get("controller"), "res.files[].controller"),
                             args.String(f.Get("file"), "res.files[].file"),
                             args.String(f.Get("value"), "res.files[].value")};
      if (args.ok() && (w.file.empty() || w.file.find('/') != std::string::npos || w.file[0] == '.')) {
        args.Invalid("res.files[].file", "must be a file name of the cgroup directory. Received '" + w.file + "'");
      }
      r.files.push_back(std::move(w));
    }
  }
  Napi::Value devices = o.Get("devices");
  if (args.ok() && !devices.IsUndefined() && !devices.IsNull()) {
    std::vector<cgroup::DeviceRule> rules;
    for (const std::string& text : args.StringArray(devices, "res.devices")) {
      cgroup::DeviceRule rule;
      if (!cgroup::ParseDeviceRule(text, &rule)) {
        args.Invalid("res.devices", "entries are \"allow|deny TYPE MAJOR:MINOR ACCESS\" (e.g. \"allow c 1:3 rwm\"). Received '" + text + "'");
        break;
      }
      rules.push_back(rule);
    }
    r.devices = std::move(rules);
  }
  return r;
}

// cgroupCreate / cgroupUpdate / cgroupRemove share one worker: the verb picks the Manager method.
enum class Verb { kCreate, kUpdate, kRemove, kFreeze, kThaw };

class CgroupWorker : public napi::PromiseWorker {
 public:
  CgroupWorker(Napi::Env env, Verb verb, Layout layout, std::string rel, Resources res)
      : PromiseWorker(env, "berth:cgroup"),
        verb_(verb),
        layout_(std::move(layout)),
        rel_(std::move(rel)),
        res_(std::move(res)) {}

 protected:
  Status Run() override {
    std::unique_ptr<cgroup::Manager> m;
    Status st = cgroup::NewManager(layout_, rel_, &m);
    if (!st.ok()) return st;
    switch (verb_) {
      case Verb::kCreate: return m->Create(res_, &dirs_);
      case Verb::kUpdate: return m->Update(res_);
      case Verb::kRemove: return m->Remove();
      case Verb::kFreeze: return m->Freeze(true);
      case Verb::kThaw: return m->Freeze(false);
    }
    return Status::Ok();
  }

  Napi::Value Result(Napi::Env env) override {
    if (verb_ != Verb::kCreate) return env.Undefined();
    Napi::Array a = Napi::Array::New(env, dirs_.size());
    for (uint32_t i = 0; i < dirs_.size(); i++) a.Set(i, Napi::String::New(env, dirs_[i]));
    return a;
  }

 private:
  Verb verb_;
  Layout layout_;
  std::string rel_;
  Resources res_;
  std::vector<std::string> dirs_;
};

Napi::Value CgroupDetect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string path = args.OptString(info[0], "mountinfoPath").value_or("/proc/self/mountinfo");
  if (!args.ok()) {
    if (!env.IsExceptionPending()) args.Error().ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Synchronous by design: one small read of a procfs file, done once at daemon start.
  Layout layout;
  Status st = cgroup::Detect(path, &layout);
  if (!st.ok()) {
    napi::StatusError(env, st).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", Napi::Number::New(env, layout.version));
  Napi::Object controllers = Napi::Object::New(env);
  for (const auto& [name, mount_point] : layout.controllers) controllers.Set(name, mount_point);
  out.Set("controllers", controllers);
  out.Set("unified", layout.unified);
  return out;
}

Napi::Value Start(const Napi::CallbackInfo& info, Verb verb) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  Layout layout = ReadLayout(args, info[0]);
  std::string rel = ReadRelPath(args, info[1]);
  Resources res;
  if (verb == Verb::kCreate || verb == Verb::kUpdate) res = ReadResources(args, info[2]);
  if (!args.ok()) return env.IsExceptionPending() ? env.Undefined() : napi::Rejected(env, args.Error());
  return napi::StartWorker<CgroupWorker>(env, verb, std::move(layout), std::move(rel), std::move(res));
}

Napi::Value CgroupCreate(const Napi::CallbackInfo& info) { return Start(info, Verb::kCreate); }
Napi::Value CgroupUpdate(const Napi::CallbackInfo& info) { return Start(info, Verb::kUpdate); }
Napi::Value CgroupRemove(const Napi::CallbackInfo& info) { return Start(info, Verb::kRemove); }

// cgroupFreeze(layout, relPath, frozen)
Napi::Value CgroupFreeze(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[2].IsBoolean()) {
    Napi::TypeError e = Napi::TypeError::New(env, "The \"frozen\" argument must be of type boolean");
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Start(info, info[2].As<Napi::Boolean>().Value() ? Verb::kFreeze : Verb::kThaw);
}

}  // namespace

void RegisterCgroup(Napi::Env env, Napi::Object exports) {
  exports.Set("cgroupDetect", Napi::Function::New(env, CgroupDetect, "cgroupDetect"));
  exports.Set("cgroupCreate", Napi::Function::New(env, CgroupCreate, "cgroupCreate"));
  exports.Set("cgroupUpdate", Napi::Function::New(env, CgroupUpdate, "cgroupUpdate"));
  exports.Set("cgroupRemove", Napi::Function::New(env, CgroupRemove, "cgroupRemove"));
  exports.Set("cgroupFreeze", Napi::Function::New(env, CgroupFreeze, "cgroupFreeze"));
}

}  // namespace js
}  // namespace berth
