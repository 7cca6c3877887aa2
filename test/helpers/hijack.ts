// A hijacked Engine API stream as the Go client opens it (exec start, attach): a POST with
// `Connection: Upgrade` / `Upgrade: tcp` on the daemon's unix socket, a 101 answer, then the raw
// stream both ways on the same connection. Used by replay tests that must send exactly what a
// program sends, byte for byte, rather than what a higher-level SDK chooses.
import net from 'node:net';

export interface Hijacked {
  /** Status line and headers of the answer. */
  head: string;
  /** Writes to the process's stdin. */
  write(s: string): void;
  /** Half-closes our side (stdin EOF), as the Go client's CloseWrite. */
  end(): void;
  /** Resolves with everything received after the headers once `re` matches it (bounded by ms). */
  until(re: RegExp, ms?: number): Promise<string>;
  /** Resolves with everything received when the daemon closes the stream (bounded by ms). */
  closed(ms?: number): Promise<string>;
  destroy(): void;
}

export function hijack(sock: string, urlPath: string, body?: object): Promise<Hijacked> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    const payload = body === undefined ? '' : JSON.stringify(body);
    let buf = Buffer.alloc(0);
    let head: string | undefined;
    let ended = false;
    const waiters: Array<() => void> = [];
    const wake = () => { for (const w of waiters.splice(0)) w(); };
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (head === undefined) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        head = buf.subarray(0, i).toString('latin1');
        buf = buf.subarray(i + 4);
        if (!/^HTTP\/1\.1 (101|200)/.test(head)) {
          reject(new Error(`POST ${urlPath}: ${head}\n${buf.toString()}`));
          s.destroy();
          return;
        }
        resolve(h);
      }
      wake();
    });
    s.on('end', () => { ended = true; wake(); });
    s.on('close', () => { ended = true; wake(); });
    s.on('error', (e) => { if (head === undefined) reject(e); ended = true; wake(); });
    const wait = (done: () => boolean, ms: number, what: string): Promise<string> => new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`${urlPath}: ${what} not seen in ${ms} ms; got ${JSON.stringify(buf.toString())}`)), ms);
      const check = () => {
        if (done()) {
          clearTimeout(t);
          res(buf.toString('utf8'));
        } else waiters.push(check);
      };
      check();
    });
    const h: Hijacked = {
      get head() { return head ?? ''; },
      write: (str) => { s.write(str); },
      end: () => { s.end(); },
      until: (re, ms = 10000) => wait(() => re.test(buf.toString('utf8')), ms, String(re)),
      closed: (ms = 10000) => wait(() => ended, ms, 'the end of the stream'),
      destroy: () => { s.destroy(); },
    };
    s.write(`POST ${urlPath} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Go-http-client/1.1\r\n`
      + 'Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n'
      + `Content-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`);
  });
}
