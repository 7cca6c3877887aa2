// The embedded DNS server of user-defined networks: one UDP socket on each such network's gateway
// address, port 53 (containers on it get `nameserver <gateway>`). A and AAAA questions for names of the
// network (container name, alias, short id) are answered from its endpoints; everything else is relayed
// as is to the host's resolvers. The packet format is small enough to read here (RFC 1035 §4): one
// question, answers with a pointer to it.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

export type Resolve = (name: string) => string[] | undefined;

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
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(1, 2);   // A
    rr.writeUInt16BE(1, 4);   // IN
    rr.writeUInt32BE(600, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((b, i) => rr.writeUInt8(Number(b), 12 + i));
    return rr;
  });
  return Buffer.concat([head, ...rrs]);
}

/** The host's resolvers (not loopback ones: those may be a stub that answers only the host). */
function upstreams(): string[] {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8').split('\n')
      .map((l) => /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)/.exec(l)?.[1]).filter((a): a is string => !!a && !a.startsWith('127.'));
  } catch {
    return [];
  }
}

export class DnsServer {
  private readonly sockets = new Map<string, dgram.Socket>(); // gateway address → socket

  constructor(private readonly log: { warn(o: object, m: string): void }) {}

  async listen(address: string, resolve: Resolve): Promise<void> {
    if (this.sockets.has(address)) return;
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
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
  }

  close(address: string): void {
    const s = this.sockets.get(address);
    this.sockets.delete(address);
    try { s?.close(); } catch { /* closed */ }
  }

  closeAll(): void {
    for (const a of [...this.sockets.keys()]) this.close(a);
  }

  private onMessage(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo, resolve: Resolve): void {
    const q = readQuestion(msg);
    if (!q) return;
    const ips = resolve(q.name.replace(/\.$/, ''));
    if (ips) {
      // Ours: A gets the addresses; other types (AAAA …) an empty NOERROR, so clients fall back to A.
      sock.send(answer(msg, q, q.type === 1 ? ips : [], 0), rinfo.port, rinfo.address);
      return;
    }
    const ups = upstreams();
    if (ups.length === 0) {
      sock.send(answer(msg, q, [], 2), rinfo.port, rinfo.address); // SERVFAIL
      return;
    }
    const relay = dgram.createSocket('udp4');
    const timer = setTimeout(() => relay.close(), 4000);
    relay.on('error', () => { clearTimeout(timer); try { relay.close(); } catch { /* closed */ } });
    relay.on('message', (reply) => {
      clearTimeout(timer);
      sock.send(reply, rinfo.port, rinfo.address);
      relay.close();
    });
    relay.send(msg, 53, ups[0]);
  }
}
