// buildApp wires the API onto a fastify instance and never listens: main.ts owns sockets, tests may inject.
import Fastify, { type FastifyInstance } from 'fastify';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Logger } from 'pino';
import { registerDialect, routeUrl } from './api/plugins/dialect';
import { splitVersion } from './api/version';
import type { Daemon } from './daemon';
import { systemRoutes } from './api/routes/system';
import { containerRoutes } from './api/routes/containers';
import { imageRoutes } from './api/routes/images';
import { imageOpsRoutes } from './api/routes/images/ops';
import { systemDfRoutes } from './api/routes/system/df';
import { handleUpgrade } from './api/hijack';
import { eventRoutes } from './api/routes/events';
import { execRoutes } from './api/routes/exec';
import { authRoutes } from './api/routes/auth';
import { networkRoutes } from './api/routes/networks';
import { volumeRoutes } from './api/routes/volumes';
import { imageSearchRoutes } from './api/routes/images/search';
import { buildRoutes } from './api/routes/build';
import { httpMetrics } from './metrics';
import { ConnectionGuard, requestScope } from './api/guard';
import { fastReads } from './api/fast-reads';
import { frontDoor } from './api/front-door';

/** A listener of the one fastify app: plain HTTP behind the front door (api/front-door.ts), or HTTPS when
 *  given TLS options (tcp:// hosts). Each is watched by the guard and closed at shutdown. */
export type MakeServer = (tls?: https.ServerOptions) => net.Server;

export function buildApp(daemon: Daemon, logger: Logger): { app: FastifyInstance; servers: net.Server[]; makeServer: MakeServer; guard: ConnectionGuard } {
  let handler: http.RequestListener | undefined;
  const servers: net.Server[] = [];
  const limits = daemon.config.api;
  const guard = new ConnectionGuard(limits, logger);
  // /_ping, the container list and inspect, answered without fastify when they can be (api/fast-reads.ts).
  const answerFast = fastReads(daemon);
  // Every request runs in a scope naming it, for the last line of defence (main.ts).
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!guard.admit(req, res)) return;
    if (answerFast(req, res)) return;
    requestScope.run({ method: req.method ?? '', url: req.url ?? '', socket: req.socket }, () => handler!(req, res));
  };
  const makeHttp = (tls?: https.ServerOptions): http.Server => {
    // The same request handler and the same 'upgrade' routing on every listener, so hijacked attach and
    // exec work alike on the unix socket and over TLS. allowHalfOpen: the client half-closes (its stdin
    // ended, a TLS close_notify) and still reads the rest of the output.
    // Headers must be complete within headerTimeoutMs (checked every second, node's default is every 30 s);
    // no deadline on a whole request: image uploads and build contexts take as long as they take, and a body
    // that stops coming is the guard's (api-body-timeout).
    const timeouts = { headersTimeout: limits.headerTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: 1000, keepAliveTimeout: 60_000 };
    const s: http.Server = tls
      ? https.createServer({ ...tls, ...timeouts, allowHalfOpen: true } as https.ServerOptions, handle)
      : http.createServer(timeouts, handle);
    s.keepAliveTimeout = 60_000;
    s.on('upgrade', (req: http.IncomingMessage, socket, head) => {
      if (!guard.admit(req, undefined)) return;
      requestScope.run({ method: req.method ?? '', url: req.url ?? '', socket: socket as import('node:net').Socket }, () => handleUpgrade(daemon, req, socket, head));
    });
    // A client that breaks off mid-request, sends garbage or is too slow with its headers: answered 400,
    // 431 or 408 in Docker's JSON when it can still be, and closed; never an error of the server.
    s.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      logger.debug({ code: err.code }, 'client error');
      const pending = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      if (err.code !== 'ECONNRESET' && socket.writable && !pending?.headersSent) {
        const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
        const body = JSON.stringify({ message: status.slice(4).toLowerCase() }) + '\n';
        socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
      socket.destroy();
    });
    return s;
  };
  // fastify's own server (serverFactory) is the first plain listener's; every other gets its own.
  let spare: http.Server | undefined;
  const makeServer: MakeServer = (tls) => {
    let s: net.Server;
    if (tls) {
      s = makeHttp(tls);
    } else {
      // Plain sockets: the front door answers keep-alive pings and hands everything else to the HTTP server.
      const inner = spare ?? makeHttp();
      spare = undefined;
      s = frontDoor(inner, {
        firstRequestMs: limits.headerTimeoutMs,
        refused: (sock) => guard.refused(sock),
        answered: (method) => httpMetrics.observe(method, '/_ping', 200, 0),
      });
    }
    guard.watch(s);
    servers.push(s);
    return s;
  };
  const app = Fastify({
    logger: logger as unknown as boolean,
    disableRequestLogging: true,
    // JSON bodies (create, update, network create …) are parsed whole: bounded. Archives and build
    // contexts are not parsed here but streamed by their routes, and take any size.
    bodyLimit: limits.maxJsonBody,
    maxParamLength: 2048,
    ignoreTrailingSlash: true,
    serverFactory: (h) => {
      handler = h;
      spare = makeHttp();
      return spare;
    },
    rewriteUrl: (req) => {
      const v = splitVersion(req.url ?? '/');
      const raw = req as unknown as { berthVersion?: string; berthVersionError?: string };
      raw.berthVersion = v.version;
      if (v.error) raw.berthVersionError = v.error;
      return v.url;
    },
  });
  registerDialect(app);
  // Request figures for /metrics: by route pattern (not the raw URL, which names objects).
  app.addHook('onRequest', (req, reply, done) => {
    const scope = requestScope.getStore();
    if (scope) scope.route = `${req.method} ${routeUrl(req) ?? 'unmatched'}`;
    httpMetrics.inFlight++;
    reply.raw.on('close', requestClosed);
    done();
  });
  // A body refused for its size is not read to its end (fastify does so only when the length was given
  // up front; a chunked one would be read and thrown away, megabytes of garbage): the connection closes.
  // The close lingers (as HTTP servers do after refusing a body): the socket takes and drops what the client
  // is still sending, for at most 2 s or 16 MiB, before it goes. Closed at once with unread data, the kernel
  // would reset the connection, and a client busy writing its body loses the 413 it has not read yet.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (reply.statusCode === 413) {
      reply.header('Connection', 'close');
      lingerOnClose(req.raw.socket);
    }
    done(null, payload);
  });
  app.addHook('onResponse', (req, reply, done) => {
    httpMetrics.observe(req.method, routeUrl(req) ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  systemRoutes(app, daemon);
  containerRoutes(app, daemon);
  imageRoutes(app, daemon);
  imageOpsRoutes(app, daemon);
  systemDfRoutes(app, daemon);
  eventRoutes(app, daemon);
  execRoutes(app, daemon);
  authRoutes(app, daemon);
  networkRoutes(app, daemon);
  volumeRoutes(app, daemon);
  imageSearchRoutes(app, daemon);
  buildRoutes(app, daemon);
  return { app, servers, makeServer, guard };
}

/** A response's 'close' (emitted once, also when the client went away first): one shared listener, not a
 *  closure per request. */
function requestClosed(): void {
  httpMetrics.inFlight--;
}

/** Replaces the immediate close node's HTTP server gives a `Connection: close` response with a lingering
 *  one: the write side ends, what arrives is read and dropped, and the socket goes when the client ends its
 *  side, after 16 MiB more, or after 2 s. */
function lingerOnClose(sock: import('node:net').Socket): void {
  (sock as unknown as { destroySoon: () => void }).destroySoon = () => {
    let dropped = 0;
    const done = () => sock.destroy();
    const timer = setTimeout(done, 2000);
    timer.unref();
    sock.on('data', (c: Buffer) => {
      dropped += c.length;
      if (dropped > 16 << 20) done();
    });
    sock.once('end', done);
    sock.once('close', () => clearTimeout(timer));
    sock.end();
    sock.resume();
  };
}
