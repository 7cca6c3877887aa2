// A small HTTP client for registries over node's http/https: one request, no keep-alive, a connect timeout
// and an idle timeout so that an unreachable registry fails fast instead of hanging a pull.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { Readable } from 'node:stream';

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
    }
    else if (proxy) {
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
