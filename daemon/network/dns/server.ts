// The embedded DNS server of user-defined networks: a UDP socket and a TCP listener on each network's gateway
// addresses, port 53: the IPv4 one, and the IPv6 one of a network with IPv6 (containers on it get a
// `nameserver` line for each). Docker's resolver sits on 127.0.0.11 inside each container's namespace;
// berth keeps one server per network on its bridge, so the IPv6 gateway is what makes it reachable for a
// container that uses IPv6 for its queries. A and AAAA questions for names of the
// network (container name, alias, short id) are answered from its endpoints; everything else is relayed
// as is to the host's resolvers. The packet format is small enough to read here (RFC 1035 §4): one
// question, answers with a pointer to it.
import dgram from 'node:dgram';
import net from 'node:net';
import { upstreams } from './upstream';
import { bigToIp6, ip6ToBig } from '../ipam/ipam6';

const A = 1;
const AAAA = 28;

/** An IPv6 address as its 16 bytes. */
function ip6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** `from`: the asking address (a legacy link's alias is a name for the linking container only; names are
 *  looked up on every network of the asking container). null: the asker is not a container of the
 *  network, and gets REFUSED (the server is nobody else's resolver). */
export type Resolve = (name: string, from: string) => string[] | undefined | null;
// (The addresses are IPv4 and IPv6 ones together; the server picks the family the question asks for.)

interface Question {
  name: string;
  type: number;
  end: number; // offset after the question
}

function readQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let o = 12;
  while (o < msg.length) {
    const len = msg[o];
    if (len === 0) break;
    if (len > 63 || o + 1 + len > msg.length) return undefined;
    labels.push(msg.toString('latin1', o + 1, o + 1 + len));
    o += 1 + len;
  }
  if (o + 5 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(o + 1), end: o + 5 };
}

function answer(msg: Buffer, q: Question, ips: string[], rcode: number): Buffer {
  const head = Buffer.from(msg.subarray(0, q.end));
  const rd = msg[2] & 0x01;
  head[2] = 0x80 | 0x04 | rd; // QR, AA, RD as asked
  head[3] = 0x80 | rcode;     // RA
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(ips.length, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  const rrs = ips.map((ip) => {
    const data = ip.includes(':') ? ip6Bytes(ip) : Buffer.from(ip.split('.').map(Number));
    const rr = Buffer.alloc(12 + data.length);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(data.length === 16 ? AAAA : A, 2);
    rr.writeUInt16BE(1, 4);   // IN
    rr.writeUInt32BE(600, 6);
    rr.writeUInt16BE(data.length, 10);
    data.copy(rr, 12);
    return rr;
  });
  return Buffer.concat([head, ...rrs]);
}

export class DnsServer {
  private readonly sockets = new Map<string, dgram.Socket>(); // gateway address → socket
  private readonly tcp = new Map<string, net.Server>();        // gateway address → TCP listener (RFC 7766)

  constructor(private readonly log: { warn(o: object, m: string): void }) {}

  async listen(address: string, resolve: Resolve): Promise<void> {
    if (this.sockets.has(address)) return;
    const v6 = net.isIPv6(address);
    // ipv6Only: an IPv6 socket takes IPv6 queries only (the IPv4 gateway has its own socket).
    const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: true, ipv6Only: v6 });
    sock.on('message', (msg, rinfo) => this.onMessage(sock, msg, rinfo, resolve));
    sock.on('error', (err) => this.log.warn({ err, address }, 'dns socket error'));
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.bind(53, address, () => {
        sock.off('error', rej);
        res();
      });
    });
    this.sockets.set(address, sock);
    // The same over TCP: answers too large for UDP are retried there, and some resolvers ask over TCP only.
    const server = net.createServer((c) => this.onTcp(c, resolve));
    server.on('error', (err) => this.log.warn({ err, address }, 'dns tcp listener error'));
    await new Promise<void>((res) => {
      server.once('error', () => res());
      server.listen({ port: 53, host: address, ipv6Only: v6 }, () => {
        this.tcp.set(address, server);
        res();
      });
    });
  }

  close(address: string): void {
    const s = this.sockets.get(address);
    this.sockets.delete(address);
    try { s?.close(); } catch { /* closed */ }
    const t = this.tcp.get(address);
    this.tcp.delete(address);
    t?.close();
  }

  /** One TCP connection: messages with a two-byte length in front, answered in order. */
  private onTcp(c: net.Socket, resolve: Resolve): void {
    let buf = Buffer.alloc(0);
    let chain: Promise<void> = Promise.resolve();
    c.setTimeout(10_000, () => c.destroy());
    c.on('error', () => c.destroy());
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        chain = chain.then(async () => {
          const reply = await this.reply(msg, c.remoteAddress ?? '', resolve, true);
          if (!reply || c.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          c.write(Buffer.concat([len, reply]));
        });
      }
      if (buf.length > 65537) c.destroy();
    });
  }

  /** The answer to one message: ours from the endpoints, others from the host's first resolver. */
  private async reply(msg: Buffer, from: string, resolve: Resolve, overTcp: boolean): Promise<Buffer | undefined> {
    const q = readQuestion(msg);
    if (!q) return undefined;
    const ips = resolve(q.name.replace(/\.$/, ''), asker(from));
    if (ips === null) return answer(msg, q, [], 5); // REFUSED
    // A name of the network: its addresses of the family asked (none, NOERROR, for other questions).
    if (ips) return answer(msg, q, q.type === A ? ips.filter((ip) => !ip.includes(':')) : q.type === AAAA ? ips.filter((ip) => ip.includes(':')) : [], 0);
    const ups = upstreams();
    if (ups.length === 0) return answer(msg, q, [], 2); // SERVFAIL
    // The relay goes out of the host's own namespace, so an IPv6 upstream serves an IPv4 asker as well.
    return (overTcp ? relayTcp(msg, ups[0]) : relayUdp(msg, ups[0])).catch(() => answer(msg, q, [], 2));
  }

  closeAll(): void {
    for (const a of [...this.sockets.keys()]) this.close(a);
  }

  private onMessage(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo, resolve: Resolve): void {
    void this.reply(msg, rinfo.address, resolve, false).then((r) => {
      // A relayed answer can come after the network went and its socket was closed (send would throw).
      if (!r) return;
      try {
        sock.send(r, rinfo.port, rinfo.address);
      } catch { /* closed meanwhile */ }
    });
  }
}

/** The asking address as the endpoints hold it: IPv4 without the ::ffff: prefix, IPv6 in its canonical
 *  text (RFC 5952, as ipam6 writes the endpoints' addresses). */
function asker(from: string): string {
  const a = from.replace(/^::ffff:(?=\d+\.)/, '');
  if (!net.isIPv6(a)) return a;
  try { return bigToIp6(ip6ToBig(a)); } catch { return a; }
}

function relayUdp(msg: Buffer, upstream: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const relay = dgram.createSocket(net.isIPv6(upstream) ? 'udp6' : 'udp4');
    const done = (e?: Error, r?: Buffer) => {
      clearTimeout(timer);
      try { relay.close(); } catch { /* closed */ }
      if (r) resolve(r);
      else reject(e ?? new Error('no answer'));
    };
    const timer = setTimeout(() => done(new Error('timeout')), 4000);
    relay.on('error', (e) => done(e));
    relay.on('message', (r) => done(undefined, r));
    relay.send(msg, 53, upstream);
  });
}

function relayTcp(msg: Buffer, upstream: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: upstream, port: 53 });
    let buf = Buffer.alloc(0);
    c.setTimeout(4000, () => c.destroy(new Error('timeout')));
    c.on('error', reject);
    c.on('close', () => reject(new Error('closed')));
    c.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      c.write(Buffer.concat([len, msg]));
    });
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        c.destroy();
      }
    });
  });
}
