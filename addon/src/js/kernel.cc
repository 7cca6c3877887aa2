#include <string>
#include <vector>

#include "js/bindings.h"
#include "kernel/features.h"
#include "napi/args.h"
#include "napi/error.h"
#include "napi/worker.h"

namespace berth {
namespace js {

namespace {

class ProbeWorker : public napi::PromiseWorker {
 public:
  ProbeWorker(Napi::Env env, std::string scratch) : PromiseWorker(env, "berth:kernelFeatures"), scratch_(std::move(scratch)) {}

 protected:
  Status Run() override {
    features_ = kernel::Probe(scratch_);
    return Status::Ok();
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, features_.size());
    for (size_t i = 0; i < features_.size(); i++) {
      const kernel::Feature& f = features_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", f.name);
      o.Set("since", f.since);
      o.Set("available", f.available);
      o.Set("detail", f.detail);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

 private:
  std::string scratch_;
  std::vector<kernel::Feature> features_;
};

Napi::Value KernelFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi::ArgReader args(env);
  std::string scratch = args.AbsPath(info[0], "scratch");
  if (!args.ok()) return env.IsExceptionPending() ? env.Undefined() : napi::Rejected(env, args.Error());
  return napi::StartWorker<ProbeWorker>(env, scratch);
}

}  // namespace

void RegisterKernel(Napi::Env env, Napi::Object exports) {
  exports.Set("kernelFeatures", Napi::Function::New(env, KernelFeatures, "kernelFeatures"));
}

}  // namespace js
}  // namespace berth
