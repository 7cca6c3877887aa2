// The networking entry points: namespaces, links, addresses, routes, sysctls. Each copies its arguments,
// then a PromiseWorker opens a NETLINK_ROUTE socket in the namespace asked for (net/netns.h) and does the
// work on the libuv pool.
#include <functional>
#include <string>
#include <vector>

#include "js/bindings.h"
#include "napi/args.h"
#include "napi/error.h"
#include "napi/worker.h"
#include "net/link.h"
#include "net/netns.h"

namespace berth {
namespace js {

namespace {

using napi::ArgReader;

// One netlink job in a namespace: open the socket there, then run the job on it.
class NetWorker : public napi::PromiseWorker {
 public:
  using Job = std::function<Status(net::Socket&)>;
  NetWorker(Napi::Env env, const char* name, std::string netns, Job job)
      : PromiseWorker(env, name), netns_(std::move(netns)), job_(std::move(job)) {}

 protected:
  Status Run() override {
    net::Socket sock;
    Status s = net::OpenSocket(netns_, &sock);
    if (!s.ok()) return s;
    return job_(sock);
  }

 private:
  std::string netns_;
  Job job_;
};

// A job with no socket (namespace files, sysctls).
class CallWorker : public napi::PromiseWorker {
 public:
  using Call = std::function<Status()>;
  CallWorker(Napi::Env env, const char* name, Call call) : PromiseWorker(env, name), call_(std::move(call)) {}

 protected:
  Status Run() override { return call_(); }

 private:
  Call call_;
};

Napi::Value Bad(Napi::Env env, ArgReader& args) {
  return env.IsExceptionPending() ? env.Undefined() : napi::Rejected(env, args.Error());
}

Napi::Value StartNet(Napi::Env env, ArgReader& args, const char* name, std::string netns, NetWorker::Job job) {
  if (!args.ok()) return Bad(env, args);
  return napi::StartWorker<NetWorker>(env, name, std::move(netns), std::move(job));
}

Napi::Value StartCall(Napi::Env env, ArgReader& args, const char* name, CallWorker::Call call) {
  if (!args.ok()) return Bad(env, args);
  return napi::StartWorker<CallWorker>(env, name, std::move(call));
}

// An optional namespace file: undefined or "" mean berthd's own namespace.
std::string OptNetns(ArgReader& args, Napi::Value v, const std::string& name) {
  if (v.IsEmpty() || v.IsUndefined() || v.IsNull() || (v.IsString() && v.As<Napi::String>().Utf8Value().empty())) return {};
  return args.AbsPath(v, name);
}

std::string IfName(ArgReader& args, Napi::Value v, const std::string& name) {
  std::string s = args.String(v, name);
  if (args.ok() && (s.empty() || s.size() > 15 || s.find('/') != std::string::npos || s.find(' ') != std::string::npos)) {
    args.Invalid(name, "must be an interface name of 1 to 15 characters. Received '" + s + "'");
  }
  return s;
}

std::optional<uint32_t> OptMtu(ArgReader& args, Napi::Value v, const std::string& name) {
  auto mtu = args.OptInteger(v, name);
  if (args.ok() && mtu && (*mtu < 68 || *mtu > 65535)) args.Invalid(name, "must be an MTU (68 to 65535)");
  if (!mtu) return std::nullopt;
  return static_cast<uint32_t>(*mtu);
}

Napi::Value NetnsPrepareDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string dir = args.AbsPath(info[0], "dir");
  return StartCall(env, args, "berth:netnsPrepareDir", [dir]() { return net::PrepareNetnsDir(dir); });
}

Napi::Value NetnsCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string path = args.AbsPath(info[0], "path");
  return StartCall(env, args, "berth:netnsCreate", [path]() { return net::CreateNetns(path); });
}

Napi::Value NetnsDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string path = args.AbsPath(info[0], "path");
  return StartCall(env, args, "berth:netnsDelete", [path]() { return net::DeleteNetns(path); });
}

Napi::Value SysctlWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string key = args.String(info[0], "key");
  std::string value = args.String(info[1], "value");
  std::string netns = OptNetns(args, info[2], "netns");
  if (args.ok() && (key.empty() || key[0] == '/' || key.find("..") != std::string::npos)) {
    args.Invalid("key", "must be a path below /proc/sys such as 'net/ipv4/ip_forward'. Received '" + key + "'");
  }
  return StartCall(env, args, "berth:sysctlWrite", [=]() { return net::WriteSysctl(netns, key, value); });
}

Napi::Value LinkAddBridge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string name = IfName(args, info[0], "name");
  std::optional<uint32_t> mtu;
  std::string netns;
  if (!info[1].IsUndefined()) {
    Napi::Object o = args.Object(info[1], "options");
    if (args.ok()) mtu = OptMtu(args, o.Get("mtu"), "options.mtu");
    if (args.ok()) netns = OptNetns(args, o.Get("netns"), "options.netns");
  }
  return StartNet(env, args, "berth:linkAddBridge", netns, [name, mtu](net::Socket& s) {
    return net::CreateBridge(s, name, mtu.value_or(0));
  });
}

Napi::Value LinkAddVeth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  net::VethSpec spec;
  std::string netns;
  Napi::Object o = args.Object(info[0], "spec");
  if (args.ok()) {
    spec.name = IfName(args, o.Get("name"), "spec.name");
    spec.peer = IfName(args, o.Get("peer"), "spec.peer");
    spec.peer_netns = OptNetns(args, o.Get("peerNetns"), "spec.peerNetns");
    spec.peer_mac = args.OptString(o.Get("peerMac"), "spec.peerMac").value_or("");
    spec.mtu = OptMtu(args, o.Get("mtu"), "spec.mtu").value_or(0);
    netns = OptNetns(args, o.Get("netns"), "spec.netns");
    unsigned char mac[6];
    if (args.ok() && !spec.peer_mac.empty() && !net::ParseMac(spec.peer_mac, mac)) {
      args.Invalid("spec.peerMac", "must be a MAC address like 02:42:ac:11:00:02. Received '" + spec.peer_mac + "'");
    }
  }
  return StartNet(env, args, "berth:linkAddVeth", netns, [spec](net::Socket& s) { return net::CreateVeth(s, spec); });
}

Napi::Value LinkSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  net::LinkChange c;
  std::string netns;
  Napi::Object o = args.Object(info[0], "change");
  if (args.ok()) {
    c.name = IfName(args, o.Get("name"), "change.name");
    netns = OptNetns(args, o.Get("netns"), "change.netns");
    Napi::Value up = o.Get("up");
    if (!up.IsUndefined()) c.up = args.OptBool(up, "change.up", false);
    c.mac = args.OptString(o.Get("mac"), "change.mac");
    c.master = args.OptString(o.Get("master"), "change.master");
    c.mtu = OptMtu(args, o.Get("mtu"), "change.mtu");
    unsigned char mac[6];
    if (args.ok() && c.mac && !net::ParseMac(*c.mac, mac)) {
      args.Invalid("change.mac", "must be a MAC address like 02:42:ac:11:00:02. Received '" + *c.mac + "'");
    }
  }
  return StartNet(env, args, "berth:linkSet", netns, [c](net::Socket& s) { return net::SetLink(s, c); });
}

// Resolves with whether there was a link to delete.
class DeleteWorker : public napi::PromiseWorker {
 public:
  DeleteWorker(Napi::Env env, std::string netns, std::string name)
      : PromiseWorker(env, "berth:linkDelete"), netns_(std::move(netns)), name_(std::move(name)) {}

 protected:
  Status Run() override {
    net::Socket sock;
    Status s = net::OpenSocket(netns_, &sock);
    if (!s.ok()) return s;
    return net::DeleteLink(sock, name_, &deleted_);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, deleted_); }

 private:
  std::string netns_, name_;
  bool deleted_ = false;
};

Napi::Value LinkDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string name = IfName(args, info[0], "name");
  std::string netns = OptNetns(args, info[1], "netns");
  if (!args.ok()) return Bad(env, args);
  return napi::StartWorker<DeleteWorker>(env, netns, name);
}

class ListWorker : public napi::PromiseWorker {
 public:
  ListWorker(Napi::Env env, std::string netns) : PromiseWorker(env, "berth:linkList"), netns_(std::move(netns)) {}

 protected:
  Status Run() override {
    net::Socket sock;
    Status s = net::OpenSocket(netns_, &sock);
    if (!s.ok()) return s;
    return net::ListLinks(sock, &links_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, links_.size());
    for (size_t i = 0; i < links_.size(); i++) {
      const net::LinkInfo& l = links_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", Napi::Number::New(env, l.index));
      o.Set("name", Napi::String::New(env, l.name));
      o.Set("kind", Napi::String::New(env, l.kind));
      o.Set("master", Napi::String::New(env, l.master));
      o.Set("mac", Napi::String::New(env, l.mac));
      o.Set("mtu", Napi::Number::New(env, l.mtu));
      o.Set("up", Napi::Boolean::New(env, l.up));
      a.Set(static_cast<uint32_t>(i), o);
    }
    return a;
  }

 private:
  std::string netns_;
  std::vector<net::LinkInfo> links_;
};

Napi::Value LinkList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string netns = OptNetns(args, info[0], "netns");
  if (!args.ok()) return Bad(env, args);
  return napi::StartWorker<ListWorker>(env, netns);
}

// "a.b.c.d/nn" or "v6addr/nnn" → address and prefix (the address itself is checked by net::AddAddress); records a mistake on args otherwise.
void SplitCidr(ArgReader& args, const std::string& cidr, const std::string& name, std::string* ip, int* prefix) {
  const size_t slash = cidr.find('/');
  const std::string bits = slash == std::string::npos ? "" : cidr.substr(slash + 1);
  if (slash == std::string::npos || bits.empty() || bits.size() > 3 ||
      bits.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(bits) > (cidr.find(':') == std::string::npos ? 32 : 128)) {
    args.Invalid(name, "must be an IPv4 or IPv6 address with a prefix length, like 172.17.0.2/16 or fd00::2/64. Received '" + cidr + "'");
    return;
  }
  *ip = cidr.substr(0, slash);
  *prefix = std::stoi(bits);
}

Napi::Value AddrAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string name, netns, ip, cidr;
  int prefix = 0;
  bool replace = false;
  Napi::Object o = args.Object(info[0], "spec");
  if (args.ok()) {
    name = IfName(args, o.Get("name"), "spec.name");
    netns = OptNetns(args, o.Get("netns"), "spec.netns");
    cidr = args.String(o.Get("address"), "spec.address");
    replace = args.OptBool(o.Get("replace"), "spec.replace", false);
    if (args.ok()) SplitCidr(args, cidr, "spec.address", &ip, &prefix);
  }
  return StartNet(env, args, "berth:addrAdd", netns, [=](net::Socket& s) {
    return net::AddAddress(s, name, ip, prefix, replace);
  });
}

Napi::Value RouteReplaceDefault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgReader args(env);
  std::string name, netns, gateway;
  Napi::Object o = args.Object(info[0], "spec");
  if (args.ok()) {
    name = IfName(args, o.Get("name"), "spec.name");
    netns = OptNetns(args, o.Get("netns"), "spec.netns");
    gateway = args.String(o.Get("gateway"), "spec.gateway");
  }
  return StartNet(env, args, "berth:routeReplaceDefault", netns, [=](net::Socket& s) {
    return net::ReplaceDefaultRoute(s, name, gateway);
  });
}

}  // namespace

void RegisterNet(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsPrepareDir", Napi::Function::New(env, NetnsPrepareDir, "netnsPrepareDir"));
  exports.Set("netnsCreate", Napi::Function::New(env, NetnsCreate, "netnsCreate"));
  exports.Set("netnsDelete", Napi::Function::New(env, NetnsDelete, "netnsDelete"));
  exports.Set("sysctlWrite", Napi::Function::New(env, SysctlWrite, "sysctlWrite"));
  exports.Set("linkAddBridge", Napi::Function::New(env, LinkAddBridge, "linkAddBridge"));
  exports.Set("linkAddVeth", Napi::Function::New(env, LinkAddVeth, "linkAddVeth"));
  exports.Set("linkSet", Napi::Function::New(env, LinkSet, "linkSet"));
  exports.Set("linkDelete", Napi::Function::New(env, LinkDelete, "linkDelete"));
  exports.Set("linkList", Napi::Function::New(env, LinkList, "linkList"));
  exports.Set("addrAdd", Napi::Function::New(env, AddrAdd, "addrAdd"));
  exports.Set("routeReplaceDefault", Napi::Function::New(env, RouteReplaceDefault, "routeReplaceDefault"));
}

}  // namespace js
}  // namespace berth
