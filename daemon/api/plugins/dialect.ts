// Docker's dialect at the edge: the /vX.Y prefix, the headers every reply carries, bodies parsed the way
// Docker clients send them, and errors as {"message": …}.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_VERSION } from '../version';
import { toHttp, invalid } from '../../errors/errors';
import { registerBodyValidation } from '../validate';

/** The routes Docker answers HEAD on. */
const HEAD_ROUTES = new Set(['/_ping', '/containers/:id/archive']);

/** The routes whose handlers read the request body themselves. */
const STREAM_BODY_ROUTES = new Set(['POST /images/load', 'POST /images/create', 'POST /build', 'PUT /containers/:id/archive']);

export const SERVER_HEADER = 'Berth/0.1.0 (linux)';

export function commonHeaders(): Record<string, string> {
  return {
    'Api-Version': API_VERSION,
    'Docker-Experimental': 'false',
    'Ostype': 'linux',
    'Server': SERVER_HEADER,
  };
}

/** commonHeaders() as fastify keeps them (lower-case names), made once rather than per request. */
const COMMON = Object.entries(commonHeaders()).map(([k, v]) => [k.toLowerCase(), v] as const);

declare module 'fastify' {
  interface FastifyRequest {
    apiVersion: string;
  }
}

/** Docker's error reply. The Content-Type must be exactly `application/json`: the Go client compares it
 *  with `==` and otherwise prints the raw body (`Error response from daemon: {"message":…}`). fastify
 *  appends `; charset=utf-8` to string and object payloads, so the body goes out as a Buffer. */
export function sendError(reply: FastifyReply, status: number, message: string): void {
  reply.code(status).header('Content-Type', 'application/json').send(Buffer.from(JSON.stringify({ message }) + '\n'));
}

/** Whether arrays and objects in `text` nest deeper than `max` (strings skipped). */
function jsonTooDeep(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) {
      depth--;
    }
  }
  return false;
}

const kRoute = Symbol('berth.routeUrl');

/** The request's route pattern (`/containers/:id/json`), read once per request: fastify's routeOptions
 *  getter builds and freezes a new object on every read, and three hooks read it (a tenth of a /_ping's
 *  time under load). */
export function routeUrl(req: FastifyRequest): string | undefined {
  const r = req as unknown as { [kRoute]?: string | null };
  if (r[kRoute] === undefined) r[kRoute] = req.routeOptions?.url ?? null;
  return r[kRoute] ?? undefined;
}

export function registerDialect(app: FastifyInstance): void {
  app.decorateRequest('apiVersion', '');
  // A callback hook, not an async one: it runs for every request, and an async hook costs a promise and
  // a microtask turn each time.
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const raw = req.raw as { berthVersion?: string; berthVersionError?: string };
    req.apiVersion = raw.berthVersion ?? API_VERSION;
    for (let i = 0; i < COMMON.length; i++) reply.header(COMMON[i][0], COMMON[i][1]);
    if (raw.berthVersionError) {
      sendError(reply, 400, raw.berthVersionError);
      return;
    }
    const method = req.method;
    // These routes read their body as a stream (a tar, for most): whatever type the client names, fastify
    // must not parse it as JSON first, or the handler waits for a body that was already read.
    if (method !== 'GET' && STREAM_BODY_ROUTES.has(`${method} ${routeUrl(req)}`)) req.headers['content-type'] = 'application/octet-stream';
    // fastify answers HEAD on every GET route; Docker has HEAD only where it declares one.
    if (method === 'HEAD' && !HEAD_ROUTES.has(routeUrl(req) ?? '')) {
      sendError(reply, 404, 'page not found');
      return;
    }
    done();
  });

  // Bodies: JSON is parsed here (an empty body is no body); everything else (tar archives, the CLI's
  // text/plain on attach) is left on the request stream for the handler.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    // A body within the size bound can still be a million nested arrays, which JSON.parse builds (about
    // 100 bytes each) before it finds the end missing: refused unread, as Go's decoder refuses > 10000.
    if (jsonTooDeep(text, 10000)) return done(invalid('invalid JSON: exceeded max depth'), undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(invalid(`invalid JSON: ${(e as Error).message}`), undefined);
    }
  });
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  registerBodyValidation(app);

  app.setNotFoundHandler((_req, reply) => {
    sendError(reply, 404, 'page not found');
  });

  app.setErrorHandler((err, req, reply) => {
    const { status, message } = toHttp(err);
    if (status >= 500) req.log.error({ err }, 'request failed');
    if (status === 304) {
      reply.code(304).send();
      return;
    }
    sendError(reply, status, message);
  });
}
