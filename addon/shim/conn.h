// Frames and connections (PROTOCOL.md, "Frames"): [type u8][0][0][0][length u32 BE][payload], in both
// directions, on fd 3 and on every client of shim.sock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "util.h"

enum FrameType : uint8_t {
  // shim -> client
  kFrameStdout = 0x01,
  kFrameStderr = 0x02,
  kFrameStarted = 0x10,
  kFrameStartFailed = 0x11,
  kFrameExited = 0x12,
  kFrameStatus = 0x13,
  // client -> shim
  kFrameSubscribe = 0x20,
  kFrameStdin = 0x21,
  kFrameStdinClose = 0x22,
  kFrameSignal = 0x23,
  kFrameResize = 0x24,
  kFrameStatusReq = 0x25,
};

// One non-blocking stream socket with its input and output buffers.
class Conn {
 public:
  explicit Conn(Fd fd) : fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }

  // Queues a frame and writes what the socket takes now. An error marks the connection dead.
  void send(uint8_t type, const void* payload, size_t n);
  // Writes queued output until the socket would block. Returns false (and marks the connection dead)
  // on an error such as EPIPE.
  bool flush();
  size_t pending() const { return out_.size() - out_off_; }

  // Reads what is available into the input buffer. On EOF sets eof; on an error marks dead.
  void read_some();
  // Takes the next complete frame out of the input buffer; false when none is complete. A frame
  // longer than kMaxInputFrame marks the connection dead.
  bool next_frame(uint8_t& type, std::string& payload);

  static constexpr size_t kMaxInputFrame = 1 << 20;

  bool subscribed = false;  // receives STDOUT/STDERR frames
  bool eof = false;         // the peer will send nothing more (it may still read)
  bool dead = false;        // to be closed and removed

  // STDIN and STDIN_CLOSE frames held back, in order, while the container is not reading its stdin.
  // Other frames (SIGNAL above all) keep being read and handled meanwhile.
  std::deque<std::pair<uint8_t, std::string>> parked;
  size_t parked_bytes = 0;

 private:
  Fd fd_;
  std::string in_;
  size_t in_off_ = 0;
  std::string out_;
  size_t out_off_ = 0;
};
