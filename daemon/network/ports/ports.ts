// Published ports (-p, -P) by DNAT in the daemon's nftables table: prerouting for traffic from outside,
// output for the host's own (with route_localnet on the bridges, 127.0.0.1 works too). Each binding also
// holds a listening socket on the host address and port, as Docker's port mapper does: that is how a port
// already taken by some other program is found, and it keeps anyone else from taking it while mapped.
// Where no DNAT rule applies, that socket relays to the container (relay.ts), unless "userland-proxy" is off.
// The addresses published to are those of the container's gateway endpoints (endpoints.ts gateways): they
// change with a network connect or disconnect, and the bindings follow (sync).
import net from 'node:net';
import dgram from 'node:dgram';
import type { DB } from '../../state/db';
import type { ContainerRecord } from '../../containers/model';
import { BerthError, invalid } from '../../errors/errors';
import type { FwPort } from '../firewall/nft';
import { FdBudget, TcpRelay, UdpFlows } from './relay';
import { udpRelaySocket } from '../../runtime/udp';

export interface Binding extends FwPort {
  containerId: string;
}

type Holder = { close(): void };

/** One published port as asked: host ports hostPort..hostPortEnd (0: any), on hostIp ('': every address of
 *  both families; '0.0.0.0': every IPv4 address). */
interface Wanted {
  proto: 'tcp' | 'udp';
  ctrPort: number;
  hostIp: string;
  hostPort: number;
  hostPortEnd: number;
}

const v6 = (ip: string) => ip.includes(':');

/** The address a holder binds: '' is every IPv4 address (IPv6 ones are '::', a binding of its own). */
const bindIp = (hostIp: string) => hostIp || '0.0.0.0';

/** Whether the firewall's DNAT carries a binding (see PortMapper.rules). */
export const dnatCarried = (b: FwPort): boolean => !v6(b.hostIp) || (b.hostIp !== '::1' && v6(b.ctrIp));

/** A host address in an error, as Docker writes it: IPv6 in brackets. */
const fmtIp = (hostIp: string) => (v6(hostIp) ? `[${hostIp}]` : bindIp(hostIp));

/** A bind's failure in Docker's words (Go's texts of the errno), for the errors a start answers with. */
const ERRNO_TEXT: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'cannot assign requested address',
  EACCES: 'permission denied',
  EAFNOSUPPORT: 'address family not supported by protocol',
};

/** Random ports tried for a group of bindings ('0.0.0.0' and '::') before a start fails. */
const RANDOM_PORT_TRIES = 10;

/** What the mapper tells the daemon's log (pino's shape). */
export interface PortLog {
  info(obj: object, msg: string): void;
}

/** `relay`: the holder carries TCP connections and UDP datagrams (relay.ts) to the container itself, as
 *  Docker's userland proxy does: with berth's firewall off (daemon.json "iptables": false), for IPv6 host
 *  addresses (connections to [::1], which IPv6 has no route_localnet for, and all of them for a container
 *  that has no IPv6 address); never with "userland-proxy": false (PortMapper.relays). */
function reserve(b: FwPort, relay: boolean, budget: FdBudget): Promise<Holder> {
  const ip = bindIp(b.hostIp);
  const to = { ip: b.ctrIp, port: b.ctrPort };
  return new Promise((resolve, reject) => {
    if (b.proto === 'udp' && relay) {
      // The addon's socket (v6-only for '::', as below), which knows each datagram's destination address.
      let flows: UdpFlows | undefined;
      try {
        const s = udpRelaySocket(ip, b.hostPort, (msg, fromAddr, fromPort, toAddr) => flows?.forward(msg, fromAddr, fromPort, toAddr));
        flows = new UdpFlows(s, to, budget);
        const f = flows;
        resolve({ close: () => { f.closeAll(); s.close(); } });
      } catch (e) {
        reject(e);
      }
    } else if (b.proto === 'udp') {
      // ipv6Only: '::' must not take the IPv4 port too, which the '' binding of the same port holds.
      const s = dgram.createSocket({ type: v6(ip) ? 'udp6' : 'udp4', ipv6Only: v6(ip) });
      s.once('error', reject);
      s.bind(b.hostPort, ip, () => {
        s.off('error', reject);
        s.on('error', () => {});
        resolve({ close: () => s.close() });
      });
    } else {
      const tcp = relay ? new TcpRelay(to, budget) : undefined;
      // Without a relay, nothing is meant to arrive here (DNAT takes it first): whatever does is refused.
      const s = net.createServer(TcpRelay.serverOptions, (c) => (tcp ? tcp.accept(c) : c.destroy()));
      s.once('error', reject);
      s.listen({ port: b.hostPort, host: ip, exclusive: true, ipv6Only: v6(ip) }, () => {
        s.off('error', reject);
        // A listener's later errors (accept failing for want of descriptors) must not become an uncaught
        // 'error' that ends berthd: the connection in question is lost, the port keeps listening.
        s.on('error', () => {});
        // close() stops accepting; the connections already relayed are ended with it.
        resolve({ close: () => { s.close(); tcp?.closeAll(); } });
      });
    }
  });
}

/** Whether this network namespace can listen on IPv6 at all, as Docker decides it (a listener on [::1]
 *  port 0): only then does a port published without a host address get its '::' binding too. A host
 *  booted with ipv6.disable=1, or with IPv6 switched off on its loopback, gets the IPv4 binding alone and
 *  no error. */
function v6Listenable(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port: 0, host: '::1', ipv6Only: true }, () => s.close(() => resolve(true)));
  });
}

/** A free port of the ephemeral range, by asking the kernel for one. */
async function randomPort(proto: 'tcp' | 'udp', ip: string): Promise<number> {
  const h = await new Promise<{ port: number; close(): void }>((resolve, reject) => {
    if (proto === 'udp') {
      const s = dgram.createSocket({ type: v6(ip) ? 'udp6' : 'udp4', ipv6Only: v6(ip) });
      s.once('error', reject);
      s.bind(0, bindIp(ip), () => resolve({ port: s.address().port, close: () => s.close() }));
    } else {
      const s = net.createServer();
      s.once('error', reject);
      s.listen({ port: 0, host: bindIp(ip), ipv6Only: v6(ip) }, () => resolve({ port: (s.address() as net.AddressInfo).port, close: () => s.close() }));
    }
  });
  h.close();
  return h.port;
}

function toBinding(r: Record<string, string | number>): Binding {
  return {
    containerId: r.container_id as string, proto: r.proto as 'tcp' | 'udp', hostIp: r.host_ip as string, hostPort: r.host_port as number,
    ctrIp: r.ctr_ip as string, ctrPort: r.ctr_port as number,
  };
}

export class PortMapper {
  private readonly holders = new Map<string, Holder>();

  // Per-container and per-port reads: list, inspect, start and stop each ask about one container, and a
  // read of the whole table for each made them linear in the published ports (quadratic for a list).
  private byContainer: Map<string, Binding[]> | undefined;
  private readonly onPortQ;

  /** Open files the relays of all bindings may hold (relay.ts). */
  private readonly budget = new FdBudget();
  /** Whether berthd's network namespace can listen on IPv6, asked once as Docker does (v6Listenable). */
  private v6: Promise<boolean> | undefined;
  private readonly relay: boolean;
  private readonly userlandProxy: boolean;
  private readonly log: PortLog | undefined;

  /** `relay`: every binding relays (daemon.json "iptables": false). `userlandProxy` (daemon.json
   *  "userland-proxy", true by default): without it nothing relays, and IPv6 host addresses are not mapped
   *  to containers that have no IPv6 address, as Docker skips them (nothing but a relay could carry them). */
  constructor(private readonly db: DB, opts: { relay?: boolean; userlandProxy?: boolean; log?: PortLog } = {}) {
    this.onPortQ = db.prepare('SELECT * FROM ports WHERE proto = ? AND host_port = ?');
    this.relay = opts.relay ?? false;
    this.userlandProxy = opts.userlandProxy ?? true;
    this.log = opts.log;
  }

  private key(b: FwPort): string {
    return `${b.proto}/${b.hostIp}/${b.hostPort}`;
  }

  all(): Binding[] {
    return (this.db.prepare('SELECT * FROM ports').all() as Record<string, string | number>[]).map(toBinding);
  }

  /** A container's published ports, from a copy of the table by container kept in memory (a list asks for
   *  each container twice: a query each was a third of a list's time), dropped on every write. */
  ofContainer(containerId: string): Binding[] {
    if (!this.byContainer) {
      const m = new Map<string, Binding[]>();
      for (const b of this.all()) (m.get(b.containerId) ?? m.set(b.containerId, []).get(b.containerId)!).push(b);
      this.byContainer = m;
    }
    return [...(this.byContainer.get(containerId) ?? [])];
  }

  /** Whether a binding's holder carries connections to the container (see reserve). With the userland
   *  proxy (the default), IPv6 host addresses always relay: connections to ::1 reach the holder of '::' or
   *  '::1' (the DNAT rules leave ::1 out, as Docker's do, since IPv6 has no route_localnet), and all of them
   *  do when the container has no IPv6 address. Elsewhere DNAT takes the packets before the holder sees
   *  them. Without it (daemon.json "userland-proxy": false) nothing relays, as Docker then starts no
   *  docker-proxy: the holders only keep their ports, ::1 is not reached, and with "iptables": false too no
   *  published port is reached from outside. */
  private relays(b: FwPort): boolean {
    return this.userlandProxy && (this.relay || v6(b.hostIp));
  }

  /** The bindings the firewall's DNAT rules carry: IPv4 ones, and IPv6 ones to a container's IPv6 address
   *  on an address other than ::1. */
  rules(): FwPort[] {
    return this.all().filter(dnatCarried);
  }

  /** What the container asks for: (proto, container port, host ip, host port or 0). */
  static wanted(rec: ContainerRecord): Wanted[] {
    const out: Wanted[] = [];
    const pb = (rec.hostConfig.PortBindings ?? {}) as Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;
    const keys = new Set(Object.keys(pb));
    if (rec.hostConfig.PublishAllPorts) for (const k of Object.keys(rec.config.ExposedPorts ?? {})) keys.add(k);
    for (const k of keys) {
      const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/.exec(k);
      if (!m) throw invalid(`invalid port specification: "${k}"`);
      const proto = (m[2] ?? 'tcp') as 'tcp' | 'udp';
      if ((m[2] ?? 'tcp') === 'sctp') throw invalid('sctp ports are not supported');
      const list = pb[k]?.length ? pb[k]! : [{ HostIp: '', HostPort: '' }];
      for (const b of list) {
        const hp = b.HostPort ?? '';
        const r = /^(\d+)(?:-(\d+))?$/.exec(hp);
        if (hp && !r) throw invalid(`invalid port: ${hp}`);
        const lo = r ? Number(r[1]) : 0;
        const hi = r?.[2] ? Number(r[2]) : lo;
        if (hi < lo || hi > 65535) throw invalid(`invalid host port range: ${hp}`);
        // An explicit 0.0.0.0 stays: Docker 28 publishes it on IPv4 alone, where no address means both.
        out.push({ proto, ctrPort: Number(m[1]), hostIp: b.HostIp ?? '', hostPort: lo, hostPortEnd: hi });
      }
    }
    return out;
  }

  /** Maps every port a container publishes, all or nothing. `ip4` is the IPv4 address of the container's
   *  IPv4 gateway endpoint, `ip6` the IPv6 address of its IPv6 gateway endpoint (endpoints.ts gateways),
   *  either absent when it has none: a container on IPv6-only networks has only `ip6`. A port published
   *  without a host address is published on '0.0.0.0' and on '::' with the same port number, as Docker 28
   *  does: '::' goes to `ip6`, or, for a container without IPv6, is relayed to `ip4` (Docker's docker-proxy
   *  does that). An explicit 0.0.0.0 is IPv4's alone. Where the host has no IPv6, or the userland proxy is
   *  off for a container without IPv6, the '::' binding is left out, without an error; so is every IPv4
   *  binding of a container without IPv4. `prefer`: bindings held before (a remap), whose host ports a
   *  port published without one keeps when it can. */
  async map(rec: ContainerRecord, ip4: string | undefined, ip6: string | undefined, prefer: Binding[] = []): Promise<void> {
    const wanted = PortMapper.wanted(rec);
    this.budget.refresh();
    const hostV6 = await (this.v6 ??= v6Listenable());
    // Host ports a remap may not hand to a port published without one: those asked for by number.
    const used = new Set(wanted.filter((w) => w.hostPort !== 0 && w.hostPort === w.hostPortEnd).map((w) => `${w.proto}/${w.hostPort}`));
    try {
      for (const w of wanted) {
        const targets = this.targets(rec, w, ip4, ip6, hostV6, true);
        if (!targets.length) continue;
        for (const b of await this.bindGroup(rec, w, targets, prefer, used)) {
          this.insert(b);
        }
      }
    } catch (e) {
      this.unmap(rec.id);
      throw e;
    }
  }

  private insert(b: Binding): void {
    this.db.prepare('INSERT INTO ports (container_id, proto, host_ip, host_port, ctr_ip, ctr_port) VALUES (?, ?, ?, ?, ?, ?)')
      .run(b.containerId, b.proto, b.hostIp, b.hostPort, b.ctrIp, b.ctrPort);
    // The copy by container follows the row (dropping it made the next read load every port again).
    this.byContainer?.get(b.containerId)?.push(b) ?? this.byContainer?.set(b.containerId, [b]);
  }

  /** What `map` would hold for these gateway addresses, host ports left out: (proto, container port, host
   *  address, container address) keys. */
  private async shape(rec: ContainerRecord, ip4: string | undefined, ip6: string | undefined): Promise<Set<string>> {
    const hostV6 = await (this.v6 ??= v6Listenable());
    const out = new Set<string>();
    for (const w of PortMapper.wanted(rec)) {
      for (const t of this.targets(rec, w, ip4, ip6, hostV6, false)) out.add(`${w.proto}/${w.ctrPort}/${t.hostIp}/${t.ctrIp}`);
    }
    return out;
  }

  /** Brings a running container's bindings in step with its gateway addresses (after a network connect or
   *  disconnect changed them, or a restart changed "userland-proxy"): nothing happens when they already
   *  match; else its ports are mapped again, each keeping its host port where it can (Docker gives new
   *  random ones). When the new mapping fails, the bindings held before are held again and the error
   *  thrown. Returns whether anything changed. */
  async sync(rec: ContainerRecord, ip4: string | undefined, ip6: string | undefined): Promise<boolean> {
    const old = this.ofContainer(rec.id);
    const want = await this.shape(rec, ip4, ip6);
    const have = new Set(old.map((b) => `${b.proto}/${b.ctrPort}/${b.hostIp}/${b.ctrIp}`));
    if (want.size === have.size && [...want].every((k) => have.has(k))) return false;
    this.unmap(rec.id);
    try {
      await this.map(rec, ip4, ip6, old);
    } catch (e) {
      this.budget.refresh();
      for (const b of old) {
        const h = await reserve(b, this.relays(b), this.budget).catch(() => undefined);
        if (!h) continue;
        this.holders.set(this.key(b), h);
        this.insert(b);
      }
      throw e;
    }
    return true;
  }

  /** The (host address, container address) pairs one wanted port is bound on, all with one host port (see
   *  map). `log`: say in the log what is left out for want of the userland proxy, as Docker does. */
  private targets(rec: ContainerRecord, w: Wanted, ip4: string | undefined, ip6: string | undefined, hostV6: boolean, log: boolean): Array<{ hostIp: string; ctrIp: string }> {
    const out: Array<{ hostIp: string; ctrIp: string }> = [];
    const any = !w.hostIp;
    if (ip4 && (any || !v6(w.hostIp))) out.push({ hostIp: any || w.hostIp === '0.0.0.0' ? '' : w.hostIp, ctrIp: ip4 });
    if (any ? !hostV6 : !v6(w.hostIp)) return out;
    const hostIp6 = w.hostIp || '::';
    if (ip6) {
      out.push({ hostIp: hostIp6, ctrIp: ip6 });
    } else if (ip4 && this.userlandProxy) {
      out.push({ hostIp: hostIp6, ctrIp: ip4 });
    } else if (ip4 && !any && log) {
      // Docker says so in its log and starts the container: a later network of the container may have
      // IPv6, and the mapping would make sense there.
      this.log?.info({ id: rec.id, mapping: `[${w.hostIp}]:${w.hostPort}:${w.ctrPort}/${w.proto}` },
        'Cannot map from IPv6 to an IPv4-only container because the userland proxy is disabled');
    }
    return out;
  }

  /** Whether a binding of `proto` port `port` on `hostIp` would clash with one held: same family, and the
   *  same address or a wildcard ('' for IPv4, '::' for IPv6) on either side. */
  private taken(proto: string, hostIp: string, port: number): boolean {
    const wild = (ip: string) => ip === '' || ip === '::';
    return (this.onPortQ.all(proto, port) as Record<string, string | number>[]).map(toBinding).some((x) => v6(x.hostIp) === v6(hostIp) &&
      (wild(x.hostIp) || wild(hostIp) || x.hostIp === hostIp));
  }

  /** Holds one host port for every target of a wanted port (the port asked for, the first of a range free on
   *  all of them, or a random one free on all of them): '0.0.0.0' and '::' get the same number, as Docker
   *  allocates them, so that a client may use either address with the port it was told. */
  private async bindGroup(rec: ContainerRecord, w: Wanted, targets: Array<{ hostIp: string; ctrIp: string }>, prefer: Binding[], used: Set<string>): Promise<Binding[]> {
    const at = (port: number) => targets.map((t): Binding => ({ containerId: rec.id, proto: w.proto, hostIp: t.hostIp, hostPort: port, ctrIp: t.ctrIp, ctrPort: w.ctrPort }));
    const take = (group: Binding[]) => { used.add(`${w.proto}/${group[0].hostPort}`); return group; };
    // A remap: the host port this port had before (on one of these host addresses), if it was chosen
    // (random or from a range) and no other port of this mapping took it again.
    const before = w.hostPort === w.hostPortEnd && w.hostPort !== 0 ? undefined : prefer.find((b) => b.proto === w.proto && b.ctrPort === w.ctrPort &&
      targets.some((t) => t.hostIp === b.hostIp) && !used.has(`${w.proto}/${b.hostPort}`) &&
      (w.hostPort === 0 || (b.hostPort >= w.hostPort && b.hostPort <= w.hostPortEnd)));
    if (before) {
      try {
        await this.hold(rec, at(before.hostPort), false);
        return take(at(before.hostPort));
      } catch { /* taken meanwhile: chosen again below */ }
    }
    if (w.hostPort === 0) {
      // A port the kernel finds free on the first address, tried on the others; a few tries, since another
      // program may hold that number on '::' alone.
      let lastErr: Error | undefined;
      for (let i = 0; i < RANDOM_PORT_TRIES; i++) {
        const group = at(await randomPort(w.proto, targets[0].hostIp));
        try {
          await this.hold(rec, group, false);
          return take(group);
        } catch (e) {
          lastErr = e as Error;
        }
      }
      throw lastErr!;
    }
    const range = w.hostPortEnd > w.hostPort;
    let lastErr: Error | undefined;
    for (let port = w.hostPort; port <= w.hostPortEnd; port++) {
      const group = at(port);
      try {
        await this.hold(rec, group, range);
        return take(group);
      } catch (e) {
        lastErr = e as Error;
      }
    }
    const ip = targets.length > 1 ? '0.0.0.0' : fmtIp(targets[0].hostIp);
    if (range) throw new BerthError('system', `driver failed programming external connectivity on endpoint ${rec.name.slice(1)} (${rec.id}): all ports are allocated in ${ip}:${w.hostPort}-${w.hostPortEnd}/${w.proto}`);
    throw lastErr!;
  }

  /** Reserves every binding of a group, or none of them (those already held are let go again). */
  private async hold(rec: ContainerRecord, group: Binding[], inRange: boolean): Promise<void> {
    const held: Binding[] = [];
    try {
      for (const b of group) {
        if (this.taken(b.proto, b.hostIp, b.hostPort)) throw new BerthError('system', `Bind for ${fmtIp(b.hostIp)}:${b.hostPort} failed: port is already allocated`);
        try {
          this.holders.set(this.key(b), await reserve(b, this.relays(b), this.budget));
        } catch (e) {
          const why = ERRNO_TEXT[(e as NodeJS.ErrnoException).code ?? ''] ?? (e as Error).message;
          const what = `${fmtIp(b.hostIp)}:${b.hostPort}:${b.ctrIp}:${b.ctrPort}/${b.proto}`;
          throw new BerthError('system', `driver failed programming external connectivity on endpoint ${rec.name.slice(1)} (${rec.id}): failed to bind host port ${inRange ? `${b.hostPort} ` : ''}for ${what}: ${why}`);
        }
        held.push(b);
      }
    } catch (e) {
      for (const b of held) {
        this.holders.get(this.key(b))?.close();
        this.holders.delete(this.key(b));
      }
      throw e;
    }
  }

  unmap(containerId: string): boolean {
    const mine = this.ofContainer(containerId);
    for (const b of mine) {
      this.holders.get(this.key(b))?.close();
      this.holders.delete(this.key(b));
    }
    this.byContainer?.delete(containerId);
    this.db.prepare('DELETE FROM ports WHERE container_id = ?').run(containerId);
    return mine.length > 0;
  }

  /** After a restart: hold the ports of containers still running again; drop the others. (The network's
   *  sweep then brings each one in step with the configuration this berthd runs with: sync.) */
  async restore(running: (id: string) => boolean): Promise<void> {
    this.budget.refresh();
    for (const b of this.all()) {
      if (!running(b.containerId)) {
        this.unmap(b.containerId);
        continue;
      }
      await reserve(b, this.relays(b), this.budget).then((h) => this.holders.set(this.key(b), h)).catch(() => {});
    }
  }

  /** NetworkSettings.Ports. */
  view(rec: ContainerRecord, running: boolean): Record<string, Array<{ HostIp: string; HostPort: string }> | null> {
    const out: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
    for (const k of Object.keys(rec.config.ExposedPorts ?? {})) out[k.includes('/') ? k : `${k}/tcp`] = null;
    if (!running) return out;
    for (const b of this.ofContainer(rec.id)) {
      const k = `${b.ctrPort}/${b.proto}`;
      (out[k] ??= []).push({ HostIp: b.hostIp || '0.0.0.0', HostPort: String(b.hostPort) });
    }
    return out;
  }

  /** The Ports column of GET /containers/json. */
  list(rec: ContainerRecord, running: boolean): Array<Record<string, unknown>> {
    const rows: Array<Record<string, unknown>> = [];
    const mapped = running ? this.ofContainer(rec.id) : [];
    for (const b of mapped) rows.push({ IP: b.hostIp || '0.0.0.0', PrivatePort: b.ctrPort, PublicPort: b.hostPort, Type: b.proto });
    for (const k of Object.keys(rec.config.ExposedPorts ?? {})) {
      const [p, proto = 'tcp'] = k.split('/');
      if (!mapped.some((b) => b.ctrPort === Number(p) && b.proto === proto)) rows.push({ PrivatePort: Number(p), Type: proto });
    }
    return rows;
  }
}
