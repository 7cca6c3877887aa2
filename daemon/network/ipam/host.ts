// What the host's network already uses: the IPv4 (and IPv6) destinations of its routes (every table, so VPN
// and policy routes count) and the subnets of its addresses. A bridge berth makes on a subnet the host already routes
// elsewhere (docker0's 172.17.0.0/16 on a host that has run Docker, a VPN's 10.8.0.0/24) gets no traffic:
// the kernel keeps sending that subnet to the other device. Read with `ip -j`, once per network create and
// once at start.
import { tools } from '../../lib/tools';
import { parseCidr, type Cidr } from './ipam';
import { overlaps6, parseCidr6, type Cidr6 } from './ipam6';

export interface HostNet {
  cidr: Cidr;
  text: string; // as `ip` shows it, for messages
  dev: string;
}

interface IpRoute { dst?: string; dev?: string; type?: string }
interface IpAddr { ifname?: string; addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }> }

/** The host's routed and addressed IPv4 subnets, except those on the devices in `ours` (berth's bridges)
 *  and default routes. */
export async function hostNets(ours: Set<string>): Promise<HostNet[]> {
  const [routes, addrs] = await Promise.all([
    tools.ip(['-j', '-4', 'route', 'show', 'table', 'all']).then((o) => JSON.parse(o || '[]') as IpRoute[]),
    tools.ip(['-j', '-4', 'addr', 'show']).then((o) => JSON.parse(o || '[]') as IpAddr[]),
  ]);
  const out: HostNet[] = [];
  const add = (text: string, dev: string) => {
    if (ours.has(dev)) return;
    try {
      out.push({ cidr: parseCidr(text.includes('/') ? text : `${text}/32`), text, dev });
    } catch { /* not an IPv4 destination */ }
  };
  for (const r of routes) {
    if (!r.dst || r.dst === 'default' || r.type === 'broadcast' || r.type === 'multicast') continue;
    add(r.dst, r.dev ?? '');
  }
  for (const l of addrs) {
    for (const a of l.addr_info ?? []) {
      if (a.family === 'inet' && a.local) add(`${a.local}/${a.prefixlen ?? 32}`, l.ifname ?? '');
    }
  }
  return out;
}

export interface HostNet6 {
  cidr: Cidr6;
  text: string;
  dev: string;
}

/** The same for IPv6: the destinations of the host's IPv6 routes and the prefixes of its addresses, except
 *  those on `ours`, default routes, link-local (fe80::/10: every link has it, it is never routed) and
 *  multicast ones. A ULA subnet a VPN or another engine (Docker's own bridges) already uses would get no
 *  traffic on a berth bridge either. */
export async function hostNets6(ours: Set<string>): Promise<HostNet6[]> {
  const [routes, addrs] = await Promise.all([
    tools.ip(['-j', '-6', 'route', 'show', 'table', 'all']).then((o) => JSON.parse(o || '[]') as IpRoute[]),
    tools.ip(['-j', '-6', 'addr', 'show']).then((o) => JSON.parse(o || '[]') as IpAddr[]),
  ]);
  const out: HostNet6[] = [];
  const add = (text: string, dev: string) => {
    if (ours.has(dev)) return;
    let cidr: Cidr6;
    try {
      cidr = parseCidr6(text.includes('/') ? text : `${text}/128`);
    } catch { return; /* not an IPv6 destination */ }
    if (cidr.prefix === 0 || overlaps6(cidr, LINK_LOCAL) || overlaps6(cidr, MULTICAST) || cidr.base === 1n) return; // ::/0, fe80::/10, ff00::/8, ::1
    out.push({ cidr, text, dev });
  };
  for (const r of routes) {
    if (!r.dst || r.dst === 'default' || r.type === 'multicast') continue;
    add(r.dst, r.dev ?? '');
  }
  for (const l of addrs) {
    for (const a of l.addr_info ?? []) {
      if (a.family === 'inet6' && a.local) add(`${a.local}/${a.prefixlen ?? 128}`, l.ifname ?? '');
    }
  }
  return out;
}

const LINK_LOCAL = parseCidr6('fe80::/10');
const MULTICAST = parseCidr6('ff00::/8');
