// A container on its networks: endpoints recorded at create, set up at start, torn down at exit; connect
// and disconnect.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ContainerRecord } from '../containers/model';
import { BerthError, asBadReference, conflict, invalid, notFound } from '../errors/errors';
import { newId, shortId } from '../lib/ids';
import type { EndpointRow, NetworkRow } from './store';
import { macFor, parseCidr } from './ipam/ipam';
import { deleteLink, newHostIfName, vethSteps } from './drivers/bridge/bridge';
import { ip6ToBig, isV6, parseCidr6, randomMac } from './ipam/ipam6';
import { runSteps } from './exec';
import { host } from '../runtime/net';
import { PortMapper } from './ports/ports';
import { linksOf, parseLink } from './links';
import { crashPoint } from '../lib/crash';
import { ICC_OPT, type EndpointConfig, type NetSetup, type NetworkService } from './service';
import { checkStaticIp, checkStaticIp6, allocate, allocate6, release, releaseAll } from './addresses';
import { upBridge } from './bridges';
import { needsPortRules, syncContainer } from './firewalling';
import { hostHosts, rewriteHosts, rewriteResolvConf } from './names';

/** The network a container's NetworkMode names, if it is a network (not host/none/container:). */
export function modeNetwork(svc: NetworkService, mode: string): NetworkRow | undefined {
  if (!mode || mode === 'default') return svc.byName('bridge');
  if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) return undefined;
  return svc.lookup(mode);
}

/** Checks the networks a new container names and throws Docker's errors; `default` becomes `bridge`,
 *  as Docker records it. Nothing else changes. */
export function validateCreate(svc: NetworkService, rec: ContainerRecord, epConfigs: Record<string, EndpointConfig> | undefined): void {
  if (!rec.hostConfig.NetworkMode || rec.hostConfig.NetworkMode === 'default') rec.hostConfig.NetworkMode = 'bridge';
  const mode: string = rec.hostConfig.NetworkMode;
  if (mode.startsWith('container:')) asBadReference(() => svc.d.containers.lookup(mode.slice(10)));
  const net = modeNetwork(svc, mode);
  PortMapper.wanted(rec);
  for (const [name, cfg] of Object.entries(epConfigs ?? {})) {
    const n = svc.lookup(name);
    const ip = cfg?.IPAMConfig?.IPv4Address;
    if (ip) checkStaticIp(svc, n, ip);
    if (cfg?.IPAMConfig?.IPv6Address) checkStaticIp6(svc, n, cfg.IPAMConfig.IPv6Address);
    linkLocalIps(cfg);
    if ((cfg?.Aliases ?? []).length && n.name === 'bridge') throw invalid('network-scoped alias is supported only for containers in user defined networks');
    endpointExtras(cfg, n);
  }
  void net;
}

/** Records the endpoints of a new container (its NetworkMode network, plus the other EndpointsConfig). */
export function recordCreate(svc: NetworkService, rec: ContainerRecord, epConfigs: Record<string, EndpointConfig> | undefined): void {
  const mode: string = rec.hostConfig.NetworkMode || 'default';
  const primary = modeNetwork(svc, mode);
  if (!primary) return;
  const cfgFor = (n: NetworkRow) => epConfigs?.[n.name] ?? epConfigs?.[n.id] ?? (n === primary ? epConfigs?.[mode] ?? epConfigs?.default : undefined);
  const list = [primary, ...Object.keys(epConfigs ?? {}).map((k) => svc.lookup(k)).filter((n) => n.id !== primary.id)];
  for (const n of list) {
    const c = cfgFor(n);
    const mac = c?.MacAddress || (n === primary ? rec.config.MacAddress ?? '' : '');
    // Legacy links on a user network are the endpoint's (Docker shows them in EndpointSettings.Links).
    const extras = endpointExtras(c, n);
    if (n === primary && n.name !== 'bridge' && !extras.links.length) extras.links = linksOf(rec).map((l) => `${l.target}:${l.alias}`);
    const ip6 = c?.IPAMConfig?.IPv6Address ? checkStaticIp6(svc, n, c.IPAMConfig.IPv6Address) : '';
    svc.saveEndpoint({ networkId: n.id, containerId: rec.id, endpointId: '', ip: c?.IPAMConfig?.IPv4Address ?? '',
      mac, staticMac: mac, staticIp: c?.IPAMConfig?.IPv4Address ?? '',
      aliases: c?.Aliases ?? [], ifname: '', hostIf: '', gwPriority: gwPriority(c), ...extras,
      ip6, staticIp6: ip6, linkLocalIps: linkLocalIps(c) });
  }
}

/** The container is being removed: its endpoints go. */
export function forget(svc: NetworkService, containerId: string): void {
  svc.dropContainerEndpoints(containerId);
}

/** Before the shim spawns: the namespace and every endpoint. On failure nothing is left. */
export function setup(svc: NetworkService, rec: ContainerRecord): Promise<NetSetup> {
  const nets = svc.endpointsOfContainer(rec.id).map((e) => e.networkId);
  return svc.forContainer(rec.id, nets, async () => {
    const mode: string = rec.hostConfig.NetworkMode || 'default';
    if (mode === 'host') return { netns: undefined, hosts: hostHosts(), resolvConf: svc.resolvConf(rec) };
    // `none` still gets a namespace file of its own (only lo, up): CNI plugins (cri-dockerd's pod
    // sandboxes) configure the namespace through the SandboxKey inspect reports, so that path must exist
    // and hold the container's namespace for as long as it runs; teardown removes it as for any other.
    if (mode === 'none') return { netns: await svc.netns.create(shortId(rec.id)), hosts: svc.hosts(rec, []), resolvConf: svc.resolvConf(rec) };
    if (mode.startsWith('container:')) {
      const other = svc.d.containers.lookup(mode.slice(10));
      if (!svc.d.containers.isRunningId(other.rec.id)) throw conflict(`cannot join network of a non running container: ${other.rec.id}`);
      await svc.settled(other.rec.id);
      const file = svc.netns.pathOf(shortId(other.rec.id));
      // Without a namespace file of its own, its process's namespace, held open for this start
      // (a pid read earlier may belong to another process by now).
      const joined = (await svc.netns.list()).includes(shortId(other.rec.id)) ? file : svc.d.containers.holdNamespace(other, 'net', svc.d.containers.lookup(rec.id));
      const dir = svc.d.containers.containerDir(other.rec.id);
      const read = (f: string) => { try { return readFileSync(path.join(dir, f), 'utf8'); } catch { return ''; } };
      return { netns: joined, hosts: read('hosts') || svc.hosts(rec, []), resolvConf: read('resolv.conf') || svc.resolvConf(rec) };
    }
    const eps = svc.endpointsOfContainer(rec.id);
    const ns = await svc.netns.create(shortId(rec.id));
    const undos: Array<() => Promise<void>> = [];
    try {
      const gw = gateways(svc, eps);
      let i = 0;
      for (const ep of eps) undos.push(await attach(svc, rec, ep, ns, i++, { v4: ep === gw.v4, v6: ep === gw.v6 }));
      let firewall = needsPortRules(svc, rec.id);
      const to = portTargets(svc, rec.id);
      if ((to.ip4 || to.ip6) && PortMapper.wanted(rec).length) {
        // Host ports one container at a time: a random port is found, then held.
        await svc.locks.with([{ key: 'ports', exclusive: true }], () => svc.ports.map(rec, to.ip4, to.ip6));
        undos.push(async () => { svc.ports.unmap(rec.id); });
        firewall = true;
      }
      // The container's own elements in the firewall's maps and sets (firewalling.ts), and none for a
      // container without published ports on networks whose rules (made with the network) do not list
      // containers.
      if (firewall) await syncContainer(svc, rec.id);
    } catch (e) {
      for (const u of undos.reverse()) await u().catch(() => {});
      await syncContainer(svc, rec.id).catch(() => {});
      await svc.netns.remove(shortId(rec.id)).catch(() => {});
      releaseAll(svc, rec.id);
      throw e;
    }
    const mine = svc.endpointsOfContainer(rec.id);
    const user = mine.map((e) => svc.nets.get(e.networkId)).find((n) => n && n.name !== 'bridge');
    return { netns: ns, hosts: svc.hosts(rec, mine), resolvConf: svc.resolvConf(rec, user) };
  });
}

/** Which default routes an endpoint gives: IPv4's, IPv6's (see gateways). */
export interface Routes {
  v4: boolean;
  v6: boolean;
}

export async function attach(svc: NetworkService, rec: ContainerRecord, ep: EndpointRow, ns: string, index: number, routes: Routes): Promise<() => Promise<void>> {
  const n = svc.nets.get(ep.networkId);
  if (!n) throw notFound(`network ${ep.networkId} not found`);
  const ip = allocate(svc, n, ep);
  const ip6 = n.ipv6 ? allocate6(svc, n, ep) : '';
  // Docker's MAC is made from the IPv4 address; on an IPv6-only network there is none, so a random one.
  const mac = ep.staticMac || (ip ? macFor(ip) : randomMac());
  const hostIf = newHostIfName();
  const ifname = `eth${index}`;
  // Record the address before the links exist, so that a crash in between is swept at the next start.
  const row: EndpointRow = { ...ep, endpointId: ep.endpointId || newId(), ip, ip6, mac, ifname, hostIf };
  svc.saveEndpoint(row);
  crashPoint('network-attach.before-veth');
  try {
    await upBridge(svc, n);
    const undo = await runSteps(vethSteps({ bridge: n.bridge, netns: ns, ifname, address: ip ? `${ip}/${parseCidr(n.subnet).prefix}` : undefined, mac,
      gateway: ip && routes.v4 && !n.internal ? n.gateway : undefined, ipv6: n.ipv6,
      address6: ip6 ? `${ip6}/${parseCidr6(n.subnet6).prefix}` : undefined, gateway6: ip6 && routes.v6 && !n.internal ? n.gateway6 : undefined,
      linkLocal: (ep.linkLocalIps ?? []).filter((a) => n.ipv6 || !isV6(a)) }, hostIf));
    return async () => {
      await undo();
      release(svc, row);
    };
  } catch (e) {
    release(svc, row);
    throw e;
  }
}

/** The endpoints that give a container its default routes, IPv4's and IPv6's, as Docker 28 chooses them
 *  (libnetwork's endpoint order, then the first endpoint with a gateway of each family): endpoints sorted
 *  by GwPriority (highest first), then networks that are not internal, then those with a gateway of both
 *  families before those with one, then by network name. The first endpoint with both gives both routes;
 *  else the first with an IPv4 gateway gives IPv4's and the first with an IPv6 gateway IPv6's. So with an
 *  IPv4 network and an IPv6-only one, each gives its own family's route, and a dual-stack network takes
 *  both from an IPv4-only one of the same priority (its published ports go with it). */
export function gateways(svc: NetworkService, eps: EndpointRow[]): { v4?: EndpointRow; v6?: EndpointRow } {
  const caps = (e: EndpointRow) => {
    const n = svc.nets.get(e.networkId);
    if (!n || n.internal || n.driver !== 'bridge') return { v4: false, v6: false, n };
    return { v4: !!n.gateway, v6: n.ipv6 && !!n.gateway6, n };
  };
  const rows = eps.map((e) => ({ e, ...caps(e) }));
  const count = (r: { v4: boolean; v6: boolean }) => Number(r.v4) + Number(r.v6);
  rows.sort((a, b) => (b.e.gwPriority ?? 0) - (a.e.gwPriority ?? 0) || Number(!!a.n?.internal) - Number(!!b.n?.internal) ||
    count(b) - count(a) || ((a.n?.name ?? '') < (b.n?.name ?? '') ? -1 : (a.n?.name ?? '') > (b.n?.name ?? '') ? 1 : 0));
  let v4: EndpointRow | undefined;
  let v6: EndpointRow | undefined;
  for (const r of rows) {
    if (r.v4 && r.v6) return { v4: r.e, v6: r.e };
    if (r.v4 && !v4) v4 = r.e;
    if (r.v6 && !v6) v6 = r.e;
  }
  return { v4, v6 };
}

/** The addresses a running container's published ports go to: its IPv4 gateway endpoint's IPv4 address,
 *  its IPv6 gateway endpoint's IPv6 address (Docker maps ports on the gateway endpoints only; none on an
 *  internal network). */
export function portTargets(svc: NetworkService, containerId: string): { ip4?: string; ip6?: string } {
  const gw = gateways(svc, svc.endpointsOfContainer(containerId).filter((e) => e.hostIf));
  return { ip4: gw.v4?.ip || undefined, ip6: gw.v6?.ip6 || undefined };
}

/** A running container's default routes and published ports after a connect or disconnect changed its
 *  networks (`before`: the gateways it had): a gateway that changed gives its route (the old one's went
 *  with its link, or is replaced), and the ports follow the gateways' addresses (PortMapper.sync). */
export async function regateway(svc: NetworkService, rec: ContainerRecord, before: { v4?: EndpointRow; v6?: EndpointRow }): Promise<void> {
  const id = rec.id;
  const gw = gateways(svc, svc.endpointsOfContainer(id).filter((e) => e.hostIf));
  const ns = svc.netns.pathOf(shortId(id));
  const same = (a?: EndpointRow, b?: EndpointRow) => a?.networkId === b?.networkId;
  const n4 = gw.v4 && svc.nets.get(gw.v4.networkId);
  const n6 = gw.v6 && svc.nets.get(gw.v6.networkId);
  if (gw.v4?.ip && n4 && !same(gw.v4, before.v4)) await host.defaultRoute({ name: gw.v4.ifname, gateway: n4.gateway, netns: ns });
  if (gw.v6?.ip6 && n6 && !same(gw.v6, before.v6)) await host.defaultRoute({ name: gw.v6.ifname, gateway: n6.gateway6, netns: ns });
  if (!PortMapper.wanted(rec).length) return;
  const to = portTargets(svc, id);
  const changed = await svc.locks.with([{ key: 'ports', exclusive: true }], () => (to.ip4 || to.ip6 ? svc.ports.sync(rec, to.ip4, to.ip6) : Promise.resolve(svc.ports.unmap(id))));
  if (changed) await syncContainer(svc, id);
}

/** The container's process has exited: its links and namespace go, its addresses return to the pool. */
export function teardown(svc: NetworkService, rec: ContainerRecord): Promise<void> {
  const nets = svc.endpointsOfContainer(rec.id).map((e) => e.networkId);
  return svc.forContainer(rec.id, nets, async () => {
    const firewall = svc.ports.unmap(rec.id) || needsPortRules(svc, rec.id);
    for (const e of svc.endpointsOfContainer(rec.id)) {
      if (e.hostIf) await deleteLink(e.hostIf);
      release(svc, e);
    }
    if (firewall) await syncContainer(svc, rec.id).catch((err) => svc.d.log.warn({ err, id: rec.id }, 'firewall update failed'));
    await svc.netns.remove(shortId(rec.id)).catch((err) => svc.d.log.warn({ err, id: rec.id }, 'netns removal failed'));
  });
}

/** POST /networks/{id}/connect. */
export function connect(svc: NetworkService, ref: string, ctrRef: string, cfg: EndpointConfig | undefined): Promise<void> {
  const n = svc.lookup(ref);
  const live = svc.d.containers.lookup(ctrRef);
  return svc.forContainer(live.rec.id, [n.id], async () => {
    const mode: string = live.rec.hostConfig.NetworkMode || 'default';
    if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) {
      throw new BerthError('forbidden', `container cannot be disconnected from host network or connected to host network`);
    }
    if (n.driver !== 'bridge') throw new BerthError('forbidden', `container cannot be disconnected from host network or connected to host network`);
    if (svc.endpointsOfContainer(live.rec.id).some((e) => e.networkId === n.id)) {
      throw new BerthError('forbidden', `endpoint with name ${live.rec.name.slice(1)} already exists in network ${n.name}`);
    }
    const ip = cfg?.IPAMConfig?.IPv4Address;
    if (ip) checkStaticIp(svc, n, ip);
    const ip6 = cfg?.IPAMConfig?.IPv6Address ? checkStaticIp6(svc, n, cfg.IPAMConfig.IPv6Address) : '';
    if ((cfg?.Aliases ?? []).length && n.name === 'bridge') throw invalid('network-scoped alias is supported only for containers in user defined networks');
    const ep: EndpointRow = { networkId: n.id, containerId: live.rec.id, endpointId: '', ip: ip ?? '', mac: cfg?.MacAddress ?? '', staticMac: cfg?.MacAddress ?? '', staticIp: ip ?? '',
      aliases: cfg?.Aliases ?? [], ifname: '', hostIf: '', gwPriority: gwPriority(cfg), ...endpointExtras(cfg, n),
      ip6, staticIp6: ip6, linkLocalIps: linkLocalIps(cfg) };
    svc.saveEndpoint(ep);
    crashPoint('network-connect.after-row');
    if (svc.d.containers.isRunningId(live.rec.id)) {
      const used = new Set(svc.endpointsOfContainer(live.rec.id).map((e) => e.ifname));
      let i = 0;
      while (used.has(`eth${i}`)) i++;
      const others = svc.endpointsOfContainer(live.rec.id).filter((e) => e.hostIf);
      const before = gateways(svc, others);
      const after = gateways(svc, [...others, ep]);
      let undo: (() => Promise<void>) | undefined;
      try {
        // The new endpoint gives the default route of each family it becomes the gateway of (Docker's
        // order: gateways()), and the published ports follow the gateways (regateway).
        undo = await attach(svc, live.rec, ep, svc.netns.pathOf(shortId(live.rec.id)), i, { v4: after.v4 === ep, v6: after.v6 === ep });
        crashPoint('network-connect.after-veth');
        if (n.options[ICC_OPT] === 'false') await syncContainer(svc, live.rec.id);
        await regateway(svc, live.rec, before);
      } catch (e) {
        if (undo) await undo().catch(() => {});
        svc.dropEndpoint(n.id, live.rec.id);
        if (undo) {
          // The routes and ports the container had before, again.
          await syncContainer(svc, live.rec.id).catch(() => {});
          await regateway(svc, live.rec, {}).catch((err) => svc.d.log.warn({ err, id: live.rec.id }, 'restoring the gateways after a failed connect'));
        }
        throw e;
      }
      await rewriteHosts(svc, live.rec);
      await rewriteResolvConf(svc, live.rec);
    }
    svc.d.events.emit('network', 'connect', n.id, { container: live.rec.id, name: n.name, type: n.driver });
  });
}

/** POST /networks/{id}/disconnect. */
export function disconnect(svc: NetworkService, ref: string, ctrRef: string, force: boolean): Promise<void> {
  const n = svc.lookup(ref);
  let containerId: string;
  try {
    containerId = svc.d.containers.lookup(ctrRef).rec.id;
  } catch (e) {
    const ep = force ? svc.endpointsOf(n.id).find((x) => x.containerId.startsWith(ctrRef)) : undefined;
    if (!ep) throw e;
    containerId = ep.containerId;
  }
  // The reply comes once the endpoint is gone from the records; the veth's deletion (10–30 ms of the
  // kernel unregistering it) goes on under the container's and the network's locks, so whatever comes
  // next for either (connect, start, stop, network rm, a container joining this namespace, exec: see
  // settled()) waits for it, and a crash meanwhile leaves a veth no endpoint names, which sweep() removes.
  return new Promise<void>((resolve, reject) => {
    svc.forContainer(containerId, [n.id], async () => {
      const ep = svc.endpointsOf(n.id).find((e) => e.containerId === containerId);
      if (!ep) throw new BerthError('forbidden', `container ${containerId} is not connected to network ${n.name}`);
      const before = gateways(svc, svc.endpointsOfContainer(containerId).filter((e) => e.hostIf));
      svc.dropEndpoint(n.id, containerId);
      crashPoint('network-disconnect.after-row');
      if (ep.hostIf && n.options[ICC_OPT] === 'false') {
        // The rules name the veth: they change first, then the veth goes.
        await syncContainer(svc, containerId).catch(() => {});
      }
      if (ep.hostIf && (before.v4 === ep || before.v6 === ep)) {
        // The next network in line gives the default route it gave (replacing it on the way out), and the
        // published ports move to the new gateways, before the answer (as Docker's disconnect).
        let rec: ContainerRecord | undefined;
        try { rec = svc.d.containers.lookup(containerId).rec; } catch { /* removed meanwhile */ }
        if (rec) await regateway(svc, rec, before).catch((err) => svc.d.log.warn({ err, id: containerId }, 'default route and ports after a disconnect'));
      }
      svc.d.events.emit('network', 'disconnect', n.id, { container: containerId, name: n.name, type: n.driver });
      resolve();
      if (ep.hostIf) await deleteLink(ep.hostIf);
      if (ep.hostIf) {
        try { await rewriteResolvConf(svc, svc.d.containers.lookup(containerId).rec); } catch { /* removed meanwhile */ }
      }
    }).catch(reject);
  });
}

/** DELETE /containers/{parent}/{alias}?link=1: the legacy link `alias` of container `parent` goes (from
 *  its HostConfig.Links and its endpoints' Links); a running parent's /etc/hosts is written again. `name`
 *  is the link's full name as given ("webapp/redis"). */
export async function removeLink(svc: NetworkService, name: string): Promise<void> {
  const full = name.startsWith('/') ? name : `/${name}`;
  const cut = full.lastIndexOf('/');
  const parentName = full.slice(1, cut);
  const alias = full.slice(cut + 1);
  if (!parentName) throw conflict('Conflict, cannot remove the default link name of the container');
  let parent: ReturnType<typeof svc.d.containers.lookup>;
  try {
    parent = svc.d.containers.lookup(parentName);
  } catch {
    throw notFound(`No such container: ${name.replace(/^\//, '')}`);
  }
  const links = (parent.rec.hostConfig.Links ?? []) as string[];
  const keep = links.filter((l) => parseLink(l).alias !== alias);
  const eps = svc.endpointsOfContainer(parent.rec.id).filter((e) => (e.links ?? []).some((l) => parseLink(l).alias === alias));
  if (keep.length === links.length && !eps.length) throw notFound(`No such container: ${name.replace(/^\//, '')}`);
  await svc.forContainer(parent.rec.id, [], async () => {
    if (keep.length !== links.length) svc.d.containers.saveHostConfig(parent, { ...parent.rec.hostConfig, Links: keep.length ? keep : null });
    for (const e of eps) svc.saveEndpoint({ ...e, links: (e.links ?? []).filter((l) => parseLink(l).alias !== alias) });
    if (svc.d.containers.isRunningId(parent.rec.id)) await rewriteHosts(svc, parent.rec);
  });
}

/** Resolves when no network change of the container is under way (a disconnect's veth deletion). */
export function settled(svc: NetworkService, containerId: string): Promise<void> {
  return svc.locks.with([{ key: `ctr:${containerId}`, exclusive: false }], async () => {});
}

/** EndpointSettings.MacAddress, DriverOpts and Links, checked (Docker's words) and in the form stored. */
function endpointExtras(cfg: EndpointConfig | undefined, n: { name: string }): { driverOpts: Record<string, string>; links: string[] } {
  const mac = cfg?.MacAddress;
  if (mac && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) throw invalid(`invalid MAC address: ${mac}`);
  const opts = cfg?.DriverOpts ?? {};
  if (typeof opts !== 'object' || Array.isArray(opts) || !Object.values(opts).every((v) => typeof v === 'string')) throw invalid('DriverOpts must be an object of strings');
  const links = cfg?.Links ?? [];
  if (!Array.isArray(links)) throw invalid('Links must be an array of strings');
  if (links.length && n.name === 'bridge') throw invalid('links in EndpointSettings are supported only for containers in user defined networks (use HostConfig.Links)');
  const out = links.map((l) => {
    const p = parseLink(String(l));
    return `${p.target}:${p.alias}`;
  });
  return { driverOpts: { ...opts }, links: out };
}

/** EndpointSettings.GwPriority: an integer (negative ones let a network give way to the others). */
function gwPriority(cfg: EndpointConfig | undefined): number {
  const v = cfg?.GwPriority ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid('GwPriority must be an integer');
  return v;
}

/** EndpointSettings.IPAMConfig.LinkLocalIPs: link-local addresses (169.254.0.0/16, fe80::/10), checked. */
function linkLocalIps(cfg: EndpointConfig | undefined): string[] {
  const list = cfg?.IPAMConfig?.LinkLocalIPs ?? [];
  if (!Array.isArray(list)) throw invalid('LinkLocalIPs must be an array of strings');
  for (const ip of list) {
    const ok = typeof ip === 'string' && (isV6(ip) ? (() => { try { return (ip6ToBig(ip) >> 118n) === 0x3fan; } catch { return false; } })() : /^169\.254\.\d{1,3}\.\d{1,3}$/.test(ip) && ip.split('.').every((b) => Number(b) <= 255));
    if (!ok) throw invalid(`invalid link-local IP address: ${ip}`);
  }
  return [...list];
}
