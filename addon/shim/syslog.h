// The syslog log driver (PROTOCOL.md, "Logging"): every log entry becomes one syslog message, sent over a
// unix stream or datagram socket, UDP or TCP, in Docker's formats.
#pragma once

#include <cstdint>
#include <string>

#include "util.h"

class Syslog {
 public:
  // Connects to address (see Args::syslog_address); false with the error recorded when that fails, as
  // Docker fails the container's start when its syslog cannot be reached.
  bool open(const std::string& address, unsigned facility, const std::string& tag, const std::string& format);
  // mode=non-blocking: a message the receiver cannot take at once is dropped instead of holding up the
  // container's output.
  void set_nonblocking(bool on) { nonblock_ = on; }
  // One entry's text (a trailing newline is dropped; Docker sends lines without theirs and ends every
  // message with one). stderr goes out with severity err, stdout with info.
  void send(bool is_stderr, const char* data, size_t n);

 private:
  bool connect_now();
  std::string format(int pri, const char* data, size_t n) const;

  Fd fd_;
  std::string proto_;  // unix, unixgram, udp, tcp
  std::string addr_;   // path, or numeric host and port
  unsigned facility_ = 3;
  std::string tag_;
  std::string format_;
  std::string hostname_;
  int64_t retry_after_ms_ = 0;
  bool nonblock_ = false;  // a receiver that went away is not redialled for every line
};
