#include "net/link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

namespace berth {
namespace net {

namespace {

ifinfomsg LinkHeader(int index) {
  ifinfomsg h{};
  h.ifi_family = AF_UNSPEC;
  h.ifi_index = index;
  return h;
}

std::string AttrString(const nlattr* a) {
  if (!a) return {};
  const char* s = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
  return std::string(s, strnlen(s, a->nla_len - NLA_HDRLEN));
}

const void* AttrData(const nlattr* a) { return reinterpret_cast<const char*>(a) + NLA_HDRLEN; }

std::string FormatMac(const nlattr* a) {
  if (!a || a->nla_len - NLA_HDRLEN != 6) return {};
  const auto* b = static_cast<const unsigned char*>(AttrData(a));
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return text;
}

Status ParseIp(const std::string& text, in_addr* out) {
  if (::inet_pton(AF_INET, text.c_str(), out) != 1) return Status::Invalid(EINVAL, "not an IPv4 address", text);
  return Status::Ok();
}

}  // namespace

bool ParseMac(const std::string& text, unsigned char out[6]) {
  unsigned int b[6];
  char tail;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) {
    return false;
  }
  for (int i = 0; i < 6; i++) out[i] = static_cast<unsigned char>(b[i]);
  return true;
}

Status LinkIndex(Socket& s, const std::string& name, int* index) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Status::Invalid(EINVAL, "not an interface name", name);
  Message m(RTM_GETLINK, 0);
  m.Header(LinkHeader(0));
  m.AttrStr(IFLA_IFNAME, name);
  m.AttrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::vector<char> reply;
  Status st = s.Get(m, name, &reply);
  if (!st.ok()) return st.Context("look up link");
  if (reply.size() < NLMSG_LENGTH(sizeof(ifinfomsg))) return Status::Invalid(ENODEV, "no answer for link", name);
  *index = static_cast<const ifinfomsg*>(NLMSG_DATA(reinterpret_cast<const nlmsghdr*>(reply.data())))->ifi_index;
  return Status::Ok();
}

Status CreateBridge(Socket& s, const std::string& name, uint32_t mtu) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Status::Invalid(EINVAL, "not an interface name", name);
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  m.Header(LinkHeader(0));
  m.AttrStr(IFLA_IFNAME, name);
  if (mtu) m.AttrU32(IFLA_MTU, mtu);
  size_t info = m.Begin(IFLA_LINKINFO);
  m.AttrStr(IFLA_INFO_KIND, "bridge");
  m.End(info);
  return s.Call(m, name).Context("create bridge");
}

Status CreateVeth(Socket& s, const VethSpec& spec) {
  for (const std::string* n : {&spec.name, &spec.peer}) {
    if (n->empty() || n->size() >= IFNAMSIZ) return Status::Invalid(EINVAL, "not an interface name", *n);
  }
  unsigned char mac[6];
  if (!spec.peer_mac.empty() && !ParseMac(spec.peer_mac, mac)) return Status::Invalid(EINVAL, "not a MAC address", spec.peer_mac);
  UniqueFd ns;
  if (!spec.peer_netns.empty()) {
    ns = UniqueFd(::open(spec.peer_netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid()) return Status::Sys(errno, "open", spec.peer_netns, "network namespace for the veth peer");
  }
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  m.Header(LinkHeader(0));
  m.AttrStr(IFLA_IFNAME, spec.name);
  if (spec.mtu) m.AttrU32(IFLA_MTU, spec.mtu);
  size_t info = m.Begin(IFLA_LINKINFO);
  m.AttrStr(IFLA_INFO_KIND, "veth");
  size_t data = m.Begin(IFLA_INFO_DATA);
  size_t peer = m.Begin(VETH_INFO_PEER);
  m.Header(LinkHeader(0));
  m.AttrStr(IFLA_IFNAME, spec.peer);
  if (spec.mtu) m.AttrU32(IFLA_MTU, spec.mtu);
  if (!spec.peer_mac.empty()) m.Attr(IFLA_ADDRESS, mac, 6);
  if (ns.valid()) m.AttrU32(IFLA_NET_NS_FD, static_cast<uint32_t>(ns.get()));
  m.End(peer);
  m.End(data);
  m.End(info);
  return s.Call(m, spec.name).Context("create veth pair " + spec.name + "/" + spec.peer);
}

Status SetLink(Socket& s, const LinkChange& c) {
  int index = 0;
  Status st = LinkIndex(s, c.name, &index);
  if (!st.ok()) return st;
  int master = 0;
  if (c.master && !c.master->empty()) {
    st = LinkIndex(s, *c.master, &master);
    if (!st.ok()) return st.Context("master of " + c.name);
  }
  unsigned char mac[6];
  if (c.mac && !ParseMac(*c.mac, mac)) return Status::Invalid(EINVAL, "not a MAC address", *c.mac);
  // Address and master first, up last: a port is attached before it passes traffic.
  if (c.mac || c.master || c.mtu) {
    Message m(RTM_NEWLINK, 0);
    m.Header(LinkHeader(index));
    if (c.mac) m.Attr(IFLA_ADDRESS, mac, 6);
    if (c.master) m.AttrU32(IFLA_MASTER, static_cast<uint32_t>(master));
    if (c.mtu) m.AttrU32(IFLA_MTU, *c.mtu);
    st = s.Call(m, c.name);
    if (!st.ok()) return st.Context("change link");
  }
  if (c.up) {
    ifinfomsg h = LinkHeader(index);
    h.ifi_change = IFF_UP;
    h.ifi_flags = *c.up ? IFF_UP : 0;
    Message m(RTM_NEWLINK, 0);
    m.Header(h);
    st = s.Call(m, c.name);
    if (!st.ok()) return st.Context(*c.up ? "set link up" : "set link down");
  }
  return Status::Ok();
}

Status DeleteLink(Socket& s, const std::string& name, bool* deleted) {
  *deleted = false;
  if (name.empty() || name.size() >= IFNAMSIZ) return Status::Invalid(EINVAL, "not an interface name", name);
  Message m(RTM_DELLINK, 0);
  m.Header(LinkHeader(0));
  m.AttrStr(IFLA_IFNAME, name);
  Status st = s.Call(m, name);
  if (!st.ok() && st.err() == ENODEV) return Status::Ok();
  if (!st.ok()) return st.Context("delete link");
  *deleted = true;
  return Status::Ok();
}

Status ListLinks(Socket& s, std::vector<LinkInfo>* out) {
  Message m(RTM_GETLINK, 0);
  m.Header(LinkHeader(0));
  m.AttrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::map<int, std::string> names;
  std::vector<std::pair<LinkInfo, int>> links;
  Status st = s.Dump(m, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return;
    const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    const char* attrs = reinterpret_cast<const char*>(ifi) + NLMSG_ALIGN(sizeof(ifinfomsg));
    auto tb = ParseAttrs(attrs, h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)), IFLA_MAX);
    LinkInfo l;
    l.index = ifi->ifi_index;
    l.name = AttrString(tb[IFLA_IFNAME]);
    l.up = (ifi->ifi_flags & IFF_UP) != 0;
    l.mac = FormatMac(tb[IFLA_ADDRESS]);
    if (tb[IFLA_MTU]) std::memcpy(&l.mtu, AttrData(tb[IFLA_MTU]), sizeof l.mtu);
    if (tb[IFLA_LINKINFO]) {
      auto info = ParseAttrs(AttrData(tb[IFLA_LINKINFO]), tb[IFLA_LINKINFO]->nla_len - NLA_HDRLEN, IFLA_INFO_MAX);
      l.kind = AttrString(info[IFLA_INFO_KIND]);
    }
    int master = 0;
    if (tb[IFLA_MASTER]) std::memcpy(&master, AttrData(tb[IFLA_MASTER]), sizeof master);
    names[l.index] = l.name;
    links.emplace_back(std::move(l), master);
  });
  if (!st.ok()) return st.Context("list links");
  for (auto& [l, master] : links) {
    if (master) l.master = names.count(master) ? names[master] : std::to_string(master);
    out->push_back(std::move(l));
  }
  return Status::Ok();
}

Status AddAddress(Socket& s, const std::string& name, const std::string& address, int prefix, bool replace) {
  const bool v6 = address.find(':') != std::string::npos;
  in_addr ip{};
  in6_addr ip6{};
  if (v6) {
    if (::inet_pton(AF_INET6, address.c_str(), &ip6) != 1) return Status::Invalid(EINVAL, "not an IPv6 address", address);
    if (prefix < 0 || prefix > 128) return Status::Invalid(EINVAL, "prefix length must be 0 to 128", address);
  } else {
    Status st = ParseIp(address, &ip);
    if (!st.ok()) return st;
    if (prefix < 0 || prefix > 32) return Status::Invalid(EINVAL, "prefix length must be 0 to 32", address);
  }
  int index = 0;
  Status st = LinkIndex(s, name, &index);
  if (!st.ok()) return st;
  ifaddrmsg h{};
  h.ifa_family = v6 ? AF_INET6 : AF_INET;
  h.ifa_prefixlen = static_cast<unsigned char>(prefix);
  h.ifa_scope = v6 && IN6_IS_ADDR_LINKLOCAL(&ip6) ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  h.ifa_index = static_cast<unsigned>(index);
  // IPv6: no duplicate address detection (addresses come from berth's IPAM, unique on the bridge), so the
  // address is usable at once instead of "tentative" for a second or more after the container starts.
  if (v6) h.ifa_flags = IFA_F_NODAD;
  Message m(RTM_NEWADDR, NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
  m.Header(h);
  if (v6) {
    m.Attr(IFA_LOCAL, &ip6, sizeof ip6);
    m.Attr(IFA_ADDRESS, &ip6, sizeof ip6);
    return s.Call(m, name).Context("add address " + address + "/" + std::to_string(prefix));
  }
  m.Attr(IFA_LOCAL, &ip, sizeof ip);
  m.Attr(IFA_ADDRESS, &ip, sizeof ip);
  if (prefix < 31) {
    in_addr brd{};
    const uint32_t mask = prefix == 0 ? 0 : htonl(~((1u << (32 - prefix)) - 1));
    brd.s_addr = ip.s_addr | ~mask;
    m.Attr(IFA_BROADCAST, &brd, sizeof brd);
  }
  return s.Call(m, name).Context("add address " + address + "/" + std::to_string(prefix));
}

Status ReplaceDefaultRoute(Socket& s, const std::string& name, const std::string& gateway) {
  const bool v6 = gateway.find(':') != std::string::npos;
  in_addr gw{};
  in6_addr gw6{};
  if (v6) {
    if (::inet_pton(AF_INET6, gateway.c_str(), &gw6) != 1) return Status::Invalid(EINVAL, "not an IPv6 address", gateway);
  } else {
    Status st = ParseIp(gateway, &gw);
    if (!st.ok()) return st;
  }
  int index = 0;
  Status st = LinkIndex(s, name, &index);
  if (!st.ok()) return st;
  rtmsg h{};
  h.rtm_family = v6 ? AF_INET6 : AF_INET;
  h.rtm_table = RT_TABLE_MAIN;
  h.rtm_protocol = RTPROT_BOOT;
  h.rtm_scope = RT_SCOPE_UNIVERSE;
  h.rtm_type = RTN_UNICAST;
  Message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  m.Header(h);
  if (v6) m.Attr(RTA_GATEWAY, &gw6, sizeof gw6);
  else m.Attr(RTA_GATEWAY, &gw, sizeof gw);
  m.AttrU32(RTA_OIF, static_cast<uint32_t>(index));
  return s.Call(m, name).Context("default route via " + gateway);
}

}  // namespace net
}  // namespace berth
