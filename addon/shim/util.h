// Small helpers shared by every part of berth-shim: an owning file descriptor, the one error style, and
// file/time utilities.
//
// Error style: a function that fails records a message (what failed, the path involved, the errno text)
// with fail()/fail_msg() and returns false (or -1 / an empty Fd). The caller passes the failure up; the
// top level sends last_error() to berthd. Messages follow Go's error wording ("mount proc to /proc:
// operation not permitted") because the docker CLI matches substrings of them ("no such file or
// directory", "permission denied") to choose exit codes 126/127.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>

// Owns one file descriptor and closes it when it goes out of scope.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Records "what path: errno text" (or "what: errno text" when path is empty) and returns false.
bool fail(const char* what, const std::string& path, int err = errno);
// Records msg as it is and returns false.
bool fail_msg(const std::string& msg);
// The last recorded message.
const std::string& last_error();
// strerror(err) with a lower-case first letter, as Go prints errno values.
std::string errno_text(int err);

// write(2) until everything is written, retrying on EINTR. Blocking fds only.
bool write_all(int fd, const void* data, size_t len);
// Reads a whole (small) file. Records an error and returns false when it cannot.
bool read_file(const std::string& path, std::string& out);
// Writes data to an existing file with one write (for /proc, /sys and cgroup files, which take a value
// per write and need no truncation).
bool write_file(const std::string& path, const std::string& data);
// Writes data to path.tmp, fsyncs it, renames it over path and fsyncs the directory, so that a reader
// sees either the old file or the whole new one.
// `durable` false: the rename is still atomic for readers but nothing is fsynced (an exec's files, which
// matter only as long as the host runs: the exec dies with it).
bool write_file_atomic(const std::string& path, const std::string& data, bool durable = true);

// Current time as RFC 3339 UTC with exactly nine fractional digits ("2026-11-23T11:58:04.281585685Z").
std::string rfc3339_nano_now();
// A time of rfc3339_nano_now() as Go prints it (RFC3339Nano: trailing zeros of the fraction dropped), for
// what berthd shows as Docker does (FinishedAt); log files keep the fixed width their reader relies on.
std::string go_rfc3339_nano(std::string t);

// Milliseconds of CLOCK_MONOTONIC, for timeouts.
int64_t now_ms();

bool set_nonblock(int fd);
bool set_cloexec(int fd);

// Appends s to out as a JSON string literal (with the quotes). Control characters are escaped, invalid
// UTF-8 bytes become U+FFFD, and <, > and & are written as \u003c, \u003e and \u0026 as Docker's
// json-file driver writes them.
void json_quote_append(std::string& out, const char* s, size_t n);
inline void json_quote_append(std::string& out, const std::string& s) {
  json_quote_append(out, s.data(), s.size());
}

// Length of the longest prefix of s[0..n) that does not end inside a UTF-8 sequence, so that a log line
// cut at a size limit does not split a character. Returns n when the tail is complete or not UTF-8.
size_t utf8_safe_cut(const char* s, size_t n);
