// The predefined networks and the host brought in line after a berthd start; what a stop leaves.
import { newId, shortId } from '../lib/ids';
import { nowNs, rfc3339Nano } from '../lib/time';
import { cidrString, parseCidr, overlaps } from './ipam/ipam';
import { deleteBridge, deleteLink } from './drivers/bridge/bridge';
import { deleteTable } from './firewall/nft';
import { backends as iptablesBackends, chainNames, removeChains, type Backend } from './firewall/iptables';
import { hostNets, type HostNet } from './ipam/host';
import { hostLinks } from './exec';
import { writeFile } from 'node:fs/promises';
import { BRIDGE_NAME_OPT, ICC_OPT, NO_V6, type NetworkService } from './service';
import { overlapWarning, defaultSubnet, defaultV6, host6, v6WarningKey } from './addresses';
import { overlaps6, parseCidr6 } from './ipam/ipam6';
import { ourBridges, upBridge } from './bridges';
import { attach, gateways, portTargets } from './endpoints';
import { PortMapper } from './ports/ports';
import { rewriteHosts } from './names';

/** Makes bridge/host/none exist with the configured default bridge, the bridge device and the firewall. */
export async function init(svc: NetworkService): Promise<void> {
  const cfg = svc.d.config;
  let bridge = svc.byName('bridge');
  const { sub, gw } = await defaultSubnet(svc, bridge);
  const v6 = await defaultV6(svc, bridge);
  if (bridge && (bridge.bridge !== cfg.bridge || bridge.subnet !== cidrString(sub) || bridge.gateway !== gw || bridge.ipv6 !== v6.ipv6 || bridge.subnet6 !== v6.subnet6)) {
    // The configuration changed: the default network follows it (its endpoints are reassigned at start).
    svc.store.deleteNetwork(bridge.id);
    await deleteBridge(bridge.bridge).catch(() => {});
    bridge = undefined;
  }
  const now = rfc3339Nano(nowNs());
  if (!bridge) {
    svc.store.insertNetwork({ id: newId(), name: 'bridge', driver: 'bridge', created: now, bridge: cfg.bridge, subnet: cidrString(sub), ipRange: '',
      gateway: gw, aux: {}, internal: false, attachable: false, labels: {}, ipamUser: !!cfg.bip, ...v6,
      options: { 'com.docker.network.bridge.default_bridge': 'true', [ICC_OPT]: String(cfg.icc), 'com.docker.network.bridge.enable_ip_masquerade': 'true',
        'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0', [BRIDGE_NAME_OPT]: cfg.bridge, 'com.docker.network.driver.mtu': '1500' } });
  }
  for (const [name, driver] of [['host', 'host'], ['none', 'null']]) {
    if (!svc.byName(name)) {
      svc.store.insertNetwork({ id: newId(), name, driver, created: now, bridge: '', subnet: '', ipRange: '', gateway: '', aux: {},
        internal: false, attachable: false, labels: {}, options: {}, ipamUser: false, ...NO_V6 });
    }
  }
  svc.reload();
  try {
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
  } catch (e) {
    svc.d.log.warn({ err: e }, 'cannot enable ip_forward');
  }
  for (const n of svc.nets.values()) if (n.driver === 'bridge') await upBridge(svc, n);
  // User networks whose asked-for subnet the host routes elsewhere: warned again at every start.
  const asked = svc.all().filter((n) => n.driver === 'bridge' && n.name !== 'bridge' && n.ipamUser && n.subnet);
  if (asked.length) {
    const host = await hostNets(ourBridges(svc)).catch(() => [] as HostNet[]);
    for (const n of asked) {
      const hits = host.filter((h) => overlaps(h.cidr, parseCidr(n.subnet)));
      if (hits.length) overlapWarning(svc, n.id, `subnet of network ${n.name}`, parseCidr(n.subnet), hits);
    }
  }
  const asked6 = svc.all().filter((n) => n.driver === 'bridge' && n.name !== 'bridge' && n.ipv6 && n.ipamUser6 && n.subnet6);
  if (asked6.length) {
    const host = await host6(svc);
    for (const n of asked6) {
      const sub = parseCidr6(n.subnet6);
      const hits = host.filter((h) => overlaps6(h.cidr, sub));
      if (hits.length) overlapWarning(svc, v6WarningKey(n.id), `IPv6 subnet of network ${n.name}`, sub, hits);
    }
  }
  if (svc.firewallOn) {
    await svc.applyFirewall();
  } else {
    svc.d.log.info('iptables is false in daemon.json: berth leaves the firewall alone (no NAT; published ports are relayed by berthd)');
  }
}

/** After containers.restore: remove namespace files and veths that no running container uses. */
export async function sweep(svc: NetworkService): Promise<void> {
  const live = new Set(svc.d.containers.all().filter((l) => svc.d.containers.isRunningId(l.rec.id)).map((l) => shortId(l.rec.id)));
  for (const f of await svc.netns.list()) if (!live.has(f)) await svc.netns.remove(f).catch(() => {});
  const inUse = new Set(svc.eps.filter((e) => live.has(shortId(e.containerId))).map((e) => e.hostIf));
  const ours = new Set([...svc.nets.values()].filter((n) => n.driver === 'bridge').map((n) => n.bridge));
  for (const l of await hostLinks().catch(() => [])) {
    if (l.kind === 'veth' && ours.has(l.master) && !inUse.has(l.name)) await deleteLink(l.name);
  }
  for (const e of svc.eps) {
    if (!live.has(shortId(e.containerId)) && (e.hostIf || (e.ip && !e.staticIp) || (e.ip6 && !e.staticIp6))) {
      svc.saveEndpoint({ ...e, hostIf: '', ip: e.staticIp, ip6: e.staticIp6 ?? '', mac: e.staticMac });
    }
  }
  await finishConnects(svc, live);
  await svc.ports.restore((id) => svc.d.containers.isRunningId(id));
  await resyncPorts(svc);
  await svc.applyFirewall();
}

/** The published ports of running containers, held again as they were, brought in step with this start's
 *  configuration: "userland-proxy" turned off drops the [::] bindings relayed to containers without IPv6,
 *  turned on adds them (with the host port of the IPv4 binding); gateways that changed while berthd was
 *  down (an interrupted connect finished) move them. A container whose ports cannot all be held keeps
 *  those it had, with a warning in the log. */
async function resyncPorts(svc: NetworkService): Promise<void> {
  for (const live of svc.d.containers.all()) {
    if (!svc.d.containers.isRunningId(live.rec.id) || !PortMapper.wanted(live.rec).length) continue;
    const to = portTargets(svc, live.rec.id);
    if (!to.ip4 && !to.ip6) continue;
    await svc.ports.sync(live.rec, to.ip4, to.ip6).catch((err) => svc.d.log.warn({ err, id: live.rec.id }, 'published ports not brought in step with the configuration'));
  }
}

/** A `network connect` to a running container that a crash cut short (the endpoint recorded, its veth
 *  never made or half made): the container gets its interface now, as the connect would have given it. */
export async function finishConnects(svc: NetworkService, running: Set<string>): Promise<void> {
  const links = new Set((await hostLinks().catch(() => [])).map((l) => l.name));
  for (const live of svc.d.containers.all()) {
    if (!running.has(shortId(live.rec.id))) continue;
    const eps = svc.endpointsOfContainer(live.rec.id);
    const whole = eps.filter((e) => e.hostIf && links.has(e.hostIf));
    for (const ep of eps) {
      if (whole.includes(ep) || svc.nets.get(ep.networkId)?.driver !== 'bridge') continue;
      const used = new Set(whole.map((e) => e.ifname));
      let i = 0;
      while (used.has(`eth${i}`)) i++;
      try {
        const gw = gateways(svc, [...whole, ep]);
        await attach(svc, live.rec, { ...ep, hostIf: '', ifname: '' }, svc.netns.pathOf(shortId(live.rec.id)), i, { v4: gw.v4 === ep, v6: gw.v6 === ep });
        whole.push(ep);
        await rewriteHosts(svc, live.rec);
        svc.d.log.info({ id: live.rec.id, network: ep.networkId }, 'finished a network connect a crash interrupted');
      } catch (e) {
        svc.d.log.warn({ err: e, id: live.rec.id, network: ep.networkId }, 'could not finish an interrupted network connect');
      }
    }
  }
}

/** A clean stop: with no container running, berth's rules leave the host's firewall (a running container
 *  keeps its traffic while berthd is down, so they stay; the next start rewrites them). */
export async function shutdown(svc: NetworkService): Promise<void> {
  svc.dns.closeAll();
  if (!svc.firewallOn) return;
  if (svc.d.containers.all().some((l) => svc.d.containers.isRunningId(l.rec.id))) return;
  await svc.fwQueue;
  const chains = chainNames(svc.d.config.bridge);
  for (const be of await iptablesBackends(chains).catch(() => [] as Backend[])) if (be.ours) await removeChains(be, chains).catch(() => {});
  await deleteTable(svc.table);
}
