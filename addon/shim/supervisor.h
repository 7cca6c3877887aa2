// The supervising loop (PROTOCOL.md): one poll(2) loop that moves the container's output to the log
// and to subscribers, serves the frames of fd 3 and of shim.sock clients, reaps the container, and
// at the end writes exit.json and sends EXITED.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "conn.h"
#include "container.h"
#include "jsonlog.h"
#include "util.h"

// A container output: a pipe (stdout, stderr) or the pty master.
struct Output {
  Fd fd;
  uint8_t frame = kFrameStdout;
  JsonLog::Stream log_stream = JsonLog::kStdout;
};

// The kernel's count of OOM kills in a memory cgroup's memory.events (v2) or memory.oom_control (v1,
// Linux 4.13), or -1 when the file has none.
long oom_kill_count(const std::string& file);
// The first of the container's cgroup directories with such a counter, or "" (no memory controller).
std::string oom_counter_file(const std::vector<std::string>& cgroups);

class Supervisor {
 public:
  // Takes over the started container's fds, the open log, the listening shim.sock and the SIGCHLD
  // signalfd; fd3 (may be null) is the connection to berthd.
  Supervisor(const Args& args, Container c, JsonLog log, Fd listener, Fd sigfd, std::unique_ptr<Conn> fd3);
  // Runs until the container has exited and everything is delivered; returns the shim's exit code.
  int run();
  // Calls fn once after_ms from now, unless the process has exited by then (an exec's shim: the memory
  // clean-up waits until the exec has shown it is not a short one, so that `docker exec C true` does
  // not wait for it).
  void when_idle(void (*fn)(), int64_t after_ms);
  // Watches the container's memory cgroup for OOM kills: the kernel's oom_kill counter in `file` (v2
  // memory.events, v1 memory.oom_control) read again when the container has exited and compared with
  // `before`, read before it started. A higher count is reported as "oomKilled":true in EXITED and
  // exit.json.
  void watch_oom(std::string file, long before);

 private:
  void poll_once();
  void on_signal();
  void read_output(Output& o);
  void close_output(Output& o);
  void accept_clients();
  void on_frame(Conn& c, uint8_t type, const std::string& payload);
  void write_stdin();
  void take_stdin(Conn& c, uint8_t type, std::string payload);
  void deliver_stdin(uint8_t type, const std::string& payload);
  void unpark_stdin();
  bool stdin_full() const;
  void broadcast(uint8_t type, const char* data, size_t n);
  bool backpressured() const;
  bool drained() const;
  int finish();

  const Args& args_;
  Container c_;
  JsonLog log_;
  Fd listener_;
  Fd sigfd_;
  std::vector<std::unique_ptr<Conn>> conns_;
  Output outputs_[2];
  int stdin_fd_ = -1;  // the stdin pipe or the pty master; -1 when there is no stdin
  std::string stdin_buf_;
  size_t stdin_off_ = 0;
  bool stdin_close_pending_ = false;
  std::unique_ptr<char[]> buf_;
  bool tty_ = false;

  bool exited_ = false;
  int exit_code_ = 0;
  int exit_signal_ = 0;
  std::string finished_at_;
  int64_t exit_ms_ = 0;
  int64_t last_output_ms_ = 0;
  std::string oom_file_;
  long oom_before_ = -1;
  bool oom_killed_ = false;
  void (*idle_fn_)() = nullptr;
  int64_t idle_at_ms_ = 0;
};
