// The network service: owns the networks and endpoints tables, the bridges, veths, namespace files and the
// nftables table of this berthd. Containers call it at create (which networks), start (setup: a namespace
// and an endpoint per network, before the shim spawns), exit (teardown) and remove (forget).
// This file is the facade and the state all concerns share (rows, locks); each concern is a file of its own:
// startup.ts, create.ts, remove.ts, addresses.ts (IPAM), bridges.ts, firewalling.ts, endpoints.ts,
// names.ts (/etc files, links, DNS answers) and views.ts.
import path from 'node:path';
import type { NetworkDeps } from './deps';
import type { ContainerRecord } from '../containers/model';
import { BerthError, notFound } from '../errors/errors';
import { EndpointRows, NetworkStore, type EndpointRow, type NetworkRow } from './store';
import { AddressPool, ipToInt, parseCidr } from './ipam/ipam';
import { AddressPool6, ip6ToBig, isV6, parseCidr6 } from './ipam/ipam6';
import { NetnsDir } from './netns';
import type { Backend } from './firewall/iptables';
import { DnsServer } from './dns/server';
import { PortMapper } from './ports/ports';
import { Locks, type LockRequest } from './locks';
import { init, sweep, shutdown } from './startup';
import { applyFirewall, type FwState } from './firewalling';
import { create } from './create';
import { remove } from './remove';
import { validateCreate, recordCreate, forget, setup, teardown, connect, disconnect, removeLink, settled } from './endpoints';
import { hosts, linkEnvironment, resolvConf } from './names';
import { portList, settings, inspect, inUse } from './views';

export const BRIDGE_NAME_OPT = 'com.docker.network.bridge.name';
export const ICC_OPT = 'com.docker.network.bridge.enable_icc';

/** What a container start needs from the network: how to set up its namespace, and its files' contents. */
export interface NetSetup {
  /** undefined: the host's namespace; '': a new namespace (loopback only); else a namespace file to join. */
  netns: string | undefined;
  hosts: string;
  resolvConf: string;
}

export interface CreateBody {
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

export const PREDEFINED = ['bridge', 'host', 'none'];

/** The IPv6 fields of a network without IPv6. */
export const NO_V6 = { ipv6: false, subnet6: '', ipRange6: '', gateway6: '', ipamUser6: false, gateway6Implied: false };

export class NetworkService {
  // The state below is read and changed by the concern files of this directory only (TypeScript has no
  // package-private members); everything else goes through the methods.
  readonly store: NetworkStore;
  readonly netns: NetnsDir;
  nets = new Map<string, NetworkRow>();
  /** The endpoint rows in memory, by network and by container (list, inspect and DNS answers ask per
   *  container or network), changed with each write (saveEndpoint, dropEndpoint). */
  readonly epRows = new EndpointRows((before, after) => this.addressesChanged(before, after));
  /** Each network's IPv4 addresses in use (ipam.ts AddressPool), made on first allocation after a reload. */
  readonly pools = new Map<string, AddressPool>();
  /** Each IPv6 network's IPv6 addresses in use (ipam6.ts AddressPool6), made as the IPv4 ones are. */
  readonly pools6 = new Map<string, AddressPool6>();
  readonly table: string;
  readonly dns: DnsServer;
  fwQueue: Promise<unknown> = Promise.resolve();
  /** What the table holds after the last firewall change (firewalling.ts); undefined when not known
   *  (before the first change, after a failed one). */
  fwState: FwState | undefined;
  /** Containers whose published ports and veths the firewall is to be brought in step with, by the next
   *  batch (firewalling.ts syncContainer), and that batch while it waits its turn. */
  fwDirty = new Set<string>();
  fwBatch: Promise<void> | undefined;
  /** Networks being removed: their rules go before their rows do. */
  fwExclude = new Set<string>();
  /** Per-container and per-network locks (locks.ts): starts on one network run side by side. */
  readonly locks = new Locks();
  /** Bridges brought up by this berthd (network id → done), so an attach does not redo it. */
  bridgesUp = new Map<string, Promise<void>>();
  /** Published ports: their DNAT rules and the Ports views. */
  readonly ports: PortMapper;
  /** daemon.json "iptables": false: berth leaves the host's firewall alone (no nftables table, no
   *  iptables chains), as dockerd's key does; published ports are then relayed by the port holders. */
  readonly firewallOn: boolean;
  /** The iptables backends found at the last sync of berth's chains, and the bridges they were given. */
  hostFw: { backends: Backend[]; key: string } | undefined;
  /** Warnings for `docker info`: the default bridge's and user networks' subnets that overlap the host's. */
  readonly overlapWarnings = new Map<string, string>();
  /** net.ipv6.conf.all.forwarding, set with the first IPv6 bridge (bridgeV6). */
  v6Forwarding: Promise<void> | undefined;

  constructor(readonly d: NetworkDeps) {
    this.store = new NetworkStore(d.db);
    this.netns = new NetnsDir(path.join(d.config.execRoot, 'netns'));
    this.table = `berth_${d.config.bridge.replace(/[^A-Za-z0-9_]/g, '_')}`;
    this.dns = new DnsServer(d.log);
    this.firewallOn = d.config.iptables !== false;
    this.ports = new PortMapper(d.db, { relay: !this.firewallOn, userlandProxy: d.config.userlandProxy, log: d.log });
    this.reload();
  }

  /** Networks and endpoints read again from the database (start, network create and remove). */
  reload(): void {
    this.nets = new Map(this.store.networks().map((n) => [n.id, n]));
    this.pools.clear();
    this.pools6.clear();
    this.epRows.load(this.store.endpoints());
  }

  /** The networks read again after one was created: the endpoints and address pools stay as they are
   *  (reading every endpoint row again cost a network create a few ms per 100 containers). */
  reloadNetworks(): void {
    this.nets = new Map(this.store.networks().map((n) => [n.id, n]));
  }

  /** A network whose rows (its own and its endpoints') were deleted: gone from memory too. */
  networkGone(id: string): void {
    for (const e of this.epRows.ofNetwork(id)) this.epRows.drop(e.networkId, e.containerId);
    this.pools.delete(id);
    this.pools6.delete(id);
    this.reloadNetworks();
  }

  /** Every endpoint row, in the table's order. */
  get eps(): EndpointRow[] {
    return this.epRows.all();
  }

  endpoint(networkId: string, containerId: string): EndpointRow | undefined {
    return this.epRows.get(networkId, containerId);
  }

  /** An endpoint row written, and changed in memory. */
  saveEndpoint(e: EndpointRow): void {
    this.store.saveEndpoint(e);
    this.epRows.put(e);
  }

  dropEndpoint(networkId: string, containerId: string): void {
    this.store.deleteEndpoint(networkId, containerId);
    this.epRows.drop(networkId, containerId);
  }

  dropContainerEndpoints(containerId: string): void {
    this.store.deleteContainer(containerId);
    this.epRows.dropContainer(containerId);
  }

  /** The network's IPv4 address pool, made from its endpoints the first time. */
  pool(n: NetworkRow): AddressPool {
    let p = this.pools.get(n.id);
    if (!p) {
      p = new AddressPool(parseCidr(n.subnet), n.ipRange ? parseCidr(n.ipRange) : undefined,
        [ipToInt(n.gateway), ...Object.values(n.aux).filter((a) => !isV6(a)).map(ipToInt)]);
      for (const e of this.epRows.ofNetwork(n.id)) if (e.ip) p.take(ipToInt(e.ip));
      this.pools.set(n.id, p);
    }
    return p;
  }

  /** The network's IPv6 address pool, made from its endpoints the first time. */
  pool6(n: NetworkRow): AddressPool6 {
    let p = this.pools6.get(n.id);
    if (!p) {
      p = new AddressPool6(parseCidr6(n.subnet6), n.ipRange6 ? parseCidr6(n.ipRange6) : undefined,
        [ip6ToBig(n.gateway6), ...Object.values(n.aux).filter(isV6).map(ip6ToBig)]);
      for (const e of this.epRows.ofNetwork(n.id)) if (e.ip6) p.take(ip6ToBig(e.ip6));
      this.pools6.set(n.id, p);
    }
    return p;
  }

  private addressesChanged(before: EndpointRow | undefined, after: EndpointRow | undefined): void {
    if (before?.ip) this.pools.get(before.networkId)?.free(ipToInt(before.ip));
    if (after?.ip) this.pools.get(after.networkId)?.take(ipToInt(after.ip));
    if (before?.ip6) this.pools6.get(before.networkId)?.free(ip6ToBig(before.ip6));
    if (after?.ip6) this.pools6.get(after.networkId)?.take(ip6ToBig(after.ip6));
  }

  /** Network create and remove, one at a time (names, subnets and bridge names stay unique). */
  admin<T>(fn: () => Promise<T>): Promise<T> {
    return this.locks.with([{ key: 'networks', exclusive: true }], fn);
  }

  /** A container's own namespace and endpoints, exclusively, and its networks (so they are not removed
   *  meanwhile), shared with other containers. */
  forContainer<T>(containerId: string, networkIds: string[], fn: () => Promise<T>): Promise<T> {
    const wanted: LockRequest[] = [{ key: `ctr:${containerId}`, exclusive: true }, ...networkIds.map((id) => ({ key: `net:${id}`, exclusive: false }))];
    return this.locks.with(wanted, fn);
  }

  /** The `docker info` Warnings of the network. */
  warnings(): string[] {
    return [...this.overlapWarnings.values()].map((w) => `WARNING: ${w}`);
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
    return this.epRows.ofNetwork(networkId);
  }

  endpointsOfContainer(containerId: string): EndpointRow[] {
    return this.epRows.ofContainer(containerId);
  }

  // ---- the rest, a file per concern (startup, firewalling, create, remove, endpoints, names, views) --

  init(): Promise<void> { return init(this); }
  sweep(): Promise<void> { return sweep(this); }
  shutdown(): Promise<void> { return shutdown(this); }
  applyFirewall(): Promise<void> { return applyFirewall(this); }
  create(body: CreateBody): Promise<{ Id: string; Warning: string }> { return create(this, body); }
  remove(ref: string): Promise<void> { return remove(this, ref); }
  validateCreate(rec: ContainerRecord, epConfigs: Record<string, EndpointConfig> | undefined): void { return validateCreate(this, rec, epConfigs); }
  recordCreate(rec: ContainerRecord, epConfigs: Record<string, EndpointConfig> | undefined): void { return recordCreate(this, rec, epConfigs); }
  forget(containerId: string): void { return forget(this, containerId); }
  setup(rec: ContainerRecord): Promise<NetSetup> { return setup(this, rec); }
  teardown(rec: ContainerRecord): Promise<void> { return teardown(this, rec); }
  connect(ref: string, ctrRef: string, cfg: EndpointConfig | undefined): Promise<void> { return connect(this, ref, ctrRef, cfg); }
  disconnect(ref: string, ctrRef: string, force: boolean): Promise<void> { return disconnect(this, ref, ctrRef, force); }
  removeLink(name: string): Promise<void> { return removeLink(this, name); }
  settled(containerId: string): Promise<void> { return settled(this, containerId); }
  hosts(rec: ContainerRecord, eps: EndpointRow[]): string { return hosts(this, rec, eps); }
  linkEnvironment(rec: ContainerRecord): string[] { return linkEnvironment(this, rec); }
  resolvConf(rec: ContainerRecord, embedded?: NetworkRow): string { return resolvConf(this, rec, embedded); }
  portList(rec: ContainerRecord, running: boolean): Array<Record<string, unknown>> { return portList(this, rec, running); }
  settings(rec: ContainerRecord, running: boolean): Record<string, unknown> { return settings(this, rec, running); }
  inspect(n: NetworkRow, verbose = false): Record<string, unknown> { return inspect(this, n, verbose); }
  inUse(n: NetworkRow): boolean { return inUse(this, n); }
}
