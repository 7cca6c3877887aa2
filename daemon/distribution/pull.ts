// docker pull: resolve the manifest (before any answer is sent, so that an unknown tag is a plain 404), then
// stream progress while the missing layers download in parallel and unpack in order.
//
// A blob is never written to disk: each missing layer is unpacked straight from the response (decompressed
// and hashed on the way) into a temporary layer directory of its own, so the layers of an image download and
// unpack in parallel (max-concurrent-downloads) and each byte is written once. A layer is checked against
// both its blob digest and its diff id before the layer store commits it; layers are committed in order,
// each as soon as the one under it is.
//
// Crash safety (DESIGN promise 5): a kill -9 leaves temporary layer directories (removed at the next start)
// and committed layers, never an image row: that is written only after every layer is committed. The same
// pull after a restart finds the committed layers ("Already exists") and downloads only the rest.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { invalid, notFound, systemError } from '../errors/errors';
import type { ImageService } from '../images/service';
import { familiarString, type NamedRef } from '../images/reference';
import { chainIds, DIGEST_RE, type PreparedLayer } from '../storage/layers/store';
import { OffThreadHash } from '../storage/layers/hasher';
import { decompressed } from '../storage/layers/decompress';
import type { AuthConfig } from './auth';
import { parseManifest, type Descriptor } from './manifest';
import { fetchManifest, withManifest } from './resolve';
import { choosePlatform, parsePlatform, platformString } from './platform';
import { status, shortId, Throttle, progressMsg, type Out } from './progress';
import { readBody, type HttpResponse } from './http';
import { registryErrorText, RegistryError, type Registries, type Session } from './registry';
import { limiter } from './limit';
import { crashPoint } from '../lib/crash';

export interface PullContext {
  images: ImageService;
  registries: Registries;
  blobsDir: string;
  maxDownloads: number;
  /** Remembers where each downloaded blob came from and which layer it is, for push. */
  sources?: { add(digest: string, host: string, repo: string): void; addLayer(diffId: string, blob: { digest: string; mediaType: string; size: number }): void };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface PreparedPull {
  run(out: Out): Promise<void>;
}

/**
 * Everything that can fail before the stream starts: the endpoint, the credentials, the manifest and the
 * platform. docker.io names go to the mirrors first (an unreachable mirror or one without the image passes
 * to the next endpoint).
 */
export async function preparePull(c: PullContext, named: NamedRef, auth: AuthConfig, platformParam?: string): Promise<PreparedPull> {
  const want = parsePlatform(platformParam);
  return withManifest(c.registries, named, auth, async (s, top, refText) => {
    let m = parseManifest(top.bytes, top.contentType);
    if (m.kind === 'index') {
      const entry = choosePlatform(m.entries, want);
      if (!entry) throw notFound(`no matching manifest for ${platformString(want)} in the manifest list entries`);
      const inner = await fetchManifest(s, refText, entry.digest);
      m = parseManifest(inner.bytes, inner.contentType);
      if (m.kind !== 'image') throw invalid('invalid manifest list: an entry is itself a list');
    }
    const image = m;
    return { run: (out: Out) => runPull(c, s, named, top.digest, image.config, image.layers, out) };
  });
}

async function runPull(c: PullContext, s: Session, named: NamedRef, manifestDigest: string, configDesc: Descriptor, layers: Descriptor[], out: Out): Promise<void> {
  const isDigest = named.digest !== undefined;
  out({ status: `Pulling from ${named.path}`, id: isDigest ? familiarString(named) : named.tag });

  // The config blob is the image: its digest is the image id.
  const cres = await s.fetch('GET', `blobs/${configDesc.digest}`);
  const cbytes = await readBody(cres, 32 * 1024 * 1024);
  if (cres.status !== 200) throw new RegistryError('system', `error pulling image configuration: ${registryErrorText(cbytes, cres.status)}`);
  const id = sha256(cbytes);
  if (id !== configDesc.digest) throw invalid(`image config verification failed for digest ${configDesc.digest}`);
  let cfg: any;
  try {
    cfg = JSON.parse(cbytes.toString('utf8'));
  } catch {
    throw invalid('invalid image configuration: not JSON');
  }
  if (cfg?.os && cfg.os !== 'linux') throw invalid(`image operating system "${cfg.os}" cannot be used on this platform`);
  const diffIds: unknown = cfg?.rootfs?.diff_ids ?? [];
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && DIGEST_RE.test(d))) throw invalid('invalid image configuration: bad rootfs.diff_ids');
  if (diffIds.length !== layers.length) throw invalid(`invalid manifest: ${layers.length} layers for ${diffIds.length} diff ids in the image configuration`);

  const images = c.images;
  let img = images.byId(id);
  if (!img) {
    const chains = chainIds(diffIds as string[]);
    const release = images.layers.hold(chains);
    const active = new Set<HttpResponse>();
    let failed = false;
    const jobs: (Promise<PreparedLayer> | undefined)[] = [];
    try {
      const present = chains.map((ch) => images.layers.get(ch) !== undefined);
      // Once a layer is missing, everything above it must be unpacked too (chains differ).
      const need = present.map((p, i) => !p || present.slice(0, i).some((q) => !q));
      for (let i = 0; i < layers.length; i++) {
        out(status(shortId(layers[i].digest), need[i] ? 'Pulling fs layer' : 'Already exists'));
      }
      // Every missing layer downloads and unpacks at once (as many at a time as max-concurrent-downloads),
      // straight from the response into its own temporary layer directory; they are committed in order.
      const limit = limiter(Math.max(1, c.maxDownloads));
      for (let i = 0; i < layers.length; i++) {
        if (!need[i]) continue;
        const l = layers[i];
        const p = limit(() => {
          if (failed) throw new Error('pull cancelled');
          return fetchLayer(c, s, l, diffIds[i] as string, out, active);
        }, () => out(status(shortId(l.digest), 'Waiting')));
        p.catch(() => undefined);
        jobs[i] = p;
      }
      let parent: string | null = null;
      for (let i = 0; i < layers.length; i++) {
        const job = jobs[i];
        if (job) {
          const l = layers[i];
          const prepared = await job;
          jobs[i] = undefined;
          await images.layers.commit(parent, prepared);
          crashPoint('pull.after-layer');
          c.sources?.add(l.digest, s.host, s.repo);
          c.sources?.addLayer(diffIds[i] as string, { digest: l.digest, mediaType: l.mediaType, size: l.size });
          out(progressMsg(shortId(l.digest), 'Extracting', l.size, l.size));
          out(status(shortId(l.digest), 'Pull complete'));
        }
        parent = chains[i];
      }
      crashPoint('pull.before-image-row');
      img = images.addPulledImage(cbytes, id, chains.length ? chains[chains.length - 1] : null);
    } catch (e) {
      failed = true;
      for (const r of active) r.body.destroy();
      // Every download settles (and its directory goes) before the error is told.
      const left = await Promise.allSettled(jobs.filter((j): j is Promise<PreparedLayer> => j !== undefined));
      for (const r of left) if (r.status === 'fulfilled') await images.layers.discard(r.value);
      throw e;
    } finally {
      release();
      if (!img) images.collectUnused();
    }
  }

  let upToDate: boolean;
  if (isDigest) {
    upToDate = images.refTarget(named) === id;
    images.setReference(img, named);
  } else {
    upToDate = images.refTarget(named) === id;
    images.setReference(img, named);
    images.setReference(img, { domain: named.domain, path: named.path, digest: manifestDigest });
  }
  images.emitImageEvent(img, 'pull', familiarString(named));
  out({ status: `Digest: ${manifestDigest}` });
  out({ status: `Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarString(named)}` });
}

/** The bytes of a blob as they arrive, counted and hashed (in the hash worker, 1 MiB at a time); at the end
 *  (and when `rest` is called after the consumer gave up) they must match the descriptor. */
class Verifier {
  private readonly hash = new OffThreadHash();
  private pending: Buffer[] = [];
  private pendingLen = 0;
  n = 0;
  ended = false;
  constructor(private readonly l: Descriptor, private readonly body: Readable, private readonly onBytes: (n: number) => void) {}

  /** The body's chunks; leaving the loop early does not destroy the body (rest() may read on). */
  private chunks(): AsyncIterable<Buffer> {
    return this.body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
  }

  /** Hashes what is pending, as one buffer, and returns it (undefined when nothing is). */
  private flush(): Buffer | undefined {
    if (this.pendingLen === 0) return undefined;
    const b = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLen);
    this.hash.update(b);
    this.pending = [];
    this.pendingLen = 0;
    return b;
  }

  /** Counts a chunk in; returns 1 MiB or more of bytes once that much is pending. */
  private take(c: Buffer): Buffer | undefined {
    this.pending.push(c);
    this.pendingLen += c.length;
    this.n += c.length;
    if (this.l.size >= 0 && this.n > this.l.size) {
      this.hash.drop();
      throw verificationFailed(this.l.digest);
    }
    this.onBytes(this.n);
    return this.pendingLen >= 1 << 20 ? this.flush() : undefined;
  }

  private async check(): Promise<void> {
    this.flush();
    const got = `sha256:${await this.hash.digest()}`;
    if (got !== this.l.digest || (this.l.size >= 0 && this.n !== this.l.size)) throw verificationFailed(this.l.digest);
  }

  /** The body in chunks of 1 MiB or more (what zlib wants), each hashed as it goes by. */
  async* stream(): AsyncGenerator<Buffer> {
    for await (const c of this.chunks()) {
      const b = this.take(c);
      if (b) yield b;
    }
    const last = this.flush();
    if (last) yield last;
    this.ended = true;
    await this.check();
  }

  /** After the unpacker failed: reads what is left, to tell a corrupt download from a bad layer. */
  async rest(): Promise<boolean> {
    if (this.ended) return true;
    try {
      for await (const c of this.chunks()) this.take(c);
      await this.check();
      return true;
    } catch {
      return false;
    }
  }

  /** The hash will not be finished (the download failed). */
  drop(): void {
    this.hash.drop();
  }
}

const verificationFailed = (digest: string) => invalid(`filesystem layer verification failed for digest ${digest}`);

/** Downloads one layer and unpacks it while it streams in (nothing of the blob is kept); the result is
 *  checked against both the blob digest and the diff id, and committed by the caller. */
async function fetchLayer(c: PullContext, s: Session, l: Descriptor, diffId: string, out: Out, active: Set<HttpResponse>): Promise<PreparedLayer> {
  const id = shortId(l.digest);
  const res = await s.fetch('GET', `blobs/${l.digest}`, { idleTimeout: 300_000, bulk: true });
  if (res.status !== 200) {
    const body = await readBody(res, 1024 * 1024).catch(() => Buffer.alloc(0));
    throw new RegistryError('system', `error pulling layer ${l.digest}: ${registryErrorText(body, res.status)}`);
  }
  active.add(res);
  let v: Verifier | undefined;
  try {
    const total = l.size >= 0 ? l.size : Number(res.headers['content-length'] ?? -1);
    const t = new Throttle(out, id, 'Downloading', total);
    v = new Verifier(l, res.body, (n) => t.update(n));
    let prepared: PreparedLayer;
    try {
      prepared = await c.images.layers.prepare(decompressed(v.stream()), diffId);
    } catch (e) {
      // A corrupt download makes corrupt gzip or tar too: then the digest is what to tell.
      if ((e as { kind?: string }).kind === 'invalid' && !/verification failed/.test((e as Error).message) && !(await v.rest())) throw verificationFailed(l.digest);
      if ((e as { kind?: string }).kind) throw e;
      throw systemError(`error pulling layer ${l.digest}: ${(e as Error).message}`);
    }
    t.update(v.n, true);
    out(status(id, 'Verifying Checksum'));
    out(status(id, 'Download complete'));
    return prepared;
  } finally {
    v?.drop();
    active.delete(res);
    res.body.destroy();
  }
}
