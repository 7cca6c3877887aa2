// spawnProcess, socketPair: starting berthd's child processes (berth-shim, nft, mount, …) at a cost that does
// not grow with berthd.
//
// Why not node's child_process: libuv starts a child with fork(), which copies berthd's page tables and
// whose child then takes a copy-on-write fault for every page it touches before exec, all while the event
// loop waits for the exec. That cost grows with berthd's memory and mappings (issue 17: 9.8 of 60 s of a
// CPU profile of growing to 800 containers was child_process.spawn). glibc's posix_spawn starts the child
// with clone(CLONE_VM|CLONE_VFORK) on a stack of its own: nothing is copied, and the caller waits only
// until the exec, whatever its size. It also reports a failed exec (ENOENT, EACCES) as its return value.
//
// The child is reaped here rather than by libuv (which waits only for the pids it started): a pidfd,
// opened right after the spawn while the child cannot have been reaped yet, is polled on the event loop;
// when it turns readable the exit is collected with waitid and handed to the JS callback. Every child is
// reaped whether or not anyone in JS still listens, so none is left a zombie.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <string>
#include <vector>

#include "js/bindings.h"
#include "napi/args.h"
#include "napi/error.h"

namespace berth {
namespace js {

namespace {

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

// One running child: its pidfd polled on the loop until the exit is collected, then the callback runs
// once and everything is freed.
struct ExitWatch {
  uv_poll_t poll;
  napi_env env;
  pid_t pid;
  int pidfd;
  Napi::FunctionReference callback;
  bool done = false;
};

void FreeWatch(uv_handle_t* h) {
  auto* w = static_cast<ExitWatch*>(h->data);
  close(w->pidfd);
  delete w;
}

// The environment is going away (berthd exits, or a worker ends) with the child still running: stop
// polling. The child is no longer waited for by this environment; as berthd's child it is reaped by
// init once berthd has gone.
void CleanupWatch(void* arg) {
  auto* w = static_cast<ExitWatch*>(arg);
  if (w->done) return;
  w->done = true;
  w->callback.Reset();
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), FreeWatch);
}

void OnPidfd(uv_poll_t* handle, int status, int /*events*/) {
  auto* w = static_cast<ExitWatch*>(handle->data);
  if (w->done) return;
  siginfo_t si{};
  int rc;
  do {
    rc = waitid(P_PID, static_cast<id_t>(w->pid), &si, WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  // Readable but not yet waitable happens only spuriously; a poll error (status < 0) on a pidfd cannot
  // be retried, so the exit is reported as unknown rather than waited for forever.
  if (rc == 0 && si.si_pid == 0 && status == 0) return;
  w->done = true;
  uv_poll_stop(handle);
  napi_remove_env_cleanup_hook(w->env, CleanupWatch, w);
  Napi::Env env(w->env);
  {
    Napi::HandleScope scope(env);
    Napi::Value code = env.Null();
    Napi::Value sig = env.Null();
    if (rc == 0 && si.si_pid != 0) {
      if (si.si_code == CLD_EXITED) code = Napi::Number::New(env, si.si_status);
      else sig = Napi::Number::New(env, si.si_status);
    }
    // MakeCallback: runs the microtasks the callback queues, as libuv's own exit callbacks do. A throw
    // in an 'exit' listener goes to 'uncaughtException', as it would from a ChildProcess.
    w->callback.MakeCallback(env.Global(), {code, sig});
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }
  w->callback.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(handle), FreeWatch);
}

// Child file actions: fds[i] becomes the child's fd i (-1: /dev/null); everything else is closed. The
// sources are first moved above every target, so a source that is itself a small number (berthd started
// with fd 0 closed gets a socket as fd 0) cannot be overwritten by an earlier dup2.
int BuildFileActions(posix_spawn_file_actions_t* fa, const std::vector<int>& fds) {
  int n = static_cast<int>(fds.size());
  int high = n;
  for (int fd : fds) high = fd >= high ? fd + 1 : high;
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    if (fds[i] >= 0) rc = posix_spawn_file_actions_adddup2(fa, fds[i], high + i);
  }
  for (int i = 0; i < n && rc == 0; i++) {
    if (fds[i] >= 0) rc = posix_spawn_file_actions_adddup2(fa, high + i, i);
    else rc = posix_spawn_file_actions_addopen(fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
  }
  // glibc 2.34: close_range(n, ~0) in the child, so no fd of berthd (sockets, the database, other
  // containers' pipes) leaks into a shim that outlives it.
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(fa, n);
  return rc;
}

// spawnProcess({file, argv, envp, fds, setsid, keepAlive}, onExit(code, signal)) → pid.
// file: an absolute path, or a name looked up in PATH (posix_spawnp). argv includes argv[0].
Napi::Value SpawnProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi::ArgReader args(env);
  Napi::Object o = args.Object(info[0], "options");
  std::string file = args.String(o.Get("file"), "options.file");
  std::vector<std::string> argv = args.StringArray(o.Get("argv"), "options.argv");
  std::vector<std::string> envp = args.StringArray(o.Get("envp"), "options.envp");
  std::vector<int> fds;
  if (args.ok()) {
    Napi::Value v = o.Get("fds");
    if (!v.IsArray()) {
      args.Invalid("options.fds", "must be an array of fds (-1 for /dev/null)");
    } else {
      Napi::Array a = v.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Value e = a.Get(i);
        if (!e.IsNumber()) {
          args.Invalid("options.fds", "must hold numbers");
          break;
        }
        fds.push_back(e.As<Napi::Number>().Int32Value());
      }
    }
  }
  bool setsid = args.OptBool(o.Get("setsid"), "options.setsid", false);
  bool keepAlive = args.OptBool(o.Get("keepAlive"), "options.keepAlive", true);
  if (args.ok() && (file.empty() || file.find('\0') != std::string::npos)) args.Invalid("options.file", "must be a path or a name");
  if (args.ok() && argv.empty()) args.Invalid("options.argv", "must hold argv[0]");
  if (args.ok() && !info[1].IsFunction()) args.Invalid("onExit", "must be a function");
  if (!args.ok()) {
    if (!env.IsExceptionPending()) args.Error().ThrowAsJavaScriptException();
    return env.Undefined();
  }

  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<char*> cenvp;
  for (auto& e : envp) cenvp.push_back(e.data());
  cenvp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  // The child starts with no signal blocked and every signal at its default: node ignores SIGPIPE and
  // handles others, and an ignored signal would stay ignored across exec (a shim that ignores SIGPIPE
  // would take EPIPE where it expects to die; a container process would inherit it from the shim).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // sigfillset leaves out glibc's own two (32 and 33, SIGCANCEL and SIGSETXID) and sigaddset refuses them,
  // so posix_spawn would set them to SIG_IGN in the child, and an ignored signal stays ignored across
  // exec: a program whose libc does not claim them would start with them ignored. Their bits are set
  // directly (glibc's sigset_t is an array of unsigned long), so they are reset to SIG_DFL too.
  for (int sig : {32, 33}) {
    constexpr size_t kBits = 8 * sizeof(unsigned long);
    all.__val[(sig - 1) / kBits] |= 1UL << ((sig - 1) % kBits);
  }
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (setsid) flags |= POSIX_SPAWN_SETSID;
  int rc = posix_spawnattr_setflags(&attr, flags);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0) rc = BuildFileActions(&fa, fds);
  pid_t pid = -1;
  if (rc == 0) {
    bool search = file.find('/') == std::string::npos;
    rc = search ? posix_spawnp(&pid, file.c_str(), &fa, &attr, cargv.data(), cenvp.data())
                : posix_spawn(&pid, file.c_str(), &fa, &attr, cargv.data(), cenvp.data());
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    napi::StatusError(env, Status::Sys(rc, "spawn", file)).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    // Cannot happen for our own unreaped child on a kernel that has pidfd_open (JS checks
    // spawnSupported() first); reap it rather than leave it unwatched.
    int err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    napi::StatusError(env, Status::Sys(err, "pidfd_open", file)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto* w = new ExitWatch();
  w->env = env;
  w->pid = pid;
  w->pidfd = pidfd;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->poll.data = w;
  uv_poll_init(loop, &w->poll, pidfd);
  uv_poll_start(&w->poll, UV_READABLE, OnPidfd);
  if (!keepAlive) uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
  napi_add_env_cleanup_hook(env, CleanupWatch, w);
  return Napi::Number::New(env, pid);
}

// spawnSupported() → whether this kernel has pidfd_open (5.3); without it JS keeps node's spawn.
Napi::Value SpawnSupported(const Napi::CallbackInfo& info) {
  int fd = PidfdOpen(getpid());
  if (fd >= 0) close(fd);
  return Napi::Boolean::New(info.Env(), fd >= 0);
}

// socketPair() → [a, b]: a connected AF_UNIX stream pair, both close-on-exec (the end a child gets is
// dup2'd onto its fd, which clears the flag there only). Node's own 'pipe' stdio is the same kind of pair.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    napi::StatusError(env, Status::Sys(errno, "socketpair")).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, sv[0]));
  a.Set(1u, Napi::Number::New(env, sv[1]));
  return a;
}

}  // namespace

void RegisterSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnProcess", Napi::Function::New(env, SpawnProcess, "spawnProcess"));
  exports.Set("spawnSupported", Napi::Function::New(env, SpawnSupported, "spawnSupported"));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair, "socketPair"));
}

}  // namespace js
}  // namespace berth
