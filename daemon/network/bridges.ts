// The bridges of bridge networks, brought up once per berthd.
import type { NetworkRow } from './store';
import { parseCidr } from './ipam/ipam';
import { ensureBridge } from './drivers/bridge/bridge';
import { parseCidr6 } from './ipam/ipam6';
import { host } from '../runtime/net';
import { embeddedServers, resolveName } from './names';
import type { NetworkService } from './service';

/** Devices of berth's own networks: their routes are not the host's. */
export function ourBridges(svc: NetworkService): Set<string> {
  return new Set([svc.d.config.bridge, ...[...svc.nets.values()].filter((n) => n.driver === 'bridge').map((n) => n.bridge)]);
}

export function upBridge(svc: NetworkService, n: NetworkRow): Promise<void> {
  let up = svc.bridgesUp.get(n.id);
  if (!up) {
    up = bringUp(svc, n);
    svc.bridgesUp.set(n.id, up);
    up.catch(() => svc.bridgesUp.delete(n.id));
  }
  return up;
}

export async function bringUp(svc: NetworkService, n: NetworkRow): Promise<void> {
  await ensureBridge(n.bridge, n.subnet ? `${n.gateway}/${parseCidr(n.subnet).prefix}` : undefined);
  if (n.ipv6) await bridgeV6(svc, n);
  if (n.name !== 'bridge') {
    // On each gateway address of the network: a container's resolv.conf names both (names.ts).
    for (const gw of embeddedServers(n)) {
      await svc.dns.listen(gw, (name, from) => resolveName(svc, n.id, name, from))
        .catch((err) => svc.d.log.warn({ err, network: n.name, address: gw }, 'embedded DNS server not started'));
    }
  }
}

/** IPv6 on a network's bridge: enabled on the device (a host may have it off for new devices), the IPv6
 *  gateway address, and forwarding. The kernel forwards IPv6 only when net.ipv6.conf.all.forwarding is
 *  set (there is no per-device switch for routing as there is for IPv4's rp_filter): it is set once, when
 *  the first IPv6 network comes up, as Docker does, and not before, so a host with no IPv6 network keeps
 *  its own setting (forwarding=1 makes interfaces with accept_ra=1 ignore router advertisements). */
export async function bridgeV6(svc: NetworkService, n: NetworkRow): Promise<void> {
  await host.sysctl(`net/ipv6/conf/${n.bridge}/disable_ipv6`, '0');
  await host.addAddress({ name: n.bridge, address: `${n.gateway6}/${parseCidr6(n.subnet6).prefix}`, replace: true });
  if (!svc.v6Forwarding) {
    svc.v6Forwarding = host.sysctl('net/ipv6/conf/all/forwarding', '1').catch((err) => svc.d.log.warn({ err }, 'cannot enable IPv6 forwarding'));
  }
  await svc.v6Forwarding;
}
