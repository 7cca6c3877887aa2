// The one error value of the native code: an errno plus what was being done and to what.
// Host code (cgroup/, fs/) returns a Status and never sees N-API; napi/error.h turns a failed Status into
// the JS Error that index.d.ts promises (code, errno, syscall, path).
#pragma once

#include <cerrno>
#include <string>
#include <utility>

namespace berth {

class Status {
 public:
  Status() = default;

  static Status Ok() { return Status(); }

  // A failed system call. Pass errno explicitly (read it right after the failing call), so nothing in
  // between can change it.
  static Status Sys(int err, std::string syscall, std::string path = {}, std::string detail = {}) {
    Status s;
    s.err_ = err != 0 ? err : EIO;
    s.syscall_ = std::move(syscall);
    s.path_ = std::move(path);
    s.detail_ = std::move(detail);
    return s;
  }

  // A failure found by our own checks rather than reported by a call (e.g. an option string too long).
  static Status Invalid(int err, std::string detail, std::string path = {}) {
    return Sys(err, {}, std::move(path), std::move(detail));
  }

  bool ok() const { return err_ == 0; }
  int err() const { return err_; }
  const std::string& syscall() const { return syscall_; }
  const std::string& path() const { return path_; }
  const std::string& detail() const { return detail_; }

  // Says what the caller was doing when this failed; keeps errno, syscall and path (wrap, don't replace).
  Status& Context(const std::string& what) {
    if (!ok()) detail_ = detail_.empty() ? what : what + ": " + detail_;
    return *this;
  }

 private:
  int err_ = 0;
  std::string syscall_;
  std::string path_;
  std::string detail_;
};

}  // namespace berth
