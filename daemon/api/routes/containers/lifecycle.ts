// /containers: pause, unpause, update, top, stats, prune and the archive (docker cp) endpoints. Handlers
// parse, call the container service's verbs, and write.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import { qbool, qstr, parseFilters, type Query } from '../../../lib/query';
import { toHttp } from '../../../errors/errors';
import { commonHeaders } from '../../plugins/dialect';
import { pauseContainer, unpauseContainer } from '../../../containers/pause';
import { updateContainer, type UpdateBody } from '../../../containers/update';
import { topContainer } from '../../../containers/top';
import { streamStats } from '../../../containers/stats';
import { pruneContainers } from '../../../containers/prune';
import { statPath, getArchive, putArchive } from '../../../containers/archive';
import { writeOrWait } from '../../../lib/streams';

type Req = FastifyRequest<{ Params: { id: string }; Querystring: Query }>;

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

export function containerLifecycleRoutes(app: FastifyInstance, d: Daemon): void {
  const svc = d.containers;

  app.post('/containers/:id/pause', async (req: Req, reply) => {
    await pauseContainer(svc, req.params.id);
    reply.code(204).send();
  });

  app.post('/containers/:id/unpause', async (req: Req, reply) => {
    await unpauseContainer(svc, req.params.id);
    reply.code(204).send();
  });

  app.post('/containers/:id/update', async (req: Req) => updateContainer(svc, req.params.id, (req.body ?? {}) as UpdateBody));

  app.get('/containers/:id/top', async (req: Req) => topContainer(svc, req.params.id, qstr(req.query, 'ps_args')));

  app.get('/containers/:id/stats', async (req: Req, reply: FastifyReply) => {
    const live = svc.lookup(req.params.id);
    const stream = qbool(req.query, 'stream', true);
    const oneShot = qbool(req.query, 'one-shot');
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
    if (stream) res.flushHeaders();
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    try {
      await streamStats(svc, live, { stream, oneShot }, (doc) => (closed ? undefined : writeOrWait(res, doc)), () => closed);
    } catch (e) {
      reply.log.warn({ err: e }, 'stats failed');
    } finally {
      if (!res.destroyed) res.end();
    }
  });

  app.post('/containers/prune', async (req: FastifyRequest<{ Querystring: Query }>) => {
    const out = await pruneContainers(svc, parseFilters(req.query));
    d.events.emit('container', 'prune', '', { reclaimed: String(out.SpaceReclaimed) });
    return out;
  });

  app.head('/containers/:id/archive', async (req: Req, reply) => {
    const hdr = await statPath(svc, req.params.id, qstr(req.query, 'path') ?? '');
    reply.header(STAT_HEADER, hdr).code(200).send();
  });

  app.get('/containers/:id/archive', async (req: Req, reply: FastifyReply) => {
    let started = false;
    try {
      await getArchive(svc, req.params.id, qstr(req.query, 'path') ?? '', (hdr) => {
        started = true;
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/x-tar', [STAT_HEADER]: hdr });
        return res;
      });
    } catch (e) {
      if (!started) throw e;
      reply.log.warn({ err: e, status: toHttp(e).status }, 'archive stream failed');
      reply.raw.destroy();
    }
  });

  app.put('/containers/:id/archive', async (req: Req, reply) => {
    await putArchive(svc, req.params.id, qstr(req.query, 'path') ?? '', req.raw, {
      noOverwriteDirNonDir: qbool(req.query, 'noOverwriteDirNonDir'),
      copyUIDGID: qbool(req.query, 'copyUIDGID'),
    });
    reply.code(200).send();
  });
}
