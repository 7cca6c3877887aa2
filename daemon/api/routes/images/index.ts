// /images: the route table. Image names in paths carry slashes and colons unescaped
// (`/images/127.0.0.1:5000/doc/tag:v3/json`, `DELETE /images/localhost:5000/x:1`), so everything under
// /images/ that is not a fixed route is taken by one wildcard per method and split on its last segment here.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import { qbool, qlist, qstr, parseFilters, type Query } from '../../../lib/query';
import { queryPlatform } from '../../../distribution/platform';
import { BerthError, invalid, toHttp } from '../../../errors/errors';
import { parseNormalizedNamed, withTag, tagNameOnly, fullName } from '../../../images/reference';
import { distributionOf } from '../../../distribution';
import { decodeRegistryAuth } from '../../../distribution/auth';
import { inspectDistribution } from '../../../distribution/inspect';
import { commonHeaders } from '../../plugins/dialect';
import { checkPlatforms, handleImport, sendSave } from './ops';

type Req = FastifyRequest<{ Querystring: Query; Params: { '*': string } }>;

const notImplemented = (msg: string) => new BerthError('notImplemented', msg);
const pageNotFound = () => new BerthError('notFound', 'page not found');

/** Splits `<name>/<verb>` where the name itself may contain slashes. */
function splitVerb(rest: string, verbs: string[]): { name: string; verb: string } | undefined {
  const i = rest.lastIndexOf('/');
  if (i <= 0) return undefined;
  const verb = rest.slice(i + 1);
  if (!verbs.includes(verb)) return undefined;
  return { name: rest.slice(0, i), verb };
}

/**
 * The request body as chunks. Unlike the stream's own iterator, stopping early does not destroy the
 * request (and with it the socket the error message has to go out on): the rest of the body is discarded.
 */
export function requestBody(req: IncomingMessage): AsyncIterable<Buffer> {
  return {
    async *[Symbol.asyncIterator]() {
      const queue: Buffer[] = [];
      let ended = false;
      let error: Error | undefined;
      let wake: (() => void) | undefined;
      const poke = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      const onData = (c: Buffer) => {
        queue.push(c);
        if (queue.length >= 16) req.pause();
        poke();
      };
      const onEnd = () => {
        ended = true;
        poke();
      };
      const onError = (e: Error) => {
        error ??= e;
        poke();
      };
      const onClose = () => {
        if (!ended) error ??= new Error('the client closed the connection before the archive was complete');
        poke();
      };
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('close', onClose);
      try {
        for (;;) {
          if (queue.length) {
            const c = queue.shift()!;
            if (queue.length < 4) req.resume();
            yield c;
            continue;
          }
          if (error) throw error;
          if (ended) return;
          await new Promise<void>((r) => {
            wake = r;
          });
        }
      } finally {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('close', onClose);
        req.resume();
      }
    },
  };
}

/** Starts a 200 JSON message stream (load, pull): one object per line, as Docker writes them. */
function startJsonStream(reply: FastifyReply): { write: (m: Record<string, unknown>) => void; fail: (e: unknown) => void; end: () => void } {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
  res.flushHeaders();
  const write = (m: Record<string, unknown>) => {
    if (!res.destroyed && !res.writableEnded) res.write(`${JSON.stringify(m)}\r\n`);
  };
  return {
    write,
    fail: (e: unknown) => {
      const { status, message } = toHttp(e);
      if (status >= 500) reply.log.error({ err: e }, 'image stream failed');
      write({ errorDetail: { message }, error: message });
    },
    end: () => {
      if (!res.writableEnded) res.end();
    },
  };
}

export function imageRoutes(app: FastifyInstance, d: Daemon): void {
  const svc = d.images;

  app.get('/images/json', async (req: Req) => {
    const list = svc.list({ all: qbool(req.query, 'all'), filters: parseFilters(req.query), apiVersion: req.apiVersion });
    // shared-size (API 1.42): computed only when asked, as Docker does; -1 otherwise.
    if (qbool(req.query, 'shared-size') && req.apiVersion >= '1.42') {
      const shared = svc.sharedSizes();
      for (const v of list) v.SharedSize = shared.get(v.Id as string) ?? 0;
    }
    return list;
  });

  app.post('/images/load', async (req: Req, reply) => {
    const quiet = qbool(req.query, 'quiet');
    // Bad parameters are a plain 400; from there on the answer is a 200 stream and a failure of the
    // archive itself (not a tar, a bad manifest, a missing layer, a wrong diff id) is its errorDetail, as
    // Docker answers it (docker-py raises ImageLoadError from that; the CLI prints it and exits 1).
    const platform = qstr(req.query, 'platform');
    const want = platform ? queryPlatform(platform) : undefined;
    const out = startJsonStream(reply);
    try {
      await svc.load(requestBody(req.raw), quiet, (m) => out.write(m), want);
    } catch (e) {
      out.fail(e);
    } finally {
      out.end();
    }
  });

  app.post('/images/prune', async (req: Req) => svc.prune(parseFilters(req.query)));

  app.post('/images/create', async (req: Req, reply) => {
    const fromImage = qstr(req.query, 'fromImage');
    const fromSrc = qstr(req.query, 'fromSrc');
    if (!fromImage) {
      if (fromSrc !== undefined) return handleImport(d, req, reply);
      throw invalid('fromImage or fromSrc is required');
    }
    let ref = parseNormalizedNamed(fromImage);
    const tag = qstr(req.query, 'tag');
    if (tag) ref = /^[a-z0-9]+:[a-f0-9]{32,}$/.test(tag) ? parseNormalizedNamed(`${fullName(ref)}@${tag}`) : withTag(ref, tag);
    ref = tagNameOnly(ref);
    // Pull: errors up to the manifest are HTTP errors (unknown tag: 404); later ones go in the stream.
    const job = await distributionOf(d).preparePull(ref, decodeRegistryAuth(req.headers['x-registry-auth']), qstr(req.query, 'platform'));
    const out = startJsonStream(reply);
    try {
      await job.run(out.write);
    } catch (e) {
      out.fail(e);
    } finally {
      out.end();
    }
  });

  app.get('/images/*', async (req: Req, reply) => {
    const p = splitVerb(req.params['*'], ['json', 'history', 'get']);
    if (!p) throw pageNotFound();
    // API 1.48's platform: berth's images are of one platform each; another one is not there.
    checkPlatforms(d, [p.name], qlist(req.query, 'platform'));
    if (p.verb === 'get') return sendSave(d, [p.name], reply);
    if (p.verb === 'json') return svc.inspect(p.name, req.apiVersion);
    return svc.history(p.name);
  });

  app.post('/images/*', async (req: Req, reply) => {
    const p = splitVerb(req.params['*'], ['tag', 'push']);
    if (!p) throw pageNotFound();
    if (p.verb === 'push') {
      let named = parseNormalizedNamed(p.name);
      const tag = qstr(req.query, 'tag');
      if (tag) named = withTag(named, tag);
      const auth = decodeRegistryAuth(req.headers['x-registry-auth']);
      const out = startJsonStream(reply);
      try {
        await distributionOf(d).push(named, auth, out.write);
      } catch (e) {
        out.fail(e);
      } finally {
        out.end();
      }
      return;
    }
    svc.tag(p.name, qstr(req.query, 'repo') ?? '', qstr(req.query, 'tag') ?? '');
    reply.code(201).send();
  });

  // GET /distribution/{name}/json: the registry's manifest descriptor and platforms for a name.
  app.get('/distribution/*', async (req: Req) => {
    const m = /^(.+)\/json$/.exec(req.params['*'] ?? '');
    if (!m) throw pageNotFound();
    let named;
    try {
      named = parseNormalizedNamed(m[1]);
    } catch {
      throw invalid(`invalid reference format: ${m[1]}`);
    }
    return inspectDistribution(distributionOf(d).registries, named, decodeRegistryAuth(req.headers['x-registry-auth']));
  });

  app.delete('/images/*', async (req: Req) => {
    const name = req.params['*'];
    if (!name) throw pageNotFound();
    // API 1.50's platforms: removing a platform the image is not of removes nothing.
    checkPlatforms(d, [name], qlist(req.query, 'platforms'));
    return svc.remove(name, qbool(req.query, 'force'), !qbool(req.query, 'noprune'));
  });
}

