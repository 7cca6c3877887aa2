// docker pull: resolve the manifest (before any answer is sent, so that an unknown tag is a plain 404), then
// stream progress while the missing layers download in parallel and unpack in order.
//
// Crash safety (DESIGN promise 5): a blob is downloaded to <dataRoot>/image/blobs/tmp-*, hashed on the way,
// and renamed to blobs/sha256-<hex> only when its digest and size match. A layer is committed by the layer
// store (which checks the diff id) with that blob linked into it; the image row is written only after every
// layer is committed, so a kill -9 at any moment leaves no image listed. Verified blobs stay in blobs/ until
// the image is written, so the same pull after a restart downloads only what it had not finished.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { invalid, notFound, systemError } from '../errors/errors';
import type { ImageService } from '../images/service';
import { familiarString, fullString, type NamedRef } from '../images/reference';
import { chainIds, DIGEST_RE } from '../storage/layers/store';
import { decompressed } from '../storage/layers/decompress';
import type { AuthConfig } from './auth';
import { MANIFEST_ACCEPT, parseManifest, type Descriptor } from './manifest';
import { choosePlatform, parsePlatform, platformString } from './platform';
import { status, shortId, Throttle, type Out } from './progress';
import { readBody, type HttpResponse } from './http';
import { registryErrorText, RegistryError, type Registries, type Session } from './registry';
import { limiter } from './limit';

export interface PullContext {
  images: ImageService;
  registries: Registries;
  blobsDir: string;
  maxDownloads: number;
  /** Remembers where each downloaded blob came from, for cross-repository mounts on push. */
  sources?: { add(digest: string, host: string, repo: string): void };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** GET a manifest by tag or digest; 404 → Docker's "manifest for X not found". */
async function fetchManifest(s: Session, refText: string, ref: string): Promise<{ bytes: Buffer; contentType?: string; digest: string }> {
  const res = await s.fetch('GET', `manifests/${ref}`, { headers: { Accept: MANIFEST_ACCEPT.join(', ') } });
  const bytes = await readBody(res, 8 * 1024 * 1024);
  if (res.status === 404) throw notFound(`manifest for ${refText} not found: ${registryErrorText(bytes, 404)}`);
  if (res.status !== 200) throw new RegistryError('system', `error fetching manifest for ${refText}: ${registryErrorText(bytes, res.status)}`);
  const digest = sha256(bytes);
  if (ref.startsWith('sha256:') && digest !== ref) throw invalid(`manifest verification failed for digest ${ref}`);
  return { bytes, contentType: res.headers['content-type'], digest };
}

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
  const refText = familiarString(named);
  const endpoints = c.registries.endpoints(named.domain, true);
  let lastErr: unknown;
  for (const ep of endpoints) {
    try {
      const s = await c.registries.open(ep, named.path, auth, ['pull']);
      const top = await fetchManifest(s, refText, named.digest ?? named.tag ?? 'latest');
      let m = parseManifest(top.bytes, top.contentType);
      if (m.kind === 'index') {
        const entry = choosePlatform(m.entries, want);
        if (!entry) throw notFound(`no matching manifest for ${platformString(want)} in the manifest list entries`);
        const inner = await fetchManifest(s, refText, entry.digest);
        m = parseManifest(inner.bytes, inner.contentType);
        if (m.kind !== 'image') throw invalid('invalid manifest list: an entry is itself a list');
      }
      const image = m;
      return { run: (out) => runPull(c, s, named, top.digest, image.config, image.layers, out) };
    } catch (e) {
      lastErr = e;
      // Only a mirror may be passed over; the registry itself answers for real.
      if (!ep.mirror) {
        // An unreachable registry (no network, no such host): say which image could not be pulled.
        if (e instanceof RegistryError && e.unreachable) throw systemError(`failed to resolve reference "${fullString(named)}": ${e.message}`);
        throw e;
      }
    }
  }
  throw lastErr ?? systemError(`no endpoint for ${named.domain}`);
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
    const fetched: string[] = [];
    const active = new Set<HttpResponse>();
    let failed = false;
    const downloadsOf = new Set<Growing>();
    try {
      const present = chains.map((ch) => images.layers.get(ch) !== undefined);
      // Once a layer is missing, everything above it must be unpacked too (chains differ), but a blob
      // already unpacked under another parent is still downloaded only once per pull.
      const need = present.map((p, i) => !p || present.slice(0, i).some((q) => !q));
      for (let i = 0; i < layers.length; i++) {
        out(status(shortId(layers[i].digest), need[i] ? 'Pulling fs layer' : 'Already exists'));
      }
      const limit = limiter(Math.max(1, c.maxDownloads));
      const downloads = new Map<string, Growing>();
      for (let i = 0; i < layers.length; i++) {
        if (!need[i] || downloads.has(layers[i].digest)) continue;
        const l = layers[i];
        const g = new Growing();
        downloads.set(l.digest, g);
        downloadsOf.add(g);
        const p = limit(() => {
          if (failed) throw new Error('pull cancelled');
          return download(c, s, l, out, active, g);
        }, () => out(status(shortId(l.digest), 'Waiting')));
        p.catch((e) => g.fail(e));
      }
      let parent: string | null = null;
      for (let i = 0; i < layers.length; i++) {
        if (need[i]) {
          const l = layers[i];
          const g = downloads.get(l.digest)!;
          // The layer unpacks while its blob is still arriving; it is committed only once the blob is verified.
          const t = new Throttle(out, shortId(l.digest), 'Extracting', l.size);
          try {
            await images.layers.create(parent, decompressed(follow(g, (n) => t.update(n))), diffIds[i] as string, {
              blob: async () => {
                const file = await g.done;
                return { file, digest: l.digest, mediaType: l.mediaType, size: g.written };
              },
            });
          } catch (e) {
            // When the download itself failed (a digest mismatch makes bad gzip too), that is the error to tell.
            const dlErr = await g.done.then(() => undefined, (x: unknown) => x);
            if (dlErr) throw dlErr;
            // A blob that matched its digest but is not the layer the config names is never reused.
            if (g.final) await fsp.rm(g.final, { force: true }).catch(() => undefined);
            throw e;
          }
          fetched.push(g.final!);
          c.sources?.add(l.digest, s.host, s.repo);
          t.update(g.written, true);
          out(status(shortId(l.digest), 'Pull complete'));
        }
        parent = chains[i];
      }
      img = images.addPulledImage(cbytes, id, chains.length ? chains[chains.length - 1] : null);
    } catch (e) {
      failed = true;
      for (const r of active) r.body.destroy();
      // Every download settles (and removes its temp file) before the error is told.
      await Promise.allSettled([...downloadsOf].map((g) => g.done));
      throw e;
    } finally {
      release();
      if (!img) images.collectUnused();
      else for (const f of fetched) await fsp.rm(f, { force: true }).catch(() => undefined);
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

/**
 * A blob being downloaded: how many bytes are on disk so far, and whether it ended verified (renamed to
 * `final`) or failed. Readers follow the file as it grows.
 */
class Growing {
  tmp: string | undefined;
  final: string | undefined;
  written = 0;
  failed = false;
  error: unknown;
  private waiters: (() => void)[] = [];
  private resolveDone!: (f: string) => void;
  private rejectDone!: (e: unknown) => void;
  readonly done = new Promise<string>((res, rej) => {
    this.resolveDone = res;
    this.rejectDone = rej;
  });
  constructor() {
    this.done.catch(() => undefined);
  }
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
  progress(n: number): void {
    this.written = n;
    this.wake();
  }
  finish(final: string, size: number): void {
    this.final = final;
    this.written = size;
    this.resolveDone(final);
    this.wake();
  }
  fail(e: unknown): void {
    if (this.final) return;
    this.failed = true;
    this.error = e;
    this.rejectDone(e);
    this.wake();
  }
}

/** The bytes of a growing blob, as they arrive; ends when the blob is verified, throws when it failed. */
async function* follow(g: Growing, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  let fh: FileHandle | undefined;
  while (!fh) {
    if (g.failed) throw g.error;
    const f = g.final ?? g.tmp;
    if (!f) {
      await g.wait();
      continue;
    }
    try {
      fh = await fsp.open(f, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // Renamed (or removed) between the look and the open: look again.
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  let pos = 0;
  try {
    for (;;) {
      if (pos < g.written) {
        const want = Math.min(1024 * 1024, g.written - pos);
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await fh.read(buf, 0, want, pos);
        if (bytesRead === 0) throw systemError('a downloading blob was truncated');
        pos += bytesRead;
        onBytes(pos);
        yield buf.subarray(0, bytesRead);
        continue;
      }
      if (g.failed) throw g.error;
      if (g.final) return;
      await g.wait();
    }
  } finally {
    await fh.close();
  }
}

/** Downloads one blob into the blobs directory, hashing on the way; `g` follows it. */
async function download(c: PullContext, s: Session, l: Descriptor, out: Out, active: Set<HttpResponse>, g: Growing): Promise<void> {
  const id = shortId(l.digest);
  const final = path.join(c.blobsDir, `sha256-${l.digest.slice(7)}`);
  if (existsSync(final)) {
    // Verified by an earlier, interrupted pull.
    out(status(id, 'Download complete'));
    g.finish(final, statSync(final).size);
    return;
  }
  await fsp.mkdir(c.blobsDir, { recursive: true, mode: 0o700 });
  const tmp = path.join(c.blobsDir, `tmp-${l.digest.slice(7, 19)}-${randomBytes(6).toString('hex')}`);
  const res = await s.fetch('GET', `blobs/${l.digest}`);
  if (res.status !== 200) {
    const body = await readBody(res, 1024 * 1024).catch(() => Buffer.alloc(0));
    throw new RegistryError('system', `error pulling layer ${l.digest}: ${registryErrorText(body, res.status)}`);
  }
  active.add(res);
  const total = l.size >= 0 ? l.size : Number(res.headers['content-length'] ?? -1);
  const t = new Throttle(out, id, 'Downloading', total);
  const hash = createHash('sha256');
  const fh = await fsp.open(tmp, 'wx', 0o600);
  g.tmp = tmp;
  g.wake();
  let n = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      n += chunk.length;
      if (l.size >= 0 && n > l.size) throw invalid(`filesystem layer verification failed for digest ${l.digest}`);
      g.progress(n);
      t.update(n);
    }
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e instanceof Error && (e as { kind?: string }).kind ? e : systemError(`error pulling layer ${l.digest}: ${(e as Error).message}`);
  } finally {
    active.delete(res);
  }
  await fh.close();
  t.update(n, true);
  out(status(id, 'Verifying Checksum'));
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== l.digest || (l.size >= 0 && n !== l.size)) {
    await fsp.rm(tmp, { force: true });
    throw invalid(`filesystem layer verification failed for digest ${l.digest}`);
  }
  await fsp.rename(tmp, final);
  out(status(id, 'Download complete'));
  g.finish(final, n);
}
