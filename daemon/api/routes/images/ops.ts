// Routes for moving images and container file systems in and out: docker save (GET /images/get and
// /images/{name}/get — the latter is dispatched here from the /images/* wildcard in index.ts), docker import
// (the fromSrc branch of POST /images/create, dispatched from index.ts), docker export
// (GET /containers/{id}/export), docker diff (GET /containers/{id}/changes) and docker commit (POST /commit).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import { qbool, qlist, qstr, type Query } from '../../../lib/query';
import { invalid } from '../../../errors/errors';
import { imageFits, platformMismatch, queryPlatform } from '../../../distribution/platform';
import { commonHeaders } from '../../plugins/dialect';
import { requestBody } from './index';
import { fetchUrl } from '../../../images/import';
import { containerChanges } from '../../../containers/changes';
import { prepareExport, writeExport } from '../../../containers/export';
import { commitContainer } from '../../../containers/commit';

/** `changes` repeated, or (older clients) several instructions in one value, one per line. */
const changesOf = (q: Query) => qlist(q, 'changes').flatMap((c) => c.split('\n')).filter((c) => c.trim() !== '');

type Req = FastifyRequest<{ Querystring: Query; Params: { id: string } }>;

/** Starts a 200 binary stream; anything that fails after this point can only cut the stream short. */
function startBinary(reply: FastifyReply, contentType: string) {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { ...commonHeaders(), 'Content-Type': contentType });
  return res;
}

/** docker save of `names` (already split from the query or the path). */
export async function sendSave(d: Daemon, names: string[], reply: FastifyReply): Promise<void> {
  if (names.length === 0) throw invalid('no image names given');
  const plan = d.images.planSave(names); // 404 before any byte is sent
  const res = startBinary(reply, 'application/x-tar');
  try {
    await d.images.writeSave(plan, res);
  } catch (e) {
    reply.log.error({ err: e }, 'docker save failed while streaming; the archive is cut short');
    res.destroy(e as Error);
  }
}

/** The fromSrc branch of POST /images/create: the whole import runs before the answer, so that a bad
 *  archive or an unreachable URL is a plain HTTP error, as Docker gives it. */
export async function handleImport(d: Daemon, req: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply): Promise<void> {
  const q = req.query;
  const src = qstr(q, 'fromSrc') ?? '-';
  const body = src === '-' ? requestBody(req.raw) : fetchUrl(src);
  const id = await d.images.importTar(body, {
    source: src,
    repo: qstr(q, 'repo'),
    tag: qstr(q, 'tag'),
    message: qstr(q, 'message'),
    changes: changesOf(q),
    platform: qstr(q, 'platform'),
  });
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
  res.end(`${JSON.stringify({ status: id })}\r\n`);
}

export function imageOpsRoutes(app: FastifyInstance, d: Daemon): void {
  app.get('/images/get', async (req: Req, reply) => {
    // names=a&names=b; older clients joined them with commas in one value.
    const names = qlist(req.query, 'names').flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean);
    checkPlatforms(d, names, qlist(req.query, 'platform'));
    await sendSave(d, names, reply);
  });

  app.get('/containers/:id/changes', async (req: Req) => containerChanges(d, req.params.id));

  app.get('/containers/:id/export', async (req: Req, reply) => {
    const p = prepareExport(d, req.params.id);
    const res = startBinary(reply, 'application/octet-stream');
    try {
      await writeExport(d, p, res);
    } catch (e) {
      reply.log.error({ err: e, id: p.id }, 'docker export failed while streaming; the archive is cut short');
      res.destroy(e as Error);
    }
  });

  app.post('/commit', async (req: FastifyRequest<{ Querystring: Query; Body: unknown }>, reply) => {
    const q = req.query;
    const container = qstr(q, 'container');
    if (!container) throw invalid('container is required');
    const body = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : undefined;
    const id = await commitContainer(d, {
      container,
      repo: qstr(q, 'repo') || undefined,
      tag: qstr(q, 'tag') || undefined,
      comment: qstr(q, 'comment') || undefined,
      author: qstr(q, 'author') || undefined,
      changes: changesOf(q),
      pause: qbool(q, 'pause', true),
      config: body,
    });
    reply.code(201).send({ Id: id });
  });
}

/** The images named must be of every platform a query asks for (berth keeps one platform per image). */
export function checkPlatforms(d: Daemon, refs: string[], platforms: string[]): void {
  if (platforms.length === 0) return;
  const wanted = platforms.map(queryPlatform);
  for (const ref of refs) {
    const cfg = d.images.find(ref).config ?? {};
    for (const w of wanted) if (!imageFits(cfg, w)) throw platformMismatch(ref, w, cfg);
  }
}
