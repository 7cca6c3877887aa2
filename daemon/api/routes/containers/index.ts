// /containers: the route table. Handlers parse, call the container service, and write.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import { qbool, qint, qstr, parseFilters, checkFilterKeys, type Query } from '../../../lib/query';
import { invalid, notFound } from '../../../errors/errors';
import { inspectView, listView, listAnswer, listBody, inspectJson, type ListAnswer } from '../../../containers/views';

/** What fastify names a JSON answer it serialised itself; kept answers are sent as strings with the same. */
export const JSON_TYPE = 'application/json; charset=utf-8';
import { streamLogs } from '../../../logs';
import { attachSocket } from '../../../containers/attach';
import { commonHeaders } from '../../plugins/dialect';
import { streamContentType } from '../../hijack';
import { writeOrWait } from '../../../lib/streams';
import { parseRfc3339Ns } from '../../../lib/time';
import type { Live } from '../../../containers/service';
import { containerLifecycleRoutes } from './lifecycle';
import { containerSizes } from '../system/df';
import { API_VERSION, compareVersions } from '../../version';
import { checkPlatforms } from '../images/ops';

type Req = FastifyRequest<{ Params: { id: string }; Querystring: Query }>;

/** Docker's time arguments: Unix seconds with an optional fraction, or RFC3339. */
function parseTimeArg(v: string | undefined): bigint {
  if (!v) return 0n;
  if (/^\d+(\.\d+)?$/.test(v)) {
    const [s, f = ''] = v.split('.');
    return BigInt(s) * 1_000_000_000n + BigInt((f + '000000000').slice(0, 9));
  }
  try {
    return parseRfc3339Ns(v);
  } catch {
    throw invalid(`invalid time value: ${v}`);
  }
}

/** `80`, `80/udp` or a range `8000-8080/tcp` against a port key `80/tcp`. */
function portMatches(key: string, filter: string): boolean {
  const [port, proto = 'tcp'] = key.split('/');
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(filter);
  if (!m) throw invalid(`invalid filter '${filter}'`);
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  return Number(port) >= lo && Number(port) <= hi && (m[3] ?? 'tcp') === proto;
}

function matchesFilters(d: Daemon, live: Live, f: Map<string, string[]>): boolean {
  const r = live.rec;
  for (const [k, vals] of f) {
    if (vals.length === 0) continue;
    const ok = vals.some((v) => {
      switch (k) {
        case 'id': return r.id.startsWith(v);
        case 'name': return new RegExp(v).test(r.name.slice(1)) || r.name === v;
        case 'status': return r.state.status === v;
        case 'exited': return r.state.status === 'exited' && String(r.state.exitCode) === v;
        case 'label': {
          const i = v.indexOf('=');
          const labels = r.config.Labels ?? {};
          return i < 0 ? v in labels : labels[v.slice(0, i)] === v.slice(i + 1);
        }
        case 'ancestor': {
          try {
            return d.images.get(v).id === r.imageId;
          } catch {
            return false;
          }
        }
        case 'before': return r.created < d.containers.lookup(v).rec.created;
        case 'since': return r.created > d.containers.lookup(v).rec.created;
        case 'isTask': return v === 'false';
        case 'health': return (d.containers.health.view(live)?.Status ?? 'none') === v;
        case 'network': return d.networks.endpointsOfContainer(r.id).some((e) => {
          const n = d.networks.all().find((x) => x.id === e.networkId);
          return !!n && (n.name === v || n.id.startsWith(v));
        });
        case 'volume': return (r.mounts ?? []).some((m) => m.Name === v || m.Destination === v || (m.Type === 'bind' && m.Source === v));
        case 'expose': return Object.keys(r.config.ExposedPorts ?? {}).some((k) => portMatches(k, v));
        case 'publish': return d.networks.portList(r, d.containers.isRunningId(r.id))
          .some((p) => p.PublicPort !== undefined && portMatches(`${p.PublicPort}/${p.Type}`, v));
        default: return true;
      }
    });
    if (!ok) return false;
    // Every label filter must hold, as in Docker (docker-compose asks for project AND service).
    if (k === 'label' && !vals.every((v) => {
      const i = v.indexOf('=');
      const labels = r.config.Labels ?? {};
      return i < 0 ? v in labels : labels[v.slice(0, i)] === v.slice(i + 1);
    })) return false;
  }
  return true;
}

/** The containers GET /containers/json shows for `q` (all, limit, filters), newest first; 400 for a bad
 *  filter. */
export function listedContainers(d: Daemon, q: Query): Live[] {
  const all = qbool(q, 'all');
  const limit = qint(q, 'limit') ?? -1;
  const f = parseFilters(q);
  checkFilterKeys(f, ['id', 'name', 'label', 'status', 'exited', 'ancestor', 'before', 'since', 'isTask', 'network', 'volume', 'health', 'publish', 'expose', 'is-task']);
  for (const s of f.get('status') ?? []) {
    if (!['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'].includes(s)) throw invalid(`invalid filter 'status=${s}'`);
  }
  let rows = d.containers.all()
    .filter((l) => all || limit > 0 || f.has('status') || l.rec.state.status === 'running' || l.rec.state.status === 'paused' || l.rec.state.status === 'restarting')
    .filter((l) => matchesFilters(d, l, f))
    .sort((a, b) => (a.rec.created < b.rec.created ? 1 : -1));
  if (limit > 0) rows = rows.slice(0, limit);
  return rows;
}

/** The body of GET /containers/json (without size) for `q`, in blocks kept between requests
 *  (containers/views.ts). Annotations are in the list from API 1.46. */
export function listJson(d: Daemon, q: Query, apiVersion: string): ListAnswer {
  return listAnswer(d.containers, JSON.stringify(q), compareVersions(apiVersion || API_VERSION, '1.46') < 0, () => listedContainers(d, q));
}

export function containerRoutes(app: FastifyInstance, d: Daemon): void {
  const svc = d.containers;
  containerLifecycleRoutes(app, d);

  app.post('/containers/create', async (req: FastifyRequest<{ Querystring: Query }>, reply) => {
    const name = qstr(req.query, 'name');
    // --platform: the local image must be of it (a 404 makes the CLI pull that platform).
    const platform = qstr(req.query, 'platform');
    const image = (req.body as { Image?: unknown } | undefined)?.Image;
    if (platform && typeof image === 'string' && image) checkPlatforms(d, [image], [platform]);
    const out = await svc.create(name, olderApiCreate(req.body as Record<string, unknown>, req.apiVersion), { readOnlyTopOnly: compareVersions(req.apiVersion || API_VERSION, '1.44') < 0 });
    reply.code(201).send(out);
  });

  app.get('/containers/json', async (req: FastifyRequest<{ Querystring: Query }>, reply) => {
    if (qbool(req.query, 'size')) {
      const oldList = compareVersions(req.apiVersion || API_VERSION, '1.46') < 0;
      return Promise.all(listedContainers(d, req.query).map(async (l) => ({ ...listView(svc, l, oldList), ...(await containerSizes(d, l)) })));
    }
    reply.header('Content-Type', JSON_TYPE).send(listBody(listJson(d, req.query, req.apiVersion)));
    return reply;
  });

  app.get('/containers/:id/json', async (req: Req, reply) => {
    const live = svc.lookup(req.params.id);
    if (qbool(req.query, 'size')) return { ...inspectView(svc, live, req.apiVersion), ...(await containerSizes(d, live)) };
    reply.header('Content-Type', JSON_TYPE).send(inspectJson(svc, live, req.apiVersion));
    return reply;
  });

  app.post('/containers/:id/start', async (req: Req, reply) => {
    await svc.start(req.params.id);
    reply.code(204).send();
  });

  app.post('/containers/:id/stop', async (req: Req, reply) => {
    await svc.stop(req.params.id, qint(req.query, 't'), qstr(req.query, 'signal'));
    reply.code(204).send();
  });

  app.post('/containers/:id/restart', async (req: Req, reply) => {
    await svc.restart(req.params.id, qint(req.query, 't'), qstr(req.query, 'signal'));
    reply.code(204).send();
  });

  app.post('/containers/:id/kill', async (req: Req, reply) => {
    await svc.kill(req.params.id, qstr(req.query, 'signal'));
    reply.code(204).send();
  });

  app.post('/containers/:id/rename', async (req: Req, reply) => {
    await svc.rename(req.params.id, qstr(req.query, 'name') ?? '');
    reply.code(204).send();
  });

  app.post('/containers/:id/resize', async (req: Req, reply) => {
    const h = qint(req.query, 'h') ?? 0;
    const w = qint(req.query, 'w') ?? 0;
    // The kernel keeps a terminal's size in 16 bits (a larger one was a 500 from the shim's encoder).
    for (const [k, v] of [['height', h], ['width', w]] as const) {
      if (v < 0 || v > 65535) throw invalid(`invalid resize ${k} ${JSON.stringify(String(v))}: value out of range`);
    }
    svc.resize(req.params.id, h, w);
    reply.code(200).send();
  });

  app.delete('/containers/:id', async (req: Req, reply) => {
    if (qbool(req.query, 'link')) {
      await d.networks.removeLink(req.params.id);
      return reply.code(204).send();
    }
    await svc.remove(req.params.id, { force: qbool(req.query, 'force'), volumes: qbool(req.query, 'v') });
    reply.code(204).send();
  });

  // `docker rm --link parent/alias`: the legacy link's name has a slash (Docker's route takes any name).
  app.delete('/containers/:id/:link', async (req: Req, reply) => {
    const p = req.params as { id: string; link: string };
    const name = `${p.id}/${p.link}`;
    if (!qbool(req.query, 'link')) throw notFound(`No such container: ${name}`);
    await d.networks.removeLink(name);
    reply.code(204).send();
  });

  // The 200 and its headers go out at once; the body when the condition is met (clients rely on both).
  app.post('/containers/:id/wait', async (req: Req, reply: FastifyReply) => {
    const cond = qstr(req.query, 'condition');
    svc.lookup(req.params.id);
    if (cond && !['not-running', 'next-exit', 'removed'].includes(cond)) throw invalid(`invalid condition: "${cond}"`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
    res.flushHeaders();
    let gone = false;
    res.on('close', () => {
      gone = true;
    });
    try {
      const code = await svc.wait(req.params.id, cond, () => gone);
      res.end(JSON.stringify({ Error: null, StatusCode: code }) + '\n');
    } catch (e) {
      res.end(JSON.stringify({ Error: { Message: (e as Error).message }, StatusCode: -1 }) + '\n');
    }
  });

  app.get('/containers/:id/logs', async (req: Req, reply: FastifyReply) => {
    const live = svc.lookup(req.params.id);
    const q = req.query;
    const stdout = qbool(q, 'stdout');
    const stderr = qbool(q, 'stderr');
    if (!stdout && !stderr) throw invalid('Bad parameters: you must choose at least one stream');
    const tailStr = qstr(q, 'tail') ?? 'all';
    const tail = tailStr === 'all' || tailStr === '' ? -1 : Number(tailStr);
    if (!Number.isInteger(tail)) throw invalid(`invalid value for tail: ${tailStr}`);
    const opts = {
      stdout, stderr, follow: qbool(q, 'follow'), timestamps: qbool(q, 'timestamps'), tail: tail < 0 ? -1 : tail,
      sinceNs: parseTimeArg(qstr(q, 'since')), untilNs: parseTimeArg(qstr(q, 'until')), details: qbool(q, 'details'),
    };
    const tty = !!live.rec.config.Tty;
    const logFile = svc.logReadPath(live.rec); // 501 before any byte is sent when the driver keeps no log
    reply.hijack();
    const res = reply.raw;
    const headers: Record<string, string> = { ...commonHeaders() };
    if (req.apiVersion >= '1.42') headers['Content-Type'] = streamContentType(req.apiVersion, tty);
    res.writeHead(200, headers);
    // The status goes out now, not with the first log line: a client following a container that has
    // printed nothing yet (docker-py's run() then inspects it) would otherwise wait until it exits.
    res.flushHeaders();
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    const running = () => !live.removed && (live.rec.state.status === 'running' || live.rec.state.status === 'paused' || live.rec.state.status === 'restarting');
    // A follower that leaves before the container exits takes its exit watch along: a long-running
    // container followed by many short `docker logs -f` would otherwise gather one callback per follower.
    const stopWatch: Array<() => void> = [];
    try {
      await streamLogs(logFile, opts, tty, (b) => (closed ? undefined : writeOrWait(res, b)), running, () => closed, (cb) => {
        stopWatch.push(cb);
        live.exitWaiters.push(cb);
      });
    } catch (e) {
      // The headers are out: a failure can only cut the stream short.
      reply.log.warn({ err: e }, 'logs stream failed');
      res.destroy();
    } finally {
      for (const cb of stopWatch) {
        const k = live.exitWaiters.indexOf(cb);
        if (k >= 0) live.exitWaiters.splice(k, 1);
      }
      if (!res.destroyed) res.end();
    }
  });

  // Attach without an Upgrade header (older clients): a plain 200 and then the raw stream until close.
  app.post('/containers/:id/attach', async (req: Req, reply: FastifyReply) => {
    const live = svc.lookup(req.params.id);
    const tty = !!live.rec.config.Tty;
    reply.hijack();
    const sock = req.raw.socket;
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: ${streamContentType(req.apiVersion, tty)}\r\n${Object.entries(commonHeaders()).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    sock.on('error', () => undefined);
    svc.emitAttach(live);
    await attachSocket(svc, live, sock, {
      stdin: qbool(req.query, 'stdin'), stdout: qbool(req.query, 'stdout'), stderr: qbool(req.query, 'stderr'),
      stream: qbool(req.query, 'stream'), logs: qbool(req.query, 'logs'),
    });
  });
}

/** What API 1.44 added to a create is taken away for older clients, as Docker does: StartInterval, and
 *  the read-only bind options (their binds stay read-only at the top mount only). */
/* eslint-disable @typescript-eslint/no-explicit-any */
function olderApiCreate(body: Record<string, any>, version: string): Record<string, any> {
  if (!body || typeof body !== 'object' || compareVersions(version || API_VERSION, '1.44') >= 0) return body;
  if (body.Healthcheck && typeof body.Healthcheck === 'object') body.Healthcheck = { ...body.Healthcheck, StartInterval: 0 };
  for (const m of Array.isArray(body.HostConfig?.Mounts) ? body.HostConfig.Mounts : []) {
    if (!m?.BindOptions) continue;
    if (m.BindOptions.ReadOnlyForceRecursive) throw invalid('BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer');
    delete m.BindOptions.ReadOnlyNonRecursive;
  }
  return body;
}
