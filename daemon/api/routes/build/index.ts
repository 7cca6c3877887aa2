// POST /build: docker build with the classic builder (daemon/build). The body is the context tar; the
// reply is a JSON message stream. As with Docker, the 200 is sent with the first message: an error before
// it (a bad parameter, a hostile or corrupt context, a missing Dockerfile) is a plain HTTP error, one after
// it an errorDetail. With q=1 the step output is held back and sent only if the build fails.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import { qbool, qint, qlist, qstr, type Query } from '../../../lib/query';
import { invalid, toHttp } from '../../../errors/errors';
import { parseNormalizedNamed, tagNameOnly, familiarString, type NamedRef } from '../../../images/reference';
import type { AuthConfig } from '../../../distribution/auth';
import { shortId } from '../../../lib/ids';
import { commonHeaders } from '../../plugins/dialect';
import { requestBody } from '../images/index';
import { receiveContext } from '../../../build/context';
import { Builder, StepFailed, type BuildOptions } from '../../../build/builder';

type Req = FastifyRequest<{ Querystring: Query }>;
type Message = Record<string, unknown>;

/** A JSON object from a query parameter (buildargs, labels); empty when absent. */
function jsonParam<T>(q: Query, key: string): Record<string, T> {
  const v = qstr(q, key);
  if (!v) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    throw invalid(`invalid ${key} parameter: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid(`invalid ${key} parameter: expected a JSON object`);
  return parsed as Record<string, T>;
}

/** cachefrom: a JSON array of image names; absent means none given. */
function cacheFromParam(q: Query): string[] | undefined {
  const v = qstr(q, 'cachefrom');
  if (!v) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    throw invalid(`invalid cachefrom parameter: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== 'string')) throw invalid('invalid cachefrom parameter: expected a JSON array of strings');
  return parsed.length ? parsed : undefined;
}

/** `-t` values: names with an optional tag (never a digest). */
function parseTags(ts: string[]): NamedRef[] {
  return ts.filter((t) => t !== '').map((t) => {
    let named: NamedRef;
    try {
      named = parseNormalizedNamed(t);
    } catch {
      throw invalid(`Error parsing reference: ${JSON.stringify(t)} is not a valid repository/tag: invalid reference format`);
    }
    if (named.digest) throw invalid(`Error parsing reference: ${JSON.stringify(t)} is not a valid repository/tag: cannot build to a digest`);
    return tagNameOnly(named);
  });
}

/** The flags of docker build that shape RUN containers (--memory, --cpu-shares, --shm-size, --add-host,
 *  --ulimit, …) as their HostConfig fields. */
function hostConfig(q: Query): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ints: [string, string][] = [
    ['memory', 'Memory'], ['memswap', 'MemorySwap'], ['cpushares', 'CpuShares'], ['cpuquota', 'CpuQuota'],
    ['cpuperiod', 'CpuPeriod'], ['shmsize', 'ShmSize'],
  ];
  for (const [param, field] of ints) {
    const v = qint(q, param);
    if (v !== undefined && v !== 0) out[field] = v;
  }
  for (const [param, field] of [['cpusetcpus', 'CpusetCpus'], ['cpusetmems', 'CpusetMems']]) {
    const v = qstr(q, param);
    if (v) out[field] = v;
  }
  const hosts = qlist(q, 'extrahosts').flatMap((h) => h.split(',')).filter(Boolean);
  if (hosts.length) out.ExtraHosts = hosts;
  const ulimits = qstr(q, 'ulimits');
  if (ulimits) {
    try {
      const parsed = JSON.parse(ulimits);
      if (Array.isArray(parsed) && parsed.length) out.Ulimits = parsed;
    } catch (e) {
      throw invalid(`invalid ulimits parameter: ${(e as Error).message}`);
    }
  }
  return out;
}

/** X-Registry-Config: base64url JSON of registry → credentials; unreadable means none, as in Docker. */
function registryConfig(h: string | string[] | undefined): Record<string, AuthConfig> {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return {};
  try {
    const parsed = JSON.parse(Buffer.from(v, 'base64url').toString('utf8'));
    return parsed && typeof parsed === 'object' ? parsed : {};
  } catch {
    return {};
  }
}

/** The reply stream, started lazily (see the head of this file). */
class BuildReply {
  private started = false;
  private held: Message[] = [];

  constructor(private readonly reply: FastifyReply, private readonly quiet: boolean) {}

  /** A step's message: sent, or held back with q=1. */
  step = (m: Message): void => {
    if (this.quiet) this.held.push(m);
    else this.send(m);
  };

  send(m: Message): void {
    const res = this.reply.raw;
    if (!this.started) {
      this.reply.hijack();
      res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
      this.started = true;
    }
    if (!res.destroyed && !res.writableEnded) res.write(`${JSON.stringify(m)}\r\n`);
  }

  /** The build failed: an errorDetail in the stream, or (nothing sent yet) the error is rethrown. */
  fail(e: unknown): void {
    for (const m of this.held.splice(0)) this.send(m);
    if (!this.started) throw e;
    const { status, message } = toHttp(e);
    if (status >= 500) this.reply.log.error({ err: e }, 'build failed');
    const detail: Message = e instanceof StepFailed ? { code: e.code, message } : { message };
    this.send({ errorDetail: detail, error: message });
  }

  end(): void {
    if (this.started && !this.reply.raw.writableEnded) this.reply.raw.end();
  }
}

export function buildRoutes(app: FastifyInstance, d: Daemon): void {
  // docker builder prune (and docker system prune): the classic builder's cache is the images themselves,
  // so there is no separate build cache to delete (Docker 20.10 without BuildKit answers the same).
  app.post('/build/prune', async () => ({ CachesDeleted: null, SpaceReclaimed: 0 }));

  app.post('/build', async (req: Req, reply) => {
    const q = req.query;
    if (qstr(q, 'remote')) throw invalid('remote build contexts (git repositories, URLs) are not supported by berth; send the context as a tar');
    if (qstr(q, 'version') === '2') throw invalid('BuildKit (version=2) is not supported by berth; use the classic builder (version=1)');
    const quiet = qbool(q, 'q');
    // The response closing before it was finished means the client went away.
    let closed = false;
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) closed = true;
    });
    const o: BuildOptions = {
      dockerfile: qstr(q, 'dockerfile') || 'Dockerfile',
      tags: parseTags(qlist(q, 't')),
      buildArgs: jsonParam<string | null>(q, 'buildargs'),
      labels: jsonParam<string>(q, 'labels'),
      quiet,
      noCache: qbool(q, 'nocache'),
      cacheFrom: cacheFromParam(q),
      rm: qstr(q, 'rm') === undefined ? true : qbool(q, 'rm'),
      forceRm: qbool(q, 'forcerm'),
      pull: qbool(q, 'pull'),
      target: qstr(q, 'target') || undefined,
      networkMode: qstr(q, 'networkmode') || undefined,
      hostConfig: hostConfig(q),
      platform: qstr(q, 'platform') || undefined,
      auth: registryConfig(req.headers['x-registry-config']),
      aborted: () => closed,
    };
    const dir = await receiveContext(d.config.dataRoot, requestBody(req.raw));
    const out = new BuildReply(reply, quiet);
    try {
      const id = await new Builder(d, dir.context, dir.tmp, o, out.step).run();
      if (quiet) {
        out.send({ stream: `${id}\n` });
      } else {
        out.send({ aux: { ID: id } });
        out.send({ stream: `Successfully built ${shortId(id)}\n` });
      }
      for (const t of o.tags) {
        d.images.tag(id, familiarString(t), '');
        if (!quiet) out.send({ stream: `Successfully tagged ${familiarString(t)}\n` });
      }
    } catch (e) {
      out.fail(e);
    } finally {
      // The build directory goes before the reply ends: a build that has answered has left nothing behind.
      await dir.dispose().catch((e) => req.log.warn({ err: e }, 'could not remove the build directory'));
      out.end();
    }
  });
}
