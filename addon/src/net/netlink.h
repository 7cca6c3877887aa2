// A NETLINK_ROUTE socket and the messages sent over it. A socket works in the network namespace it was
// made in for its whole life, so a socket for a container's namespace is made once by a short-lived thread
// that enters the namespace (netns.h, OpenIn) and then used from any thread, in berthd's own namespace.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/fd.h"
#include "util/status.h"

namespace berth {
namespace net {

// One request being built: the nlmsghdr, the family header (ifinfomsg, ifaddrmsg, rtmsg) and attributes,
// each padded to 4 bytes as netlink wants. Nested attributes are opened with Begin and closed with End.
class Message {
 public:
  Message(uint16_t type, uint16_t flags);

  // Appends the family header; its bytes are copied.
  template <typename T>
  void Header(const T& h) { Put(&h, sizeof h); }

  void Attr(uint16_t type, const void* data, size_t len);
  void AttrU32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof v); }
  void AttrStr(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  // Opens a nested attribute; returns where it starts, for End.
  size_t Begin(uint16_t type);
  void End(size_t at);

  uint16_t type() const;
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  size_t size() const { return buf_.size(); }

 private:
  void Put(const void* data, size_t len);
  std::vector<char> buf_;
};

// The name of an rtnetlink message type, for error messages ("RTM_NEWLINK").
const char* TypeName(uint16_t type);

class Socket {
 public:
  // A socket in the calling thread's network namespace.
  static Status Open(Socket* out);
  // Adopts a socket made elsewhere (see netns.h).
  explicit Socket(UniqueFd fd = UniqueFd()) : fd_(std::move(fd)) {}

  bool valid() const { return fd_.valid(); }

  // Sends m with NLM_F_ACK and waits for the kernel's answer. `what` names the object in a failure
  // ("veth0"); the kernel's extended-ack text, when it gives one, goes into the detail.
  Status Call(Message& m, const std::string& what);
  // Like Call, for a request whose answer is one message (e.g. RTM_GETLINK of one name).
  Status Get(Message& m, const std::string& what, std::vector<char>* reply);
  // Sends a NLM_F_DUMP request and passes each answer message to each.
  Status Dump(Message& m, const std::function<void(const nlmsghdr*)>& each);

 private:
  Status Exchange(Message& m, const std::string& what, const std::function<void(const nlmsghdr*)>& each, bool dump);
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

// The attributes in [start, start + len), indexed by type (nullptr where absent; types above max_type
// are skipped).
std::vector<const nlattr*> ParseAttrs(const void* start, size_t len, size_t max_type);

}  // namespace net
}  // namespace berth
