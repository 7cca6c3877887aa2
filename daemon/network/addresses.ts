// Addresses: default subnets clear of the host's, static addresses checked, endpoint addresses allocated
// and released.
import { BerthError, invalid } from '../errors/errors';
import type { EndpointRow, NetworkRow } from './store';
import { cidrString, contains, DEFAULT_POOLS, intToIp, ipToInt, parseCidr, subnetFromPools, overlaps, type Cidr } from './ipam/ipam';
import { hostNets, hostNets6, type HostNet, type HostNet6 } from './ipam/host';
import { bigToIp6, cidr6String, contains6, ip6ToBig, isV6, overlaps6, parseCidr6, subnet6FromPool, ulaPool, type Cidr6 } from './ipam/ipam6';
import { NO_V6, type NetworkService } from './service';
import { ourBridges } from './bridges';

/** The host's routes and addresses that `sub` overlaps. */
export async function hostOverlaps(svc: NetworkService, sub: Cidr): Promise<HostNet[]> {
  const nets = await hostNets(ourBridges(svc)).catch((err) => {
    svc.d.log.warn({ err }, 'cannot read the host\'s routes and addresses; subnets are chosen without them');
    return [] as HostNet[];
  });
  return nets.filter((h) => overlaps(h.cidr, sub));
}

export function overlapWarning(svc: NetworkService, key: string, what: string, sub: Cidr | Cidr6, hits: Array<HostNet | HostNet6>): string {
  const text = typeof sub.base === 'bigint' ? cidr6String(sub as Cidr6) : cidrString(sub as Cidr);
  const w = `${what} ${text} overlaps ${hits.map((h) => `${h.text}${h.dev ? ` (dev ${h.dev})` : ''}`).join(', ')} on this host: ` +
    'traffic for those addresses may go to the other device';
  svc.overlapWarnings.set(key, w);
  svc.d.log.warn({ subnet: text, host: hits.map((h) => h.text) }, w);
  return w;
}

/** The host's IPv6 routes and addresses (an empty list, logged, when they cannot be read). */
export function host6(svc: NetworkService): Promise<HostNet6[]> {
  return hostNets6(ourBridges(svc)).catch((err) => {
    svc.d.log.warn({ err }, 'cannot read the host\'s IPv6 routes and addresses; IPv6 subnets are chosen without them');
    return [] as HostNet6[];
  });
}

/** The key of a network's IPv6 overlap warning in svc.overlapWarnings (its IPv4 one is the network's id). */
export const v6WarningKey = (id: string) => `${id}/v6`;

/** The default bridge's subnet and gateway: daemon.json `bip` as given (with a warning when the host
 *  already routes part of it), else the one it has when the host still does not use it, else the first
 *  subnet of the pools that overlaps neither the host's routes and addresses nor a user network. */
export async function defaultSubnet(svc: NetworkService, current: NetworkRow | undefined): Promise<{ sub: Cidr; gw: string }> {
  const cfg = svc.d.config;
  if (cfg.bip) {
    const sub = parseCidr(cfg.bip);
    const hits = await hostOverlaps(svc, sub);
    if (hits.length) overlapWarning(svc, 'bridge', 'bip', sub, hits);
    return { sub, gw: cfg.bip.split('/')[0] };
  }
  const host = await hostNets(ourBridges(svc)).catch((err) => {
    svc.d.log.warn({ err }, 'cannot read the host\'s routes and addresses; the default bridge takes the first pool subnet');
    return [] as HostNet[];
  });
  const others = svc.all().filter((n) => n.subnet && n.name !== 'bridge').map((n) => parseCidr(n.subnet));
  if (current && !current.ipamUser && current.bridge === cfg.bridge && current.subnet) {
    const sub = parseCidr(current.subnet);
    if (!host.some((h) => overlaps(h.cidr, sub)) && !others.some((o) => overlaps(o, sub))) return { sub, gw: current.gateway };
  }
  const pools = cfg.defaultAddressPools.length ? cfg.defaultAddressPools : DEFAULT_POOLS;
  const sub = subnetFromPools(pools, [...host.map((h) => h.cidr), ...others]);
  if (!sub) throw new BerthError('system', 'no subnet of the address pools is free for the default bridge: give bip or default-address-pools in daemon.json');
  return { sub, gw: intToIp(sub.base + 1) };
}

/** The default bridge's IPv6 (daemon.json `ipv6`): `fixed-cidr-v6` as given (with a warning when the host
 *  already routes part of it), else the ULA /64 it has while the host still does not use it, else the first
 *  free /64 of the engine's ULA pool (Docker 28 does the same when fixed-cidr-v6 is absent). */
export async function defaultV6(svc: NetworkService, current: NetworkRow | undefined): Promise<typeof NO_V6> {
  const cfg = svc.d.config;
  if (!cfg.ipv6) return NO_V6;
  const host = await host6(svc);
  if (cfg.fixedCidrV6) {
    const sub = parseCidr6(cfg.fixedCidrV6);
    const hits = host.filter((h) => overlaps6(h.cidr, sub));
    if (hits.length) overlapWarning(svc, v6WarningKey('bridge'), 'fixed-cidr-v6', sub, hits);
    return { ...NO_V6, ipv6: true, subnet6: cidr6String(sub), gateway6: bigToIp6(sub.base + 1n), ipamUser6: true };
  }
  if (current?.ipv6 && !current.ipamUser6 && current.subnet6) {
    const sub = parseCidr6(current.subnet6);
    if (!host.some((h) => overlaps6(h.cidr, sub))) return { ...NO_V6, ipv6: true, subnet6: current.subnet6, gateway6: current.gateway6 };
  }
  const sub = freeUla(svc, host);
  return { ...NO_V6, ipv6: true, subnet6: cidr6String(sub), gateway6: bigToIp6(sub.base + 1n) };
}

/** A /64 of the engine's ULA pool that no network uses and that overlaps no route or address of the host
 *  (`host`: hostNets6's list), as the IPv4 pools are chosen. */
export function freeUla(svc: NetworkService, host: HostNet6[]): Cidr6 {
  const used = svc.all().filter((n) => n.subnet6).map((n) => parseCidr6(n.subnet6));
  const sub = subnet6FromPool(ulaPool(svc.d.engineId), 64, [...used, ...host.map((h) => h.cidr)]);
  if (!sub) throw new BerthError('forbidden', 'could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network');
  return sub;
}

/** A new network's IPv6 subnet, range and gateway: as given (a subnet no other network overlaps; `hits`
 *  says which routes and addresses of the host it overlaps, for the warning), or a /64 of the engine's ULA
 *  pool that overlaps nothing. */
export async function ipv6Config(svc: NetworkService, c: { Subnet?: string; IPRange?: string; Gateway?: string }): Promise<typeof NO_V6 & { hits: HostNet6[] }> {
  let sub: Cidr6;
  let hits: HostNet6[] = [];
  if (c.Subnet) {
    sub = parseCidr6(c.Subnet);
    const s = sub;
    if (svc.all().some((n) => n.subnet6 && overlaps6(parseCidr6(n.subnet6), s))) throw new BerthError('forbidden', 'invalid pool request: Pool overlaps with other one on this address space');
    hits = (await host6(svc)).filter((h) => overlaps6(h.cidr, s));
  } else {
    if (c.IPRange || c.Gateway) throw invalid('no matching subnet for range / gateway: give --subnet');
    sub = freeUla(svc, await host6(svc));
  }
  let range = '';
  if (c.IPRange) {
    const r = parseCidr6(c.IPRange);
    if (r.prefix < sub.prefix || !contains6(sub, r.base)) throw invalid(`Invalid Address ${c.IPRange}: it must be a subset of ${cidr6String(sub)}`);
    range = cidr6String(r);
  }
  const gateway = c.Gateway ? bigToIp6(ip6ToBig(c.Gateway)) : bigToIp6(sub.base + 1n);
  if (!contains6(sub, ip6ToBig(gateway))) throw invalid(`no matching subnet for gateway ${c.Gateway}`);
  return { ipv6: true, subnet6: cidr6String(sub), ipRange6: range, gateway6: gateway, ipamUser6: !!c.Subnet, gateway6Implied: !!c.Subnet && !c.Gateway, hits };
}

export function checkStaticIp(svc: NetworkService, n: NetworkRow, ip: string): void {
  if (n.name === 'bridge' || n.driver !== 'bridge') throw invalid('user specified IP address is supported on user defined networks only');
  if (!n.subnet) throw invalid(`Invalid address ${ip}: IPv4 is not enabled on network ${n.name}`);
  if (!n.ipamUser) throw invalid('user specified IP address is supported only when connecting to networks with user configured subnets');
  const sub = parseCidr(n.subnet);
  const range = n.ipRange ? parseCidr(n.ipRange) : sub;
  if (!contains(sub, ipToInt(ip))) throw invalid(`Invalid address ${ip}: It does not belong to any of this network's subnets`);
  void range;
}

export function checkStaticIp6(svc: NetworkService, n: NetworkRow, ip: string): string {
  if (n.name === 'bridge' || n.driver !== 'bridge') throw invalid('user specified IP address is supported on user defined networks only');
  if (!isV6(ip)) throw invalid(`invalid IPv6 address: ${ip}`);
  const addr = ip6ToBig(ip);
  if (!n.ipv6) throw invalid(`Invalid address ${ip}: IPv6 is not enabled on network ${n.name}`);
  if (!n.ipamUser6) throw invalid('user specified IP address is supported only when connecting to networks with user configured subnets');
  if (!contains6(parseCidr6(n.subnet6), addr)) throw invalid(`Invalid address ${ip}: It does not belong to any of this network's subnets`);
  return bigToIp6(addr);
}

export function allocate(svc: NetworkService, n: NetworkRow, ep: EndpointRow): string {
  if (!n.subnet) return ''; // an IPv6-only network (EnableIPv4=false): no IPv4 address
  // The network's pool counts every endpoint's address, this container's own included (free to it).
  const pool = svc.pool(n);
  const own = svc.endpoint(n.id, ep.containerId)?.ip;
  if (ep.staticIp) {
    if (pool.holders(ipToInt(ep.staticIp)) > (own === ep.staticIp ? 1 : 0)) throw new BerthError('forbidden', `Address already in use`);
    return ep.staticIp;
  }
  const ip = pool.lowestFree(own ? ipToInt(own) : undefined);
  if (ip === undefined) throw new BerthError('system', `no available IPv4 addresses on this network's address pools: ${n.name} (${n.id})`);
  return intToIp(ip);
}

/** The endpoint's IPv6 address on an IPv6 network: its --ip6, else the lowest free one of the range (the
 *  network's IPv6 pool counts every endpoint's address, this container's own included, free to it). */
export function allocate6(svc: NetworkService, n: NetworkRow, ep: EndpointRow): string {
  const pool = svc.pool6(n);
  const own = svc.endpoint(n.id, ep.containerId)?.ip6;
  if (ep.staticIp6) {
    if (pool.holders(ip6ToBig(ep.staticIp6)) > (own && ip6ToBig(own) === ip6ToBig(ep.staticIp6) ? 1 : 0)) throw new BerthError('forbidden', 'Address already in use');
    return ep.staticIp6;
  }
  const ip = pool.lowestFree(own ? ip6ToBig(own) : undefined);
  if (ip === undefined) throw new BerthError('system', `no available IPv6 addresses on this network's address pools: ${n.name} (${n.id})`);
  return bigToIp6(ip);
}

export function release(svc: NetworkService, ep: EndpointRow): void {
  const cur = svc.endpoint(ep.networkId, ep.containerId);
  if (!cur) return;
  svc.saveEndpoint({ ...cur, ip: cur.staticIp, ip6: cur.staticIp6 ?? '', ifname: '', hostIf: '', mac: cur.staticMac });
}

export function releaseAll(svc: NetworkService, containerId: string): void {
  for (const e of svc.endpointsOfContainer(containerId)) release(svc, e);
}
