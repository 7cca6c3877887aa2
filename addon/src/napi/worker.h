// The AsyncWorker every slow call uses: Run() does the syscalls on a libuv pool thread and returns a Status;
// the promise is then resolved with Result() or rejected with the Status as an Error, on the JS thread.
#pragma once

#include <napi.h>

#include <utility>

#include "napi/error.h"
#include "util/status.h"

namespace berth {
namespace napi {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  // Queues the work and hands back its promise. The worker deletes itself after settling it.
  Napi::Promise Start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

 protected:
  // resource_name shows up in async_hooks / diagnostics (e.g. "berth:mountOverlay").
  PromiseWorker(Napi::Env env, const char* resource_name)
      : Napi::AsyncWorker(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)) {}

  // Pool thread: plain C++ only, no N-API. Everything it needs was copied into the worker at entry.
  virtual Status Run() = 0;

  // JS thread, after a successful Run(): the value the promise resolves with.
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

 private:
  void Execute() final { status_ = Run(); }

  void OnOK() final {
    Napi::Env env = Env();
    if (status_.ok()) {
      deferred_.Resolve(Result(env));
    } else {
      deferred_.Reject(StatusError(env, status_).Value());
    }
  }

  // Only reached if N-API itself failed to run the work.
  void OnError(const Napi::Error& e) final { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  Status status_;
};

// new W(env, args...) → queued → its promise.
template <typename W, typename... A>
Napi::Value StartWorker(Napi::Env env, A&&... args) {
  W* worker = new W(env, std::forward<A>(args)...);
  return worker->Start();
}

}  // namespace napi
}  // namespace berth
