// Failed Status → the JS Error index.d.ts promises; bad arguments → TypeError.
#pragma once

#include <napi.h>

#include <string>

#include "util/status.h"

namespace berth {
namespace napi {

// "ENOENT" for ENOENT; "E<number>" for an errno this table does not know.
std::string ErrnoName(int err);

// An Error whose message reads like Node's own fs errors
// ("EBUSY: Device or resource busy, rmdir '/sys/fs/cgroup/memory/berth/x' (…detail…)") and which carries
// code (errno name), errno (negative, as Node's fs errors have it), and syscall and path when known.
Napi::Error StatusError(Napi::Env env, const Status& status);

// A TypeError with Node's code for the kind of argument mistake (ERR_INVALID_ARG_TYPE / _VALUE).
Napi::Error ArgumentError(Napi::Env env, const std::string& code, const std::string& message);

// A promise already rejected with err: async entry points report bad arguments this way, so a caller
// only ever has to handle a rejection.
Napi::Value Rejected(Napi::Env env, const Napi::Error& err);

}  // namespace napi
}  // namespace berth
