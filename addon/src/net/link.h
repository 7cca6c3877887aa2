// Links, addresses and routes over rtnetlink: what the bridge driver needs (a bridge, veth pairs with one
// end in a container's namespace, addresses, a default route) and a listing for the clean-up sweep.
// Every function works in the namespace of the socket it is given (netns.h, OpenSocket).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net/netlink.h"
#include "util/status.h"

namespace berth {
namespace net {

struct LinkChange {
  std::string name;
  std::optional<bool> up;
  std::optional<std::string> mac;     // "aa:bb:cc:dd:ee:ff"
  std::optional<std::string> master;  // a bridge's name; "" detaches
  std::optional<uint32_t> mtu;
};

struct VethSpec {
  std::string name;       // the end that stays in the socket's namespace
  std::string peer;       // the other end's name, in its namespace
  std::string peer_netns; // namespace file the peer is made in ("" = the same namespace)
  std::string peer_mac;   // optional
  uint32_t mtu = 0;
};

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;    // "veth", "bridge", … ("" for a device without link info, e.g. lo)
  std::string master;  // name of the bridge it is a port of, or ""
  std::string mac;
  uint32_t mtu = 0;
  bool up = false;
};

// The interface index of `name`; ENODEV when there is none.
Status LinkIndex(Socket& s, const std::string& name, int* index);

Status CreateBridge(Socket& s, const std::string& name, uint32_t mtu);
Status CreateVeth(Socket& s, const VethSpec& spec);
Status SetLink(Socket& s, const LinkChange& c);
// Deletes a link; *deleted is false (and the status ok) when there was none by that name.
Status DeleteLink(Socket& s, const std::string& name, bool* deleted);
Status ListLinks(Socket& s, std::vector<LinkInfo>* out);

// address: "a.b.c.d" (prefix 0-32) or an IPv6 address (prefix 0-128, added without DAD). replace: an address already there is not an error.
Status AddAddress(Socket& s, const std::string& name, const std::string& address, int prefix, bool replace);
// The default route via gateway on link `name` (replacing any default route there was).
Status ReplaceDefaultRoute(Socket& s, const std::string& name, const std::string& gateway);

// "aa:bb:cc:dd:ee:ff" → 6 bytes; false when it is not one.
bool ParseMac(const std::string& text, unsigned char out[6]);

}  // namespace net
}  // namespace berth
