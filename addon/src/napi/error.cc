#include "napi/error.h"

#include <cerrno>
#include <cstring>

namespace berth {
namespace napi {

std::string ErrnoName(int err) {
  // Written out rather than taken from strerrorname_np (glibc ≥ 2.32 only) so the addon builds on any
  // glibc or musl. Aliases (EWOULDBLOCK, EDEADLOCK, ENOTSUP) share a value and are left out.
#define BERTH_ERRNO(e) \
  case e:              \
    return #e;
  switch (err) {
    BERTH_ERRNO(EPERM) BERTH_ERRNO(ENOENT) BERTH_ERRNO(ESRCH) BERTH_ERRNO(EINTR) BERTH_ERRNO(EIO)
    BERTH_ERRNO(ENXIO) BERTH_ERRNO(E2BIG) BERTH_ERRNO(ENOEXEC) BERTH_ERRNO(EBADF) BERTH_ERRNO(ECHILD)
    BERTH_ERRNO(EAGAIN) BERTH_ERRNO(ENOMEM) BERTH_ERRNO(EACCES) BERTH_ERRNO(EFAULT) BERTH_ERRNO(ENOTBLK)
    BERTH_ERRNO(EBUSY) BERTH_ERRNO(EEXIST) BERTH_ERRNO(EXDEV) BERTH_ERRNO(ENODEV) BERTH_ERRNO(ENOTDIR)
    BERTH_ERRNO(EISDIR) BERTH_ERRNO(EINVAL) BERTH_ERRNO(ENFILE) BERTH_ERRNO(EMFILE) BERTH_ERRNO(ENOTTY)
    BERTH_ERRNO(ETXTBSY) BERTH_ERRNO(EFBIG) BERTH_ERRNO(ENOSPC) BERTH_ERRNO(ESPIPE) BERTH_ERRNO(EROFS)
    BERTH_ERRNO(EMLINK) BERTH_ERRNO(EPIPE) BERTH_ERRNO(EDOM) BERTH_ERRNO(ERANGE) BERTH_ERRNO(EDEADLK)
    BERTH_ERRNO(ENAMETOOLONG) BERTH_ERRNO(ENOLCK) BERTH_ERRNO(ENOSYS) BERTH_ERRNO(ENOTEMPTY)
    BERTH_ERRNO(ELOOP) BERTH_ERRNO(ENOMSG) BERTH_ERRNO(EIDRM) BERTH_ERRNO(ENODATA) BERTH_ERRNO(ETIME)
    BERTH_ERRNO(ENOLINK) BERTH_ERRNO(EPROTO) BERTH_ERRNO(EBADMSG) BERTH_ERRNO(EOVERFLOW)
    BERTH_ERRNO(EILSEQ) BERTH_ERRNO(EUSERS) BERTH_ERRNO(ENOTSOCK) BERTH_ERRNO(EDESTADDRREQ)
    BERTH_ERRNO(EMSGSIZE) BERTH_ERRNO(EPROTOTYPE) BERTH_ERRNO(ENOPROTOOPT) BERTH_ERRNO(EPROTONOSUPPORT)
    BERTH_ERRNO(EOPNOTSUPP) BERTH_ERRNO(EAFNOSUPPORT) BERTH_ERRNO(EADDRINUSE) BERTH_ERRNO(EADDRNOTAVAIL)
    BERTH_ERRNO(ENETDOWN) BERTH_ERRNO(ENETUNREACH) BERTH_ERRNO(ECONNABORTED) BERTH_ERRNO(ECONNRESET)
    BERTH_ERRNO(ENOBUFS) BERTH_ERRNO(EISCONN) BERTH_ERRNO(ENOTCONN) BERTH_ERRNO(ETIMEDOUT)
    BERTH_ERRNO(ECONNREFUSED) BERTH_ERRNO(EHOSTUNREACH) BERTH_ERRNO(EALREADY) BERTH_ERRNO(EINPROGRESS)
    BERTH_ERRNO(ESTALE) BERTH_ERRNO(EDQUOT) BERTH_ERRNO(ECANCELED) BERTH_ERRNO(EOWNERDEAD)
    BERTH_ERRNO(ENOTRECOVERABLE) BERTH_ERRNO(ENOKEY) BERTH_ERRNO(EKEYREJECTED) BERTH_ERRNO(ENOMEDIUM)
    BERTH_ERRNO(EMEDIUMTYPE)
    default:
      return "E" + std::to_string(err);
  }
#undef BERTH_ERRNO
}

Napi::Error StatusError(Napi::Env env, const Status& status) {
  const int err = status.err();
  const std::string code = ErrnoName(err);
  // Built on the JS thread only, so the non-reentrant strerror is safe here.
  std::string message = code + ": " + std::strerror(err);
  if (!status.syscall().empty()) message += ", " + status.syscall();
  if (!status.path().empty()) message += " '" + status.path() + "'";
  if (!status.detail().empty()) message += " (" + status.detail() + ")";

  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  if (!status.syscall().empty()) e.Set("syscall", Napi::String::New(env, status.syscall()));
  if (!status.path().empty()) e.Set("path", Napi::String::New(env, status.path()));
  return e;
}

Napi::Error ArgumentError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Value Rejected(Napi::Env env, const Napi::Error& err) {
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  d.Reject(err.Value());
  return d.Promise();
}

}  // namespace napi
}  // namespace berth
