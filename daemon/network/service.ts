// The network service: owns the networks and endpoints tables, the bridges, veths, namespace files and the
// nftables table of this berthd. Containers call it at create (which networks), start (setup: a namespace
// and an endpoint per network, before the shim spawns), exit (teardown) and remove (forget).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { NetworkDeps } from './deps';
import type { ContainerRecord } from '../containers/model';
import { BerthError, asBadReference, conflict, invalid, notFound } from '../errors/errors';
import { newId, shortId } from '../lib/ids';
import { nowNs, rfc3339Nano } from '../lib/time';
import { NetworkStore, type EndpointRow, type NetworkRow } from './store';
import { NetnsDir } from './netns';
import { cidrString, contains, DEFAULT_POOLS, firstFree, intToIp, ipToInt, macFor, parseCidr, subnetFromPools, overlaps, type Cidr } from './ipam/ipam';
import { deleteBridge, deleteLink, ensureBridge, newHostIfName, vethSteps } from './drivers/bridge/bridge';
import { applyTable, deleteTable, renderNetworkAdd, renderTable, type FwNetwork } from './firewall/nft';
import { backends as iptablesBackends, chainNames, removeChains, syncChains, type Backend } from './firewall/iptables';
import { hostNets, type HostNet } from './ipam/host';
import { bigToIp6, cidr6String, contains6, firstFree6, ip6ToBig, isV6, overlaps6, parseCidr6, subnet6FromPool, ulaPool, type Cidr6 } from './ipam/ipam6';
import { hostLinks, runSteps } from './exec';
import { host } from '../runtime/net';
import { writeFile } from 'node:fs/promises';
import { DnsServer } from './dns/server';
import { hostResolvConf } from './dns/upstream';
import { PortMapper } from './ports/ports';
import { hostsLine, linkEnv, linksOf, parseLink, type LinkPeer } from './links';
import { Locks, type LockRequest } from './locks';
import { crashPoint } from '../lib/crash';

export const BRIDGE_NAME_OPT = 'com.docker.network.bridge.name';
export const ICC_OPT = 'com.docker.network.bridge.enable_icc';

/** What a container start needs from the network: how to set up its namespace, and its files' contents. */
export interface NetSetup {
  /** undefined: the host's namespace; '': a new namespace (loopback only); else a namespace file to join. */
  netns: string | undefined;
  hosts: string;
  resolvConf: string;
}

interface CreateBody {
  Name?: string;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Labels?: Record<string, string>;
  Options?: Record<string, string>;
  IPAM?: { Driver?: string; Config?: Array<{ Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }>; Options?: Record<string, string> };
  EnableIPv6?: boolean;
  EnableIPv4?: boolean;
  CheckDuplicate?: boolean;
}

export interface EndpointConfig {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] | null } | null;
  Aliases?: string[] | null;
  MacAddress?: string;
  GwPriority?: number;
  DriverOpts?: Record<string, string> | null;
  Links?: string[] | null;
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

const PREDEFINED = ['bridge', 'host', 'none'];

/** The IPv6 fields of a network without IPv6. */
const NO_V6 = { ipv6: false, subnet6: '', ipRange6: '', gateway6: '', ipamUser6: false };

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

export class NetworkService {
  private readonly store: NetworkStore;
  readonly netns: NetnsDir;
  private nets = new Map<string, NetworkRow>();
  private eps: EndpointRow[] = [];
  /** `eps` by network and by container, made on first use after each reload: list, inspect and DNS answers
   *  ask per container or network, and filtering all endpoints made them linear in the containers. */
  private epsBy: { byNetwork: Map<string, EndpointRow[]>; byContainer: Map<string, EndpointRow[]> } | undefined;
  private readonly table: string;
  private readonly dns: DnsServer;
  private fwQueue: Promise<unknown> = Promise.resolve();
  /** The networks whose rules the table holds after the last firewall change, and whether it holds port
   *  rules; undefined when not known (before the first change, after a failed one). */
  private fwState: { nets: Set<string>; ports: boolean } | undefined;
  /** Networks being removed: their rules go before their rows do. */
  private fwExclude = new Set<string>();
  /** Per-container and per-network locks (locks.ts): starts on one network run side by side. */
  private readonly locks = new Locks();
  /** Bridges brought up by this berthd (network id → done), so an attach does not redo it. */
  private bridgesUp = new Map<string, Promise<void>>();
  /** Published ports: their DNAT rules and the Ports views. */
  readonly ports: PortMapper;
  /** daemon.json "iptables": false: berth leaves the host's firewall alone (no nftables table, no
   *  iptables chains), as dockerd's key does; published ports are then relayed by the port holders. */
  private readonly firewallOn: boolean;
  /** The iptables backends found at the last sync of berth's chains, and the bridges they were given. */
  private hostFw: { backends: Backend[]; key: string } | undefined;
  /** Warnings for `docker info`: the default bridge's and user networks' subnets that overlap the host's. */
  private readonly overlapWarnings = new Map<string, string>();
  /** net.ipv6.conf.all.forwarding, set with the first IPv6 bridge (bridgeV6). */
  private v6Forwarding: Promise<void> | undefined;

  constructor(private readonly d: NetworkDeps) {
    this.store = new NetworkStore(d.db);
    this.netns = new NetnsDir(path.join(d.config.execRoot, 'netns'));
    this.table = `berth_${d.config.bridge.replace(/[^A-Za-z0-9_]/g, '_')}`;
    this.dns = new DnsServer(d.log);
    this.firewallOn = d.config.iptables !== false;
    this.ports = new PortMapper(d.db, !this.firewallOn);
    this.reload();
  }

  private reload(): void {
    this.nets = new Map(this.store.networks().map((n) => [n.id, n]));
    this.eps = this.store.endpoints();
    this.epsBy = undefined;
  }

  /** Network create and remove, one at a time (names, subnets and bridge names stay unique). */
  private admin<T>(fn: () => Promise<T>): Promise<T> {
    return this.locks.with([{ key: 'networks', exclusive: true }], fn);
  }

  /** A container's own namespace and endpoints, exclusively, and its networks (so they are not removed
   *  meanwhile), shared with other containers. */
  private forContainer<T>(containerId: string, networkIds: string[], fn: () => Promise<T>): Promise<T> {
    const wanted: LockRequest[] = [{ key: `ctr:${containerId}`, exclusive: true }, ...networkIds.map((id) => ({ key: `net:${id}`, exclusive: false }))];
    return this.locks.with(wanted, fn);
  }

  // ---- the predefined networks and the state of the host after a start ----------------------------

  /** Makes bridge/host/none exist with the configured default bridge, the bridge device and the firewall. */
  async init(): Promise<void> {
    const cfg = this.d.config;
    let bridge = this.byName('bridge');
    const { sub, gw } = await this.defaultSubnet(bridge);
    const v6 = this.defaultV6(bridge);
    if (bridge && (bridge.bridge !== cfg.bridge || bridge.subnet !== cidrString(sub) || bridge.gateway !== gw || bridge.ipv6 !== v6.ipv6 || bridge.subnet6 !== v6.subnet6)) {
      // The configuration changed: the default network follows it (its endpoints are reassigned at start).
      this.store.deleteNetwork(bridge.id);
      await deleteBridge(bridge.bridge).catch(() => {});
      bridge = undefined;
    }
    const now = rfc3339Nano(nowNs());
    if (!bridge) {
      this.store.insertNetwork({ id: newId(), name: 'bridge', driver: 'bridge', created: now, bridge: cfg.bridge, subnet: cidrString(sub), ipRange: '',
        gateway: gw, aux: {}, internal: false, attachable: false, labels: {}, ipamUser: !!cfg.bip, ...v6,
        options: { 'com.docker.network.bridge.default_bridge': 'true', [ICC_OPT]: String(cfg.icc), 'com.docker.network.bridge.enable_ip_masquerade': 'true',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0', [BRIDGE_NAME_OPT]: cfg.bridge, 'com.docker.network.driver.mtu': '1500' } });
    }
    for (const [name, driver] of [['host', 'host'], ['none', 'null']]) {
      if (!this.byName(name)) {
        this.store.insertNetwork({ id: newId(), name, driver, created: now, bridge: '', subnet: '', ipRange: '', gateway: '', aux: {},
          internal: false, attachable: false, labels: {}, options: {}, ipamUser: false, ...NO_V6 });
      }
    }
    this.reload();
    try {
      await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
    } catch (e) {
      this.d.log.warn({ err: e }, 'cannot enable ip_forward');
    }
    for (const n of this.nets.values()) if (n.driver === 'bridge') await this.upBridge(n);
    // User networks whose asked-for subnet the host routes elsewhere: warned again at every start.
    const asked = this.all().filter((n) => n.driver === 'bridge' && n.name !== 'bridge' && n.ipamUser && n.subnet);
    if (asked.length) {
      const host = await hostNets(this.ourBridges()).catch(() => [] as HostNet[]);
      for (const n of asked) {
        const hits = host.filter((h) => overlaps(h.cidr, parseCidr(n.subnet)));
        if (hits.length) this.overlapWarning(n.id, `subnet of network ${n.name}`, parseCidr(n.subnet), hits);
      }
    }
    if (this.firewallOn) {
      await this.applyFirewall();
    } else {
      this.d.log.info('iptables is false in daemon.json: berth leaves the firewall alone (no NAT; published ports are relayed by berthd)');
    }
  }

  /** Devices of berth's own networks: their routes are not the host's. */
  private ourBridges(): Set<string> {
    return new Set([this.d.config.bridge, ...[...this.nets.values()].filter((n) => n.driver === 'bridge').map((n) => n.bridge)]);
  }

  /** The host's routes and addresses that `sub` overlaps. */
  private async hostOverlaps(sub: Cidr): Promise<HostNet[]> {
    const nets = await hostNets(this.ourBridges()).catch((err) => {
      this.d.log.warn({ err }, 'cannot read the host\'s routes and addresses; subnets are chosen without them');
      return [] as HostNet[];
    });
    return nets.filter((h) => overlaps(h.cidr, sub));
  }

  private overlapWarning(key: string, what: string, sub: Cidr, hits: HostNet[]): string {
    const w = `${what} ${cidrString(sub)} overlaps ${hits.map((h) => `${h.text}${h.dev ? ` (dev ${h.dev})` : ''}`).join(', ')} on this host: ` +
      'traffic for those addresses may go to the other device';
    this.overlapWarnings.set(key, w);
    this.d.log.warn({ subnet: cidrString(sub), host: hits.map((h) => h.text) }, w);
    return w;
  }

  /** The default bridge's subnet and gateway: daemon.json `bip` as given (with a warning when the host
   *  already routes part of it), else the one it has when the host still does not use it, else the first
   *  subnet of the pools that overlaps neither the host's routes and addresses nor a user network. */
  private async defaultSubnet(current: NetworkRow | undefined): Promise<{ sub: Cidr; gw: string }> {
    const cfg = this.d.config;
    if (cfg.bip) {
      const sub = parseCidr(cfg.bip);
      const hits = await this.hostOverlaps(sub);
      if (hits.length) this.overlapWarning('bridge', 'bip', sub, hits);
      return { sub, gw: cfg.bip.split('/')[0] };
    }
    const host = await hostNets(this.ourBridges()).catch((err) => {
      this.d.log.warn({ err }, 'cannot read the host\'s routes and addresses; the default bridge takes the first pool subnet');
      return [] as HostNet[];
    });
    const others = this.all().filter((n) => n.subnet && n.name !== 'bridge').map((n) => parseCidr(n.subnet));
    if (current && !current.ipamUser && current.bridge === cfg.bridge && current.subnet) {
      const sub = parseCidr(current.subnet);
      if (!host.some((h) => overlaps(h.cidr, sub)) && !others.some((o) => overlaps(o, sub))) return { sub, gw: current.gateway };
    }
    const pools = cfg.defaultAddressPools.length ? cfg.defaultAddressPools : DEFAULT_POOLS;
    const sub = subnetFromPools(pools, [...host.map((h) => h.cidr), ...others]);
    if (!sub) throw new BerthError('system', 'no subnet of the address pools is free for the default bridge: give bip or default-address-pools in daemon.json');
    return { sub, gw: intToIp(sub.base + 1) };
  }

  /** The default bridge's IPv6 (daemon.json `ipv6`): `fixed-cidr-v6` as given, else the ULA /64 it has, else
   *  the first free /64 of the engine's ULA pool (Docker 28 does the same when fixed-cidr-v6 is absent). */
  private defaultV6(current: NetworkRow | undefined): typeof NO_V6 {
    const cfg = this.d.config;
    if (!cfg.ipv6) return NO_V6;
    if (cfg.fixedCidrV6) {
      const sub = parseCidr6(cfg.fixedCidrV6);
      return { ipv6: true, subnet6: cidr6String(sub), ipRange6: '', gateway6: bigToIp6(sub.base + 1n), ipamUser6: true };
    }
    if (current?.ipv6 && !current.ipamUser6 && current.subnet6) {
      return { ipv6: true, subnet6: current.subnet6, ipRange6: '', gateway6: current.gateway6, ipamUser6: false };
    }
    const sub = this.freeUla();
    return { ipv6: true, subnet6: cidr6String(sub), ipRange6: '', gateway6: bigToIp6(sub.base + 1n), ipamUser6: false };
  }

  /** A /64 of the engine's ULA pool that no network uses. */
  private freeUla(): Cidr6 {
    const used = this.all().filter((n) => n.subnet6).map((n) => parseCidr6(n.subnet6));
    const sub = subnet6FromPool(ulaPool(this.d.engineId), 64, used);
    if (!sub) throw new BerthError('forbidden', 'could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network');
    return sub;
  }

  /** The `docker info` Warnings of the network. */
  warnings(): string[] {
    return [...this.overlapWarnings.values()].map((w) => `WARNING: ${w}`);
  }

  /** Berth's chains in the host's iptables filter table (firewall/iptables.ts) list exactly the bridges of
   *  its networks; removed when there is none. Checked at every network change, so a firewall that came
   *  after berthd (Docker installed meanwhile) is caught up with at the next one. */
  private async syncHostFirewall(): Promise<void> {
    if (!this.firewallOn) return;
    const chains = chainNames(this.d.config.bridge);
    const bridges = [...this.nets.values()].filter((n) => n.driver === 'bridge' && !this.fwExclude.has(n.id))
      .map((n) => ({ bridge: n.bridge, dns: n.name !== 'bridge' ? n.gateway : undefined }));
    const key = JSON.stringify(bridges);
    if (this.hostFw?.key === key) return;
    this.hostFw = undefined;
    const found = await iptablesBackends(chains);
    for (const be of found) {
      if (bridges.length && be.drops) {
        await syncChains(be, chains, bridges);
        this.d.log.debug({ backend: be.name, family: be.family, bridges: bridges.length }, 'iptables chains synced');
      } else if (be.ours) {
        await removeChains(be, chains);
      }
    }
    this.hostFw = { backends: found, key };
  }

  /** A clean stop: with no container running, berth's rules leave the host's firewall (a running container
   *  keeps its traffic while berthd is down, so they stay; the next start rewrites them). */
  async shutdown(): Promise<void> {
    this.dns.closeAll();
    if (!this.firewallOn) return;
    if (this.d.containers.all().some((l) => this.d.containers.isRunningId(l.rec.id))) return;
    await this.fwQueue;
    const chains = chainNames(this.d.config.bridge);
    for (const be of await iptablesBackends(chains).catch(() => [] as Backend[])) if (be.ours) await removeChains(be, chains).catch(() => {});
    await deleteTable(this.table);
  }

  private upBridge(n: NetworkRow): Promise<void> {
    let up = this.bridgesUp.get(n.id);
    if (!up) {
      up = this.bringUp(n);
      this.bridgesUp.set(n.id, up);
      up.catch(() => this.bridgesUp.delete(n.id));
    }
    return up;
  }

  private async bringUp(n: NetworkRow): Promise<void> {
    await ensureBridge(n.bridge, `${n.gateway}/${parseCidr(n.subnet).prefix}`);
    if (n.ipv6) await this.bridgeV6(n);
    if (n.name !== 'bridge') {
      await this.dns.listen(n.gateway, (name, from) => this.resolveName(n.id, name, from))
        .catch((err) => this.d.log.warn({ err, network: n.name }, 'embedded DNS server not started'));
    }
  }

  /** IPv6 on a network's bridge: enabled on the device (a host may have it off for new devices), the IPv6
   *  gateway address, and forwarding. The kernel forwards IPv6 only when net.ipv6.conf.all.forwarding is
   *  set (there is no per-device switch for routing as there is for IPv4's rp_filter): it is set once, when
   *  the first IPv6 network comes up, as Docker does, and not before, so a host with no IPv6 network keeps
   *  its own setting (forwarding=1 makes interfaces with accept_ra=1 ignore router advertisements). */
  private async bridgeV6(n: NetworkRow): Promise<void> {
    await host.sysctl(`net/ipv6/conf/${n.bridge}/disable_ipv6`, '0');
    await host.addAddress({ name: n.bridge, address: `${n.gateway6}/${parseCidr6(n.subnet6).prefix}`, replace: true });
    if (!this.v6Forwarding) {
      this.v6Forwarding = host.sysctl('net/ipv6/conf/all/forwarding', '1').catch((err) => this.d.log.warn({ err }, 'cannot enable IPv6 forwarding'));
    }
    await this.v6Forwarding;
  }

  /** The answer of the embedded DNS server of network `networkId` to a container at `from`: the addresses a
   *  name has on every network that container is connected to (its own network's first), by container
   *  name, alias, id or short id of a running endpoint, or a legacy link's alias; IPv4 and IPv6 ones (the
   *  server answers A questions with the first, AAAA with the second). null: `from` is no
   *  running container of the network, so the server does not answer it. */
  private resolveName(networkId: string, name: string, from: string): string[] | undefined | null {
    const asker = this.endpointsOf(networkId).find((e) => (e.ip === from || (!!e.ip6 && e.ip6 === from)) && e.hostIf);
    if (!asker) return null;
    const mine = this.endpointsOfContainer(asker.containerId).filter((e) => e.hostIf);
    const order = [networkId, ...mine.map((e) => e.networkId).filter((id) => id !== networkId)];
    // A legacy link on a user network: its alias is a name for the linking container only.
    const ips: string[] = [];
    let links: ReturnType<typeof linksOf> = (asker.links ?? []).map(parseLink);
    try { links = [...links, ...linksOf(this.d.containers.lookup(asker.containerId).rec)]; } catch { /* gone */ }
    for (const l of links.filter((x) => x.alias.toLowerCase() === name)) {
      let target: string | undefined;
      try { target = this.d.containers.lookup(l.target).rec.id; } catch { continue; }
      const ep = order.map((id) => this.endpointsOf(id).find((e) => e.containerId === target && e.ip && e.hostIf)).find(Boolean);
      if (ep && !ips.includes(ep.ip)) ips.push(ep.ip, ...(ep.ip6 ? [ep.ip6] : []));
    }
    if (ips.length) return ips;
    for (const id of order) {
      const n = this.nets.get(id);
      if (!n || n.name === 'bridge') continue; // the default bridge has no names (as Docker's)
      for (const e of this.endpointsOf(id)) {
        if (!e.ip || !e.hostIf) continue;
        let cname = '';
        try { cname = this.d.containers.lookup(e.containerId).rec.name.slice(1).toLowerCase(); } catch { continue; }
        if (name === cname || e.aliases.some((a) => a.toLowerCase() === name) || name === shortId(e.containerId) || name === e.containerId) {
          ips.push(e.ip, ...(e.ip6 ? [e.ip6] : []));
        }
      }
      // The first network (in the asker's order) that knows the name answers, as Docker's resolver does.
      if (ips.length) return ips;
    }
    return undefined;
  }

  /** After containers.restore: remove namespace files and veths that no running container uses. */
  async sweep(): Promise<void> {
    const live = new Set(this.d.containers.all().filter((l) => this.d.containers.isRunningId(l.rec.id)).map((l) => shortId(l.rec.id)));
    for (const f of await this.netns.list()) if (!live.has(f)) await this.netns.remove(f).catch(() => {});
    const inUse = new Set(this.eps.filter((e) => live.has(shortId(e.containerId))).map((e) => e.hostIf));
    const ours = new Set([...this.nets.values()].filter((n) => n.driver === 'bridge').map((n) => n.bridge));
    for (const l of await hostLinks().catch(() => [])) {
      if (l.kind === 'veth' && ours.has(l.master) && !inUse.has(l.name)) await deleteLink(l.name);
    }
    for (const e of this.eps) {
      if (!live.has(shortId(e.containerId)) && (e.hostIf || (e.ip && !e.staticIp) || (e.ip6 && !e.staticIp6))) {
        this.store.saveEndpoint({ ...e, hostIf: '', ip: e.staticIp, ip6: e.staticIp6 ?? '', mac: e.staticMac });
      }
    }
    this.reload();
    await this.finishConnects(live);
    await this.ports.restore((id) => this.d.containers.isRunningId(id));
    await this.applyFirewall();
  }

  /** A `network connect` to a running container that a crash cut short (the endpoint recorded, its veth
   *  never made or half made): the container gets its interface now, as the connect would have given it. */
  private async finishConnects(running: Set<string>): Promise<void> {
    const links = new Set((await hostLinks().catch(() => [])).map((l) => l.name));
    for (const live of this.d.containers.all()) {
      if (!running.has(shortId(live.rec.id))) continue;
      const eps = this.endpointsOfContainer(live.rec.id);
      const whole = eps.filter((e) => e.hostIf && links.has(e.hostIf));
      for (const ep of eps) {
        if (whole.includes(ep) || this.nets.get(ep.networkId)?.driver !== 'bridge') continue;
        const used = new Set(whole.map((e) => e.ifname));
        let i = 0;
        while (used.has(`eth${i}`)) i++;
        try {
          await this.attach(live.rec, { ...ep, hostIf: '', ifname: '' }, this.netns.pathOf(shortId(live.rec.id)), i, whole.length === 0);
          whole.push(ep);
          await this.rewriteHosts(live.rec);
          this.d.log.info({ id: live.rec.id, network: ep.networkId }, 'finished a network connect a crash interrupted');
        } catch (e) {
          this.d.log.warn({ err: e, id: live.rec.id, network: ep.networkId }, 'could not finish an interrupted network connect');
        }
      }
    }
  }

  /** The Ports column of GET /containers/json. */
  portList(rec: ContainerRecord, running: boolean): Array<Record<string, unknown>> {
    return this.ports.list(rec, running);
  }

  private fwNetwork(n: NetworkRow): FwNetwork {
    return {
      bridge: n.bridge, subnet: n.subnet, subnet6: n.ipv6 ? n.subnet6 : '', internal: n.internal, icc: n.options[ICC_OPT] !== 'false',
      masquerade: n.options['com.docker.network.bridge.enable_ip_masquerade'] !== 'false',
      ports: this.endpointsOf(n.id).filter((e) => e.hostIf).map((e) => e.hostIf),
      dns: n.name !== 'bridge' ? n.gateway : undefined,
    };
  }

  /** The table regenerated whole from the networks and ports (one `nft -f`, queued behind earlier changes). */
  applyFirewall(): Promise<void> {
    return this.fwJob(() => this.fullFirewall());
  }

  private fwJob(fn: () => Promise<void>): Promise<void> {
    if (!this.firewallOn) return Promise.resolve();
    const next = this.fwQueue.then(fn);
    this.fwQueue = next.catch(() => undefined);
    return next;
  }

  private async fullFirewall(): Promise<void> {
    const nets = [...this.nets.values()].filter((n) => n.driver === 'bridge' && !this.fwExclude.has(n.id));
    const rules = this.ports.rules();
    this.fwState = undefined;
    await applyTable(renderTable(this.table, nets.map((n) => this.fwNetwork(n)), rules));
    this.fwState = { nets: new Set(nets.map((n) => n.id)), ports: rules.length > 0 };
    await this.syncHostFirewall();
  }

  /** A new network's rules: only added to the table when it holds exactly the other networks' rules and no
   *  port rules (whose masquerade rules list every subnet), else the table is regenerated. */
  private addNetworkFirewall(n: NetworkRow): Promise<void> {
    return this.fwJob(async () => {
      const others = [...this.nets.values()].filter((o) => o.driver === 'bridge' && o.id !== n.id && !this.fwExclude.has(o.id));
      const st = this.fwState;
      // renderNetworkAdd knows the IPv4 table only: with IPv6 networks the tables are rewritten whole.
      if (!st || st.ports || this.ports.rules().length || st.nets.has(n.id) || n.ipv6 || others.some((o) => o.ipv6) || st.nets.size !== others.length || others.some((o) => !st.nets.has(o.id))) {
        return this.fullFirewall();
      }
      this.fwState = undefined;
      try {
        await applyTable(renderNetworkAdd(this.table, this.fwNetwork(n), others.map((o) => this.fwNetwork(o))));
      } catch (e) {
        this.d.log.warn({ err: e, network: n.name }, 'adding the rules of a network failed; rewriting the table');
        return this.fullFirewall();
      }
      st.nets.add(n.id);
      this.fwState = st;
      await this.syncHostFirewall();
    });
  }

  get tableName(): string {
    return this.table;
  }

  // ---- lookup ------------------------------------------------------------------------------------

  byName(name: string): NetworkRow | undefined {
    for (const n of this.nets.values()) if (n.name === name) return n;
    return undefined;
  }

  /** Docker's order: full id, exact name, then a unique id prefix. */
  lookup(ref: string): NetworkRow {
    if (ref === 'default') ref = 'bridge';
    const direct = this.nets.get(ref);
    if (direct) return direct;
    const named = this.byName(ref);
    if (named) return named;
    const hits = [...this.nets.values()].filter((n) => n.id.startsWith(ref));
    if (ref && hits.length === 1) return hits[0];
    if (ref && hits.length > 1) throw new BerthError('invalid', `network ${ref} is ambiguous (${hits.length} matches found based on ID prefix)`);
    throw notFound(`network ${ref} not found`);
  }

  all(): NetworkRow[] {
    return [...this.nets.values()];
  }

  endpointsOf(networkId: string): EndpointRow[] {
    return [...(this.epsIndex().byNetwork.get(networkId) ?? [])];
  }

  endpointsOfContainer(containerId: string): EndpointRow[] {
    return [...(this.epsIndex().byContainer.get(containerId) ?? [])];
  }

  private epsIndex(): { byNetwork: Map<string, EndpointRow[]>; byContainer: Map<string, EndpointRow[]> } {
    if (!this.epsBy) {
      this.epsBy = { byNetwork: new Map(), byContainer: new Map() };
      const add = (m: Map<string, EndpointRow[]>, k: string, e: EndpointRow) => (m.get(k) ?? m.set(k, []).get(k)!).push(e);
      for (const e of this.eps) {
        add(this.epsBy.byNetwork, e.networkId, e);
        add(this.epsBy.byContainer, e.containerId, e);
      }
    }
    return this.epsBy;
  }

  // ---- create, remove ----------------------------------------------------------------------------

  create(body: CreateBody): Promise<{ Id: string; Warning: string }> {
    return this.admin(async () => {
      const name = body.Name ?? '';
      if (!name) throw invalid('network name is required');
      if (this.byName(name)) throw conflict(`network with name ${name} already exists`);
      const driver = body.Driver || 'bridge';
      if (driver === 'host' || driver === 'null' || driver === 'none') throw new BerthError('forbidden', `only one instance of "${driver}" network is allowed`);
      if (driver !== 'bridge') throw notFound(`plugin "${driver}" not found`);
      if (body.IPAM?.Driver && body.IPAM.Driver !== 'default') throw notFound(`plugin "${body.IPAM.Driver}" not found`);
      if (body.EnableIPv4 === false) throw invalid('berth does not support networks without IPv4 (EnableIPv4=false)');
      const configs = body.IPAM?.Config ?? [];
      const v6Config = (x: { Subnet?: string; IPRange?: string; Gateway?: string }) => isV6(x.Subnet ?? '') || (!x.Subnet && (isV6(x.Gateway ?? '') || isV6(x.IPRange ?? '')));
      const ipv4 = configs.filter((x) => !v6Config(x));
      const ipv6 = configs.filter(v6Config);
      if (ipv4.length > 1) throw invalid('berth supports one IPv4 subnet per network');
      if (ipv6.length > 1) throw invalid('berth supports one IPv6 subnet per network');
      // An IPv6 subnet given without EnableIPv6 gives the network IPv6 (berth's choice: docker-py's tests
      // create such networks and give containers --ip6 addresses on them).
      const v6 = body.EnableIPv6 || ipv6.length ? this.ipv6Config(ipv6[0] ?? {}) : NO_V6;
      const used = this.all().filter((n) => n.subnet).map((n) => parseCidr(n.subnet));
      const c = ipv4[0] ?? {};
      let sub: Cidr;
      let overlapHits: HostNet[] = [];
      if (c.Subnet) {
        sub = parseCidr(c.Subnet);
        if (used.some((u) => overlaps(u, sub))) throw new BerthError('forbidden', `invalid pool request: Pool overlaps with other one on this address space`);
        // Asked for: used as given, with a warning when the host routes part of it elsewhere.
        overlapHits = await this.hostOverlaps(sub);
      } else {
        if (c.IPRange || c.Gateway) throw invalid('no matching subnet for range / gateway: give --subnet');
        const pools = this.d.config.defaultAddressPools.length ? this.d.config.defaultAddressPools : DEFAULT_POOLS;
        // Chosen: a subnet the host does not use (docker0, VPN routes, other bridges) nor another network.
        const host = await hostNets(this.ourBridges()).catch((err) => {
          this.d.log.warn({ err }, 'cannot read the host\'s routes and addresses; subnets are chosen without them');
          return [] as HostNet[];
        });
        const got = subnetFromPools(pools, [...used, ...host.map((h) => h.cidr)]);
        if (!got) throw new BerthError('forbidden', 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
        sub = got;
      }
      let range: Cidr | undefined;
      if (c.IPRange) {
        range = parseCidr(c.IPRange);
        if (!contains(sub, range.base) || !contains(sub, range.base + range.size - 1)) throw invalid(`Invalid Address ${c.IPRange}: it must be a subset of ${cidrString(sub)}`);
      }
      const gateway = c.Gateway ?? intToIp(sub.base + 1);
      if (!contains(sub, ipToInt(gateway))) throw invalid(`no matching subnet for gateway ${gateway}`);
      for (const [k, v] of Object.entries(c.AuxiliaryAddresses ?? {})) {
        if (!contains(sub, ipToInt(v))) throw invalid(`no matching subnet for aux-address ${k}=${v}`);
      }
      const aux6 = ipv6[0]?.AuxiliaryAddresses ?? {};
      for (const [k, v] of Object.entries(aux6)) {
        if (!isV6(v) || !contains6(parseCidr6(v6.subnet6), ip6ToBig(v))) throw invalid(`no matching subnet for aux-address ${k}=${v}`);
      }
      const id = newId();
      const options = { ...(body.Options ?? {}) };
      const bridge = options[BRIDGE_NAME_OPT] || `br-${id.slice(0, 12)}`;
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw invalid(`invalid bridge name: ${bridge}`);
      if (this.all().some((n) => n.bridge === bridge)) throw conflict(`bridge name ${bridge} is already in use`);
      const row: NetworkRow = {
        id, name, driver, created: rfc3339Nano(nowNs()), bridge, subnet: cidrString(sub), ipRange: c.IPRange ?? '', gateway,
        aux: { ...(c.AuxiliaryAddresses ?? {}), ...aux6 }, internal: !!body.Internal, attachable: !!body.Attachable, labels: body.Labels ?? {}, options,
        ipamUser: !!c.Subnet, ...v6,
      };
      // The row first: a crash after it leaves a bridge the next start owns and can remove.
      this.store.insertNetwork(row);
      this.reload();
      crashPoint('network-create.after-row');
      try {
        // The bridge and the network's rules are independent (rules name the bridge by name).
        const [up, fw] = await Promise.allSettled([this.upBridge(row), this.addNetworkFirewall(row)]);
        if (up.status === 'rejected') throw up.reason;
        if (fw.status === 'rejected') throw fw.reason;
        crashPoint('network-create.after-bridge');
      } catch (e) {
        this.bridgesUp.delete(id);
        await deleteBridge(bridge).catch(() => {});
        this.store.deleteNetwork(id);
        this.reload();
        await this.applyFirewall().catch(() => {});
        throw e;
      }
      const warning = overlapHits.length ? this.overlapWarning(id, `subnet of network ${name}`, sub, overlapHits) : '';
      this.d.events.emit('network', 'create', id, { name, type: driver });
      return { Id: id, Warning: warning };
    });
  }

  /** A new network's IPv6 subnet, range and gateway: as given (a subnet no other network overlaps), or a
   *  /64 of the engine's ULA pool. */
  private ipv6Config(c: { Subnet?: string; IPRange?: string; Gateway?: string }): typeof NO_V6 {
    let sub: Cidr6;
    if (c.Subnet) {
      sub = parseCidr6(c.Subnet);
      const s = sub;
      if (this.all().some((n) => n.subnet6 && overlaps6(parseCidr6(n.subnet6), s))) throw new BerthError('forbidden', 'invalid pool request: Pool overlaps with other one on this address space');
    } else {
      if (c.IPRange || c.Gateway) throw invalid('no matching subnet for range / gateway: give --subnet');
      sub = this.freeUla();
    }
    let range = '';
    if (c.IPRange) {
      const r = parseCidr6(c.IPRange);
      if (r.prefix < sub.prefix || !contains6(sub, r.base)) throw invalid(`Invalid Address ${c.IPRange}: it must be a subset of ${cidr6String(sub)}`);
      range = cidr6String(r);
    }
    const gateway = c.Gateway ? bigToIp6(ip6ToBig(c.Gateway)) : bigToIp6(sub.base + 1n);
    if (!contains6(sub, ip6ToBig(gateway))) throw invalid(`no matching subnet for gateway ${c.Gateway}`);
    return { ipv6: true, subnet6: cidr6String(sub), ipRange6: range, gateway6: gateway, ipamUser6: !!c.Subnet };
  }

  remove(ref: string): Promise<void> {
    return this.admin(async () => {
      const n = this.lookup(ref);
      await this.locks.with([{ key: `net:${n.id}`, exclusive: true }], () => this.removeLocked(n));
    });
  }

  private async removeLocked(n: NetworkRow): Promise<void> {
    if (PREDEFINED.includes(n.name)) throw new BerthError('forbidden', `${n.name} is a pre-defined network and cannot be removed`);
    // A container still starting has its veth (hostIf) before it counts as running.
    const active = this.endpointsOf(n.id).filter((e) => e.hostIf || this.d.containers.isRunningId(e.containerId));
    if (active.length) {
      throw new BerthError('forbidden', `error while removing network: network ${n.name} id ${n.id} has active endpoints`);
    }
    this.dns.close(n.gateway);
    this.bridgesUp.delete(n.id);
    // The bridge and the rules go side by side (the kernel takes tens of ms for each); the row goes after.
    this.fwExclude.add(n.id);
    try {
      const [br, fw] = await Promise.allSettled([deleteBridge(n.bridge), this.applyFirewall()]);
      if (br.status === 'rejected') {
        this.fwExclude.delete(n.id);
        await this.applyFirewall().catch(() => {});
        throw br.reason;
      }
      crashPoint('network-rm.after-bridge');
      this.store.deleteNetwork(n.id);
      this.overlapWarnings.delete(n.id);
      this.reload();
      if (fw.status === 'rejected') throw fw.reason;
    } finally {
      this.fwExclude.delete(n.id);
    }
    this.d.events.emit('network', 'destroy', n.id, { name: n.name, type: n.driver });
  }

  // ---- containers ----------------------------------------------------------------------------------

  /** The network a container's NetworkMode names, if it is a network (not host/none/container:). */
  private modeNetwork(mode: string): NetworkRow | undefined {
    if (!mode || mode === 'default') return this.byName('bridge');
    if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) return undefined;
    return this.lookup(mode);
  }

  /** Checks the networks a new container names and throws Docker's errors; `default` becomes `bridge`,
   *  as Docker records it. Nothing else changes. */
  validateCreate(rec: ContainerRecord, epConfigs: Record<string, EndpointConfig> | undefined): void {
    if (!rec.hostConfig.NetworkMode || rec.hostConfig.NetworkMode === 'default') rec.hostConfig.NetworkMode = 'bridge';
    const mode: string = rec.hostConfig.NetworkMode;
    if (mode.startsWith('container:')) asBadReference(() => this.d.containers.lookup(mode.slice(10)));
    const net = this.modeNetwork(mode);
    PortMapper.wanted(rec);
    for (const [name, cfg] of Object.entries(epConfigs ?? {})) {
      const n = this.lookup(name);
      const ip = cfg?.IPAMConfig?.IPv4Address;
      if (ip) this.checkStaticIp(n, ip);
      if (cfg?.IPAMConfig?.IPv6Address) this.checkStaticIp6(n, cfg.IPAMConfig.IPv6Address);
      linkLocalIps(cfg);
      if ((cfg?.Aliases ?? []).length && n.name === 'bridge') throw invalid('network-scoped alias is supported only for containers in user defined networks');
      endpointExtras(cfg, n);
    }
    void net;
  }

  private checkStaticIp(n: NetworkRow, ip: string): void {
    if (n.name === 'bridge' || n.driver !== 'bridge') throw invalid('user specified IP address is supported on user defined networks only');
    if (!n.ipamUser) throw invalid('user specified IP address is supported only when connecting to networks with user configured subnets');
    const sub = parseCidr(n.subnet);
    const range = n.ipRange ? parseCidr(n.ipRange) : sub;
    if (!contains(sub, ipToInt(ip))) throw invalid(`Invalid address ${ip}: It does not belong to any of this network's subnets`);
    void range;
  }

  private checkStaticIp6(n: NetworkRow, ip: string): string {
    if (n.name === 'bridge' || n.driver !== 'bridge') throw invalid('user specified IP address is supported on user defined networks only');
    if (!isV6(ip)) throw invalid(`invalid IPv6 address: ${ip}`);
    const addr = ip6ToBig(ip);
    if (!n.ipv6) throw invalid(`Invalid address ${ip}: IPv6 is not enabled on network ${n.name}`);
    if (!n.ipamUser6) throw invalid('user specified IP address is supported only when connecting to networks with user configured subnets');
    if (!contains6(parseCidr6(n.subnet6), addr)) throw invalid(`Invalid address ${ip}: It does not belong to any of this network's subnets`);
    return bigToIp6(addr);
  }

  /** Records the endpoints of a new container (its NetworkMode network, plus the other EndpointsConfig). */
  recordCreate(rec: ContainerRecord, epConfigs: Record<string, EndpointConfig> | undefined): void {
    const mode: string = rec.hostConfig.NetworkMode || 'default';
    const primary = this.modeNetwork(mode);
    if (!primary) return;
    const cfgFor = (n: NetworkRow) => epConfigs?.[n.name] ?? epConfigs?.[n.id] ?? (n === primary ? epConfigs?.[mode] ?? epConfigs?.default : undefined);
    const list = [primary, ...Object.keys(epConfigs ?? {}).map((k) => this.lookup(k)).filter((n) => n.id !== primary.id)];
    for (const n of list) {
      const c = cfgFor(n);
      const mac = c?.MacAddress || (n === primary ? rec.config.MacAddress ?? '' : '');
      // Legacy links on a user network are the endpoint's (Docker shows them in EndpointSettings.Links).
      const extras = endpointExtras(c, n);
      if (n === primary && n.name !== 'bridge' && !extras.links.length) extras.links = linksOf(rec).map((l) => `${l.target}:${l.alias}`);
      const ip6 = c?.IPAMConfig?.IPv6Address ? this.checkStaticIp6(n, c.IPAMConfig.IPv6Address) : '';
      this.store.saveEndpoint({ networkId: n.id, containerId: rec.id, endpointId: '', ip: c?.IPAMConfig?.IPv4Address ?? '',
        mac, staticMac: mac, staticIp: c?.IPAMConfig?.IPv4Address ?? '',
        aliases: c?.Aliases ?? [], ifname: '', hostIf: '', gwPriority: gwPriority(c), ...extras,
        ip6, staticIp6: ip6, linkLocalIps: linkLocalIps(c) });
    }
    this.reload();
  }

  /** The container is being removed: its endpoints go. */
  forget(containerId: string): void {
    this.store.deleteContainer(containerId);
    // Dropped from memory as from the table: a reload read and parsed every endpoint row, a few ms per
    // `docker rm` with 1,000 containers.
    this.eps = this.eps.filter((e) => e.containerId !== containerId);
    this.epsBy = undefined;
  }

  private allocate(n: NetworkRow, ep: EndpointRow): string {
    const sub = parseCidr(n.subnet);
    if (ep.staticIp) {
      if (this.endpointsOf(n.id).some((e) => e.containerId !== ep.containerId && e.ip === ep.staticIp)) throw new BerthError('forbidden', `Address already in use`);
      return ep.staticIp;
    }
    const taken = new Set<number>([ipToInt(n.gateway), ...Object.values(n.aux).filter((a) => !isV6(a)).map(ipToInt),
      ...this.endpointsOf(n.id).filter((e) => e.ip && e.containerId !== ep.containerId).map((e) => ipToInt(e.ip))]);
    const ip = firstFree(sub, n.ipRange ? parseCidr(n.ipRange) : undefined, taken);
    if (ip === undefined) throw new BerthError('system', `no available IPv4 addresses on this network's address pools: ${n.name} (${n.id})`);
    return intToIp(ip);
  }

  /** The endpoint's IPv6 address on an IPv6 network: its --ip6, else the first free one of the range. */
  private allocate6(n: NetworkRow, ep: EndpointRow): string {
    if (ep.staticIp6) {
      if (this.endpointsOf(n.id).some((e) => e.containerId !== ep.containerId && e.ip6 === ep.staticIp6)) throw new BerthError('forbidden', 'Address already in use');
      return ep.staticIp6;
    }
    const taken = new Set<bigint>([ip6ToBig(n.gateway6), ...Object.values(n.aux).filter(isV6).map(ip6ToBig),
      ...this.endpointsOf(n.id).filter((e) => e.ip6 && e.containerId !== ep.containerId).map((e) => ip6ToBig(e.ip6!))]);
    const ip = firstFree6(parseCidr6(n.subnet6), n.ipRange6 ? parseCidr6(n.ipRange6) : undefined, taken);
    if (ip === undefined) throw new BerthError('system', `no available IPv6 addresses on this network's address pools: ${n.name} (${n.id})`);
    return bigToIp6(ip);
  }

  /** Before the shim spawns: the namespace and every endpoint. On failure nothing is left. */
  setup(rec: ContainerRecord): Promise<NetSetup> {
    const nets = this.endpointsOfContainer(rec.id).map((e) => e.networkId);
    return this.forContainer(rec.id, nets, async () => {
      const mode: string = rec.hostConfig.NetworkMode || 'default';
      if (mode === 'host') return { netns: undefined, hosts: hostHosts(), resolvConf: this.resolvConf(rec) };
      // `none` still gets a namespace file of its own (only lo, up): CNI plugins (cri-dockerd's pod
      // sandboxes) configure the namespace through the SandboxKey inspect reports, so that path must exist
      // and hold the container's namespace for as long as it runs; teardown removes it as for any other.
      if (mode === 'none') return { netns: await this.netns.create(shortId(rec.id)), hosts: this.hosts(rec, []), resolvConf: this.resolvConf(rec) };
      if (mode.startsWith('container:')) {
        const other = this.d.containers.lookup(mode.slice(10));
        if (!this.d.containers.isRunningId(other.rec.id)) throw conflict(`cannot join network of a non running container: ${other.rec.id}`);
        await this.settled(other.rec.id);
        const file = this.netns.pathOf(shortId(other.rec.id));
        // Without a namespace file of its own, its process's namespace, held open for this start
        // (a pid read earlier may belong to another process by now).
        const joined = (await this.netns.list()).includes(shortId(other.rec.id)) ? file : this.d.containers.holdNamespace(other, 'net', this.d.containers.lookup(rec.id));
        const dir = this.d.containers.containerDir(other.rec.id);
        const read = (f: string) => { try { return readFileSync(path.join(dir, f), 'utf8'); } catch { return ''; } };
        return { netns: joined, hosts: read('hosts') || this.hosts(rec, []), resolvConf: read('resolv.conf') || this.resolvConf(rec) };
      }
      const eps = this.endpointsOfContainer(rec.id);
      const ns = await this.netns.create(shortId(rec.id));
      const undos: Array<() => Promise<void>> = [];
      try {
        const gw = this.gatewayEndpoint(eps);
        let i = 0;
        for (const ep of eps) undos.push(await this.attach(rec, ep, ns, i++, ep === gw));
        const first = this.endpointsOfContainer(rec.id).find((e) => e.ip && e.hostIf);
        let firewall = this.needsPortRules(rec.id);
        if (first && PortMapper.wanted(rec).length) {
          // Host ports one container at a time: a random port is found, then held.
          await this.locks.with([{ key: 'ports', exclusive: true }], () => this.ports.map(rec, first.ip, first.ip6 || undefined));
          undos.push(async () => { this.ports.unmap(rec.id); });
          firewall = true;
        }
        // One `nft` at most, and none for a container without published ports on networks whose rules
        // (made with the network) do not list containers.
        if (firewall) await this.applyFirewall();
      } catch (e) {
        for (const u of undos.reverse()) await u().catch(() => {});
        await this.applyFirewall().catch(() => {});
        await this.netns.remove(shortId(rec.id)).catch(() => {});
        this.releaseAll(rec.id);
        throw e;
      }
      const mine = this.endpointsOfContainer(rec.id);
      const user = mine.map((e) => this.nets.get(e.networkId)).find((n) => n && n.name !== 'bridge');
      return { netns: ns, hosts: this.hosts(rec, mine), resolvConf: this.resolvConf(rec, user?.gateway) };
    });
  }

  private async attach(rec: ContainerRecord, ep: EndpointRow, ns: string, index: number, primary: boolean): Promise<() => Promise<void>> {
    const n = this.nets.get(ep.networkId);
    if (!n) throw notFound(`network ${ep.networkId} not found`);
    const ip = this.allocate(n, ep);
    const ip6 = n.ipv6 ? this.allocate6(n, ep) : '';
    const mac = ep.staticMac || macFor(ip);
    const hostIf = newHostIfName();
    const ifname = `eth${index}`;
    // Record the address before the links exist, so that a crash in between is swept at the next start.
    const row: EndpointRow = { ...ep, endpointId: ep.endpointId || newId(), ip, ip6, mac, ifname, hostIf };
    this.store.saveEndpoint(row);
    this.reload();
    crashPoint('network-attach.before-veth');
    try {
      await this.upBridge(n);
      const undo = await runSteps(vethSteps({ bridge: n.bridge, netns: ns, ifname, address: `${ip}/${parseCidr(n.subnet).prefix}`, mac,
        gateway: primary && !n.internal ? n.gateway : undefined, ipv6: n.ipv6,
        address6: ip6 ? `${ip6}/${parseCidr6(n.subnet6).prefix}` : undefined, gateway6: ip6 && primary && !n.internal ? n.gateway6 : undefined,
        linkLocal: (ep.linkLocalIps ?? []).filter((a) => n.ipv6 || !isV6(a)) }, hostIf));
      return async () => {
        await undo();
        this.release(row);
      };
    } catch (e) {
      this.release(row);
      throw e;
    }
  }

  /** The endpoint whose network gives the default route: the highest GwPriority among networks that are
   *  not internal, the first one connected on a tie. */
  private gatewayEndpoint(eps: EndpointRow[]): EndpointRow | undefined {
    let best: EndpointRow | undefined;
    for (const e of eps) {
      const n = this.nets.get(e.networkId);
      if (!n || n.internal || !n.gateway) continue;
      if (!best || (e.gwPriority ?? 0) > (best.gwPriority ?? 0)) best = e;
    }
    return best;
  }

  /** A running container's default route, after a connect or disconnect changed its networks. */
  private async rerouteDefault(containerId: string): Promise<void> {
    const gw = this.gatewayEndpoint(this.endpointsOfContainer(containerId).filter((e) => e.hostIf));
    const n = gw && this.nets.get(gw.networkId);
    if (!gw || !n) return;
    await host.defaultRoute({ name: gw.ifname, gateway: n.gateway, netns: this.netns.pathOf(shortId(containerId)) });
    if (gw.ip6) await host.defaultRoute({ name: gw.ifname, gateway: n.gateway6, netns: this.netns.pathOf(shortId(containerId)) });
  }

  /** Whether the container is on a network whose rules name its veths (icc=false). */
  private needsPortRules(containerId: string): boolean {
    return this.endpointsOfContainer(containerId).some((e) => this.nets.get(e.networkId)?.options[ICC_OPT] === 'false');
  }

  private release(ep: EndpointRow): void {
    const cur = this.eps.find((e) => e.networkId === ep.networkId && e.containerId === ep.containerId);
    if (!cur) return;
    this.store.saveEndpoint({ ...cur, ip: cur.staticIp, ip6: cur.staticIp6 ?? '', ifname: '', hostIf: '', mac: cur.staticMac });
    this.reload();
  }

  private releaseAll(containerId: string): void {
    for (const e of this.endpointsOfContainer(containerId)) this.release(e);
  }

  /** The container's process has exited: its links and namespace go, its addresses return to the pool. */
  teardown(rec: ContainerRecord): Promise<void> {
    const nets = this.endpointsOfContainer(rec.id).map((e) => e.networkId);
    return this.forContainer(rec.id, nets, async () => {
      const firewall = this.ports.unmap(rec.id) || this.needsPortRules(rec.id);
      for (const e of this.endpointsOfContainer(rec.id)) {
        if (e.hostIf) await deleteLink(e.hostIf);
        this.release(e);
      }
      if (firewall) await this.applyFirewall().catch((err) => this.d.log.warn({ err, id: rec.id }, 'firewall update failed'));
      await this.netns.remove(shortId(rec.id)).catch((err) => this.d.log.warn({ err, id: rec.id }, 'netns removal failed'));
    });
  }

  /** POST /networks/{id}/connect. */
  connect(ref: string, ctrRef: string, cfg: EndpointConfig | undefined): Promise<void> {
    const n = this.lookup(ref);
    const live = this.d.containers.lookup(ctrRef);
    return this.forContainer(live.rec.id, [n.id], async () => {
      const mode: string = live.rec.hostConfig.NetworkMode || 'default';
      if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) {
        throw new BerthError('forbidden', `container cannot be disconnected from host network or connected to host network`);
      }
      if (n.driver !== 'bridge') throw new BerthError('forbidden', `container cannot be disconnected from host network or connected to host network`);
      if (this.endpointsOfContainer(live.rec.id).some((e) => e.networkId === n.id)) {
        throw new BerthError('forbidden', `endpoint with name ${live.rec.name.slice(1)} already exists in network ${n.name}`);
      }
      const ip = cfg?.IPAMConfig?.IPv4Address;
      if (ip) this.checkStaticIp(n, ip);
      const ip6 = cfg?.IPAMConfig?.IPv6Address ? this.checkStaticIp6(n, cfg.IPAMConfig.IPv6Address) : '';
      if ((cfg?.Aliases ?? []).length && n.name === 'bridge') throw invalid('network-scoped alias is supported only for containers in user defined networks');
      const ep: EndpointRow = { networkId: n.id, containerId: live.rec.id, endpointId: '', ip: ip ?? '', mac: cfg?.MacAddress ?? '', staticMac: cfg?.MacAddress ?? '', staticIp: ip ?? '',
        aliases: cfg?.Aliases ?? [], ifname: '', hostIf: '', gwPriority: gwPriority(cfg), ...endpointExtras(cfg, n),
        ip6, staticIp6: ip6, linkLocalIps: linkLocalIps(cfg) };
      this.store.saveEndpoint(ep);
      this.reload();
      crashPoint('network-connect.after-row');
      if (this.d.containers.isRunningId(live.rec.id)) {
        const used = new Set(this.endpointsOfContainer(live.rec.id).map((e) => e.ifname));
        let i = 0;
        while (used.has(`eth${i}`)) i++;
        try {
          const others = this.endpointsOfContainer(live.rec.id).filter((e) => e.hostIf);
          const before = this.gatewayEndpoint(others);
          // The new network takes the default route when its priority is above the current one's, or when
          // the container had none (only internal networks so far).
          const takes = this.gatewayEndpoint(before ? [before, ep] : [ep]) === ep && (!before || ep.gwPriority > before.gwPriority);
          await this.attach(live.rec, ep, this.netns.pathOf(shortId(live.rec.id)), i, takes);
          crashPoint('network-connect.after-veth');
          if (n.options[ICC_OPT] === 'false') await this.applyFirewall();
        } catch (e) {
          this.store.deleteEndpoint(n.id, live.rec.id);
          this.reload();
          throw e;
        }
        await this.rewriteHosts(live.rec);
        await this.rewriteResolvConf(live.rec);
      }
      this.d.events.emit('network', 'connect', n.id, { container: live.rec.id, name: n.name, type: n.driver });
    });
  }

  /** POST /networks/{id}/disconnect. */
  disconnect(ref: string, ctrRef: string, force: boolean): Promise<void> {
    const n = this.lookup(ref);
    let containerId: string;
    try {
      containerId = this.d.containers.lookup(ctrRef).rec.id;
    } catch (e) {
      const ep = force ? this.endpointsOf(n.id).find((x) => x.containerId.startsWith(ctrRef)) : undefined;
      if (!ep) throw e;
      containerId = ep.containerId;
    }
    // The reply comes once the endpoint is gone from the records; the veth's deletion (10–30 ms of the
    // kernel unregistering it) goes on under the container's and the network's locks, so whatever comes
    // next for either (connect, start, stop, network rm, a container joining this namespace, exec: see
    // settled()) waits for it, and a crash meanwhile leaves a veth no endpoint names, which sweep() removes.
    return new Promise<void>((resolve, reject) => {
      this.forContainer(containerId, [n.id], async () => {
        const ep = this.endpointsOf(n.id).find((e) => e.containerId === containerId);
        if (!ep) throw new BerthError('forbidden', `container ${containerId} is not connected to network ${n.name}`);
        const wasGateway = !!ep.hostIf && this.gatewayEndpoint(this.endpointsOfContainer(containerId).filter((e) => e.hostIf)) === ep;
        this.store.deleteEndpoint(n.id, containerId);
        this.reload();
        crashPoint('network-disconnect.after-row');
        if (ep.hostIf && n.options[ICC_OPT] === 'false') {
          // The rules name the veth: they change first, then the veth goes.
          await this.applyFirewall().catch(() => {});
        }
        this.d.events.emit('network', 'disconnect', n.id, { container: containerId, name: n.name, type: n.driver });
        resolve();
        if (ep.hostIf) await deleteLink(ep.hostIf);
        if (ep.hostIf) {
          try { await this.rewriteResolvConf(this.d.containers.lookup(containerId).rec); } catch { /* removed meanwhile */ }
        }
        // The default route went with the link: the next network in line gives it.
        if (wasGateway) await this.rerouteDefault(containerId).catch((err) => this.d.log.warn({ err, id: containerId }, 'default route after a disconnect'));
      }).catch(reject);
    });
  }

  /** DELETE /containers/{parent}/{alias}?link=1: the legacy link `alias` of container `parent` goes (from
   *  its HostConfig.Links and its endpoints' Links); a running parent's /etc/hosts is written again. `name`
   *  is the link's full name as given ("webapp/redis"). */
  async removeLink(name: string): Promise<void> {
    const full = name.startsWith('/') ? name : `/${name}`;
    const cut = full.lastIndexOf('/');
    const parentName = full.slice(1, cut);
    const alias = full.slice(cut + 1);
    if (!parentName) throw conflict('Conflict, cannot remove the default link name of the container');
    let parent: ReturnType<typeof this.d.containers.lookup>;
    try {
      parent = this.d.containers.lookup(parentName);
    } catch {
      throw notFound(`No such container: ${name.replace(/^\//, '')}`);
    }
    const links = (parent.rec.hostConfig.Links ?? []) as string[];
    const keep = links.filter((l) => parseLink(l).alias !== alias);
    const eps = this.endpointsOfContainer(parent.rec.id).filter((e) => (e.links ?? []).some((l) => parseLink(l).alias === alias));
    if (keep.length === links.length && !eps.length) throw notFound(`No such container: ${name.replace(/^\//, '')}`);
    await this.forContainer(parent.rec.id, [], async () => {
      if (keep.length !== links.length) this.d.containers.saveHostConfig(parent, { ...parent.rec.hostConfig, Links: keep.length ? keep : null });
      for (const e of eps) this.store.saveEndpoint({ ...e, links: (e.links ?? []).filter((l) => parseLink(l).alias !== alias) });
      this.reload();
      if (this.d.containers.isRunningId(parent.rec.id)) await this.rewriteHosts(parent.rec);
    });
  }

  /** Resolves when no network change of the container is under way (a disconnect's veth deletion). */
  settled(containerId: string): Promise<void> {
    return this.locks.with([{ key: `ctr:${containerId}`, exclusive: false }], async () => {});
  }

  private async rewriteHosts(rec: ContainerRecord): Promise<void> {
    await writeFile(path.join(this.d.containers.containerDir(rec.id), 'hosts'), this.hosts(rec, this.endpointsOfContainer(rec.id))).catch(() => {});
  }

  /** After a connect or disconnect of a running container: its nameserver is the embedded DNS server of a
   *  user network it is on (a container that joins its first one starts using it; one that leaves the
   *  network whose server it used moves to another), or the host's resolvers when it is on none. */
  private async rewriteResolvConf(rec: ContainerRecord): Promise<void> {
    const file = path.join(this.d.containers.containerDir(rec.id), 'resolv.conf');
    const mine = this.endpointsOfContainer(rec.id).filter((e) => e.hostIf);
    const gateways = mine.map((e) => this.nets.get(e.networkId)).filter((n): n is NetworkRow => !!n && n.name !== 'bridge').map((n) => n.gateway);
    let current = '';
    try { current = readFileSync(file, 'utf8'); } catch { return; }
    const ns = /^nameserver\s+(\S+)/m.exec(current)?.[1];
    if (ns && gateways.includes(ns)) return;
    const embedded = gateways[0];
    // A container on the default bridge only, whose resolv.conf names the host's servers, keeps it.
    if (!embedded && !this.all().some((n) => n.gateway === ns && n.name !== 'bridge')) return;
    await writeFile(file, this.resolvConf(rec, embedded)).catch((err) => this.d.log.warn({ err, id: rec.id }, 'resolv.conf after a network change'));
  }

  // ---- the container's /etc files ------------------------------------------------------------------

  hosts(rec: ContainerRecord, eps: EndpointRow[]): string {
    const lines = [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::\tip6-localnet',
      'ff00::\tip6-mcastprefix',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
    ];
    const bridge = this.byName('bridge');
    for (const h of rec.hostConfig.ExtraHosts ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) continue;
      let ip = h.slice(i + 1);
      if (ip === 'host-gateway') ip = bridge?.gateway ?? '';
      if (ip) lines.push(`${ip}\t${h.slice(0, i)}`);
    }
    for (const p of this.linkPeers(rec, eps)) lines.push(hostsLine(p));
    const host = rec.config.Domainname ? `${rec.config.Hostname}.${rec.config.Domainname} ${rec.config.Hostname}` : rec.config.Hostname;
    for (const e of eps) if (e.ip) lines.push(`${e.ip}\t${host}`);
    for (const e of eps) if (e.ip6) lines.push(`${e.ip6}\t${host}`);
    return lines.join('\n') + '\n';
  }

  /** The running targets of the container's legacy links on the default bridge (`eps`: the container's endpoints). */
  private linkPeers(rec: ContainerRecord, eps: EndpointRow[]): LinkPeer[] {
    const bridge = this.byName('bridge');
    if (!bridge || !eps.some((e) => e.networkId === bridge.id)) return [];
    const out: LinkPeer[] = [];
    for (const l of linksOf(rec)) {
      let t: ContainerRecord;
      try { t = this.d.containers.lookup(l.target).rec; } catch { continue; }
      const ep = this.endpointsOf(bridge.id).find((e) => e.containerId === t.id && e.ip && e.hostIf);
      if (!ep) continue;
      out.push({ alias: l.alias, name: t.name.slice(1), hostname: t.config.Hostname, ip: ep.ip, env: t.config.Env ?? [], exposed: Object.keys(t.config.ExposedPorts ?? {}) });
    }
    return out;
  }

  /** At start: every link's target must be running; on the default bridge the links add environment. */
  linkEnvironment(rec: ContainerRecord): string[] {
    for (const l of linksOf(rec)) {
      let running = false;
      try { running = this.d.containers.isRunningId(this.d.containers.lookup(l.target).rec.id); } catch { /* gone */ }
      if (!running) throw conflict(`Cannot link to a non running container: /${l.target} AS /${rec.name.slice(1)}/${l.alias}`);
    }
    return this.linkPeers(rec, this.endpointsOfContainer(rec.id)).flatMap((p) => linkEnv(rec.name.slice(1), p));
  }

  /** `embedded`: the address of the embedded DNS server (user networks), which then is the only nameserver. */
  resolvConf(rec: ContainerRecord, embedded?: string): string {
    const hc = rec.hostConfig;
    const host = hostResolvConf();
    const lines = host.split('\n');
    let ns = lines.filter((l) => /^\s*nameserver\s+/.test(l)).map((l) => l.trim().split(/\s+/)[1]).filter((a) => !/^(127\.|::1$)/.test(a) && !a.includes(':'));
    let search = lines.filter((l) => /^\s*(search|domain)\s+/.test(l)).flatMap((l) => l.trim().split(/\s+/).slice(1));
    let options = lines.filter((l) => /^\s*options\s+/.test(l)).flatMap((l) => l.trim().split(/\s+/).slice(1));
    if ((hc.Dns ?? []).length) ns = hc.Dns;
    if ((hc.DnsSearch ?? []).length) search = hc.DnsSearch.filter((s: string) => s !== '.');
    if ((hc.DnsOptions ?? []).length) options = hc.DnsOptions;
    if (ns.length === 0) ns = ['8.8.8.8', '8.8.4.4'];
    if (embedded) {
      ns = [embedded];
      if (!(hc.DnsOptions ?? []).length) options = ['ndots:0'];
    }
    const out = [...ns.map((a) => `nameserver ${a}`)];
    if (search.length) out.push(`search ${search.join(' ')}`);
    if (options.length) out.push(`options ${options.join(' ')}`);
    return out.join('\n') + '\n';
  }

  // ---- views ---------------------------------------------------------------------------------------

  /** NetworkSettings of GET /containers/{id}/json. */
  settings(rec: ContainerRecord, running: boolean): Record<string, unknown> {
    const mode: string = rec.hostConfig.NetworkMode || 'default';
    const eps = this.endpointsOfContainer(rec.id);
    const networks: Record<string, unknown> = {};
    const view = (n: NetworkRow, e: EndpointRow | undefined) => {
      const up = running && !!e?.hostIf;
      const prefix = n.subnet ? parseCidr(n.subnet).prefix : 0;
      const v6 = up && !!e!.ip6;
      const ll = e?.linkLocalIps ?? [];
      return {
        IPAMConfig: e && (e.staticIp || e.staticIp6 || ll.length)
          ? { ...(e!.staticIp ? { IPv4Address: e!.staticIp } : {}), ...(e!.staticIp6 ? { IPv6Address: e!.staticIp6 } : {}), ...(ll.length ? { LinkLocalIPs: ll } : {}) }
          : null,
        Links: e?.links?.length ? e.links : null,
        // null when none were given, as Docker shows it from API 1.45 (docker-py checks for None).
        Aliases: e && n.name !== 'bridge' && e.aliases.length ? e.aliases : null,
        MacAddress: up ? e!.mac : e?.staticMac ?? '',
        DriverOpts: e?.driverOpts && Object.keys(e.driverOpts).length ? e.driverOpts : null,
        GwPriority: e?.gwPriority ?? 0,
        NetworkID: n.id,
        EndpointID: up ? e!.endpointId : '',
        Gateway: up ? n.gateway : '',
        IPAddress: up ? e!.ip : '',
        IPPrefixLen: up ? prefix : 0,
        IPv6Gateway: v6 ? n.gateway6 : '',
        GlobalIPv6Address: v6 ? e!.ip6 : '',
        GlobalIPv6PrefixLen: v6 ? parseCidr6(n.subnet6).prefix : 0,
        DNSNames: e && n.name !== 'bridge' ? [rec.name.slice(1), ...e.aliases, shortId(rec.id)] : null,
      };
    };
    for (const e of eps) {
      const n = this.nets.get(e.networkId);
      if (n) networks[n.name] = view(n, e);
    }
    if (mode === 'host' || mode === 'none') {
      const n = this.byName(mode);
      if (n) networks[mode] = view(n, undefined);
    }
    const bridgeEp = eps.find((e) => this.nets.get(e.networkId)?.name === 'bridge');
    const b = bridgeEp ? (networks.bridge as Record<string, unknown>) : undefined;
    const sandbox = running && (eps.length > 0 || mode === 'none');
    return {
      Bridge: '',
      SandboxID: running ? rec.id : '',
      SandboxKey: sandbox ? this.netns.pathOf(shortId(rec.id)) : running && mode.startsWith('container:') ? '' : running && mode === 'host' ? '' : '',
      Ports: this.ports.view(rec, running),
      HairpinMode: false,
      // Docker never fills these (the API marks them deprecated); the addresses are in Networks.
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: (b?.EndpointID as string) ?? '',
      Gateway: (b?.Gateway as string) ?? '',
      GlobalIPv6Address: (b?.GlobalIPv6Address as string) ?? '',
      GlobalIPv6PrefixLen: (b?.GlobalIPv6PrefixLen as number) ?? 0,
      IPAddress: (b?.IPAddress as string) ?? '',
      IPPrefixLen: (b?.IPPrefixLen as number) ?? 0,
      IPv6Gateway: (b?.IPv6Gateway as string) ?? '',
      MacAddress: (b?.MacAddress as string) ?? '',
      Networks: networks,
    };
  }

  /** GET /networks/{id}. */
  inspect(n: NetworkRow, verbose = false): Record<string, unknown> {
    void verbose;
    const containers: Record<string, unknown> = {};
    if (n.driver === 'bridge') {
      for (const e of this.endpointsOf(n.id)) {
        if (!e.hostIf || !this.d.containers.isRunningId(e.containerId)) continue;
        let name = '';
        try { name = this.d.containers.lookup(e.containerId).rec.name.slice(1); } catch { continue; }
        containers[e.containerId] = { Name: name, EndpointID: e.endpointId, MacAddress: e.mac, IPv4Address: `${e.ip}/${parseCidr(n.subnet).prefix}`,
          IPv6Address: e.ip6 ? `${e.ip6}/${parseCidr6(n.subnet6).prefix}` : '' };
      }
    } else {
      for (const l of this.d.containers.all()) {
        if ((l.rec.hostConfig.NetworkMode === n.name) && this.d.containers.isRunningId(l.rec.id)) {
          containers[l.rec.id] = { Name: l.rec.name.slice(1), EndpointID: '', MacAddress: '', IPv4Address: '', IPv6Address: '' };
        }
      }
    }
    const cfg: Record<string, unknown>[] = [];
    if (n.subnet) {
      const c: Record<string, unknown> = { Subnet: n.subnet };
      if (n.ipRange) c.IPRange = n.ipRange;
      c.Gateway = n.gateway;
      const aux4 = Object.fromEntries(Object.entries(n.aux).filter(([, a]) => !isV6(a)));
      if (Object.keys(aux4).length) c.AuxiliaryAddresses = aux4;
      cfg.push(c);
    }
    if (n.ipv6 && n.subnet6) {
      const c: Record<string, unknown> = { Subnet: n.subnet6 };
      if (n.ipRange6) c.IPRange = n.ipRange6;
      c.Gateway = n.gateway6;
      const aux6 = Object.fromEntries(Object.entries(n.aux).filter(([, a]) => isV6(a)));
      if (Object.keys(aux6).length) c.AuxiliaryAddresses = aux6;
      cfg.push(c);
    }
    return {
      Name: n.name,
      Id: n.id,
      Created: n.created,
      Scope: 'local',
      Driver: n.driver,
      EnableIPv4: true,
      EnableIPv6: n.ipv6,
      IPAM: { Driver: 'default', Options: n.name === 'bridge' || n.driver !== 'bridge' ? null : {}, Config: cfg },
      Internal: n.internal,
      Attachable: n.attachable,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: containers,
      Options: n.options,
      Labels: n.labels,
    };
  }

  /** Whether a network has endpoints (of any container, running or not): `rm` and `prune` keep it. */
  inUse(n: NetworkRow): boolean {
    return this.endpointsOf(n.id).length > 0;
  }
}

function hostHosts(): string {
  try {
    return readFileSync('/etc/hosts', 'utf8');
  } catch {
    return '127.0.0.1\tlocalhost\n';
  }
}
