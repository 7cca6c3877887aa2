#include "supervisor.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>

namespace {

constexpr size_t kSubscriberLimit = 4 << 20;  // PROTOCOL.md: buffered per subscriber before backpressure
constexpr size_t kStdinLimit = 1 << 20;       // stdin bytes held for a container that does not read
constexpr size_t kParkLimit = 1 << 20;        // stdin bytes parked per connection before it is not read
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxConns = 256;
// After the init exits, output still in the pipes is read until EOF. Processes outside a private pid
// namespace can keep a pipe open forever; the drain then ends after a quiet spell or a hard limit.
constexpr int64_t kDrainQuietMs = 250;
constexpr int64_t kDrainMaxMs = 5000;
// At the end, connections get this long without progress to take their last frames.
constexpr int64_t kFinalFlushMs = 5000;

}  // namespace

long oom_kill_count(const std::string& file) {
  std::string text;
  if (!read_file(file, text)) return -1;
  // A line "oom_kill N" in both files.
  size_t at = 0;
  while (at < text.size()) {
    size_t eol = text.find('\n', at);
    if (eol == std::string::npos) eol = text.size();
    if (text.compare(at, 9, "oom_kill ") == 0) return strtol(text.c_str() + at + 9, nullptr, 10);
    at = eol + 1;
  }
  return -1;
}

std::string oom_counter_file(const std::vector<std::string>& cgroups) {
  for (const auto& dir : cgroups) {
    for (const char* name : {"memory.events", "memory.oom_control"}) {
      std::string f = dir + "/" + name;
      if (oom_kill_count(f) >= 0) return f;
    }
  }
  return "";
}

Supervisor::Supervisor(const Args& args, Container c, JsonLog log, Fd listener, Fd sigfd,
                       std::unique_ptr<Conn> fd3)
    : args_(args), c_(std::move(c)), log_(std::move(log)), listener_(std::move(listener)), sigfd_(std::move(sigfd)) {
  if (fd3) conns_.push_back(std::move(fd3));
  tty_ = c_.pty.ok();
  if (tty_) {
    outputs_[0] = Output{std::move(c_.pty), kFrameStdout, JsonLog::kStdout};
    stdin_fd_ = outputs_[0].fd.get();
  } else {
    outputs_[0] = Output{std::move(c_.stdout_r), kFrameStdout, JsonLog::kStdout};
    outputs_[1] = Output{std::move(c_.stderr_r), kFrameStderr, JsonLog::kStderr};
    stdin_fd_ = c_.stdin_w.get();
  }
  for (auto& o : outputs_)
    if (o.fd.ok()) set_nonblock(o.fd.get());
  if (c_.stdin_w.ok()) set_nonblock(c_.stdin_w.get());
}

bool Supervisor::backpressured() const {
  for (const auto& c : conns_)
    if (c->subscribed && !c->dead && c->pending() > kSubscriberLimit) return true;
  return false;
}

bool Supervisor::drained() const { return !outputs_[0].fd.ok() && !outputs_[1].fd.ok(); }

void Supervisor::broadcast(uint8_t type, const char* data, size_t n) {
  for (auto& c : conns_)
    if (c->subscribed) c->send(type, data, n);
}

void Supervisor::close_output(Output& o) {
  if (!o.fd.ok()) return;
  log_.flush(o.log_stream);
  if (o.fd.get() == stdin_fd_) {
    // The pty master carries stdin too; without it there is nowhere to write.
    stdin_fd_ = -1;
    std::string().swap(stdin_buf_);
    stdin_off_ = 0;
  }
  o.fd.reset();
}

void Supervisor::read_output(Output& o) {
  ssize_t n;
  do n = read(o.fd.get(), buf_.get(), kReadChunk);
  while (n < 0 && errno == EINTR);
  if (n > 0) {
    last_output_ms_ = now_ms();
    // The log first: output must reach the log even when no subscriber takes it.
    log_.feed(o.log_stream, buf_.get(), static_cast<size_t>(n));
    broadcast(o.frame, buf_.get(), static_cast<size_t>(n));
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  // EOF, or EIO from a pty master once every holder of the terminal has closed it.
  close_output(o);
}

void Supervisor::on_signal() {
  struct signalfd_siginfo si;
  while (read(sigfd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
  }
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    if (pid != c_.pid || exited_) continue;  // anything else that was our child is just reaped
    exited_ = true;
    if (WIFSIGNALED(status)) {
      exit_signal_ = WTERMSIG(status);
      exit_code_ = 128 + exit_signal_;
    } else {
      exit_code_ = WEXITSTATUS(status);
    }
    finished_at_ = go_rfc3339_nano(rfc3339_nano_now());
    exit_ms_ = last_output_ms_ = now_ms();
    // Read now, before berthd (told by EXITED) removes the cgroup.
    if (!oom_file_.empty() && oom_before_ >= 0) oom_killed_ = oom_kill_count(oom_file_) > oom_before_;
  }
}

void Supervisor::accept_clients() {
  for (;;) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or a transient error such as EMFILE: try again on the next wakeup
    }
    if (conns_.size() >= kMaxConns) {
      close(fd);
      continue;
    }
    conns_.push_back(std::unique_ptr<Conn>(new Conn(Fd(fd))));
  }
}

void Supervisor::write_stdin() {
  while (stdin_fd_ >= 0 && stdin_off_ < stdin_buf_.size()) {
    ssize_t n = write(stdin_fd_, stdin_buf_.data() + stdin_off_, stdin_buf_.size() - stdin_off_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // EPIPE: the container closed its stdin; what it did not read is dropped.
      stdin_off_ = stdin_buf_.size();
      if (c_.stdin_w.ok()) {
        c_.stdin_w.reset();
        stdin_fd_ = -1;
      }
      break;
    }
    stdin_off_ += static_cast<size_t>(n);
  }
  if (stdin_off_ >= stdin_buf_.size()) {
    if (stdin_buf_.capacity() > 64 * 1024)
      std::string().swap(stdin_buf_);
    else
      stdin_buf_.clear();
    stdin_off_ = 0;
    if (stdin_close_pending_ && c_.stdin_w.ok()) {
      c_.stdin_w.reset();
      stdin_fd_ = -1;
    }
  }
}

bool Supervisor::stdin_full() const { return stdin_buf_.size() - stdin_off_ > kStdinLimit; }

void Supervisor::deliver_stdin(uint8_t type, const std::string& p) {
  if (type == kFrameStdin) {
    if (stdin_fd_ < 0 || stdin_close_pending_ || p.empty()) return;
    stdin_buf_ += p;
  } else if (c_.stdin_w.ok()) {
    // STDIN_CLOSE. A pty has no end of input of its own and closing the master would hang the
    // terminal up; as with Docker, a TTY container's terminal stays open and only a pipe is closed.
    stdin_close_pending_ = true;
  }
  write_stdin();
}

// Stdin is flow-controlled per connection: while the container has not read what it was given, its
// STDIN frames wait in the connection (which is read on up to kParkLimit), so a SIGNAL sent after
// them on the same connection still gets through.
void Supervisor::take_stdin(Conn& c, uint8_t type, std::string p) {
  if (c.parked.empty() && !(type == kFrameStdin && stdin_full())) {
    deliver_stdin(type, p);
    return;
  }
  c.parked_bytes += p.size();
  c.parked.emplace_back(type, std::move(p));
}

void Supervisor::unpark_stdin() {
  for (auto& c : conns_) {
    while (!c->parked.empty() && !(c->parked.front().first == kFrameStdin && stdin_full())) {
      c->parked_bytes -= c->parked.front().second.size();
      deliver_stdin(c->parked.front().first, c->parked.front().second);
      c->parked.pop_front();
    }
  }
}

void Supervisor::on_frame(Conn& c, uint8_t type, const std::string& p) {
  switch (type) {
    case kFrameSubscribe:
      c.subscribed = p.empty() || p[0] != 0;
      break;
    case kFrameStdin:
    case kFrameStdinClose:
      take_stdin(c, type, p);
      break;
    case kFrameSignal:
      if (p.size() >= 4 && !exited_) {
        const unsigned char* b = reinterpret_cast<const unsigned char*>(p.data());
        uint32_t sig = (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
        // The init is our unreaped child, so its pid cannot have been reused.
        if (sig > 0 && sig < 65) kill(c_.pid, static_cast<int>(sig));
      }
      break;
    case kFrameResize:
      if (p.size() >= 4 && tty_ && outputs_[0].fd.ok()) {
        const unsigned char* b = reinterpret_cast<const unsigned char*>(p.data());
        struct winsize ws;
        memset(&ws, 0, sizeof ws);
        ws.ws_row = static_cast<unsigned short>((b[0] << 8) | b[1]);
        ws.ws_col = static_cast<unsigned short>((b[2] << 8) | b[3]);
        ioctl(outputs_[0].fd.get(), TIOCSWINSZ, &ws);  // the kernel sends SIGWINCH to the foreground
      }
      break;
    case kFrameStatusReq: {
      std::string s = "{\"pid\":" + std::to_string(c_.pid) + ",\"running\":" + (exited_ ? "false" : "true") + "}";
      c.send(kFrameStatus, s.data(), s.size());
      break;
    }
    default:
      break;  // unknown frames are ignored, so newer clients can talk to older shims
  }
}

void Supervisor::poll_once() {
  enum Kind { kSignal, kListener, kOutput0, kOutput1, kStdin, kConn };
  std::vector<struct pollfd> pfds;
  std::vector<std::pair<Kind, Conn*>> what;
  auto add = [&](int fd, short events, Kind k, Conn* c) {
    pfds.push_back({fd, events, 0});
    what.emplace_back(k, c);
  };
  add(sigfd_.get(), POLLIN, kSignal, nullptr);
  add(listener_.get(), POLLIN, kListener, nullptr);
  // Backpressure: while a subscriber is far behind, the container's output waits in its pipe (and the
  // container blocks writing). Once the container is gone, the rest is drained regardless.
  bool read_outputs = exited_ || !backpressured();
  int pty_index = -1;
  for (int i = 0; i < 2; i++) {
    if (!outputs_[i].fd.ok() || !read_outputs) continue;
    if (outputs_[i].fd.get() == stdin_fd_) pty_index = static_cast<int>(pfds.size());
    add(outputs_[i].fd.get(), POLLIN, i == 0 ? kOutput0 : kOutput1, nullptr);
  }
  if (stdin_fd_ >= 0 && stdin_off_ < stdin_buf_.size()) {
    if (pty_index >= 0)
      pfds[pty_index].events |= POLLOUT;  // the pty master takes input and gives output
    else
      add(stdin_fd_, POLLOUT, kStdin, nullptr);
  }
  for (auto& c : conns_) {
    short ev = 0;
    if (!c->eof && c->parked_bytes < kParkLimit) ev |= POLLIN;
    if (c->pending() > 0) ev |= POLLOUT;
    add(c->fd(), ev, kConn, c.get());
  }

  int timeout = -1;
  if (exited_) {
    int64_t now = now_ms();
    int64_t until = std::min(exit_ms_ + kDrainMaxMs, last_output_ms_ + kDrainQuietMs);
    timeout = until > now ? static_cast<int>(until - now) : 0;
  } else if (idle_fn_) {
    int64_t now = now_ms();
    if (now >= idle_at_ms_) {
      void (*fn)() = idle_fn_;
      idle_fn_ = nullptr;
      fn();
    } else {
      timeout = static_cast<int>(idle_at_ms_ - now);
    }
  }
  int n = poll(pfds.data(), pfds.size(), timeout);
  if (n < 0) return;  // EINTR
  if (n == 0 && !exited_) return;  // the idle timer
  if (n == 0) {
    // Drain time is over: whatever still holds the pipes open is not the container's init.
    for (auto& o : outputs_) close_output(o);
    return;
  }

  for (size_t i = 0; i < pfds.size(); i++) {
    short re = pfds[i].revents;
    if (re == 0) continue;
    switch (what[i].first) {
      case kSignal: on_signal(); break;
      case kListener: accept_clients(); break;
      case kOutput0:
      case kOutput1: {
        Output& o = outputs_[what[i].first == kOutput0 ? 0 : 1];
        if ((re & POLLOUT) && stdin_fd_ == o.fd.get()) write_stdin();
        if (re & (POLLIN | POLLHUP | POLLERR)) {
          if (o.fd.ok()) read_output(o);
        }
        break;
      }
      case kStdin:
        write_stdin();  // a reader that went away shows up as EPIPE there
        break;
      case kConn: {
        Conn& c = *what[i].second;
        if (re & POLLIN) c.read_some();
        if (re & POLLOUT) c.flush();
        uint8_t type;
        std::string payload;
        while (!c.dead && c.next_frame(type, payload)) on_frame(c, type, payload);
        // POLLHUP: the peer is gone for good (berthd killed, client closed): drop it once what it
        // sent before closing has been read and handled.
        if ((re & POLLERR) || ((re & POLLHUP) && (!(re & POLLIN) || c.eof))) c.dead = true;
        break;
      }
    }
  }
  unpark_stdin();
  // Remove dead connections.
  size_t keep = 0;
  for (size_t i = 0; i < conns_.size(); i++)
    if (!conns_[i]->dead) conns_[keep++] = std::move(conns_[i]);
  conns_.resize(keep);
}

int Supervisor::finish() {
  for (auto& o : outputs_) close_output(o);
  c_.stdin_w.reset();

  std::string exited = "{\"exitCode\":" + std::to_string(exit_code_) + ",\"signal\":" +
                       std::to_string(exit_signal_) + ",\"finishedAt\":\"" + finished_at_ + "\"" +
                       (oom_killed_ ? ",\"oomKilled\":true}" : "}");
  // A failure here (disk full) cannot be helped; berthd still learns the exit from EXITED.
  write_file_atomic(args_.state + "/exit.json", exited, !args_.exec_mode);
  // Clients that connected just now get EXITED too; after that nobody can connect any more.
  accept_clients();
  listener_.reset();
  unlink((args_.state + "/shim.sock").c_str());

  for (auto& c : conns_) c->send(kFrameExited, exited.data(), exited.size());

  // Give every connection time to take its last frames, as long as some of them make progress.
  int64_t deadline = now_ms() + kFinalFlushMs;
  for (;;) {
    std::vector<struct pollfd> pfds;
    std::vector<Conn*> who;
    for (auto& c : conns_) {
      if (c->dead || c->pending() == 0) continue;
      pfds.push_back({c->fd(), POLLOUT, 0});
      who.push_back(c.get());
    }
    int64_t left = deadline - now_ms();
    if (pfds.empty() || left <= 0) break;
    int n = poll(pfds.data(), pfds.size(), static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (size_t i = 0; i < pfds.size(); i++) {
      if (pfds[i].revents == 0) continue;
      size_t before = who[i]->pending();
      if (!who[i]->flush() || (pfds[i].revents & (POLLHUP | POLLERR))) who[i]->dead = true;
      if (who[i]->pending() < before) deadline = now_ms() + kFinalFlushMs;
    }
  }
  for (auto& c : conns_) shutdown(c->fd(), SHUT_RDWR);
  conns_.clear();
  return 0;
}

void Supervisor::watch_oom(std::string file, long before) {
  oom_file_ = std::move(file);
  oom_before_ = before;
}

void Supervisor::when_idle(void (*fn)(), int64_t after_ms) {
  idle_fn_ = fn;
  idle_at_ms_ = now_ms() + after_ms;
}

int Supervisor::run() {
  buf_.reset(new char[kReadChunk]);
  for (;;) {
    poll_once();
    if (exited_ && drained()) return finish();
  }
}
