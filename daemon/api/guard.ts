// What keeps one client from holding or taking down the API: a bound on open connections, a deadline on
// request bodies that stop arriving, and a bound on what a response may hold for a client that does not
// read it (a stalled `docker save | …`, an events or attach stream nobody reads). Header deadlines are
// node's own (headersTimeout, checked every second, see app.ts). Also the request scope: every request runs
// in an AsyncLocalStorage context naming its route and socket, so that an error escaping a request (the
// last line of defence in main.ts) is logged with its route and ends that request only.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { commonHeaders } from './plugins/dialect';

export interface ApiLimits {
  /** Whole request headers must arrive within this (node's headersTimeout). */
  headerTimeoutMs: number;
  /** A request body that sends nothing for this long is answered 408 and closed. */
  bodyTimeoutMs: number;
  /** A response the client has not taken a byte of for this long is closed. */
  writeStallMs: number;
  /** Bytes a response may have queued for a client before the connection is closed. */
  maxBufferedBytes: number;
  /** Open connections per listener; one more is answered 503. */
  maxConnections: number;
}

export interface RequestScope {
  method: string;
  url: string;
  /** The route pattern, once fastify has matched it. */
  route?: string;
  socket: Socket;
}

export const requestScope = new AsyncLocalStorage<RequestScope>();

/** Errors that only say a peer went away or a stream was cut short: never a reason to stop berthd. */
export function isStreamError(e: unknown): boolean {
  const err = e as { code?: unknown; name?: unknown; message?: unknown } | null;
  if (!err || typeof err !== 'object') return false;
  const code = typeof err.code === 'string' ? err.code : '';
  if (/^ERR_STREAM_|^ERR_HTTP_|^(EPIPE|ECONNRESET|ECONNABORTED|ETIMEDOUT|PREMATURE_CLOSE|STREAM_DESTROYED|ABORTED)$/.test(code)) return true;
  return err.name === 'StreamError' || err.name === 'AbortError';
}

interface Tracked {
  /** Bytes the kernel had taken when the queue was last seen to move, and since when it has not. */
  written: number;
  stalledSince: number;
  /** bytesRead likewise, for a request whose body is still coming. */
  read: number;
  readSince: number;
  req?: IncomingMessage;
  res?: ServerResponse;
}

function plainReply(sock: Socket, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ message }) + '\n';
  const head = Object.entries(commonHeaders()).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  if (!sock.destroyed) sock.end(`HTTP/1.1 ${status} ${reason}\r\n${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  setTimeout(() => sock.destroy(), 1000).unref();
}

export class ConnectionGuard {
  private readonly conns = new Map<Socket, Tracked>();
  private readonly over = new WeakSet<Socket>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly limits: ApiLimits, private readonly log: Logger) {}

  /** Tracks the connections of `server` (each listener counts its own). */
  watch(server: import('node:net').Server): void {
    let open = 0;
    server.on('connection', (sock: Socket) => {
      open++;
      sock.once('close', () => {
        open--;
        this.conns.delete(sock);
      });
      if (open > this.limits.maxConnections) this.over.add(sock);
      this.conns.set(sock, { written: 0, stalledSince: 0, read: sock.bytesRead, readSince: 0 });
      this.timer ??= setInterval(() => this.sweep(), 1000).unref();
    });
  }

  /** Whether the connection is one too many (its requests are answered 503 by admit). */
  refused(sock: Socket): boolean {
    return this.over.has(sock);
  }

  /** For a request before fastify sees it: false when it was answered here (too many connections). */
  admit(req: IncomingMessage, res: ServerResponse | undefined): boolean {
    const sock = req.socket;
    if (this.over.has(sock)) {
      this.log.warn({ url: req.url, max: this.limits.maxConnections }, 'too many connections; refused');
      req.resume();
      plainReply(sock, 503, 'Service Unavailable', `too many connections to the API (at most ${this.limits.maxConnections}; daemon.json api-max-connections)`);
      return false;
    }
    const t = this.conns.get(sock);
    // Upgrades (attach, exec) have no body to time: their stream is the connection itself.
    if (t && res) {
      t.req = req;
      t.res = res;
      t.read = sock.bytesRead;
      t.readSince = Date.now();
    }
    return true;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [sock, t] of this.conns) {
      if (sock.destroyed) continue;
      // A client that does not read: its queue never shrinks (or grows past the bound).
      const queued = sock.writableLength;
      if (queued > this.limits.maxBufferedBytes) {
        this.log.warn({ url: t.req?.url, queued }, 'a client is not reading its response; closing the connection');
        sock.destroy();
        continue;
      }
      // bytesWritten counts what is queued too: what the kernel took is that less the queue.
      const taken = sock.bytesWritten - queued;
      if (queued > 0 && taken === t.written) {
        if (t.stalledSince === 0) t.stalledSince = now;
        else if (now - t.stalledSince >= this.limits.writeStallMs) {
          this.log.warn({ url: t.req?.url, queued }, 'a client took nothing of its response for too long; closing the connection');
          sock.destroy();
          continue;
        }
      } else {
        t.written = taken;
        t.stalledSince = 0;
      }
      // A body that stopped coming: nothing read and nothing waiting for berthd to take.
      const req = t.req;
      if (req && !req.complete && !req.destroyed && req.readableLength === 0) {
        if (sock.bytesRead !== t.read) {
          t.read = sock.bytesRead;
          t.readSince = now;
        } else if (now - t.readSince >= this.limits.bodyTimeoutMs) {
          this.log.warn({ url: req.url }, 'request body timed out');
          if (t.res && !t.res.headersSent) plainReply(sock, 408, 'Request Timeout', 'timed out reading the request body');
          else sock.destroy();
        }
      } else if (req) {
        t.read = sock.bytesRead;
        t.readSince = now;
      }
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
