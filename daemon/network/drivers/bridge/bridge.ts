// The bridge driver: a Linux bridge per network with the gateway address on it, and per endpoint a veth
// pair whose host end is a port of the bridge and whose other end is eth<N> in the container's namespace.
// All of it is rtnetlink through the addon (../../exec.ts, host); a start makes about eight netlink
// requests and no process.
import { randomBytes } from 'node:crypto';
import { host, type Step } from '../../exec';

/** The bridge exists, is up, has the gateway address and routes 127.0.0.1 to containers (published
 *  ports reached on 127.0.0.1). Safe to call again on a bridge that is already so. */
export async function ensureBridge(name: string, gatewayCidr: string | undefined, mtu?: number): Promise<void> {
  await host.addBridge(name, mtu).catch((e) => {
    if (e.code !== 'EEXIST') throw e;
  });
  if (gatewayCidr) await host.addAddress({ name, address: gatewayCidr, replace: true });
  await host.setLink({ name, up: true });
  await host.sysctl(`net/ipv4/conf/${name}/route_localnet`, '1').catch(() => {});
}

export async function deleteBridge(name: string): Promise<void> {
  await host.deleteLink(name);
}

export interface VethSpec {
  bridge: string;
  netns: string;      // namespace file
  ifname: string;     // eth0, eth1 …
  address?: string;   // a.b.c.d/prefix (none on an IPv6-only network)
  mac: string;
  gateway?: string;   // default route via this address
  /** Whether the network has IPv6: the interface's IPv6 is switched on (with its address and route) or off
   *  (no link-local address either), as Docker sets net.ipv6.conf.<if>.disable_ipv6 per endpoint. */
  ipv6?: boolean;
  address6?: string;  // v6addr/prefix
  gateway6?: string;  // IPv6 default route via this address
  /** EndpointSettings.IPAMConfig.LinkLocalIPs: added beside the address (169.254/16, fe80::/64). */
  linkLocal?: string[];
}

export const newHostIfName = () => `veth${randomBytes(4).toString('hex').slice(0, 7)}`;

/** The steps that attach one endpoint; `hostIf` names the host end. The container end is made inside the
 *  namespace with its name and MAC (loopback came up with the namespace). */
export function vethSteps(s: VethSpec, hostIf: string): Step[] {
  return [
    {
      name: 'veth pair',
      do: () => host.addVeth({ name: hostIf, peer: s.ifname, peerNetns: s.netns, peerMac: s.mac }),
      undo: async () => { await host.deleteLink(hostIf); },
    },
    {
      name: 'bridge port',
      do: () => host.setLink({ name: hostIf, master: s.bridge, up: true }),
      undo: async () => {},
    },
    {
      name: 'container interface',
      do: async () => {
        // A kernel without IPv6 (ipv6.disable=1) has no such file: nothing to switch off there.
        if (s.ipv6) await host.sysctl(`net/ipv6/conf/${s.ifname}/disable_ipv6`, '0', s.netns);
        else await host.sysctl(`net/ipv6/conf/${s.ifname}/disable_ipv6`, '1', s.netns).catch(() => {});
        if (s.address) await host.addAddress({ name: s.ifname, address: s.address, netns: s.netns });
        if (s.address6) await host.addAddress({ name: s.ifname, address: s.address6, netns: s.netns });
        for (const ll of s.linkLocal ?? []) await host.addAddress({ name: s.ifname, address: `${ll}/${ll.includes(':') ? 64 : 16}`, netns: s.netns });
        await host.setLink({ name: s.ifname, up: true, netns: s.netns });
        if (s.gateway) await host.defaultRoute({ name: s.ifname, gateway: s.gateway, netns: s.netns });
        if (s.gateway6) await host.defaultRoute({ name: s.ifname, gateway: s.gateway6, netns: s.netns });
      },
      undo: async () => {},
    },
  ];
}

/** Deletes a link if it is there (a veth's peer goes with it). */
export async function deleteLink(name: string): Promise<void> {
  if (name) await host.deleteLink(name).catch(() => {});
}
