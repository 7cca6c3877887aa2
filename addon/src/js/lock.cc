// flockTry: an exclusive flock(2) on an open file, without waiting. berthd holds one on each of its roots,
// its sockets and its bridges for its lifetime (daemon/lib/instance-lock.ts); the kernel drops it when the
// process ends however it ends, so a crashed daemon never leaves a stale lock behind (a pidfile would).
#include <errno.h>
#include <sys/file.h>

#include "js/bindings.h"
#include "napi/error.h"

namespace berth {
namespace js {

namespace {

// flockTry(fd) → true when the lock is now held by this process, false when another open file holds it.
// Synchronous: LOCK_NB never blocks.
Napi::Value FlockTry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    napi::ArgumentError(env, "ERR_INVALID_ARG_TYPE", "fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  napi::StatusError(env, Status::Sys(errno, "flock")).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

void RegisterLock(Napi::Env env, Napi::Object exports) {
  exports.Set("flockTry", Napi::Function::New(env, FlockTry, "flockTry"));
}

}  // namespace js
}  // namespace berth
