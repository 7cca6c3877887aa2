// docker save: one or several images as one tar, streamed as it is written (nothing of it is held in
// memory but the small index files). The layout is the one current Docker writes (engine-api.md section
// 14): an OCI image layout (oci-layout, index.json, blobs/sha256/<hex> for configs, layer tars and OCI
// manifests) plus the legacy manifest.json and repositories, whose paths point into blobs/sha256 — so
// both older loaders (manifest.json) and OCI tools (index.json) read it. Shared layers are written once.
//
// A layer's tar must be the exact bytes whose sha256 is its diff id; the layer store regenerates them from
// its tar-split metadata, whose size is known up front (a layer of an older berth that kept only the
// compressed blob is decompressed into a temporary file first, because a tar header needs the size).
/* eslint-disable @typescript-eslint/no-explicit-any */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp, createReadStream } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import * as tar from 'tar-stream';

type TarHeader = Partial<tar.Header> & { name: string };
const endEntry = (e: unknown) => (e as { end(): void }).end();
import { notFound } from '../errors/errors';
import type { LayerRecord } from '../storage/layers/store';
import { parseAnyReference, parseStored, fullName, fullString, familiarString, familiarName, tagNameOnly, type NamedRef } from './reference';
import type { ImageInternals, ImageRecord } from './model';
import { drained, drainOrClose } from '../lib/streams';

const MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MT_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export interface SavePlan {
  images: { img: ImageRecord; tags: NamedRef[] }[];
}

/** Resolves every name before anything is written, so that an unknown one is a plain 404. A name without
 *  a tag saves every tag of that repository (as Docker does); an id saves the image untagged. */
export function planSave(x: ImageInternals, names: string[]): SavePlan {
  const byId = new Map<string, { img: ImageRecord; tags: NamedRef[] }>();
  for (const name of names) {
    let img: ImageRecord;
    let tags: NamedRef[] = [];
    let any;
    try {
      any = parseAnyReference(name);
      img = x.find(name);
    } catch {
      throw notFound('reference does not exist');
    }
    if (any.kind === 'named') {
      const r = any.ref;
      if (r.digest) tags = [];
      else if (r.tag !== undefined) tags = [r];
      else {
        const repo = fullName(r);
        tags = x.refs(img.id).filter((ref) => ref.kind === 'tag').map((ref) => parseStored(ref.ref)).filter((n) => fullName(n) === repo);
        if (tags.length === 0) tags = [tagNameOnly(r)];
      }
    }
    const e = byId.get(img.id) ?? { img, tags: [] };
    for (const t of tags) if (!e.tags.some((u) => fullString(u) === fullString(t))) e.tags.push(t);
    byId.set(img.id, e);
  }
  return { images: [...byId.values()] };
}

/** Copies a stream into `out` with backpressure and ends it. */
export async function copyTo(src: AsyncIterable<Buffer>, out: Writable): Promise<void> {
  for await (const c of src) {
    if (out.destroyed) throw new Error('the client went away');
    if (!out.write(c)) await drained(out);
  }
  if (out.destroyed) throw new Error('the client went away');
  await new Promise<void>((resolve) => out.end(() => resolve()));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Writes one member, waiting for the pack to take it. */
function addEntry(pack: tar.Pack, header: TarHeader, body?: Buffer | AsyncIterable<Buffer>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (body === undefined || Buffer.isBuffer(body)) {
      if (body === undefined && header.type !== 'file') pack.entry(header, (err) => (err ? reject(err) : resolve()));
      else if (body === undefined) pack.entry(header, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
      return;
    }
    const entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    // A failing body (a layer that no longer matches its diff id) destroys the entry with the error, which
    // is told through reject(); the entry's own error event must not go unheard.
    entry.on('error', () => undefined);
    (async () => {
      for await (const c of body) {
        // The pack destroyed (the client gone) destroys the entry: no 'drain' will come, so its 'close'
        // ends the wait, and leaving the loop closes the body (a layer file, a temporary copy).
        if (entry.destroyed) throw new Error('the archive was closed');
        if (!entry.write(c)) await drainOrClose(entry);
      }
      endEntry(entry);
    })().catch((e) => {
      entry.destroy(e as Error);
      reject(e);
    });
  });
}

/** Writes the archive of `plan` into `out`; resolves when it is complete. */
export async function writeSave(x: ImageInternals, plan: SavePlan, out: Writable): Promise<void> {
  const pack = tar.pack();
  const piped = copyTo(pack as unknown as AsyncIterable<Buffer>, out);
  // When the client goes away the pack is no longer read: every pending write gives up then.
  let abort: (e: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    abort = reject;
  });
  failed.catch(() => undefined);
  piped.catch((e) => abort(e));
  const add = (h: TarHeader, body?: Buffer | AsyncIterable<Buffer>) => Promise.race([addEntry(pack, h, body), failed]);
  // Layers must stay while they are streamed, even if an rmi comes in meanwhile.
  const release = x.layers.hold(plan.images.map((i) => i.img.topChain).filter((c): c is string => !!c));
  const mtime = new Date(0);
  const file = (name: string, size: number) => ({ name, size, mode: 0o644, mtime, uid: 0, gid: 0, type: 'file' as const });
  const written = new Set<string>();
  const manifestJson: any[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const index: any = { schemaVersion: 2, mediaType: MT_OCI_INDEX, manifests: [] as any[] };
  try {
    await add({ name: 'blobs/', type: 'directory', mode: 0o755, mtime });
    await add({ name: 'blobs/sha256/', type: 'directory', mode: 0o755, mtime });
    const blob = async (hex: string, bytes: Buffer) => {
      if (written.has(hex)) return;
      written.add(hex);
      await add(file(`blobs/sha256/${hex}`, bytes.length), bytes);
    };
    for (const { img, tags } of plan.images) {
      const layers = x.layers.stack(img.topChain).reverse();
      const layerDescs: any[] = [];
      for (const l of layers) {
        const hex = l.diffId.slice('sha256:'.length);
        const size = await writeLayer(x, add, l, hex, written, file);
        layerDescs.push({ mediaType: MT_OCI_LAYER, digest: l.diffId, size });
      }
      const cfg = Buffer.from((x.store.get(img.id)?.config) ?? JSON.stringify(img.config), 'utf8');
      const cfgHex = sha(cfg);
      await blob(cfgHex, cfg);
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: MT_OCI_MANIFEST,
        config: { mediaType: MT_OCI_CONFIG, digest: `sha256:${cfgHex}`, size: cfg.length },
        layers: layerDescs,
      }));
      const mHex = sha(manifest);
      await blob(mHex, manifest);
      const desc = { mediaType: MT_OCI_MANIFEST, digest: `sha256:${mHex}`, size: manifest.length };
      if (tags.length === 0) index.manifests.push(desc);
      for (const t of tags) {
        index.manifests.push({ ...desc, annotations: { 'io.containerd.image.name': fullString(t), 'org.opencontainers.image.ref.name': t.tag ?? 'latest' } });
        const repo = familiarName(t);
        const top = layers.length ? layers[layers.length - 1].diffId.slice('sha256:'.length) : '';
        (repositories[repo] ??= {})[t.tag ?? 'latest'] = top;
      }
      manifestJson.push({
        Config: `blobs/sha256/${cfgHex}`,
        RepoTags: tags.length ? tags.map((t) => familiarString(t)) : null,
        Layers: layers.map((l) => `blobs/sha256/${l.diffId.slice('sha256:'.length)}`),
      });
      x.emit(img, 'save', img.id);
    }
    const json = (name: string, v: unknown) => {
      const b = Buffer.from(JSON.stringify(v));
      return add(file(name, b.length), b);
    };
    await json('index.json', index);
    await json('manifest.json', manifestJson);
    await json('oci-layout', { imageLayoutVersion: '1.0.0' });
    if (Object.keys(repositories).length) await json('repositories', repositories);
    pack.finalize();
    await piped;
  } catch (e) {
    pack.destroy(e as Error);
    throw e;
  } finally {
    release();
  }
}

async function writeLayer(x: ImageInternals, add: (h: TarHeader, body?: Buffer | AsyncIterable<Buffer>) => Promise<void>, l: LayerRecord, hex: string, written: Set<string>,
  file: (name: string, size: number) => TarHeader): Promise<number> {
  const known = await x.layers.tarSize(l);
  if (known !== undefined) {
    // Regenerated from the layer's tar-split metadata (checked against the diff id as it streams).
    if (!written.has(hex)) {
      written.add(hex);
      await add(file(`blobs/sha256/${hex}`, known), x.layers.tarOf(l)!);
    }
    return known;
  }
  const src = x.layers.tarOf(l);
  if (!src) throw new Error(`layer ${l.diffId} kept no copy of its tar (made by an older berth); it cannot be saved`);
  // A layer of an older berth that kept only its pulled blob: its uncompressed size is known only once it
  // is decompressed.
  await fsp.mkdir(x.tmpRoot, { recursive: true, mode: 0o700 });
  const tmp = path.join(x.tmpRoot, `save-${randomBytes(8).toString('hex')}`);
  try {
    const ws = createWriteStream(tmp, { mode: 0o600 });
    for await (const c of src) if (!ws.write(c)) await new Promise<void>((r) => ws.once('drain', r));
    await new Promise<void>((resolve, reject) => ws.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const size = (await fsp.stat(tmp)).size;
    if (!written.has(hex)) {
      written.add(hex);
      await add(file(`blobs/sha256/${hex}`, size), createReadStream(tmp, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>);
    }
    return size;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}
