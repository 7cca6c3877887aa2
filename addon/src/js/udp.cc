// UdpRelaySocket: the UDP socket a relayed published port listens on (daemon/network/ports/relay.ts). Each
// datagram comes with the address it was sent to (IP_PKTINFO / IPV6_RECVPKTINFO), and each answer leaves
// from an address given with it (the same control message on sendmsg), as docker-proxy answers: a socket
// on a wildcard address ('::', or '0.0.0.0' with berth's firewall off) would otherwise answer from the
// address the kernel picks for the route back, which a client that sent to another of the host's
// addresses drops as coming from a stranger. Node's dgram has no control messages, hence the addon.
//
// The socket is polled on the event loop (uv_poll): when it is readable, the datagrams waiting are read
// and handed to the JS callback one by one. The JS object stays alive while it is open (a reference held
// from construction to close()); close() stops the poll and closes the descriptor.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "js/bindings.h"
#include "napi/error.h"

namespace berth {
namespace js {

namespace {

// Datagrams read per wake-up before the loop gets its turn back (other ports, the API): a flood on one port
// must not hold berthd's thread.
constexpr int kReadsPerWake = 64;

// An IPv6 address with its interface index after a '%' (link-local addresses: fe80::1%3), the index 0 when
// there is none.
bool ParseAddr6(const std::string& text, in6_addr* addr, uint32_t* index) {
  size_t pct = text.find('%');
  *index = pct == std::string::npos ? 0 : static_cast<uint32_t>(std::strtoul(text.c_str() + pct + 1, nullptr, 10));
  return inet_pton(AF_INET6, text.substr(0, pct).c_str(), addr) == 1;
}

// The text of an IPv6 address, with '%<interface index>' for a link-local one (an answer to it must leave
// by that interface).
std::string Addr6Text(const in6_addr& addr, uint32_t index) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &addr, text, sizeof(text));
  std::string out = text;
  if (IN6_IS_ADDR_LINKLOCAL(&addr) && index != 0) out += "%" + std::to_string(index);
  return out;
}

bool ParseAddr(int family, const std::string& text, uint16_t port, sockaddr_storage* out, socklen_t* len) {
  std::memset(out, 0, sizeof(*out));
  if (family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(out);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    *len = sizeof(*a);
    return ParseAddr6(text, &a->sin6_addr, &a->sin6_scope_id);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(out);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  *len = sizeof(*a);
  return inet_pton(AF_INET, text.c_str(), &a->sin_addr) == 1;
}

class UdpRelaySocket : public Napi::ObjectWrap<UdpRelaySocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UdpRelaySocket", {
        InstanceMethod("send", &UdpRelaySocket::Send),
        InstanceMethod("close", &UdpRelaySocket::Close),
    });
  }

  // new UdpRelaySocket(family 4|6, address, port, onMessage(msg, fromAddr, fromPort, toAddr)): bound, and
  // for IPv6 v6-only (the IPv4 port is a binding of its own). Bind errors throw with Node's codes.
  explicit UdpRelaySocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpRelaySocket>(info), buf_(65536) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsFunction()) {
      napi::ArgumentError(env, "ERR_INVALID_ARG_TYPE", "UdpRelaySocket(family, address, port, onMessage)").ThrowAsJavaScriptException();
      return;
    }
    family_ = info[0].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
    std::string address = info[1].As<Napi::String>().Utf8Value();
    int port = info[2].As<Napi::Number>().Int32Value();
    sockaddr_storage sa;
    socklen_t len;
    if (port < 0 || port > 65535 || !ParseAddr(family_, address, static_cast<uint16_t>(port), &sa, &len)) {
      napi::ArgumentError(env, "ERR_INVALID_ARG_VALUE", "invalid address or port: " + address).ThrowAsJavaScriptException();
      return;
    }
    int fd = socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      napi::StatusError(env, Status::Sys(errno, "socket")).ThrowAsJavaScriptException();
      return;
    }
    int on = 1;
    int rc = family_ == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) : 0;
    if (rc == 0) {
      rc = family_ == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on))
                               : setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
    }
    if (rc == 0) rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), len);
    if (rc != 0) {
      int err = errno;
      ::close(fd);
      napi::StatusError(env, Status::Sys(err, "bind")).ThrowAsJavaScriptException();
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      ::close(fd);
      napi::StatusError(env, Status::Sys(EINVAL, "uv_loop")).ThrowAsJavaScriptException();
      return;
    }
    poll_ = new uv_poll_t;
    if (uv_poll_init_socket(loop, poll_, fd) != 0) {
      delete poll_;
      poll_ = nullptr;
      ::close(fd);
      napi::StatusError(env, Status::Sys(EINVAL, "uv_poll_init")).ThrowAsJavaScriptException();
      return;
    }
    fd_ = fd;
    poll_->data = this;
    onMessage_ = Napi::Persistent(info[3].As<Napi::Function>());
    ctx_ = std::make_unique<Napi::AsyncContext>(env, "berth.udpRelay");
    uv_poll_start(poll_, UV_READABLE, OnPoll);
    // Alive while open, whatever JS keeps of it: the poll calls back into this object.
    Ref();
  }

  ~UdpRelaySocket() override { Stop(); }

 private:
  // send(msg, toAddr, toPort, fromAddr) → whether the kernel took it (false when its buffer is full: UDP
  // drops it, as a full queue would). `fromAddr` '' lets the kernel pick the source address.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return Napi::Boolean::New(env, false);
    if (!info[0].IsBuffer() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsString()) {
      napi::ArgumentError(env, "ERR_INVALID_ARG_TYPE", "send(msg, toAddr, toPort, fromAddr)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto msg = info[0].As<Napi::Buffer<char>>();
    int port = info[2].As<Napi::Number>().Int32Value();
    sockaddr_storage to;
    socklen_t len;
    if (port < 0 || port > 65535 || !ParseAddr(family_, info[1].As<Napi::String>().Utf8Value(), static_cast<uint16_t>(port), &to, &len)) {
      return Napi::Boolean::New(env, false);
    }
    iovec iov{msg.Data(), msg.Length()};
    msghdr m{};
    m.msg_name = &to;
    m.msg_namelen = len;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
    std::string from = info[3].As<Napi::String>().Utf8Value();
    if (!from.empty()) {
      m.msg_control = cbuf;
      cmsghdr* c = reinterpret_cast<cmsghdr*>(cbuf);
      if (family_ == AF_INET6) {
        in6_pktinfo pi{};
        uint32_t index = 0;
        if (!ParseAddr6(from, &pi.ipi6_addr, &index)) return Napi::Boolean::New(env, false);
        pi.ipi6_ifindex = index;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        m.msg_controllen = CMSG_SPACE(sizeof(pi));
      } else {
        in_pktinfo pi{};
        if (inet_pton(AF_INET, from.c_str(), &pi.ipi_spec_dst) != 1) return Napi::Boolean::New(env, false);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        m.msg_controllen = CMSG_SPACE(sizeof(pi));
      }
    }
    ssize_t n;
    do {
      n = sendmsg(fd_, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return Napi::Boolean::New(env, n >= 0);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (fd_ >= 0) {
      Stop();
      Unref();
    }
    return info.Env().Undefined();
  }

  void Stop() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  static void OnPoll(uv_poll_t* h, int status, int /*events*/) {
    auto* self = static_cast<UdpRelaySocket*>(h->data);
    if (self == nullptr || status < 0) return;
    self->Drain();
  }

  void Drain() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (int i = 0; i < kReadsPerWake && fd_ >= 0; i++) {
      sockaddr_storage from{};
      alignas(cmsghdr) char cbuf[256];
      iovec iov{buf_.data(), buf_.size()};
      msghdr m{};
      m.msg_name = &from;
      m.msg_namelen = sizeof(from);
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = cbuf;
      m.msg_controllen = sizeof(cbuf);
      ssize_t n = recvmsg(fd_, &m, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN: nothing more now; any other error concerns one datagram only
      }
      std::string text;
      std::string dst;
      int port = 0;
      if (from.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&from);
        text = Addr6Text(a->sin6_addr, a->sin6_scope_id);
        port = ntohs(a->sin6_port);
      } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&from);
        char t[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &a->sin_addr, t, sizeof(t));
        text = t;
        port = ntohs(a->sin_port);
      }
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          in6_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
          dst = Addr6Text(pi.ipi6_addr, pi.ipi6_ifindex);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
          char t[INET_ADDRSTRLEN] = {};
          inet_ntop(AF_INET, &pi.ipi_addr, t, sizeof(t));
          dst = t;
        }
      }
      napi_value args[] = {
          Napi::Buffer<char>::Copy(env, buf_.data(), static_cast<size_t>(n)),
          Napi::String::New(env, text),
          Napi::Number::New(env, port),
          Napi::String::New(env, dst),
      };
      onMessage_.MakeCallback(Value(), 4, args, *ctx_);
      // The relay handles its own errors; one that escapes must not be left pending on this env.
      if (env.IsExceptionPending()) env.GetAndClearPendingException();
    }
  }

  int fd_ = -1;
  int family_ = AF_INET;
  uv_poll_t* poll_ = nullptr;
  std::vector<char> buf_;
  Napi::FunctionReference onMessage_;
  std::unique_ptr<Napi::AsyncContext> ctx_;
};

}  // namespace

void RegisterUdp(Napi::Env env, Napi::Object exports) {
  exports.Set("UdpRelaySocket", UdpRelaySocket::Define(env));
}

}  // namespace js
}  // namespace berth
