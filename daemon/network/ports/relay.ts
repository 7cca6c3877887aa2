// The userland relay: berthd's own stand-in for Docker's docker-proxy. A held port whose packets no DNAT
// rule takes (daemon.json "iptables": false, a port on [::1], an IPv6 host address published to a container
// that has IPv4 only) carries TCP connections and UDP datagrams to the container itself; with daemon.json
// "userland-proxy": false nothing is relayed, as Docker then starts no docker-proxy (ports.ts).
//
// It runs inside berthd, where docker-proxy is a process per port: a client may not take berthd down with
// it. So every relayed connection and UDP flow is counted against a share of berthd's open files (FdBudget),
// a port has a bound of its own on top, a listener's late errors (accept failing with EMFILE) are absorbed,
// and closing a binding (container stop, rm, a failed start) ends its listener and every connection and
// flow it carried.
import net from 'node:net';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream';
import type { RelaySocket } from '../../runtime/udp';

/** Where a relay sends what it receives: the container's address and port. */
export interface RelayTarget {
  ip: string;
  port: number;
}

/** Relayed TCP connections at once per held port: a client opening connections without end finds new ones
 *  refused (reset) once its port carries this many, and other ports keep their share of the budget. */
export const TCP_MAX_CONNS_PER_PORT = 4096;

/** The relays' share of berthd's open-file limit, and its ceiling: berthd's API, database, shims and logs
 *  need the rest. */
const BUDGET_SHARE = 0.5;
const BUDGET_MAX_FDS = 32768;

/** How long a connection may go without a sign of its peer before the kernel probes it (TCP keepalive),
 *  as Go's net package sets for docker-proxy: a client that vanished (host gone, no RST) is found and its
 *  connection ended, instead of holding two descriptors for ever. */
const KEEPALIVE_MS = 15_000;

/** berthd's soft limit of open files (RLIMIT_NOFILE), read from /proc (node has no getrlimit). */
function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? BUDGET_MAX_FDS / BUDGET_SHARE : Number(m[1]);
  } catch { /* no /proc: the conservative default below */ }
  return 1024;
}

/** Open files all relays together may hold: a relayed TCP connection holds two (the client's and the one to
 *  the container), a UDP flow one. Half of berthd's open-file limit, at most 32768: past that, new
 *  connections are reset and new flows' datagrams dropped, and berthd keeps the descriptors its API needs. */
export class FdBudget {
  private used = 0;
  private cap = 0;

  constructor(private readonly limit: () => number = openFileLimit) {
    this.refresh();
  }

  /** Reads the limit again (it can be raised on a running berthd with prlimit). */
  refresh(): void {
    this.cap = Math.min(BUDGET_MAX_FDS, Math.floor(this.limit() * BUDGET_SHARE));
  }

  take(n: number): boolean {
    if (this.used + n > this.cap) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }

  get inUse(): number {
    return this.used;
  }
}

/** The TCP side: each accepted connection gets one of its own to the container, bytes are copied both
 *  ways with backpressure, and a FIN from either side is passed on as a FIN (half-close: a client may
 *  shut its sending side and still read the answer), an RST or error on either side ends both. */
export class TcpRelay {
  private readonly conns = new Set<net.Socket>();

  constructor(private readonly to: RelayTarget, private readonly budget: FdBudget) {}

  /** Options for the listening server: half-open connections are kept (see above), and accepted sockets
   *  get TCP_NODELAY and keepalive as docker-proxy's (Go's defaults). */
  static readonly serverOptions: net.ServerOpts = { allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS };

  accept(c: net.Socket): void {
    if (this.conns.size >= 2 * TCP_MAX_CONNS_PER_PORT || !this.budget.take(2)) {
      c.resetAndDestroy();
      return;
    }
    const up = net.connect({ host: this.to.ip, port: this.to.port, allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS });
    this.conns.add(c);
    this.conns.add(up);
    // The budget gets the two descriptors back once both sockets are closed, whichever way they ended.
    let open = 2;
    const closed = (s: net.Socket) => () => {
      this.conns.delete(s);
      if (--open === 0) this.budget.give(2);
    };
    c.once('close', closed(c));
    up.once('close', closed(up));
    // pipeline ends the destination when the source ends (a half-close), and destroys both on an error or
    // on a source that closes without its FIN (a reset, a destroyed socket); the other direction's pipeline
    // then sees its own source gone and ends too.
    const done = (err: Error | null | undefined) => {
      if (!err) return;
      c.destroy();
      up.destroy();
    };
    pipeline(c, up, done);
    pipeline(up, c, done);
  }

  /** Every connection this relay carries (the binding is going away). */
  closeAll(): void {
    for (const s of [...this.conns]) s.destroy();
  }

  get connections(): number {
    return this.conns.size / 2;
  }
}

/** How long a UDP flow of the relay lives without a datagram either way, and how many there may be at once
 *  per port: UDP has no connection to end, so a flow (one client address and port, with a socket of its own
 *  towards the container so that answers find their way back) ends when it goes quiet, as a conntrack entry
 *  does; a client that makes new flows faster than that finds the port's table full and its datagrams
 *  dropped, as a full conntrack table drops them. */
export const UDP_FLOW_IDLE_MS = 60_000;
export const UDP_MAX_FLOWS = 1024;

/** The UDP side: datagrams to the held port go on to the container from a socket per client; the
 *  container's answers come back from the held port to that client, from the host address the client sent
 *  to (runtime/udp.ts: a socket on '::' would otherwise answer from the address the kernel picks, which a
 *  client that sent to another address of the host does not take for an answer). A flow is one client
 *  address and port and the host address it sent to. */
export class UdpFlows {
  private readonly flows = new Map<string, { sock: dgram.Socket; timer: NodeJS.Timeout }>();

  constructor(private readonly front: RelaySocket, private readonly to: RelayTarget, private readonly budget: FdBudget) {}

  forward(msg: Buffer, fromAddr: string, fromPort: number, toAddr: string): void {
    const key = `${fromAddr}|${fromPort}|${toAddr}`;
    let f = this.flows.get(key);
    if (!f) {
      if (this.flows.size >= UDP_MAX_FLOWS || !this.budget.take(1)) return;
      const sock = dgram.createSocket(this.to.ip.includes(':') ? 'udp6' : 'udp4');
      sock.on('error', () => this.end(key));
      sock.on('message', (reply) => {
        this.touch(key);
        this.front.send(reply, fromAddr, fromPort, toAddr);
      });
      f = { sock, timer: setTimeout(() => this.end(key), UDP_FLOW_IDLE_MS) };
      f.timer.unref();
      this.flows.set(key, f);
    } else {
      this.touch(key);
    }
    try { f.sock.send(msg, this.to.port, this.to.ip); } catch { this.end(key); }
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
    this.budget.give(1);
  }

  closeAll(): void {
    for (const k of [...this.flows.keys()]) this.end(k);
  }
}
