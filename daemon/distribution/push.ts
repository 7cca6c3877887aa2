// docker push: every layer of the image as a gzip blob (the blob it was pulled as, when it was gzip; else its
// tar compressed now, which zlib does the same way each time), then the config, then a schema2 manifest.
// A blob the registry has is not sent again ("Layer already exists"); one this daemon knows to be in another
// repository of the same registry is mounted from there ("Mounted from …"); uploads are monolithic
// (POST, then PUT with the whole body).
/* eslint-disable @typescript-eslint/no-explicit-any */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, writeFileSync, renameSync, promises as fsp } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import path from 'node:path';
import { notFound, systemError } from '../errors/errors';
import type { ImageService } from '../images/service';
import { familiarName, fullName, type NamedRef } from '../images/reference';
import type { LayerRecord } from '../storage/layers/store';
import type { AuthConfig } from './auth';
import { MT } from './manifest';
import { status, shortId, Throttle, type Out } from './progress';
import { readBody, discard } from './http';
import { registryErrorText, RegistryError, type Registries, type Session } from './registry';
import { limiter } from './limit';

export interface PushContext {
  images: ImageService;
  registries: Registries;
  blobsDir: string;
  maxUploads: number;
  sources: BlobSources;
}

/** Which repositories of which registries hold a blob, as far as this daemon has seen (for mounts). */
export class BlobSources {
  private map: Record<string, string[]> = {};
  constructor(private readonly file: string) {
    try {
      this.map = JSON.parse(readFileSync(file, 'utf8'));
    } catch { /* none yet */ }
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

interface PushBlob {
  digest: string;
  size: number;
  /** Opens the bytes; `cleanup` removes a temporary file. */
  open(): Readable;
  cleanup(): Promise<void>;
}

const GZIP_TYPES = new Set<string>([MT.dockerLayerGzip, MT.ociLayerGzip]);

/** The gzip blob of a layer: the pulled one when it is gzip, else the layer tar compressed into a temp file. */
async function layerBlob(c: PushContext, l: LayerRecord): Promise<PushBlob> {
  const kept = c.images.layers.blobOf(l);
  if (kept && GZIP_TYPES.has(kept.mediaType) && existsSync(kept.file)) {
    return { digest: kept.digest, size: kept.size, open: () => createReadStream(kept.file), cleanup: async () => undefined };
  }
  const tar = c.images.layers.tarOf(l);
  if (!tar) throw systemError(`layer ${l.diffId} keeps no copy of its tar and cannot be pushed; load or pull the image again`);
  await fsp.mkdir(c.blobsDir, { recursive: true, mode: 0o700 });
  const tmp = path.join(c.blobsDir, `tmp-push-${randomBytes(8).toString('hex')}`);
  const hash = createHash('sha256');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.from(tar), createGzip(), count, (await fsp.open(tmp, 'wx', 0o600)).createWriteStream());
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size, open: () => createReadStream(tmp), cleanup: () => fsp.rm(tmp, { force: true }) };
}

async function blobExists(s: Session, digest: string): Promise<boolean> {
  const res = await s.fetch('HEAD', `blobs/${digest}`);
  discard(res);
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw new RegistryError('system', `HEAD "${s.url(`blobs/${digest}`)}": unexpected status ${res.status}`);
}

/** Uploads `open()` as blob `digest`: POST, then one PUT. `location` continues an upload a mount started. */
async function upload(s: Session, digest: string, size: number, open: () => Readable, onBytes?: (n: number) => void, location?: string): Promise<void> {
  if (!location) {
    const res = await s.fetch('POST', 'blobs/uploads/', { headers: { 'Content-Length': '0' } });
    const body = await readBody(res, 1024 * 1024);
    if (res.status !== 202 || !res.headers.location) throw new RegistryError('system', `starting an upload: ${registryErrorText(body, res.status)}`);
    location = res.headers.location;
  }
  const u = new URL(location, s.base);
  u.searchParams.set('digest', digest);
  let n = 0;
  const src = open();
  const counted = onBytes ? src.pipe(new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      onBytes(n);
      cb(null, chunk);
    },
  })) : src;
  src.on('error', (e) => counted.destroy(e));
  const res = await s.fetch('PUT', u.toString(), { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) }, body: counted, idleTimeout: 300_000 });
  const body = await readBody(res, 1024 * 1024);
  if (res.status !== 201) throw new RegistryError('system', `uploading blob ${digest}: ${registryErrorText(body, res.status)}`);
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
    if (!(await blobExists(s, img.id))) await upload(s, img.id, cfgBytes.length, () => Readable.from([cfgBytes]));
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

async function pushLayer(c: PushContext, s: Session, l: LayerRecord, out: Out): Promise<{ digest: string; size: number }> {
  const id = shortId(l.diffId);
  const blob = await layerBlob(c, l);
  try {
    if (await blobExists(s, blob.digest)) {
      out(status(id, 'Layer already exists'));
      c.sources.add(blob.digest, s.host, s.repo);
      return blob;
    }
    let location: string | undefined;
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
        break;
      }
    }
    const t = new Throttle(out, id, 'Pushing', blob.size);
    await upload(s, blob.digest, blob.size, blob.open, (n) => t.update(n), location);
    t.update(blob.size, true);
    out(status(id, 'Pushed'));
    c.sources.add(blob.digest, s.host, s.repo);
    return blob;
  } finally {
    await blob.cleanup();
  }
}
