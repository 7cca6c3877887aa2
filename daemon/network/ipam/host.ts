// What the host's network already uses: the IPv4 destinations of its routes (every table, so VPN and policy
// routes count) and the subnets of its addresses. A bridge berth makes on a subnet the host already routes
// elsewhere (docker0's 172.17.0.0/16 on a host that has run Docker, a VPN's 10.8.0.0/24) gets no traffic:
// the kernel keeps sending that subnet to the other device. Read with `ip -j`, once per network create and
// once at start.
import { tools } from '../../lib/tools';
import { parseCidr, type Cidr } from './ipam';

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
