// buildApp wires the API onto a fastify instance and never listens: main.ts owns sockets, tests may inject.
import Fastify, { type FastifyInstance } from 'fastify';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { registerDialect } from './api/plugins/dialect';
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

/** A listener of the one fastify app: plain HTTP, or HTTPS when given TLS options (tcp:// hosts). */
export type MakeServer = (tls?: https.ServerOptions) => http.Server;

export function buildApp(daemon: Daemon, logger: Logger): { app: FastifyInstance; servers: http.Server[]; makeServer: MakeServer } {
  let handler: http.RequestListener | undefined;
  const servers: http.Server[] = [];
  const makeServer: MakeServer = (tls) => {
    // The same request handler and the same 'upgrade' routing on every listener, so hijacked attach and
    // exec work alike on the unix socket and over TLS. allowHalfOpen: the client half-closes (its stdin
    // ended, a TLS close_notify) and still reads the rest of the output.
    const s: http.Server = tls
      ? https.createServer({ ...tls, allowHalfOpen: true } as https.ServerOptions, (req, res) => handler!(req, res))
      : http.createServer((req, res) => handler!(req, res));
    s.keepAliveTimeout = 60_000;
    s.on('upgrade', (req, socket, head) => handleUpgrade(daemon, req, socket, head));
    servers.push(s);
    return s;
  };
  const app = Fastify({
    logger: logger as unknown as boolean,
    disableRequestLogging: true,
    bodyLimit: 64 * 1024 * 1024,
    maxParamLength: 2048,
    ignoreTrailingSlash: true,
    serverFactory: (h) => {
      handler = h;
      return makeServer();
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
  app.addHook('onRequest', (_req, reply, done) => {
    httpMetrics.inFlight++;
    reply.raw.once('close', () => { httpMetrics.inFlight--; });
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    httpMetrics.observe(req.method, req.routeOptions?.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
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
  return { app, servers, makeServer };
}
