// docker push: every layer of the image as a blob, then the config, then a schema2 manifest.
//
// Like Docker, berth keeps no compressed copy of a layer; it remembers which blobs are which layer (the
// blobs a pull unpacked, the blobs a push made) in <dataRoot>/image/distribution/diffids.json. A layer whose
// blob the registry's repository has is not sent again ("Layer already exists"); one whose blob this daemon
// knows to be in another repository of the same registry is mounted from there ("Mounted from …"). Any
// other layer is regenerated from its tar-split metadata, gzip-compressed on all cores at once (pgzip.ts:
// the output depends only on the tar's bytes, so the same layer gives the same digest) and streamed up as
// Docker does: POST to start, one PATCH whose body is the compressor's output as it comes, PUT with the
// digest (known only at the end) to finish. A few compressed blocks are in memory at a time.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { Readable } from 'node:stream';
import { notFound, systemError } from '../errors/errors';
import type { ImageService } from '../images/service';
import { familiarName, fullName, type NamedRef } from '../images/reference';
import type { LayerRecord } from '../storage/layers/store';
import type { AuthConfig } from './auth';
import { MT } from './manifest';
import { decompressed } from '../storage/layers/decompress';
import { status, shortId, Throttle, type Out } from './progress';
import { readBody, discard, type HttpResponse } from './http';
import { registryErrorText, RegistryError, type Registries, type Session } from './registry';
import { limiter } from './limit';
import { parallelGzip } from './pgzip';

export interface PushContext {
  images: ImageService;
  registries: Registries;
  blobsDir: string;
  maxUploads: number;
  sources: BlobSources;
}

/** A compressed blob of a layer. */
export interface KnownBlob {
  digest: string;
  mediaType: string;
  size: number;
}

/** Which repositories of which registries hold a blob, and which blobs are which layer (by diff id), as far
 *  as this daemon has seen. A cache: losing it only costs an upload. */
export class BlobSources {
  private map: Record<string, string[]> = {};
  private layers: Record<string, KnownBlob[]> = {};
  private readonly layersFile: string;
  constructor(private readonly file: string) {
    try {
      this.map = JSON.parse(readFileSync(file, 'utf8'));
    } catch { /* none yet */ }
    this.layersFile = file.replace(/sources\.json$/, 'diffids.json');
    try {
      this.layers = JSON.parse(readFileSync(this.layersFile, 'utf8'));
    } catch { /* none yet */ }
  }
  /** Blobs known to hold the layer `diffId`, most recent first. */
  layersOf(diffId: string): KnownBlob[] {
    return [...(this.layers[diffId] ?? [])].reverse();
  }
  addLayer(diffId: string, blob: KnownBlob): void {
    const l = (this.layers[diffId] ??= []);
    const i = l.findIndex((b) => b.digest === blob.digest);
    if (i >= 0) l.splice(i, 1);
    l.push({ digest: blob.digest, mediaType: blob.mediaType, size: blob.size });
    if (l.length > 5) l.shift();
    try {
      writeFileSync(`${this.layersFile}.tmp`, JSON.stringify(this.layers));
      renameSync(`${this.layersFile}.tmp`, this.layersFile);
    } catch { /* a cache */ }
  }
  get(digest: string, host: string): string[] {
    return (this.map[digest] ?? []).filter((s) => s.startsWith(`${host}/`)).map((s) => s.slice(host.length + 1));
  }
  add(digest: string, host: string, repo: string): void {
    const key = `${host}/${repo}`;
    const l = (this.map[digest] ??= []);
    if (l.includes(key)) return;
    l.push(key);
    if (l.length > 20) l.shift();
    try {
      writeFileSync(`${this.file}.tmp`, JSON.stringify(this.map));
      renameSync(`${this.file}.tmp`, this.file);
    } catch { /* a cache: losing it only costs a mount */ }
  }
}

/** Blobs that can stand in a schema2 manifest as the layer's gzip blob (others are compressed again). */
const GZIP_TYPES = new Set<string>([MT.dockerLayerGzip, MT.ociLayerGzip]);

async function blobExists(s: Session, digest: string): Promise<boolean> {
  const res = await s.fetch('HEAD', `blobs/${digest}`);
  discard(res);
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw new RegistryError('system', `HEAD "${s.url(`blobs/${digest}`)}": unexpected status ${res.status}`);
}

async function uploadError(res: HttpResponse, what: string): Promise<RegistryError> {
  const body = await readBody(res, 1024 * 1024).catch(() => Buffer.alloc(0));
  return new RegistryError('system', `${what}: ${registryErrorText(body, res.status)}`);
}

/**
 * Uploads the bytes of `src` as a blob, as Docker does: POST (unless `location` continues an upload a mount
 * attempt started), one PATCH whose body streams `src` as it is produced (chunked transfer encoding), then a
 * PUT with the digest. One request instead of one per chunk: the registry checks and stores each PATCH
 * before it answers, and the compressor would wait for every answer. On any failure the upload is cancelled
 * (DELETE) and the error thrown (the source's own error when the source failed). Returns the blob's digest
 * and size.
 */
export async function upload(s: Session, src: AsyncIterable<Buffer>, onBytes?: (n: number) => void, location?: string): Promise<{ digest: string; size: number }> {
  if (!location) {
    const res = await s.fetch('POST', 'blobs/uploads/', { headers: { 'Content-Length': '0' } });
    if (res.status !== 202 || !res.headers.location) throw await uploadError(res, 'starting an upload');
    discard(res);
    location = res.headers.location;
  }
  let at = new URL(location, s.base);
  const hash = createHash('sha256');
  let sent = 0;
  let srcError: unknown;
  const counted = (async function* () {
    try {
      for await (const b of src) {
        hash.update(b);
        sent += b.length;
        onBytes?.(sent);
        yield b;
      }
    } catch (e) {
      srcError = e;
      throw e;
    }
  })();
  const body = Readable.from(counted, { objectMode: false });
  try {
    const res = await s.fetch('PATCH', at.toString(), { headers: { 'Content-Type': 'application/octet-stream' }, body, idleTimeout: 300_000 })
      .catch((e) => { throw srcError ?? e; });
    if (srcError) throw srcError;
    if (res.status !== 202 && res.status !== 204) throw await uploadError(res, 'uploading a blob');
    discard(res);
    if (res.headers.location) at = new URL(res.headers.location, at);
    const digest = `sha256:${hash.digest('hex')}`;
    at.searchParams.set('digest', digest);
    const put = await s.fetch('PUT', at.toString(), { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '0' }, body: Buffer.alloc(0) });
    if (put.status !== 201) throw await uploadError(put, `uploading blob ${digest}`);
    discard(put);
    return { digest, size: sent };
  } catch (e) {
    // A registry that answered before reading the whole body: stop producing it.
    body.destroy();
    await s.fetch('DELETE', at.toString()).then(discard, () => undefined);
    throw e;
  }
}

export async function runPush(c: PushContext, named: NamedRef, auth: AuthConfig, out: Out): Promise<void> {
  const repoText = familiarName(named);
  out({ status: `The push refers to repository [${fullName(named)}]` });
  const targets: { tag: string; id: string }[] = named.tag !== undefined
    ? (() => {
      const id = c.images.refTarget(named);
      return id && c.images.byId(id) ? [{ tag: named.tag, id }] : [];
    })()
    : c.images.tagsOfRepository(named.domain, named.path);
  if (targets.length === 0) throw notFound(`An image does not exist locally with the tag: ${repoText}`);

  const endpoint = c.registries.endpoints(named.domain, false)[0];
  let session: Session | undefined;
  for (const t of targets) {
    const img = c.images.byId(t.id)!;
    const stack = c.images.layers.stack(img.topChain); // topmost first, as Docker lists them
    for (const l of stack) out(status(shortId(l.diffId), 'Preparing'));
    session ??= await c.registries.open(endpoint, named.path, auth, ['pull', 'push']);
    const s = session;
    const limit = limiter(Math.max(1, c.maxUploads));
    const pushed = await Promise.all(stack.map((l) => limit(() => pushLayer(c, s, l, out))));
    const layers = pushed.reverse();

    const cfgBytes = Buffer.from(c.images.configBytes(img.id), 'utf8');
    if (!(await blobExists(s, img.id))) await upload(s, Readable.from([cfgBytes]));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.dockerV2,
      config: { mediaType: MT.dockerConfig, size: cfgBytes.length, digest: img.id },
      layers: layers.map((b) => ({ mediaType: MT.dockerLayerGzip, size: b.size, digest: b.digest })),
    }));
    const res = await s.fetch('PUT', `manifests/${t.tag}`, { headers: { 'Content-Type': MT.dockerV2, 'Content-Length': String(manifest.length) }, body: manifest });
    const body = await readBody(res, 1024 * 1024);
    if (res.status !== 201) throw new RegistryError('system', `pushing the manifest: ${registryErrorText(body, res.status)}`);
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    c.images.setReference(img, { domain: named.domain, path: named.path, digest });
    c.images.emitImageEvent(img, 'push', `${repoText}:${t.tag}`);
    out({ status: `${t.tag}: digest: ${digest} size: ${manifest.length}` });
    out({ progressDetail: {}, aux: { Tag: t.tag, Digest: digest, Size: manifest.length } });
  }
}

/** The blob of one layer in the repository: one it has, one mounted, or one uploaded now. */
async function pushLayer(c: PushContext, s: Session, l: LayerRecord, out: Out): Promise<KnownBlob> {
  const id = shortId(l.diffId);
  // Blobs known to be this layer: what pulls and pushes recorded, and the blob an older berth kept.
  const known = c.sources.layersOf(l.diffId).filter((b) => GZIP_TYPES.has(b.mediaType));
  const kept = c.images.layers.blobOf(l);
  if (kept && GZIP_TYPES.has(kept.mediaType) && !known.some((b) => b.digest === kept.digest)) known.push({ digest: kept.digest, mediaType: kept.mediaType, size: kept.size });
  for (const blob of known) {
    if (await blobExists(s, blob.digest)) {
      out(status(id, 'Layer already exists'));
      c.sources.add(blob.digest, s.host, s.repo);
      return blob;
    }
  }
  let location: string | undefined;
  mount: for (const blob of known) {
    for (const from of c.sources.get(blob.digest, s.host)) {
      if (from === s.repo) continue;
      const q = new URLSearchParams({ mount: blob.digest, from });
      const res = await s.fetch('POST', `blobs/uploads/?${q}`, { headers: { 'Content-Length': '0' } });
      discard(res);
      if (res.status === 201) {
        out(status(id, `Mounted from ${from}`));
        c.sources.add(blob.digest, s.host, s.repo);
        return blob;
      }
      if (res.status === 202 && res.headers.location) {
        location = res.headers.location;
        break mount;
      }
    }
  }
  let src: AsyncIterable<Buffer>;
  const mediaType = MT.dockerLayerGzip;
  let total: number;
  const tar = c.images.layers.tarOf(l) ?? (kept && existsSync(kept.file) ? decompressed(createReadStream(kept.file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) : undefined);
  if (tar) {
    total = (await c.images.layers.tarSize(l)) ?? l.size;
    let read = 0;
    const counted = (async function* () {
      for await (const b of tar) {
        read += b.length;
        yield b;
      }
    })();
    // A tar that fails (its files changed on disk) throws out of the compressor and fails the upload.
    src = parallelGzip(counted);
    const t = new Throttle(out, id, 'Pushing', total);
    const blob = await upload(s, src, () => t.update(read), location);
    t.update(total, true);
    return recordPushed(c, s, l, out, { ...blob, mediaType });
  }
  throw systemError(`layer ${l.diffId} keeps no copy of its tar and cannot be pushed; load or pull the image again`);
}

function recordPushed(c: PushContext, s: Session, l: LayerRecord, out: Out, blob: KnownBlob): KnownBlob {
  out(status(shortId(l.diffId), 'Pushed'));
  c.sources.add(blob.digest, s.host, s.repo);
  c.sources.addLayer(l.diffId, blob);
  return blob;
}
