// The reads every client repeats, answered before fastify: GET/HEAD /_ping (every docker CLI command starts
// with one; health checks and orchestrators poll it), GET /containers/json (docker ps, compose, cri-dockerd's
// polling) and GET /containers/{id}/json (docker inspect). Through fastify (routing, four hooks, the
// reply's header object, the request scope) each cost several times what node's HTTP server needs, and
// berthd answered 16 connections at a third of Docker's rate on /_ping. These answers are made here
// synchronously from the same functions the routes use (ping.ts, listJson, inspectJson: kept JSON) and
// written with the headers fastify gives them, in the same order (test/e2e/ping-wire.test.ts compares
// the bytes). Anything else, and anything that fails here (an unknown container, a bad filter, a refused
// version, a query this does not take), goes on to fastify, which answers it as before: nothing is
// written before the answer is complete.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import querystring from 'node:querystring';
import type { Daemon } from '../daemon';
import { API_VERSION, splitVersion } from './version';
import { commonHeaders } from './plugins/dialect';
import { writePing } from './ping';
import { httpMetrics } from '../metrics';
import { listJson, JSON_TYPE } from './routes/containers';
import { inspectJson, type ListAnswer } from '../containers/views';
import { qbool, type Query } from '../lib/query';

/** The headers of a JSON answer as fastify writes them: the dialect's (lower case), then the type. */
const JSON_HEADERS = [...Object.entries(commonHeaders()).flatMap(([k, v]) => [k.toLowerCase(), v]), 'content-type', JSON_TYPE];

/** The query parameters the list takes here; any other goes to fastify's route. */
const LIST_PARAMS = new Set(['all', 'limit', 'filters', 'size']);

const INSPECT_RE = /^\/containers\/([^/]+)\/json\/?$/;

/** A request handler that answers what it takes and returns true, or returns false having written nothing. */
export function fastReads(d: Daemon): (req: IncomingMessage, res: ServerResponse) => boolean {
  const svc = d.containers;
  return (req, res) => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    let url = req.url ?? '';
    let version = API_VERSION;
    if (url.charCodeAt(1) === 118 /* v */) {
      const v = splitVersion(url);
      if (v.error) return false; // answered 400 by the dialect's hook
      url = v.url;
      version = v.version;
    }
    const qi = url.indexOf('?');
    const p = qi < 0 ? url : url.slice(0, qi);
    const t0 = performance.now();
    if (p === '/_ping' || p === '/_ping/') {
      writePing(method, res);
      httpMetrics.observe(method, '/_ping', 200, (performance.now() - t0) / 1000);
      return true;
    }
    if (method !== 'GET' || !p.startsWith('/containers/')) return false;
    let body: string | Buffer | ListAnswer;
    let route: string;
    try {
      if (p === '/containers/json' || p === '/containers/json/') {
        const q = (qi < 0 ? {} : querystring.parse(url.slice(qi + 1))) as Query;
        for (const k in q) if (!LIST_PARAMS.has(k)) return false;
        if (qbool(q, 'size')) return false; // sizes are worked out on disk, asynchronously: the route's
        body = listJson(d, q, version);
        route = '/containers/json';
      } else {
        const m = qi < 0 ? INSPECT_RE.exec(p) : null;
        if (!m) return false;
        body = inspectJson(svc, svc.lookup(decodeURIComponent(m[1])), version);
        route = '/containers/:id/json';
      }
    } catch {
      return false;
    }
    res.writeHead(200, [...JSON_HEADERS, 'content-length', String(typeof body === 'string' ? Buffer.byteLength(body) : body.length)] as unknown as string[]);
    if (typeof body === 'string' || Buffer.isBuffer(body)) res.end(body);
    else {
      // A list's kept blocks (containers/views.ts), gathered by the corked socket into one writev.
      for (const b of body.blocks) res.write(b);
      res.end();
    }
    httpMetrics.observe('GET', route, 200, (performance.now() - t0) / 1000);
    return true;
  };
}
