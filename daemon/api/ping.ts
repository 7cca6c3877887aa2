// GET and HEAD /_ping answered before fastify: every docker CLI command starts with one, and health checks
// and orchestrators poll it. Through fastify (routing, hooks, the reply's header object, the request
// scope) a ping cost several times what node's own HTTP server needs for it, and berthd answered 16
// connections at a third of Docker's rate. The answer is fixed, so it is written here with headers made
// once, identical to the route's (routes/system: same names, same order, same values); a request this
// does not take (another method, an unsupported version prefix) goes on to fastify, which answers it
// as before.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { API_VERSION, splitVersion } from './version';
import { SERVER_HEADER } from './plugins/dialect';
import { httpMetrics } from '../metrics';

/** The headers of every /_ping answer, as fastify sends them (lower case, in the order they are set). */
export const PING_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['api-version', API_VERSION],
  ['docker-experimental', 'false'],
  ['ostype', 'linux'],
  ['server', SERVER_HEADER],
  ['cache-control', 'no-cache, no-store, must-revalidate'],
  ['pragma', 'no-cache'],
  ['builder-version', '1'],
  ['swarm', 'inactive'],
  ['content-type', 'text/plain; charset=utf-8'],
];

// Flat [name, value, …] arrays: writeHead takes them without building a header object.
const GET_HEADERS = [...PING_HEADERS.flat(), 'content-length', '2'];
const HEAD_HEADERS = [...PING_HEADERS.flat(), 'content-length', '0'];

/** Whether `url` is /_ping (with a trailing slash, a query, or a version prefix berth serves). */
function isPing(url: string): boolean {
  let p = url;
  if (p.startsWith('/v')) {
    const v = splitVersion(p);
    if (v.error) return false; // answered 400 by the dialect's hook
    p = v.url;
  }
  const q = p.indexOf('?');
  if (q >= 0) p = p.slice(0, q);
  return p === '/_ping' || p === '/_ping/';
}

/** Answers the request if it is a ping; false when it is for fastify. */
export function answerPing(req: IncomingMessage, res: ServerResponse): boolean {
  const m = req.method;
  if ((m !== 'GET' && m !== 'HEAD') || !isPing(req.url ?? '')) return false;
  const t0 = performance.now();
  res.writeHead(200, (m === 'GET' ? GET_HEADERS : HEAD_HEADERS) as unknown as string[]);
  res.end(m === 'GET' ? 'OK' : undefined);
  httpMetrics.observe(m, '/_ping', 200, (performance.now() - t0) / 1000);
  return true;
}
