// The listener of every plain socket (unix, fd://, tcp:// without TLS), in front of node's HTTP server.
// It answers keep-alive /_ping requests from the bytes it reads, and hands the connection to the HTTP
// server, for good, at the first thing that is not one.
//
// Why: /_ping is what every docker CLI command sends first and what health checks and orchestrators poll.
// Through node's HTTP server each ping costs an IncomingMessage, a ServerResponse and their streams, and
// one event loop answered 16 connections at 48k-51k/s against Docker Engine's 61k-64k on Go's threads.
// Read and answered here it costs a look at the bytes and one write (bench/README.md, "/_ping").
//
// What is answered here is narrow on purpose: a request whose whole head is in what has been read, `GET`
// or `HEAD` of /_ping (with a version prefix berth serves, a query, a trailing slash), HTTP/1.1, a Host,
// no body, and no header that changes the answer or the connection (Connection other than keep-alive,
// Content-Length, Transfer-Encoding, Upgrade, Expect), every header line well formed. Anything else, a
// partial head included, goes to the HTTP server with every byte not yet answered, which then parses,
// times out and answers it exactly as before (a refused version, a malformed line, a slow client).
// The answer is the bytes node's server writes for the route (api/ping.ts's headers, then Date,
// Connection and Keep-Alive); test/e2e/ping-wire.test.ts compares the two.
import net from 'node:net';
import type http from 'node:http';
import { PING_HEADERS } from './ping';
import { splitVersion } from './version';

export interface FrontDoorOptions {
  /** A new connection that sends nothing for this long is closed (api-header-timeout). */
  firstRequestMs: number;
  /** A connection refused by the guard (too many): its requests go to the HTTP server, which answers 503. */
  refused(sock: net.Socket): boolean;
  /** Told of every ping answered here (request metrics). */
  answered(method: 'GET' | 'HEAD'): void;
}

/** Longest request head looked at here; longer ones are the HTTP server's (its limit is 16 KiB). */
const MAX_HEAD = 8192;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Header values: any byte but the control characters other than HTAB (llhttp's rule).
const VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
const TARGET = /^\/[\x21-\x7e]*$/;

/** The length of the ping request at `at` in `buf` and its method, or undefined when it is not one. */
export function pingAt(buf: Buffer, at: number): { end: number; method: 'GET' | 'HEAD' } | undefined {
  const stop = buf.indexOf('\r\n\r\n', at, 'latin1');
  if (stop < 0 || stop - at > MAX_HEAD) return undefined;
  const lines = buf.toString('latin1', at, stop).split('\r\n');
  const line = lines[0];
  const method = line.startsWith('GET ') ? 'GET' : line.startsWith('HEAD ') ? 'HEAD' : undefined;
  if (!method || !line.endsWith(' HTTP/1.1')) return undefined;
  const target = line.slice(method.length + 1, line.length - 9);
  if (!TARGET.test(target)) return undefined;
  const v = splitVersion(target);
  if (v.error) return undefined;
  const q = v.url.indexOf('?');
  const p = q < 0 ? v.url : v.url.slice(0, q);
  if (p !== '/_ping' && p !== '/_ping/') return undefined;
  let host = 0;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    const colon = l.indexOf(':');
    if (colon <= 0) return undefined;
    const name = l.slice(0, colon);
    const value = l.slice(colon + 1).trim();
    if (!TOKEN.test(name) || !VALUE.test(value)) return undefined;
    switch (name.toLowerCase()) {
      case 'host':
        host++;
        break;
      case 'connection':
        if (value.toLowerCase() !== 'keep-alive') return undefined;
        break;
      case 'content-length':
      case 'transfer-encoding':
      case 'upgrade':
      case 'expect':
        return undefined;
    }
  }
  return host === 1 ? { end: stop + 4, method } : undefined;
}

/** The answers, remade when the second (their Date) changes. */
class PingAnswers {
  private second = -1;
  private get_ = Buffer.alloc(0);
  private head_ = Buffer.alloc(0);
  private readonly common: string;
  private readonly tail: string;

  constructor(keepAliveMs: number) {
    this.common = 'HTTP/1.1 200 OK\r\n' + PING_HEADERS.map(([k, v]) => `${k}: ${v}\r\n`).join('');
    this.tail = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAliveMs / 1000)}\r\n\r\n`;
  }

  answer(method: 'GET' | 'HEAD'): Buffer {
    const now = Date.now();
    const s = Math.floor(now / 1000);
    if (s !== this.second) {
      this.second = s;
      const date = `Date: ${new Date(s * 1000).toUTCString()}\r\n`;
      this.get_ = Buffer.from(`${this.common}content-length: 2\r\n${date}${this.tail}OK`, 'latin1');
      this.head_ = Buffer.from(`${this.common}content-length: 0\r\n${date}${this.tail}`, 'latin1');
    }
    return method === 'GET' ? this.get_ : this.head_;
  }
}

/**
 * A net.Server for `inner` (never listening itself): listen on what this returns. The HTTP server's
 * connection tracking (headersTimeout, checked every connectionsCheckingInterval) starts on its
 * 'listening' event, which is emitted here once the front listens.
 */
export function frontDoor(inner: http.Server, o: FrontDoorOptions): net.Server {
  const answers = new PingAnswers(inner.keepAliveTimeout);
  const front = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
    let served = false;
    const handOff = (rest?: Buffer) => {
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('timeout', onTimeout);
      sock.off('error', onError);
      sock.setTimeout(0);
      // node's server reads a socket's handle directly when it can (parser.consume), and the bytes read
      // here, put back with unshift, then race the handle's next reads: a request sent whole and cut off
      // at once (disconnect.test.ts, 'sent') reached a route out of order and held its container for ever.
      // Marked as consumed, the handle is read through the stream by the server too, in order.
      const handle = (sock as unknown as { _handle?: { _consumed?: boolean } })._handle;
      if (handle) handle._consumed = true;
      inner.emit('connection', sock);
      if (rest && rest.length) sock.unshift(rest);
    };
    const onData = (buf: Buffer) => {
      if (o.refused(sock)) return handOff(buf);
      let at = 0;
      let out: Buffer[] | undefined;
      while (at < buf.length) {
        const ping = pingAt(buf, at);
        if (!ping) break;
        (out ??= []).push(answers.answer(ping.method));
        o.answered(ping.method);
        at = ping.end;
      }
      if (out) {
        sock.write(out.length === 1 ? out[0] : Buffer.concat(out));
        // Reads and writes re-arm a socket's timeout: set once, it is the idle time from here on.
        if (!served) sock.setTimeout(inner.keepAliveTimeout);
        served = true;
      }
      if (at < buf.length) handOff(at === 0 ? buf : buf.subarray(at));
    };
    // The client has finished sending: what it sent is answered; end our side once that is written.
    const onEnd = () => sock.end();
    // Idle: after an answered ping, closed as node's server closes an idle keep-alive connection. Before
    // a first byte, closed too: node's headersTimeout only runs once a request has begun, so a connection
    // that never sends would otherwise hold a slot of api-max-connections for ever (a cheap slowloris).
    const onTimeout = () => sock.destroy();
    const onError = () => sock.destroy();
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('timeout', onTimeout);
    sock.on('error', onError);
    sock.setTimeout(o.firstRequestMs);
  });
  front.once('listening', () => inner.emit('listening'));
  front.once('close', () => inner.close());
  return front;
}
