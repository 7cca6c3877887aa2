// The in-root file calls (fs/inroot.h) for JS: roots and files travel as plain fd numbers, which the
// caller closes (fs.close); every call that walks or copies runs on the libuv pool.
#include <fcntl.h>
#include <sys/sysmacros.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fs/inroot.h"
#include "js/bindings.h"
#include "napi/args.h"
#include "napi/error.h"
#include "napi/worker.h"

namespace berth {
namespace js {

namespace {

using napi::ArgReader;

// A worker whose call fills a result that a second function turns into the promise's value.
class ValueWorker : public napi::PromiseWorker {
 public:
  using Call = std::function<Status()>;
  using ToJs = std::function<Napi::Value(Napi::Env)>;
  ValueWorker(Napi::Env env, const char* name, Call call, ToJs to_js)
      : PromiseWorker(env, name), call_(std::move(call)), to_js_(std::move(to_js)) {}

 protected:
  Status Run() override { return call_(); }
  Napi::Value Result(Napi::Env env) override { return to_js_ ? to_js_(env) : env.Undefined(); }

 private:
  Call call_;
  ToJs to_js_;
};

Napi::Value Start(Napi::Env env, ArgReader& args, const char* name, ValueWorker::Call call, ValueWorker::ToJs to_js = nullptr) {
  if (!args.ok()) return env.IsExceptionPending() ? env.Undefined() : napi::Rejected(env, args.Error());
  return napi::StartWorker<ValueWorker>(env, name, std::move(call), std::move(to_js));
}

int ReadFd(ArgReader& args, Napi::Value v, const char* name) {
  int64_t fd = args.Integer(v, name);
  if (args.ok() && (fd < 0 || fd > 0x7fffffff)) args.Invalid(name, "must be a file descriptor");
  return static_cast<int>(fd);
}

struct timespec ReadTime(ArgReader& args, Napi::Value v, const char* name) {
  struct timespec ts {};
  if (!args.ok()) return ts;
  if (v.IsEmpty() || !v.IsNumber()) {
    args.Integer(v, name);  // records the type mistake
    return ts;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) {
    args.Invalid(name, "must be a finite number of seconds");
    return ts;
  }
  double sec = std::floor(d);
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = static_cast<long>(std::llround((d - sec) * 1e9));
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

const char* TypeOf(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "char";
  return "block";
}

Napi::Object StatToJs(Napi::Env env, const struct stat& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", TypeOf(st.st_mode));
  o.Set("mode", static_cast<double>(st.st_mode));
  o.Set("uid", static_cast<double>(st.st_uid));
  o.Set("gid", static_cast<double>(st.st_gid));
  o.Set("size", static_cast<double>(st.st_size));
  o.Set("nlink", static_cast<double>(st.st_nlink));
  o.Set("rdevMajor", static_cast<double>(major(st.st_rdev)));
  o.Set("rdevMinor", static_cast<double>(minor(st.st_rdev)));
  o.Set("mtimeSec", static_cast<double>(st.st_mtim.tv_sec));
  o.Set("mtimeNsec", static_cast<double>(st.st_mtim.tv_nsec));
  return o;
}

Napi::Value RootOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string path = args.AbsPath(info[0], "path");
  int pid = 0;
  std::string start;
  if (args.ok() && info.Length() > 1 && !info[1].IsUndefined()) {
    Napi::Object o = args.Object(info[1], "owner");
    pid = static_cast<int>(args.Integer(o.Get("pid"), "owner.pid"));
    start = args.String(o.Get("startTime"), "owner.startTime");
    if (args.ok() && pid <= 0) args.Invalid("owner.pid", "must be a process id");
  }
  auto fd = std::make_shared<UniqueFd>();
  return Start(env, args, "berth:rootOpen", [=]() { return fs::OpenRoot(path, pid, start, fd.get()); },
               [fd](Napi::Env e) { return Napi::Number::New(e, fd->Release()); });
}

Napi::Value Resolve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int root = ReadFd(args, info[0], "root");
  std::string path = args.String(info[1], "path");
  bool follow = args.OptBool(info[2], "follow", true);
  auto r = std::make_shared<fs::Resolved>();
  return Start(env, args, "berth:inRootResolve", [=]() { return fs::ResolveInRoot(root, path, follow, r.get()); },
               [r](Napi::Env e) {
                 Napi::Object o = Napi::Object::New(e);
                 o.Set("inner", r->inner);
                 o.Set("stat", r->exists ? Napi::Value(StatToJs(e, r->st)) : e.Null());
                 return o;
               });
}

Napi::Value List(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int root = ReadFd(args, info[0], "root");
  std::string path = args.String(info[1], "path");
  auto entries = std::make_shared<std::vector<fs::Entry>>();
  return Start(env, args, "berth:inRootList", [=]() { return fs::ListInRoot(root, path, entries.get()); },
               [entries](Napi::Env e) {
                 Napi::Array a = Napi::Array::New(e, entries->size());
                 for (size_t i = 0; i < entries->size(); i++) {
                   Napi::Object o = Napi::Object::New(e);
                   o.Set("name", (*entries)[i].name);
                   o.Set("stat", StatToJs(e, (*entries)[i].st));
                   a.Set(static_cast<uint32_t>(i), o);
                 }
                 return a;
               });
}

Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int root = ReadFd(args, info[0], "root");
  std::string path = args.String(info[1], "path");
  struct Out {
    UniqueFd fd;
    struct stat st {};
  };
  auto out = std::make_shared<Out>();
  return Start(env, args, "berth:inRootOpenFile", [=]() { return fs::OpenFileInRoot(root, path, &out->fd, &out->st); },
               [out](Napi::Env e) {
                 Napi::Object o = Napi::Object::New(e);
                 o.Set("stat", StatToJs(e, out->st));
                 o.Set("fd", Napi::Number::New(e, out->fd.Release()));
                 return o;
               });
}

Napi::Value Readlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int root = ReadFd(args, info[0], "root");
  std::string path = args.String(info[1], "path");
  auto text = std::make_shared<std::string>();
  return Start(env, args, "berth:inRootReadlink", [=]() { return fs::ReadlinkInRoot(root, path, text.get()); },
               [text](Napi::Env e) { return Napi::String::New(e, *text); });
}

// Synchronous on purpose: a container's /etc/passwd on the exec path, where a pool round trip costs
// more than the read (bounded by `limit`).
Napi::Value ReadFileSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string root_path = args.AbsPath(info[0], "rootPath");
  std::string path = args.String(info[1], "path");
  int64_t limit = args.Integer(info[2], "limit");
  if (args.ok() && (limit < 0 || limit > (64 << 20))) args.Invalid("limit", "must be 0 to 64 MiB");
  if (!args.ok()) {
    if (!env.IsExceptionPending()) args.Error().ThrowAsJavaScriptException();
    return env.Undefined();
  }
  UniqueFd root;
  Status s = fs::OpenRoot(root_path, 0, "", &root);
  std::string text;
  bool found = false;
  if (s.ok()) s = fs::ReadFileInRoot(root.get(), path, static_cast<size_t>(limit), &text, &found);
  if (!s.ok()) {
    napi::StatusError(env, s).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return found ? Napi::Value(Napi::String::New(env, text)) : env.Null();
}

fs::DirOwner ReadOwner(ArgReader& args, Napi::Value v, const std::string& name) {
  fs::DirOwner o;
  Napi::Object obj = args.Object(v, name);
  if (!args.ok()) return o;
  o.mode = static_cast<uint32_t>(args.Integer(obj.Get("mode"), name + ".mode"));
  o.uid = static_cast<uint32_t>(args.Integer(obj.Get("uid"), name + ".uid"));
  o.gid = static_cast<uint32_t>(args.Integer(obj.Get("gid"), name + ".gid"));
  return o;
}

Napi::Value MkdirAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int root = ReadFd(args, info[0], "root");
  std::string path = args.String(info[1], "path");
  fs::DirOwner owner = ReadOwner(args, info[2], "owner");
  return Start(env, args, "berth:inRootMkdirAll", [=]() {
    UniqueFd fd;
    return fs::MkdirAllInRoot(root, path, owner, &fd);
  });
}

Napi::Value Place(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int root = ReadFd(args, info[0], "root");
  fs::PlaceSpec spec;
  Napi::Object o = args.Object(info[1], "spec");
  if (args.ok()) {
    spec.path = args.String(o.Get("path"), "spec.path");
    std::string type = args.String(o.Get("type"), "spec.type");
    if (type == "file") spec.type = 'f';
    else if (type == "dir") spec.type = 'd';
    else if (type == "symlink") spec.type = 'l';
    else if (type == "link") spec.type = 'h';
    else if (args.ok()) args.Invalid("spec.type", "must be 'file', 'dir', 'symlink' or 'link'");
    int64_t mode = args.Integer(o.Get("mode"), "spec.mode");
    if (args.ok() && (mode < 0 || mode > 07777)) args.Invalid("spec.mode", "must be permission bits");
    spec.mode = static_cast<uint32_t>(mode);
    spec.uid = static_cast<uint32_t>(args.Integer(o.Get("uid"), "spec.uid"));
    spec.gid = static_cast<uint32_t>(args.Integer(o.Get("gid"), "spec.gid"));
    spec.linkname = args.OptString(o.Get("linkname"), "spec.linkname").value_or("");
    Napi::Value mtime = o.Get("mtime");
    if (args.ok() && !mtime.IsUndefined()) {
      spec.has_mtime = true;
      spec.mtime = ReadTime(args, mtime, "spec.mtime");
    }
    Napi::Value parents = o.Get("parents");
    if (args.ok() && !parents.IsUndefined() && !parents.IsNull()) {
      spec.make_parents = true;
      spec.parents = ReadOwner(args, parents, "spec.parents");
    }
    spec.no_overwrite_dir_nondir = args.OptBool(o.Get("noOverwriteDirNonDir"), "spec.noOverwriteDirNonDir", false);
  }
  auto fd = std::make_shared<UniqueFd>();
  return Start(env, args, "berth:inRootPlace", [=]() { return fs::PlaceInRoot(root, spec, fd.get()); },
               [fd](Napi::Env e) { return Napi::Number::New(e, fd->valid() ? fd->Release() : -1); });
}

Napi::Value SetTimes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int root = ReadFd(args, info[0], "root");
  std::string path = args.String(info[1], "path");
  struct timespec mtime = ReadTime(args, info[2], "mtime");
  return Start(env, args, "berth:inRootSetTimes", [=]() { return fs::SetTimesInRoot(root, path, mtime); });
}

Napi::Value CopyUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int src_root = ReadFd(args, info[0], "srcRoot");
  std::string src_path = args.String(info[1], "srcPath");
  int dst = ReadFd(args, info[2], "dst");
  auto copied = std::make_shared<bool>(false);
  return Start(env, args, "berth:inRootCopyUp", [=]() { return fs::CopyUpInRoot(src_root, src_path, dst, copied.get()); },
               [copied](Napi::Env e) { return Napi::Boolean::New(e, *copied); });
}

Napi::Value OpenPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int root = ReadFd(args, info[0], "root");
  std::string path = args.String(info[1], "path");
  bool follow = args.OptBool(info[2], "follow", true);
  auto fd = std::make_shared<UniqueFd>();
  return Start(env, args, "berth:inRootOpenPath", [=]() { return fs::OpenInRoot(root, path, O_PATH, follow, fd.get()); },
               [fd](Napi::Env e) { return Napi::Number::New(e, fd->Release()); });
}

Napi::Value BindMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int source = ReadFd(args, info[0], "source");
  int root = ReadFd(args, info[1], "root");
  std::string path = args.String(info[2], "path");
  bool file = false, read_only = false;
  if (args.ok() && info.Length() > 3 && !info[3].IsUndefined()) {
    Napi::Object o = args.Object(info[3], "options");
    file = args.OptBool(o.Get("file"), "options.file", false);
    read_only = args.OptBool(o.Get("readOnly"), "options.readOnly", false);
  }
  auto fd = std::make_shared<UniqueFd>();
  return Start(env, args, "berth:bindMountInRoot",
               [=]() { return fs::BindMountInRoot(source, root, path, file, read_only, fd.get()); },
               [fd](Napi::Env e) { return Napi::Number::New(e, fd->Release()); });
}

Napi::Value UnmountFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  int fd = ReadFd(args, info[0], "fd");
  return Start(env, args, "berth:unmountFd", [=]() { return fs::UnmountFd(fd); });
}

Napi::Value Resolver(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), fs::InRootResolver()); }

}  // namespace

void RegisterInRoot(Napi::Env env, Napi::Object exports) {
  exports.Set("rootOpen", Napi::Function::New(env, RootOpen, "rootOpen"));
  exports.Set("inRootResolve", Napi::Function::New(env, Resolve, "inRootResolve"));
  exports.Set("inRootList", Napi::Function::New(env, List, "inRootList"));
  exports.Set("inRootOpenFile", Napi::Function::New(env, OpenFile, "inRootOpenFile"));
  exports.Set("inRootReadlink", Napi::Function::New(env, Readlink, "inRootReadlink"));
  exports.Set("inRootReadFileSync", Napi::Function::New(env, ReadFileSync, "inRootReadFileSync"));
  exports.Set("inRootMkdirAll", Napi::Function::New(env, MkdirAll, "inRootMkdirAll"));
  exports.Set("inRootPlace", Napi::Function::New(env, Place, "inRootPlace"));
  exports.Set("inRootSetTimes", Napi::Function::New(env, SetTimes, "inRootSetTimes"));
  exports.Set("inRootCopyUp", Napi::Function::New(env, CopyUp, "inRootCopyUp"));
  exports.Set("inRootOpenPath", Napi::Function::New(env, OpenPath, "inRootOpenPath"));
  exports.Set("bindMountInRoot", Napi::Function::New(env, BindMount, "bindMountInRoot"));
  exports.Set("unmountFd", Napi::Function::New(env, UnmountFd, "unmountFd"));
  exports.Set("inRootResolver", Napi::Function::New(env, Resolver, "inRootResolver"));
}

}  // namespace js
}  // namespace berth
