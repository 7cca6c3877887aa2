// Published ports (-p, -P) by DNAT in the daemon's nftables table: prerouting for traffic from outside,
// output for the host's own (with route_localnet on the bridges, 127.0.0.1 works too). Each binding also
// holds a listening socket on the host address and port, as Docker's port mapper does: that is how a port
// already taken by some other program is found, and it keeps anyone else from taking it while mapped.
import net from 'node:net';
import dgram from 'node:dgram';
import type { DB } from '../../state/db';
import type { ContainerRecord } from '../../containers/model';
import { BerthError, invalid } from '../../errors/errors';
import type { FwPort } from '../firewall/nft';

export interface Binding extends FwPort {
  containerId: string;
}

type Holder = { close(): void };

/** One published port as asked: host ports hostPort..hostPortEnd (0: any), on hostIp ('' = all). */
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

/** `relay`: there is no DNAT for this binding, and the holder carries TCP connections and UDP datagrams
 *  (UdpFlows) to the container itself, as Docker's userland proxy does: with berth's firewall off (daemon.json "iptables":
 *  false), for a port published on [::1] (IPv6 has no route_localnet), and for an IPv6 host address
 *  published to a container that has no IPv6 address. */
function reserve(b: FwPort, relay = false): Promise<Holder> {
  const ip = bindIp(b.hostIp);
  return new Promise((resolve, reject) => {
    if (b.proto === 'udp') {
      // ipv6Only: '::' must not take the IPv4 port too, which the '' binding of the same port holds.
      const s = dgram.createSocket({ type: v6(ip) ? 'udp6' : 'udp4', ipv6Only: v6(ip) });
      s.once('error', reject);
      const flows = relay ? new UdpFlows(s, b) : undefined;
      if (flows) s.on('message', (msg, from) => flows.forward(msg, from));
      s.bind(b.hostPort, ip, () => {
        s.off('error', reject);
        s.on('error', () => {});
        resolve({ close: () => { flows?.closeAll(); s.close(); } });
      });
    } else {
      const s = net.createServer((c) => {
        if (!relay) return c.destroy();
        const up = net.connect({ host: b.ctrIp, port: b.ctrPort });
        c.on('error', () => up.destroy());
        up.on('error', () => c.destroy());
        c.pipe(up).pipe(c);
      });
      s.once('error', reject);
      s.listen({ port: b.hostPort, host: ip, exclusive: true, ipv6Only: v6(ip) }, () => resolve({ close: () => s.close() }));
    }
  });
}

/** How long a UDP flow of the relay lives without a datagram either way, and how many there may be at once
 *  per port: UDP has no connection to end, so a flow (one client address and port, with a socket of its own
 *  towards the container so that answers find their way back) ends when it goes quiet, as a conntrack entry
 *  does; a client that makes new flows faster than that finds the port's table full and its datagrams
 *  dropped, as a full conntrack table drops them. */
const UDP_FLOW_IDLE_MS = 60_000;
const UDP_MAX_FLOWS = 1024;

/** The UDP side of the userland relay (daemon.json "iptables": false, IPv6 host addresses): datagrams to
 *  the held port go on to the container from a socket per client; the container's answers come back from
 *  the held port to that client. */
class UdpFlows {
  private readonly flows = new Map<string, { sock: dgram.Socket; timer: NodeJS.Timeout }>();

  constructor(private readonly front: dgram.Socket, private readonly b: FwPort) {}

  forward(msg: Buffer, from: dgram.RemoteInfo): void {
    const key = `${from.address}|${from.port}`;
    let f = this.flows.get(key);
    if (!f) {
      if (this.flows.size >= UDP_MAX_FLOWS) return;
      const sock = dgram.createSocket(v6(this.b.ctrIp) ? 'udp6' : 'udp4');
      sock.on('error', () => this.end(key));
      sock.on('message', (reply) => {
        this.touch(key);
        try { this.front.send(reply, from.port, from.address); } catch { /* the port was unmapped meanwhile */ }
      });
      f = { sock, timer: setTimeout(() => this.end(key), UDP_FLOW_IDLE_MS) };
      f.timer.unref();
      this.flows.set(key, f);
    } else {
      this.touch(key);
    }
    try { f.sock.send(msg, this.b.ctrPort, this.b.ctrIp); } catch { this.end(key); }
  }

  private touch(key: string): void {
    this.flows.get(key)?.timer.refresh();
  }

  private end(key: string): void {
    const f = this.flows.get(key);
    if (!f) return;
    this.flows.delete(key);
    clearTimeout(f.timer);
    try { f.sock.close(); } catch { /* closed */ }
  }

  closeAll(): void {
    for (const k of [...this.flows.keys()]) this.end(k);
  }
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

  constructor(private readonly db: DB, private readonly relay = false) {
    this.onPortQ = db.prepare('SELECT * FROM ports WHERE proto = ? AND host_port = ?');
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

  /** Whether a binding's holder carries connections to the container (see reserve). IPv6 host addresses
   *  always relay: connections to ::1 reach the holder of '::' or '::1' (the DNAT rules leave ::1 out,
   *  as Docker's do, since IPv6 has no route_localnet), and all of them do when the container has no IPv6
   *  address. Elsewhere DNAT takes the packets before the holder sees them. */
  private relays(b: FwPort): boolean {
    return this.relay || v6(b.hostIp);
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
        out.push({ proto, ctrPort: Number(m[1]), hostIp: b.HostIp && b.HostIp !== '0.0.0.0' ? b.HostIp : '', hostPort: lo, hostPortEnd: hi });
      }
    }
    return out;
  }

  /** Maps every port a container publishes to `ctrIp` (and, for IPv6 host addresses, to `ctrIp6` when the
   *  container has one); all or nothing. A port published on every address of a container with IPv6 is
   *  also published on '::' with the same port number, as Docker does; where the host has no IPv6 that
   *  second binding is left out. */
  async map(rec: ContainerRecord, ctrIp: string, ctrIp6?: string): Promise<void> {
    const wanted = PortMapper.wanted(rec);
    const made: Binding[] = [];
    const insert = (b: Binding) => {
      this.db.prepare('INSERT INTO ports (container_id, proto, host_ip, host_port, ctr_ip, ctr_port) VALUES (?, ?, ?, ?, ?, ?)')
        .run(b.containerId, b.proto, b.hostIp, b.hostPort, b.ctrIp, b.ctrPort);
      // The copy by container follows the row (dropping it made the next read load every port again).
      this.byContainer?.get(b.containerId)?.push(b) ?? this.byContainer?.set(b.containerId, [b]);
      made.push(b);
    };
    try {
      for (const w of wanted) {
        const b = await this.bindOne(rec, w, v6(w.hostIp) ? ctrIp6 ?? ctrIp : ctrIp);
        insert(b);
        if (!w.hostIp && ctrIp6) {
          const b6: Binding = { ...b, hostIp: '::', ctrIp: ctrIp6 };
          if (this.taken(b6.proto, b6.hostIp, b6.hostPort)) continue;
          const h = await reserve(b6, this.relays(b6)).catch(() => undefined);
          if (!h) continue;
          this.holders.set(this.key(b6), h);
          insert(b6);
        }
      }
    } catch (e) {
      this.unmap(rec.id);
      throw e;
    }
  }

  /** Whether a binding of `proto` port `port` on `hostIp` would clash with one held: same family, and the
   *  same address or a wildcard ('' for IPv4, '::' for IPv6) on either side. */
  private taken(proto: string, hostIp: string, port: number): boolean {
    const wild = (ip: string) => ip === '' || ip === '::';
    return (this.onPortQ.all(proto, port) as Record<string, string | number>[]).map(toBinding).some((x) => v6(x.hostIp) === v6(hostIp) &&
      (wild(x.hostIp) || wild(hostIp) || x.hostIp === hostIp));
  }

  /** Holds one host port for the container: the one asked for, the first free one of a range, or a random one. */
  private async bindOne(rec: ContainerRecord, w: Wanted, ctrIp: string): Promise<Binding> {
    const ip = bindIp(w.hostIp);
    const taken = (port: number) => this.taken(w.proto, w.hostIp, port);
    if (w.hostPort === 0) {
      const b: Binding = { containerId: rec.id, proto: w.proto, hostIp: w.hostIp, hostPort: await randomPort(w.proto, w.hostIp), ctrIp, ctrPort: w.ctrPort };
      this.holders.set(this.key(b), await reserve(b, this.relays(b)));
      return b;
    }
    const range = w.hostPortEnd > w.hostPort;
    let lastErr: Error | undefined;
    for (let port = w.hostPort; port <= w.hostPortEnd; port++) {
      if (taken(port)) {
        lastErr = new BerthError('system', `Bind for ${ip}:${port} failed: port is already allocated`);
        continue;
      }
      const b: Binding = { containerId: rec.id, proto: w.proto, hostIp: w.hostIp, hostPort: port, ctrIp, ctrPort: w.ctrPort };
      try {
        this.holders.set(this.key(b), await reserve(b, this.relays(b)));
        return b;
      } catch (e) {
        const why = (e as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'address already in use' : (e as Error).message;
        lastErr = new BerthError('system', `driver failed programming external connectivity on endpoint ${rec.name.slice(1)} (${rec.id}): failed to bind host port for ${ip}:${port}:${ctrIp}:${w.ctrPort}/${w.proto}: ${why}`);
      }
    }
    if (range) throw new BerthError('system', `driver failed programming external connectivity on endpoint ${rec.name.slice(1)} (${rec.id}): all ports are allocated in ${ip}:${w.hostPort}-${w.hostPortEnd}/${w.proto}`);
    throw lastErr!;
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

  /** After a restart: hold the ports of containers still running again; drop the others. */
  async restore(running: (id: string) => boolean): Promise<void> {
    for (const b of this.all()) {
      if (!running(b.containerId)) {
        this.unmap(b.containerId);
        continue;
      }
      await reserve(b, this.relays(b)).then((h) => this.holders.set(this.key(b), h)).catch(() => {});
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
