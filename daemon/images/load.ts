// docker load: the archive (plain or gzip) is read once: layer tars are unpacked as they stream in (spool.ts),
// everything else is spooled to disk; then its index files say which images it holds, and each image is
// loaded in turn: the layers it lacks are checked against the config's diff ids and committed, then the
// image row is written, then its tags. An image is listed only once all its layers are
// committed; layers of an image that failed are collected again at the end.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { createHash } from 'node:crypto';
import { invalid, notFound } from '../errors/errors';
import { imageFits, platformString, type Platform } from '../distribution/platform';
import { chainIds, DIGEST_RE, type LayerRecord } from '../storage/layers/store';
import { decompressed } from '../storage/layers/decompress';
import { parseNormalizedNamed, familiarString, type NamedRef } from './reference';
import { Spool } from './spool';
import { planArchive, type ImageToLoad } from './archive';
import type { ImageInternals, StreamMessage } from './model';
import { humanSize } from '../lib/units';
import { crashPoint } from '../lib/crash';

export async function loadArchive(x: ImageInternals, body: AsyncIterable<Buffer>, quiet: boolean, out: (m: StreamMessage) => void, platform?: Platform): Promise<void> {
  let spool: Spool | undefined;
  try {
    spool = await Spool.create(x.tmpRoot, decompressed(body), x.layers);
    let plan = await planArchive(spool);
    // --platform: only the archive's images of that platform are loaded; none is an error, before any
    // image is made.
    if (platform) {
      const fits: ImageToLoad[] = [];
      for (const p of plan) if (imageFits((await spool.readJson<{ os?: string; architecture?: string; variant?: string }>(p.config)).value ?? {}, platform)) fits.push(p);
      if (fits.length === 0) throw notFound(`no image in the archive matches the specified platform ${platformString(platform)}`);
      plan = fits;
    }
    // Every name is checked before any work, so that a bad tag loads nothing.
    const tagsOf = plan.map((p) => p.repoTags.map(parseLoadTag));
    for (let i = 0; i < plan.length; i++) await loadOne(x, spool, plan[i], tagsOf[i], quiet, out);
  } finally {
    await spool?.dispose().catch(() => undefined);
    x.collectLayers();
  }
}

async function loadOne(x: ImageInternals, spool: Spool, item: ImageToLoad, tags: NamedRef[], quiet: boolean, out: (m: StreamMessage) => void): Promise<void> {
  const { bytes, value: cfg } = await spool.readJson<any>(item.config);
  const id = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (item.configDigest && item.configDigest !== id) throw invalid(`image config ${item.config} does not match its digest ${item.configDigest}`);
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw invalid(`invalid image config ${item.config}`);
  if (cfg.os && cfg.os !== 'linux') throw invalid(`cannot load ${cfg.os} image on linux`);
  if (cfg.rootfs?.type !== undefined && cfg.rootfs.type !== 'layers') throw invalid(`invalid image config: rootfs type ${JSON.stringify(cfg.rootfs.type)}`);
  const diffIds: unknown = cfg.rootfs?.diff_ids ?? [];
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && DIGEST_RE.test(d))) throw invalid('invalid image config: bad rootfs.diff_ids');
  if (diffIds.length !== item.layers.length) {
    throw invalid(`invalid manifest, layers length mismatch: expected ${diffIds.length}, got ${item.layers.length}`);
  }
  const chains = chainIds(diffIds as string[]);
  // Held from before the first lookup: a concurrent rmi must not collect a layer this image is about to use.
  const release = x.layers.hold(chains);
  try {
    let parent: string | null = null;
    for (let i = 0; i < chains.length; i++) {
      if (!x.layers.get(chains[i])) {
        const name = item.layers[i];
        const src = spool.layerSource(name);
        let rec: LayerRecord;
        if ('prepared' in src) {
          // Unpacked while the archive streamed in; checked against the config only now.
          if (src.prepared.diffId !== diffIds[i]) {
            throw invalid(`invalid diffID for layer: expected ${JSON.stringify(diffIds[i])}, got ${JSON.stringify(src.prepared.diffId)}`);
          }
          rec = await x.layers.commit(parent, src.prepared);
          spool.committed(name, rec);
        } else if ('committed' in src) {
          // The same layer tar again, on another parent: its bytes come back from the layer it became.
          const again = x.layers.tarOf(src.committed);
          if (!again) throw invalid(`layer ${name} of the archive cannot be read again`);
          rec = await x.layers.create(parent, again, diffIds[i] as string);
        } else {
          rec = await x.layers.create(parent, decompressed(src.bytes), diffIds[i] as string);
        }
        if (!quiet) out(loadingLayer(rec));
      }
      parent = chains[i];
    }
    const top = chains.length ? chains[chains.length - 1] : null;
    const size = x.layers.stack(top).reduce((n, l) => n + l.size, 0);
    const parentRow = item.parent ? x.store.get(item.parent) : undefined;
    crashPoint('load.before-image-row');
    const inserted = x.store.insert({
      id, config: bytes.toString('utf8'), topChain: top, size,
      created: typeof cfg.created === 'string' ? cfg.created : '',
      parent: parentRow && !parentRow.removed ? parentRow.id : '',
    });
    x.forget(id);
    const img = x.find(id);
    if (inserted) x.log.info({ image: id, layers: chains.length }, 'image loaded');
    for (const t of tags) {
      const prev = x.setTag(img, t, false);
      if (prev) out({ stream: `The image ${familiarString(t)} already exists, renaming the old one with ID ${prev} to empty string\n` });
    }
    x.emit(img, 'load', id);
    if (tags.length === 0) out({ stream: `Loaded image ID: ${id}\n` });
    for (const t of tags) out({ stream: `Loaded image: ${familiarString(t)}\n` });
  } finally {
    release();
  }
}

/** A RepoTag from an archive: a name with a tag (Docker refuses anything else). */
function parseLoadTag(s: string): NamedRef {
  let r: NamedRef;
  try {
    r = parseNormalizedNamed(s);
  } catch {
    throw invalid(`invalid tag ${JSON.stringify(s)}`);
  }
  if (r.digest || r.tag === undefined) throw invalid(`invalid tag ${JSON.stringify(s)}`);
  return r;
}

/** The line the CLI draws as a finished progress bar when its output is a terminal (quiet=0). */
function loadingLayer(l: LayerRecord): StreamMessage {
  const human = humanSize(l.size);
  return {
    status: 'Loading layer',
    progressDetail: { current: l.size, total: l.size },
    progress: `[${'='.repeat(49)}>]  ${human}/${human}`,
    id: l.diffId.slice('sha256:'.length, 'sha256:'.length + 12),
  };
}

