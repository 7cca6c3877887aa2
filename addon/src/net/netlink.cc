#include "net/netlink.h"

#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth {
namespace net {

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

Message::Message(uint16_t type, uint16_t flags) {
  nlmsghdr h{};
  h.nlmsg_type = type;
  h.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  h.nlmsg_len = NLMSG_HDRLEN;
  buf_.reserve(256);  // room for any request berth makes, so building one never reallocates
  buf_.resize(NLMSG_HDRLEN);
  std::memcpy(buf_.data(), &h, sizeof h);
}

void Message::Put(const void* data, size_t len) {
  const size_t at = buf_.size();
  buf_.resize(at + NLMSG_ALIGN(len), 0);
  if (len) std::memcpy(buf_.data() + at, data, len);
  hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
}

void Message::Attr(uint16_t type, const void* data, size_t len) {
  nlattr a{};
  a.nla_type = type;
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  const size_t at = buf_.size();
  buf_.resize(at + NLA_HDRLEN + NLA_ALIGN(len), 0);
  std::memcpy(buf_.data() + at, &a, sizeof a);
  if (len) std::memcpy(buf_.data() + at + NLA_HDRLEN, data, len);
  hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
}

size_t Message::Begin(uint16_t type) {
  const size_t at = buf_.size();
  Attr(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0);
  return at;
}

void Message::End(size_t at) {
  nlattr* a = reinterpret_cast<nlattr*>(buf_.data() + at);
  a->nla_len = static_cast<uint16_t>(buf_.size() - at);
}

uint16_t Message::type() const { return reinterpret_cast<const nlmsghdr*>(buf_.data())->nlmsg_type; }

const char* TypeName(uint16_t type) {
  switch (type) {
    case RTM_NEWLINK: return "RTM_NEWLINK";
    case RTM_DELLINK: return "RTM_DELLINK";
    case RTM_GETLINK: return "RTM_GETLINK";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_DELADDR: return "RTM_DELADDR";
    case RTM_GETADDR: return "RTM_GETADDR";
    case RTM_NEWROUTE: return "RTM_NEWROUTE";
    case RTM_DELROUTE: return "RTM_DELROUTE";
    default: return "netlink";
  }
}

Status Socket::Open(Socket* out) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return Status::Sys(errno, "socket", {}, "NETLINK_ROUTE");
  UniqueFd owned(fd);
  int one = 1;
  // Best effort: the kernel's own words for a refused request (extended ack), without the request echoed.
  ::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  ::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) {
    return Status::Sys(errno, "bind", {}, "NETLINK_ROUTE");
  }
  *out = Socket(std::move(owned));
  return Status::Ok();
}

namespace {

// The extended-ack message text of an NLMSG_ERROR, if the kernel attached one.
std::string ExtAckText(const nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  size_t off = sizeof(nlmsgerr);
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - sizeof(nlmsghdr);
  const size_t body = h->nlmsg_len - NLMSG_HDRLEN;
  if (off >= body) return {};
  const char* start = static_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(off);
  auto attrs = ParseAttrs(start, body - NLMSG_ALIGN(off), NLMSGERR_ATTR_MSG);
  const nlattr* msg = attrs[NLMSGERR_ATTR_MSG];
  if (!msg) return {};
  const char* s = reinterpret_cast<const char*>(msg) + NLA_HDRLEN;
  return std::string(s, strnlen(s, msg->nla_len - NLA_HDRLEN));
}

}  // namespace

Status Socket::Exchange(Message& m, const std::string& what, const std::function<void(const nlmsghdr*)>& each,
                        bool dump) {
  nlmsghdr* h = m.hdr();
  h->nlmsg_seq = ++seq_;
  if (!dump) h->nlmsg_flags |= NLM_F_ACK;
  const std::string call = std::string("netlink ") + TypeName(m.type());
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = ::sendto(fd_.get(), h, m.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::Sys(errno, call, what, "send");
  std::vector<char> buf(64 * 1024);
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    do {
      n = ::recvmsg(fd_.get(), &mh, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Status::Sys(errno, call, what, "receive");
    if (mh.msg_flags & MSG_TRUNC) return Status::Invalid(EMSGSIZE, "netlink answer truncated", what);
    size_t len = static_cast<size_t>(n);
    for (auto* r = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != seq_) continue;  // a late answer to an earlier request
      if (r->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(r));
        if (e->error == 0) return Status::Ok();
        std::string text = ExtAckText(r);
        return Status::Sys(-e->error, call, what, text);
      }
      if (r->nlmsg_type == NLMSG_DONE) return Status::Ok();
      // An answer: one message for a RTM_GET* of one object (its ack follows), many for a dump.
      each(r);
    }
  }
}

Status Socket::Call(Message& m, const std::string& what) {
  return Exchange(m, what, [](const nlmsghdr*) {}, false);
}

Status Socket::Get(Message& m, const std::string& what, std::vector<char>* reply) {
  return Exchange(m, what, [reply](const nlmsghdr* r) {
    const char* p = reinterpret_cast<const char*>(r);
    reply->assign(p, p + r->nlmsg_len);
  }, false);
}

Status Socket::Dump(Message& m, const std::function<void(const nlmsghdr*)>& each) {
  m.hdr()->nlmsg_flags |= NLM_F_DUMP;
  return Exchange(m, {}, each, true);
}

std::vector<const nlattr*> ParseAttrs(const void* start, size_t len, size_t max_type) {
  std::vector<const nlattr*> out(max_type + 1, nullptr);
  const char* p = static_cast<const char*>(start);
  while (len >= NLA_HDRLEN) {
    const auto* a = reinterpret_cast<const nlattr*>(p);
    if (a->nla_len < NLA_HDRLEN || a->nla_len > len) break;
    const uint16_t type = a->nla_type & NLA_TYPE_MASK;
    if (type <= max_type) out[type] = a;
    const size_t step = NLA_ALIGN(a->nla_len);
    if (step >= len) break;
    p += step;
    len -= step;
  }
  return out;
}

}  // namespace net
}  // namespace berth
