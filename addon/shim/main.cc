// berth-shim: starts one container from an OCI bundle and supervises it (see PROTOCOL.md).
//
// Life of a shim: parse the command line, write shim.pid, listen on shim.sock, read config.json, open
// the log, start the container (START_FAILED and exit 1 if that fails, else STARTED), then run one
// poll(2) loop until the container has exited and its output is drained; write exit.json, send
// EXITED to every connection, exit 0.
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "args.h"
#include "conn.h"
#include "container.h"
#include "jsonlog.h"
#include "spec.h"
#include "supervisor.h"
#include "util.h"

namespace {

// Sends START_FAILED on fd 3 (waiting a little for it to be taken) and says it on stderr too.
void report_start_failure(Conn* fd3, const std::string& message) {
  std::string payload = "{\"message\":";
  json_quote_append(payload, message);
  payload += "}";
  if (fd3) {
    fd3->send(kFrameStartFailed, payload.data(), payload.size());
    int64_t deadline = now_ms() + 2000;
    while (!fd3->dead && fd3->pending() > 0 && now_ms() < deadline) {
      struct pollfd p = {fd3->fd(), POLLOUT, 0};
      poll(&p, 1, 100);
      fd3->flush();
    }
  }
  std::string line = "berth-shim: " + message + "\n";
  write_all(2, line.data(), line.size());
}

// fds 0-2 are expected to be /dev/null; if any is closed, a later open would land there and be taken
// for stdio.
void ensure_std_fds() {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) >= 0) continue;
    int n = open("/dev/null", O_RDWR);
    if (n >= 0 && n != fd) {
      dup2(n, fd);
      close(n);
    }
  }
}

// fd 3, when it is a socket, is the connection to berthd.
std::unique_ptr<Conn> adopt_fd3() {
  struct stat st;
  if (fstat(3, &st) < 0 || !S_ISSOCK(st.st_mode)) return nullptr;
  // Move it off 3 so nothing depends on the number, and keep it from leaking into the container.
  int fd = fcntl(3, F_DUPFD_CLOEXEC, 4);
  if (fd < 0) return nullptr;
  close(3);
  set_nonblock(fd);
  return std::unique_ptr<Conn>(new Conn(Fd(fd)));
}

Fd listen_on(const std::string& name) {
  // The socket is bound by a name relative to the state dir (our cwd), which avoids the 108-byte
  // limit of sun_path for long state paths.
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.ok()) {
    fail("socket", "");
    return Fd();
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, name.c_str(), sizeof addr.sun_path - 1);
  unlink(name.c_str());  // left over from an earlier shim of this container
  if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0 ||
      chmod(name.c_str(), 0600) < 0 || listen(fd.get(), 32) < 0) {
    fail("listen on", name);
    return Fd();
  }
  return fd;
}

// The code that parsed config.json and built the container is not needed again, but its pages stay
// mapped once touched (and the kernel maps file pages in 64 KiB windows around each fault), which
// would keep an idle shim's RSS near the size of the binary. Dropping the page mappings of the
// binary's read-only segments lets the loop fault back in only what it uses; the pages themselves stay
// in the page cache, shared by all shims. Only mappings without anonymous (copied-on-write) pages are
// dropped: for those, faulting a page in again yields the same bytes from the file. The RELRO segment,
// written while relocating, has such pages and is left alone.
constexpr int64_t kExecIdleReleaseMs = 50;

void release_startup_pages() {
  std::string smaps;
  if (!read_file("/proc/self/smaps", smaps)) return;
  uintptr_t here = reinterpret_cast<uintptr_t>(&release_startup_pages);
  struct Mapping {
    unsigned long start, end;
    char perms[5];
    std::string path;
    long anon_kb;
  };
  std::vector<Mapping> maps;
  std::string exe;
  size_t pos = 0;
  while (pos < smaps.size()) {
    size_t eol = smaps.find('\n', pos);
    if (eol == std::string::npos) eol = smaps.size();
    std::string line = smaps.substr(pos, eol - pos);
    pos = eol + 1;
    Mapping m = {0, 0, {}, std::string(), -1};
    int path_at = 0;
    // A mapping's header: "start-end perms offset dev inode [path]"; field lines follow it.
    if (sscanf(line.c_str(), "%lx-%lx %4s %*s %*s %*s %n", &m.start, &m.end, m.perms, &path_at) >= 3 &&
        path_at > 0) {
      m.path = line.substr(static_cast<size_t>(path_at));
      if (here >= m.start && here < m.end) exe = m.path;
      maps.push_back(m);
      continue;
    }
    long kb;
    if (!maps.empty() && sscanf(line.c_str(), "Anonymous: %ld kB", &kb) == 1) maps.back().anon_kb = kb;
  }
  if (exe.empty()) return;
  for (const auto& m : maps) {
    if (m.path != exe || m.anon_kb != 0) continue;
    if (strcmp(m.perms, "r-xp") != 0 && strcmp(m.perms, "r--p") != 0) continue;
    madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED);
  }
}

}  // namespace

namespace {

// `berth-shim exec-wait` (PROTOCOL.md, "Exec mode"): berthd starts the shim of its next exec ahead of time;
// it waits here for its command line on fd 3, as a 4-byte little-endian length and the arguments after
// "berth-shim", each ended by a NUL. EOF (berthd went away) ends it.
bool read_exact(int fd, char* buf, size_t len) {
  while (len > 0) {
    ssize_t n = read(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool wait_for_args(std::vector<std::string>& out) {
  unsigned char len_le[4];
  if (!read_exact(3, reinterpret_cast<char*>(len_le), 4)) return false;
  size_t len = len_le[0] | (len_le[1] << 8) | (len_le[2] << 16) | (static_cast<size_t>(len_le[3]) << 24);
  if (len == 0 || len > (1u << 20)) return false;
  std::string blob(len, '\0');
  if (!read_exact(3, &blob[0], len)) return false;
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (blob[i] != '\0') continue;
    out.push_back(blob.substr(start, i - start));
    start = i + 1;
  }
  return !out.empty() && out[0] == "exec";
}

}  // namespace

int main(int argc, char** argv) {
  // `berth-shim seccomp-compile FILE`: berthd, at its start, has the default profile compiled into its
  // cache (FILE as an exec's process.json: linux.seccomp and linux.seccompCache), so that the first
  // container start does not pay for the compile. Nothing else is done; the answer is the exit code,
  // the reason on stderr.
  if (argc == 3 && strcmp(argv[1], "seccomp-compile") == 0) {
    Spec spec;
    std::string prog;
    if (!load_exec_spec(argv[2], spec) || spec.seccomp_cache.empty() || !cached_seccomp(spec.seccomp, spec.seccomp_cache, prog)) {
      std::string msg = spec.seccomp_cache.empty() && last_error().empty() ? "no linux.seccompCache" : last_error();
      fprintf(stderr, "berth-shim seccomp-compile: %s\n", msg.c_str());
      return 1;
    }
    return 0;
  }
  std::vector<std::string> waited;
  std::vector<char*> waited_argv;
  if (argc == 2 && strcmp(argv[1], "exec-wait") == 0) {
    if (!wait_for_args(waited)) return 1;
    waited_argv.push_back(argv[0]);
    for (auto& a : waited) waited_argv.push_back(&a[0]);
    waited_argv.push_back(nullptr);
    argc = static_cast<int>(waited_argv.size()) - 1;
    argv = waited_argv.data();
  }
  // Large buffers (a slow subscriber's backlog) come from mmap and go back to the kernel when freed,
  // and the heap is trimmed early, so memory used during a burst of output does not stay resident.
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  mallopt(M_TRIM_THRESHOLD, 64 * 1024);
  ensure_std_fds();
  // berthd may die or close its end at any time; the shim must survive both.
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);

  std::unique_ptr<Conn> fd3 = adopt_fd3();
  bool listening = false;
  auto start_failed = [&fd3, &listening]() {
    report_start_failure(fd3.get(), last_error());
    if (listening) unlink("shim.sock");  // nobody is going to answer on it
    return 1;
  };
  Args args;
  if (!parse_args(argc, argv, args)) return start_failed();
  if (chdir(args.state.c_str()) < 0) {
    fail("chdir", args.state);
    return start_failed();
  }
  // An exec's shim.pid need not survive a host crash (its process does not), and an fsync costs
  // milliseconds of every `docker exec`.
  if (!write_file_atomic(args.state + "/shim.pid", std::to_string(getpid()) + "\n", !args.exec_mode)) return start_failed();
  Fd sigfd(signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!sigfd.ok()) {
    fail("signalfd", "");
    return start_failed();
  }
  if (args.exec_mode) {
    // Exec mode: no shim.sock (the exec lives with berthd's connection on fd 3) and no log.
    Container proc;
    {
      Spec spec;
      if (!load_exec_spec(args.process, spec) ||
          !start_exec(spec, static_cast<pid_t>(args.target_pid), args.target_start, args.cgroups, args.stdin_pipe, proc))
        return start_failed();
    }
    if (fd3) {
      fd3->subscribed = true;
      std::string started = "{\"pid\":" + std::to_string(proc.pid) + "}";
      fd3->send(kFrameStarted, started.data(), started.size());
    }
    Supervisor sup(args, std::move(proc), JsonLog(), Fd(), std::move(sigfd), std::move(fd3));
    // Most execs are short (`docker exec C true`, healthchecks): the clean-up of the startup memory
    // (reading /proc/self/smaps, milliseconds) is done only for one that is still running after a while.
    sup.when_idle([] {
      malloc_trim(0);
      release_startup_pages();
    }, kExecIdleReleaseMs);
    return sup.run();
  }
  // Listening before the container starts, so that berthd can connect as soon as it sees STARTED.
  Fd listener = listen_on("shim.sock");
  if (!listener.ok()) return start_failed();
  listening = true;
  JsonLog log;
  if (!args.log.empty() &&
      !log.open(args.log, args.log_max_size, args.log_max_file, args.log_compress, args.log_attrs))
    return start_failed();
  if (args.log_driver == "syslog") {
    // Dialled before the container starts: a syslog that cannot be reached fails the start, as Docker's.
    auto sl = std::make_unique<Syslog>();
    if (!sl->open(args.syslog_address, args.syslog_facility, args.syslog_tag, args.syslog_format)) return start_failed();
    sl->set_nonblocking(args.log_nonblock);
    log.set_syslog(std::move(sl));
  }
  Container container;
  // Counted before the container runs, so that a kill in its first moment is not missed.
  std::string oom_file = oom_counter_file(args.cgroups);
  long oom_before = oom_file.empty() ? -1 : oom_kill_count(oom_file);
  {
    // The spec lives only for the start; the supervising loop does not need it.
    Spec spec;
    if (!load_spec(args.bundle, spec) || !start_container(spec, args.cgroups, container)) return start_failed();
  }
  // Give the parsing and setup memory back, so an idle shim stays small.
  malloc_trim(0);
  release_startup_pages();

  if (fd3) {
    fd3->subscribed = args.attach;
    std::string started = "{\"pid\":" + std::to_string(container.pid) + "}";
    fd3->send(kFrameStarted, started.data(), started.size());
  }
  Supervisor sup(args, std::move(container), std::move(log), std::move(listener), std::move(sigfd), std::move(fd3));
  if (!oom_file.empty()) sup.watch_oom(oom_file, oom_before);
  return sup.run();
}
