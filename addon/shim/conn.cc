#include "conn.h"

#include <sys/socket.h>

void Conn::send(uint8_t type, const void* payload, size_t n) {
  if (dead) return;
  char header[8] = {static_cast<char>(type), 0, 0, 0, static_cast<char>((n >> 24) & 0xFF),
                    static_cast<char>((n >> 16) & 0xFF), static_cast<char>((n >> 8) & 0xFF),
                    static_cast<char>(n & 0xFF)};
  out_.append(header, sizeof header);
  out_.append(static_cast<const char*>(payload), n);
  flush();
}

bool Conn::flush() {
  if (dead) return false;
  while (out_off_ < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      dead = true;
      return false;
    }
    out_off_ += static_cast<size_t>(n);
  }
  if (out_off_ == out_.size()) {
    // Drained: let a buffer that grew for a slow reader go, so an idle shim stays small.
    if (out_.capacity() > 64 * 1024)
      std::string().swap(out_);
    else
      out_.clear();
    out_off_ = 0;
  } else if (out_off_ > 64 * 1024 && out_off_ > out_.size() / 2) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
  return true;
}

void Conn::read_some() {
  if (dead || eof) return;
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return;
    }
    if (n == 0) {
      eof = true;
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) dead = true;
    return;
  }
}

bool Conn::next_frame(uint8_t& type, std::string& payload) {
  if (dead) return false;
  size_t avail = in_.size() - in_off_;
  if (avail < 8) {
    if (avail == 0 && !in_.empty()) {
      in_.clear();
      in_off_ = 0;
    }
    return false;
  }
  const unsigned char* h = reinterpret_cast<const unsigned char*>(in_.data() + in_off_);
  size_t len = (size_t(h[4]) << 24) | (size_t(h[5]) << 16) | (size_t(h[6]) << 8) | size_t(h[7]);
  if (len > kMaxInputFrame) {
    dead = true;
    return false;
  }
  if (avail < 8 + len) return false;
  type = h[0];
  payload.assign(in_.data() + in_off_ + 8, len);
  in_off_ += 8 + len;
  if (in_off_ == in_.size()) {
    if (in_.capacity() > 64 * 1024)
      std::string().swap(in_);
    else
      in_.clear();
    in_off_ = 0;
  } else if (in_off_ > 64 * 1024) {
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
  return true;
}
