// A small HTTP client for registries over node's http/https: one request, no keep-alive, a connect timeout
// and an idle timeout so that an unreachable registry fails fast instead of hanging a pull.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { Readable } from 'node:stream';
import { afterUse } from '../storage/layers/decompress';

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string | string[]>;
  body?: Buffer | Readable;
  /** TLS: accept any certificate (insecure registries). */
  insecure?: boolean;
  /** ms to connect (default 10 s) and ms of silence (default 60 s). */
  connectTimeout?: number;
  idleTimeout?: number;
  /** A large download (a blob): over plain HTTP without a proxy it is read by rawGet(). */
  bulk?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: string;
}

export class NetworkError extends Error {
  constructor(message: string, readonly tls: boolean, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);

/** Whether `ip` is inside `cidr` (a.b.c.d/n or an IPv6 prefix). */
export function cidrContains(cidr: string, ip: string): boolean {
  const [base, bitsS] = cidr.split('/');
  const bits = Number(bitsS);
  if (!net.isIP(base) || !net.isIP(ip) || !Number.isInteger(bits)) return false;
  if (net.isIPv4(base) !== net.isIPv4(ip)) return false;
  const list = new net.BlockList();
  list.addSubnet(base, bits, net.isIPv4(base) ? 'ipv4' : 'ipv6');
  return list.check(ip, net.isIPv4(ip) ? 'ipv4' : 'ipv6');
}

/**
 * The proxy for a URL from HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either case), as dockerd takes them from its
 * environment (NO_PROXY: names, .domains, *.domains, CIDRs, *). Loopback hosts are never proxied.
 */
export function proxyFor(u: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  if (isLoopback(u.hostname)) return undefined;
  const raw = u.protocol === 'https:' ? env.HTTPS_PROXY ?? env.https_proxy : env.HTTP_PROXY ?? env.http_proxy;
  if (!raw) return undefined;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
  const host = u.hostname.toLowerCase();
  for (const n of noProxy) {
    if (n === '*') return undefined;
    if (n.includes('/')) {
      if (cidrContains(n, host.replace(/^\[|\]$/g, ''))) return undefined;
      continue;
    }
    const bare = n.replace(/^\*?\./, '').replace(/:\d+$/, '');
    if (host === bare || host.endsWith(`.${bare}`)) return undefined;
  }
  try {
    return new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    return undefined;
  }
}

/** A CONNECT tunnel through `proxy` to u's host, then TLS over it (what createConnection hands http). */
function tunnel(proxy: URL, u: URL, insecure: boolean) {
  return (_opts: unknown, done: (err: Error | null, s?: net.Socket) => void): undefined => {
    const port = u.port || '443';
    const creq = http.request({ host: proxy.hostname, port: proxy.port || 80, method: 'CONNECT', path: `${u.hostname}:${port}`, headers: { Host: `${u.hostname}:${port}` }, agent: false });
    creq.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        done(new Error(`proxyconnect tcp: the proxy answered ${res.statusCode}`));
        return;
      }
      done(null, tls.connect({ socket, servername: u.hostname, rejectUnauthorized: !insecure }));
    });
    creq.on('error', (e) => done(new Error(`proxyconnect tcp: ${e.message}`)));
    creq.end();
    return undefined;
  };
}

export function request(r: HttpRequest): Promise<HttpResponse> {
  const u = new URL(r.url);
  const isTls = u.protocol === 'https:';
  const proxy = proxyFor(u);
  const plainHeaders = Object.entries(r.headers ?? {}).every(([k, v]) => !/[\r\n:]/.test(k) && ![v].flat().some((x) => /[\r\n]/.test(x)));
  if (r.bulk && r.method === 'GET' && u.protocol === 'http:' && !proxy && r.body === undefined && plainHeaders) {
    return rawGet(r, u).then((res) => res ?? request({ ...r, bulk: false }));
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    const opts: https.RequestOptions = {
      method: r.method,
      headers: { 'User-Agent': 'berth/0.1.0', Connection: 'close', ...r.headers },
      rejectUnauthorized: isTls ? !r.insecure : undefined,
      agent: false,
    };
    let target: URL | string = u;
    let mod: typeof http | typeof https = isTls ? https : http;
    if (proxy && isTls) {
      // Without an agent, so that node uses this connection (an agent, even `agent: false`, would dial itself).
      opts.agent = undefined;
      opts.createConnection = tunnel(proxy, u, !!r.insecure) as unknown as https.RequestOptions['createConnection'];
    } else if (proxy) {
      // Plain HTTP through a proxy: the whole URL as the request target.
      mod = http;
      target = new URL(proxy.origin);
      opts.path = u.toString();
      opts.headers = { ...opts.headers, Host: u.host };
    }
    const req = mod.request(target, opts, (res) => {
      if (settled) {
        res.destroy();
        return;
      }
      settled = true;
      clearTimeout(connectTimer);
      res.setTimeout(r.idleTimeout ?? 60_000, () => res.destroy(new Error(`${r.method} "${r.url}": timeout reading the response`)));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url: r.url });
    });
    const connectTimer = setTimeout(() => {
      req.destroy(new NetworkError(`${r.method} "${r.url}": dial tcp ${u.host}: i/o timeout`, false));
    }, r.connectTimeout ?? 10_000);
    // The dial's deadline ends with the dial: a request whose body takes long to send (a blob streamed
    // up as it is compressed) is bounded by the idle timeout, not by this one.
    req.once('socket', (sock) => {
      if (!sock.connecting) clearTimeout(connectTimer);
      else sock.once('connect', () => clearTimeout(connectTimer));
    });
    req.setTimeout(r.idleTimeout ?? 60_000, () => req.destroy(new Error(`${r.method} "${r.url}": timeout`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (e instanceof NetworkError) return fail(e);
      const tlsErr = isTls && (/SSL|TLS|EPROTO|wrong version|certificate|socket hang up|ECONNRESET/i.test(`${e.code} ${e.message}`));
      fail(new NetworkError(`${r.method} "${r.url}": ${e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' ? `dial tcp: lookup ${u.hostname}: no such host` : e.message}`, tlsErr, { cause: e }));
    });
    if (r.body instanceof Readable) {
      r.body.on('error', (e) => req.destroy(e));
      r.body.pipe(req);
    } else req.end(r.body);
  });
}

export async function readBody(res: HttpResponse, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      res.body.destroy();
      throw new Error(`response from ${res.url} is too large`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

export function discard(res: HttpResponse): void {
  res.body.resume();
}

/** Bytes of the chunks a bulk body is delivered in (what zlib and the tar parser want, see decompress.ts). */
const BULK_CHUNK = 1 << 20;

/**
 * GET of a large body over plain HTTP, read straight from the socket: node's http client allocates a
 * buffer for every 64 KiB read from the socket and copies it again for the parser's body callback, and
 * those 600 MiB of short-lived ArrayBuffers per 300 MiB blob made V8 run a full garbage collection every
 * few MiB (it counts them as external memory). Here the socket reads into one buffer that is reused, and
 * the body is copied once, into 1 MiB chunks. Only what a registry sends for a blob is taken: a 200 with a
 * Content-Length and no transfer or content encoding; for anything else (a redirect, an error, chunked
 * encoding) undefined is returned and the caller asks again the ordinary way.
 */
function rawGet(r: HttpRequest, u: URL): Promise<HttpResponse | undefined> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const readBuf = Buffer.allocUnsafe(256 * 1024);
    let head: Buffer | undefined = Buffer.alloc(0);
    let left = 0;
    let cur: Buffer | undefined;
    let fill = 0;
    /** Full-size chunks handed back by the consumer. */
    const spare: Buffer[] = [];
    let paused = false;
    const body = new Readable({
      // Chunk by chunk: a byte-mode stream hands a reader everything buffered as one new (copied) buffer.
      // One chunk may wait while the consumer works on the one before.
      objectMode: true,
      highWaterMark: 2,
      read() {
        if (paused) {
          paused = false;
          sock.resume();
        }
      },
      destroy(err, cb) {
        sock.destroy();
        cb(err);
      },
    });
    const fail = (e: Error) => {
      clearTimeout(connectTimer);
      if (!settled) {
        settled = true;
        sock.destroy();
        reject(e);
      } else body.destroy(e);
    };
    const push = (b: Buffer) => {
      if (!body.push(b)) {
        paused = true;
        sock.pause();
      }
    };
    const onBody = (chunk: Buffer) => {
      let off = 0;
      while (off < chunk.length && left > 0) {
        if (!cur) {
          cur = left >= BULK_CHUNK ? spare.pop() ?? Buffer.allocUnsafeSlow(BULK_CHUNK) : Buffer.allocUnsafeSlow(left);
          fill = 0;
        }
        const n = Math.min(chunk.length - off, cur.length - fill, left);
        chunk.copy(cur, fill, off, off + n);
        off += n;
        fill += n;
        left -= n;
        if (fill === cur.length || left === 0) {
          const out = fill === cur.length ? cur : cur.subarray(0, fill);
          if (cur.length === BULK_CHUNK) {
            // Reused once the consumer is done with it (gunzip says so), instead of a new ArrayBuffer per MiB.
            const mem = cur;
            afterUse.set(out, () => {
              if (spare.length < 4) spare.push(mem);
            });
          }
          cur = undefined;
          fill = 0;
          push(out);
        }
      }
      if (left === 0) {
        body.push(null);
        sock.destroy();
      }
    };
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head!, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 64 * 1024) fail(new NetworkError(`GET "${r.url}": response headers too large`, false));
        return;
      }
      const lines = head.toString('latin1', 0, end).split('\r\n');
      const rest = head.subarray(end + 4);
      head = undefined;
      clearTimeout(connectTimer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(headers['content-length']);
      if (!m || m[1] !== '200' || !/^\d+$/.test(headers['content-length'] ?? '') || headers['transfer-encoding'] || headers['content-encoding']) {
        settled = true;
        sock.destroy();
        resolve(undefined);
        return;
      }
      settled = true;
      left = len;
      resolve({ status: 200, headers, body: body as unknown as http.IncomingMessage, url: r.url });
      if (left === 0) {
        body.push(null);
        sock.destroy();
        return;
      }
      if (rest.length) onBody(rest);
    };
    const sock = net.connect({
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: Number(u.port || 80),
      onread: {
        buffer: readBuf,
        callback: (n: number, buf: Uint8Array) => {
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
          if (head !== undefined) onHead(Buffer.from(chunk));
          else onBody(chunk);
          return true;
        },
      },
    } as net.NetConnectOpts);
    const connectTimer = setTimeout(() => fail(new NetworkError(`GET "${r.url}": dial tcp ${u.host}: i/o timeout`, false)), r.connectTimeout ?? 10_000);
    sock.setTimeout(r.idleTimeout ?? 60_000, () => fail(new Error(`GET "${r.url}": timeout reading the response`)));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      fail(settled ? e : new NetworkError(`GET "${r.url}": ${e.message}`, false, { cause: e }));
    });
    sock.on('close', () => {
      if (!settled) fail(new NetworkError(`GET "${r.url}": the connection closed before a response`, false));
      else if (left > 0) body.destroy(new Error(`GET "${r.url}": unexpected EOF (${left} bytes of the body missing)`));
    });
    const hdrs: Record<string, string | string[]> = { Host: u.host, 'User-Agent': 'berth/0.1.0', Connection: 'close', ...r.headers };
    let text = `GET ${u.pathname}${u.search} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(hdrs)) for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${one}\r\n`;
    sock.write(`${text}\r\n`);
  });
}
