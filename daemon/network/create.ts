// docker network create.
import { BerthError, conflict, invalid, notFound } from '../errors/errors';
import { newId } from '../lib/ids';
import { nowNs, rfc3339Nano } from '../lib/time';
import type { NetworkRow } from './store';
import { cidrString, contains, DEFAULT_POOLS, intToIp, ipToInt, parseCidr, subnetFromPools, overlaps, type Cidr } from './ipam/ipam';
import { deleteBridge } from './drivers/bridge/bridge';
import { hostNets, type HostNet } from './ipam/host';
import { contains6, ip6ToBig, isV6, parseCidr6 } from './ipam/ipam6';
import { crashPoint } from '../lib/crash';
import { NO_V6, type CreateBody, BRIDGE_NAME_OPT, type NetworkService } from './service';
import { hostOverlaps, overlapWarning, ipv6Config, v6WarningKey } from './addresses';
import { ourBridges, upBridge } from './bridges';
import { addNetworkFirewall } from './firewalling';

export function create(svc: NetworkService, body: CreateBody): Promise<{ Id: string; Warning: string }> {
  return svc.admin(async () => {
    const name = body.Name ?? '';
    if (!name) throw invalid('network name is required');
    if (svc.byName(name)) throw conflict(`network with name ${name} already exists`);
    const driver = body.Driver || 'bridge';
    if (driver === 'host' || driver === 'null' || driver === 'none') throw new BerthError('forbidden', `only one instance of "${driver}" network is allowed`);
    if (driver !== 'bridge') throw notFound(`plugin "${driver}" not found`);
    if (body.IPAM?.Driver && body.IPAM.Driver !== 'default') throw notFound(`plugin "${body.IPAM.Driver}" not found`);
    const configs = body.IPAM?.Config ?? [];
    const v6Config = (x: { Subnet?: string; IPRange?: string; Gateway?: string }) => isV6(x.Subnet ?? '') || (!x.Subnet && (isV6(x.Gateway ?? '') || isV6(x.IPRange ?? '')));
    const ipv4 = configs.filter((x) => !v6Config(x));
    const ipv6 = configs.filter(v6Config);
    if (ipv4.length > 1) throw invalid('berth supports one IPv4 subnet per network');
    if (ipv6.length > 1) throw invalid('berth supports one IPv6 subnet per network');
    // EnableIPv4=false (API 1.48, `--ipv4=false`): an IPv6-only network, with no IPv4 subnet, gateway or
    // addresses; it must have IPv6 instead.
    const noV4 = body.EnableIPv4 === false;
    if (noV4 && ipv4.length) throw invalid('IPv4 is disabled on this network (EnableIPv4=false): it takes no IPv4 subnet, range or gateway');
    if (noV4 && !body.EnableIPv6 && !ipv6.length) throw invalid('a network needs IPv4 or IPv6: EnableIPv4=false needs EnableIPv6=true');
    // An IPv6 subnet given without EnableIPv6 gives the network IPv6 (berth's choice: docker-py's tests
    // create such networks and give containers --ip6 addresses on them).
    const { hits: overlapHits6, ...v6 } = body.EnableIPv6 || ipv6.length ? await ipv6Config(svc, ipv6[0] ?? {}) : { ...NO_V6, hits: [] };
    const used = svc.all().filter((n) => n.subnet).map((n) => parseCidr(n.subnet));
    const c = ipv4[0] ?? {};
    let sub: Cidr | undefined;
    let overlapHits: HostNet[] = [];
    if (noV4) {
      sub = undefined;
    } else if (c.Subnet) {
      const s = parseCidr(c.Subnet);
      sub = s;
      if (used.some((u) => overlaps(u, s))) throw new BerthError('forbidden', `invalid pool request: Pool overlaps with other one on this address space`);
      // Asked for: used as given, with a warning when the host routes part of it elsewhere.
      overlapHits = await hostOverlaps(svc, s);
    } else {
      if (c.IPRange || c.Gateway) throw invalid('no matching subnet for range / gateway: give --subnet');
      const pools = svc.d.config.defaultAddressPools.length ? svc.d.config.defaultAddressPools : DEFAULT_POOLS;
      // Chosen: a subnet the host does not use (docker0, VPN routes, other bridges) nor another network.
      const host = await hostNets(ourBridges(svc)).catch((err) => {
        svc.d.log.warn({ err }, 'cannot read the host\'s routes and addresses; subnets are chosen without them');
        return [] as HostNet[];
      });
      const got = subnetFromPools(pools, [...used, ...host.map((h) => h.cidr)]);
      if (!got) throw new BerthError('forbidden', 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
      sub = got;
    }
    let gateway = '';
    if (sub) {
      const s = sub;
      if (c.IPRange) {
        const range = parseCidr(c.IPRange);
        if (!contains(s, range.base) || !contains(s, range.base + range.size - 1)) throw invalid(`Invalid Address ${c.IPRange}: it must be a subset of ${cidrString(s)}`);
      }
      gateway = c.Gateway ?? intToIp(s.base + 1);
      if (!contains(s, ipToInt(gateway))) throw invalid(`no matching subnet for gateway ${gateway}`);
      for (const [k, v] of Object.entries(c.AuxiliaryAddresses ?? {})) {
        if (!contains(s, ipToInt(v))) throw invalid(`no matching subnet for aux-address ${k}=${v}`);
      }
    }
    const aux6 = ipv6[0]?.AuxiliaryAddresses ?? {};
    for (const [k, v] of Object.entries(aux6)) {
      if (!isV6(v) || !contains6(parseCidr6(v6.subnet6), ip6ToBig(v))) throw invalid(`no matching subnet for aux-address ${k}=${v}`);
    }
    const id = newId();
    const options = { ...(body.Options ?? {}) };
    const bridge = options[BRIDGE_NAME_OPT] || `br-${id.slice(0, 12)}`;
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw invalid(`invalid bridge name: ${bridge}`);
    if (svc.all().some((n) => n.bridge === bridge)) throw conflict(`bridge name ${bridge} is already in use`);
    const row: NetworkRow = {
      id, name, driver, created: rfc3339Nano(nowNs()), bridge, subnet: sub ? cidrString(sub) : '', ipRange: c.IPRange ?? '', gateway,
      aux: { ...(c.AuxiliaryAddresses ?? {}), ...aux6 }, internal: !!body.Internal, attachable: !!body.Attachable, labels: body.Labels ?? {}, options,
      ipamUser: !!c.Subnet, gatewayImplied: !!c.Subnet && !c.Gateway, ...v6,
      // Shown back as sent: Docker keeps null when the body had no IPAM.Options (docker-py) and {} when
      // it sent an empty object (the docker CLI).
      ipamOptions: body.IPAM?.Options && typeof body.IPAM.Options === 'object' ? { ...body.IPAM.Options } : null,
    };
    // The row first: a crash after it leaves a bridge the next start owns and can remove.
    svc.store.insertNetwork(row);
    svc.reloadNetworks();
    crashPoint('network-create.after-row');
    try {
      // The bridge and the network's rules are independent (rules name the bridge by name).
      const [up, fw] = await Promise.allSettled([upBridge(svc, row), addNetworkFirewall(svc, row)]);
      if (up.status === 'rejected') throw up.reason;
      if (fw.status === 'rejected') throw fw.reason;
      crashPoint('network-create.after-bridge');
    } catch (e) {
      svc.bridgesUp.delete(id);
      await deleteBridge(bridge).catch(() => {});
      svc.store.deleteNetwork(id);
      svc.networkGone(id);
      await svc.applyFirewall().catch(() => {});
      throw e;
    }
    const warning = [
      sub && overlapHits.length ? overlapWarning(svc, id, `subnet of network ${name}`, sub, overlapHits) : '',
      overlapHits6.length ? overlapWarning(svc, v6WarningKey(id), `IPv6 subnet of network ${name}`, parseCidr6(v6.subnet6), overlapHits6) : '',
    ].filter(Boolean).join('\n');
    svc.d.events.emit('network', 'create', id, { name, type: driver });
    return { Id: id, Warning: warning };
  });
}
