// DNS over TCP, as a client: the questions and the answers' A records. Also run from inside a container's
// network namespace (the embedded DNS server answers only its containers): see dnsOverTcpIn.
import net from 'node:net';
import path from 'node:path';
import { runCmd } from './berthd';

/** A DNS question for an A record, as sent over TCP (two-byte length first). */
export function dnsQuery(name: string, id: number): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const msg = Buffer.concat([
    Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels, Buffer.from([0, 0, 1, 0, 1]),
  ]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Sends questions over one TCP connection and reads the answers' A records, in order. */
export function dnsOverTcp(server: string, names: string[], timeoutMs = 5000): Promise<Array<{ rcode: number; ips: string[] }>> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: server, port: 53 });
    let buf = Buffer.alloc(0);
    const out: Array<{ rcode: number; ips: string[] }> = [];
    const t = setTimeout(() => { c.destroy(); reject(new Error('dns over tcp: timeout')); }, timeoutMs);
    c.on('error', (e) => { clearTimeout(t); reject(e); });
    c.on('connect', () => c.write(Buffer.concat(names.map((n, i) => dnsQuery(n, 0x100 + i)))));
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + m.length);
        const an = m.readUInt16BE(6);
        // Skip the question (name labels, type, class), then read each answer's 4-byte address.
        let o = 12;
        while (m[o] !== 0) o += 1 + m[o];
        o += 5;
        const ips: string[] = [];
        for (let i = 0; i < an; i++) {
          const rdlen = m.readUInt16BE(o + 10);
          if (rdlen === 4) ips.push([...m.subarray(o + 12, o + 16)].join('.'));
          o += 12 + rdlen;
        }
        out.push({ rcode: m[3] & 0x0f, ips });
        if (out.length === names.length) {
          clearTimeout(t);
          c.end();
          resolve(out);
        }
      }
    });
  });
}


/** dnsOverTcp from inside the network namespace `netnsFile` (a container's SandboxKey), by a node child. */
export async function dnsOverTcpIn(netnsFile: string, server: string, names: string[]): Promise<Array<{ rcode: number; ips: string[] }>> {
  const code = `require(${JSON.stringify(path.join(__dirname, 'dns.js'))}).dnsOverTcp(${JSON.stringify(server)}, ${JSON.stringify(names)})` +
    '.then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.message); process.exit(1); })';
  const r = await runCmd('nsenter', [`--net=${netnsFile}`, '--', process.execPath, '-e', code], { timeoutMs: 20000 });
  if (r.code !== 0) throw new Error(`dns over tcp in ${netnsFile}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
