// The image service: images (config blobs, by id), their references (name:tag and name@digest), and the
// layers under them (through the layer store). Routes and the container service call it; it owns the
// images, image_refs and layers tables and the overlay2 layer directories, and nothing else.
//
// An image exists for users when it has a visible row. Removing an image that a stopped container still
// uses (rmi -f) hides the row instead of deleting it, because the container needs the image's layers for as
// long as it exists (Docker keeps them through the container's read-write layer); the row goes when the
// last such container is gone (releaseImage, or the sweep at start-up and at each removal).
/* eslint-disable @typescript-eslint/no-explicit-any */
import { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { DB } from '../state/db';
import { invalid, notFound } from '../errors/errors';
import type { Platform } from '../distribution/platform';
import { nowNs, rfc3339Nano } from '../lib/time';
import { layerFs, type LayerFs } from '../runtime/layerfs';
import { LayerStore, type LayerRecord } from '../storage/layers/store';
import { ImageStore, type ImageRow, type RefRow } from './store';
import {
  parseAnyReference, parseNormalizedNamed, parseStored, tagNameOnly, withTag, fullString, familiarString, familiarName,
  familiarMatch, type NamedRef,
} from './reference';
import { inspectView, summaryView, historyView, imageConfigOf, unixSeconds, unixNanos } from './views';
import { matchLabels, parseUntil, danglingFilter } from './filters';
import { loadArchive } from './load';
import { removeImage, pruneImages } from './remove';
import type { Writable } from 'node:stream';
import { planSave, writeSave, type SavePlan } from './save';
import { importImage, writeImage, type ImportOptions } from './import';
import type { DeleteItem, ImageHooks, ImageInternals, ImageRecord, StreamMessage } from './model';
import { crashPoint } from '../lib/crash';

export type { DeleteItem, ImageHooks, ImageRecord, StreamMessage };

export interface ListOptions {
  all: boolean;
  filters: Map<string, string[]>;
  apiVersion: string;
}

const LIST_FILTERS = ['dangling', 'label', 'before', 'since', 'reference', 'until'];

export class ImageService {
  readonly layers: LayerStore;
  private readonly store: ImageStore;
  private readonly configs = new Map<string, any>();
  private readonly tmpRoot: string;
  /** What load.ts and remove.ts use; built once. */
  private readonly x: ImageInternals;

  constructor(db: DB, readonly dataRoot: string, private readonly log: Logger, private readonly hooks: ImageHooks, fs: LayerFs = layerFs) {
    this.store = new ImageStore(db);
    this.layers = new LayerStore(db, dataRoot, log, fs);
    this.tmpRoot = path.join(dataRoot, 'image', 'tmp');
    this.x = {
      store: this.store,
      layers: this.layers,
      hooks,
      log,
      tmpRoot: this.tmpRoot,
      find: (ref) => this.find(ref),
      record: (row) => this.record(row),
      refs: (id) => this.refs(id),
      labels: (img) => this.labels(img),
      emit: (img, action, name) => this.emit(img, action, name),
      forget: (id) => this.configs.delete(id),
      setTag: (img, named, touch) => this.setTag(img, named, touch),
      collectLayers: () => this.collectLayers(),
      sweepHidden: () => this.sweepHidden(),
    };
  }

  // ---- lookups -------------------------------------------------------------------------------------

  private record(row: ImageRow): ImageRecord {
    let config = this.configs.get(row.id);
    if (config === undefined) {
      config = JSON.parse(row.config);
      this.configs.set(row.id, config);
    }
    return { id: row.id, config, size: row.size, created: row.created, topChain: row.top_chain, parent: row.parent, lastTagTime: row.last_tag_time };
  }

  /**
   * Finds an image the way Docker does: a full id (`sha256:<64hex>` or 64 hex), then a reference (tag or
   * digest, normalised, `:latest` added), then a unique id prefix. `hidden` admits images removed while a
   * container still uses them, for full ids only (the container service asks for its image by id).
   */
  private resolve(ref: string, hidden: boolean): ImageRecord {
    if (typeof ref !== 'string' || ref === '') throw invalid('invalid reference format');
    const any = parseAnyReference(ref);
    if (any.kind === 'id') {
      const row = this.store.get(any.id);
      if (row && (hidden || !row.removed)) return this.record(row);
      throw notFound(`No such image: ${any.id}`);
    }
    const named = tagNameOnly(any.ref);
    const key = named.digest ? fullString({ domain: named.domain, path: named.path, digest: named.digest }) : fullString(named);
    const target = this.store.refTarget(key);
    if (target) {
      const row = this.store.get(target);
      if (row && !row.removed) return this.record(row);
    }
    const m = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(ref);
    if (m) {
      // Docker reads an ambiguous prefix as no match, too.
      const ids = this.store.idsWithPrefix(m[1]);
      if (ids.length === 1) return this.record(this.store.get(ids[0])!);
    }
    throw notFound(`No such image: ${familiarString(named)}`);
  }

  /** Lookup for the container service: by full id, reference, or unique id prefix. Unknown → 404
   *  `No such image: <ref>` (with `:latest` added to a bare name, as Docker says it). */
  get(ref: string): ImageRecord {
    return this.resolve(ref, true);
  }

  /** Lookup for users (routes): images removed with rmi are not found, even by id. */
  find(ref: string): ImageRecord {
    return this.resolve(ref, false);
  }

  count(): number {
    return this.store.count();
  }

  /** The image's layer stack, topmost first. */
  private stack(img: ImageRecord): LayerRecord[] {
    return this.layers.stack(img.topChain);
  }

  /** Absolute overlay `diff` directories of the image's layers, topmost first. */
  lowerDirs(img: ImageRecord): string[] {
    return this.stack(img).map((l) => this.layers.diffDir(l));
  }

  private refs(imageId: string): RefRow[] {
    return this.store.refsOf(imageId);
  }

  /** `busybox:latest`, … sorted as Docker sorts them (by the familiar string). */
  familiarTags(imageId: string): string[] {
    return this.refs(imageId).filter((r) => r.kind === 'tag').map((r) => familiarString(parseStored(r.ref))).sort();
  }

  familiarDigests(imageId: string): string[] {
    return this.refs(imageId).filter((r) => r.kind === 'digest').map((r) => familiarString(parseStored(r.ref))).sort();
  }

  private labels(img: ImageRecord): Record<string, string> {
    const l = imageConfigOf(img.config).Labels;
    return l && typeof l === 'object' ? { ...l } : {};
  }

  private emit(img: ImageRecord, action: string, name: string): void {
    this.hooks.emit('image', action, img.id, { ...this.labels(img), name });
  }

  // ---- views ---------------------------------------------------------------------------------------

  inspect(ref: string, apiVersion: string): Record<string, unknown> {
    const img = this.find(ref);
    return inspectView({
      id: img.id, config: img.config, size: img.size, parent: img.parent, lastTagTime: img.lastTagTime,
      repoTags: this.familiarTags(img.id), repoDigests: this.familiarDigests(img.id), layerDirs: this.lowerDirs(img),
    }, apiVersion);
  }

  history(ref: string): Record<string, unknown>[] {
    const img = this.find(ref);
    const sizes = this.stack(img).reverse().map((l) => l.size);
    const ancestry: { id: string; tags: string[] }[] = [];
    for (let cur: ImageRecord | undefined = img; cur && ancestry.length < 10000; ) {
      ancestry.push({ id: cur.id, tags: this.familiarTags(cur.id) });
      const p: ImageRow | undefined = cur.parent ? this.store.get(cur.parent) : undefined;
      cur = p && !p.removed ? this.record(p) : undefined;
    }
    return historyView(img.config, sizes, ancestry);
  }

  list(o: ListOptions): Record<string, unknown>[] {
    const f = o.filters;
    for (const k of f.keys()) if (!LIST_FILTERS.includes(k)) throw invalid(`invalid filter '${k}'`);
    const danglingOnly = danglingFilter(f.get('dangling'), false) ?? false;
    const before = f.get('before')?.map((r) => this.find(r).created);
    const since = f.get('since')?.map((r) => this.find(r).created);
    const until = f.get('until')?.map((v) => parseUntil(v));
    const labels = f.get('label') ?? [];
    const patterns = f.get('reference') ?? [];

    const refs = this.store.allRefs();
    const rows = this.store.all();
    const hasChildren = new Set(rows.map((r) => r.parent).filter(Boolean));
    const out: { created: number; id: string; view: Record<string, unknown> }[] = [];
    for (const row of rows) {
      const img = this.record(row);
      if (danglingOnly && hasChildren.has(img.id)) continue;
      const created = unixSeconds(img.config?.created);
      const createdNs = unixNanos(img.config?.created);
      if (before && !before.every((b) => createdNs < unixNanos(b))) continue;
      if (since && !since.every((s) => createdNs > unixNanos(s))) continue;
      if (until && !until.every((u) => created <= u)) continue;
      if (labels.length && !matchLabels(this.labels(img), labels)) continue;
      const tags: string[] = [];
      const digests: string[] = [];
      for (const r of refs.get(img.id) ?? []) {
        const named = parseStored(r.ref);
        if (patterns.length && !patterns.some((p) => familiarMatch(p, named))) continue;
        (r.kind === 'tag' ? tags : digests).push(familiarString(named));
      }
      if (tags.length === 0 && digests.length === 0) {
        if (!(o.all || !hasChildren.has(img.id))) continue; // an intermediate image: only with -a
        if (f.has('dangling') && !danglingOnly) continue;
        if (patterns.length) continue;
      } else if (danglingOnly && tags.length > 0) continue;
      tags.sort();
      digests.sort();
      out.push({
        created, id: img.id,
        view: summaryView({ id: img.id, config: img.config, size: img.size, parent: img.parent, repoTags: tags, repoDigests: digests }, o.apiVersion),
      });
    }
    out.sort((a, b) => b.created - a.created || (a.id < b.id ? -1 : 1));
    return out.map((x) => x.view);
  }

  // ---- tag -----------------------------------------------------------------------------------------

  /** POST /images/{name}/tag?repo=&tag=: `repo` may carry the tag itself when `tag` is empty. */
  tag(source: string, repo: string, tag: string): void {
    if (!repo) throw invalid('repository name must have at least one component');
    let named = parseNormalizedNamed(repo);
    if (named.digest) throw invalid('cannot tag with a digest');
    named = tag ? withTag(named, tag) : tagNameOnly(named);
    if (familiarName(named) === 'sha256') throw invalid('refusing to create an ambiguous tag using digest algorithm as name');
    const img = this.find(source);
    this.setTag(img, named, true);
  }

  /** Points a tag at an image; returns the id the tag pointed at before, if another. `touch` sets the
   *  image's LastTagTime (docker tag does, docker load does not). */
  private setTag(img: ImageRecord, named: NamedRef, touch: boolean): string | undefined {
    const now = rfc3339Nano(nowNs());
    const prev = this.store.transaction(() => {
      const p = this.store.setRef(fullString(named), img.id, 'tag');
      if (touch) this.store.setLastTagTime(img.id, now);
      return p;
    });
    this.emit(img, 'tag', familiarString(named));
    return prev;
  }

  // ---- load, remove ------------------------------------------------------------------------------

  /** docker load (see load.ts): `out` receives the JSON stream messages; an error stops the load and leaves
   *  no part of the image that failed. */
  load(body: AsyncIterable<Buffer>, quiet: boolean, out: (m: StreamMessage) => void, platform?: Platform): Promise<void> {
    return loadArchive(this.x, body, quiet, out, platform);
  }

  /** docker rmi (see remove.ts for Docker's rules). */
  remove(refOrId: string, force: boolean, prune: boolean): DeleteItem[] {
    return removeImage(this.x, refOrId, force, prune);
  }

  /** docker image prune. */
  prune(filters: Map<string, string[]>): { ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number } {
    return pruneImages(this.x, filters);
  }

  /** The container service calls this after removing a container, so that an image `rmi -f` removed while
   *  the container existed (kept hidden) goes now, with its layers. A visible image is not touched. */
  releaseImage(imageId: string): void {
    const row = this.store.get(imageId);
    if (!row || !row.removed) return;
    if (this.store.delete(imageId)) {
      this.configs.delete(imageId);
      this.collectLayers();
    }
  }

  /** Deletes layers that no image row (hidden ones included) and no running load needs. */
  private collectLayers(): LayerRecord[] {
    return this.layers.gc(this.store.allTops());
  }

  /** Drops hidden image rows whose containers are gone; returns how many went. */
  private sweepHidden(): number {
    let n = 0;
    for (const row of this.store.hidden()) {
      if (this.store.delete(row.id)) {
        this.configs.delete(row.id);
        n++;
      }
    }
    if (n) this.collectLayers();
    return n;
  }

  // ---- distribution (daemon/distribution: pull and push) ------------------------------------------

  /** The visible image with this id, if any. */
  byId(id: string): ImageRecord | undefined {
    const row = this.store.get(id);
    return row && !row.removed ? this.record(row) : undefined;
  }

  /** The config blob of an image exactly as stored (its sha256 is the id). */
  configBytes(id: string): string {
    const row = this.store.get(id);
    if (!row) throw notFound(`No such image: ${id}`);
    return row.config;
  }

  /** The image a normalised reference (name:tag or name@digest) points at, if any. */
  refTarget(named: NamedRef): string | undefined {
    return this.store.refTarget(fullString(named));
  }

  /** Writes a pulled image whose layers are all committed (the caller holds them); returns it. */
  addPulledImage(configBytes: Buffer, id: string, topChain: string | null): ImageRecord {
    const cfg = JSON.parse(configBytes.toString('utf8'));
    const size = this.layers.stack(topChain).reduce((n, l) => n + l.size, 0);
    const inserted = this.store.insert({ id, config: configBytes.toString('utf8'), topChain, size, created: typeof cfg?.created === 'string' ? cfg.created : '', parent: '' });
    this.configs.delete(id);
    if (inserted) this.log.info({ image: id }, 'image pulled');
    return this.find(id);
  }

  /** Points a tag or a digest reference (RepoDigests) at an image; returns the previous target if another. */
  setReference(img: ImageRecord, named: NamedRef): string | undefined {
    if (named.digest) {
      const key = fullString({ domain: named.domain, path: named.path, digest: named.digest });
      return this.store.transaction(() => this.store.setRef(key, img.id, 'digest'));
    }
    return this.setTag(img, named, false);
  }

  /** An image event (pull, push) with the image's labels and `name`. */
  emitImageEvent(img: ImageRecord, action: string, name: string): void {
    this.emit(img, action, name);
  }

  /** Visible image ids referred to by tags of the repository `name` (domain/path), with the tags. */
  tagsOfRepository(domain: string, repoPath: string): { tag: string; id: string }[] {
    const prefix = `${domain}/${repoPath}:`;
    const out: { tag: string; id: string }[] = [];
    for (const [id, refs] of this.store.allRefs()) {
      for (const r of refs) if (r.kind === 'tag' && r.ref.startsWith(prefix) && !r.ref.slice(prefix.length).includes('/')) out.push({ tag: r.ref.slice(prefix.length), id });
    }
    return out.sort((a, b) => (a.tag < b.tag ? -1 : 1));
  }

  /** Deletes layers no image and no running operation needs (after a failed pull). */
  collectUnused(): void {
    this.collectLayers();
  }

  // ---- save, import, commit, disk usage (save.ts, import.ts) ----------------------------------------

  /** docker save, step 1: resolves the names (404 `reference does not exist` before anything is sent). */
  planSave(names: string[]): SavePlan {
    return planSave(this.x, names);
  }

  /** docker save, step 2: streams the archive into `out`. */
  writeSave(plan: SavePlan, out: Writable): Promise<void> {
    return writeSave(this.x, plan, out);
  }

  /** docker import: returns the new image id. */
  importTar(body: AsyncIterable<Buffer>, o: ImportOptions): Promise<string> {
    return importImage(this.x, body, o);
  }

  /** docker commit: the container's changes as a tar become a layer over the image's; `build` gets the
   *  new layer's diff id and returns the new image config. */
  async commitImage(base: ImageRecord, tar: AsyncIterable<Buffer>, build: (diffId: string) => any, tag: NamedRef | undefined): Promise<ImageRecord> {
    const releaseBase = this.layers.hold(base.topChain ? [base.topChain] : []);
    try {
      const layer = await this.layers.create(base.topChain, tar);
      const release = this.layers.hold([layer.chainId]);
      try {
        const parentRow = this.store.get(base.id);
        crashPoint('commit.before-image-row');
        return writeImage(this.x, build(layer.diffId), layer.chainId, parentRow && !parentRow.removed ? base.id : '', tag, 'commit');
      } finally {
        release();
      }
    } finally {
      releaseBase();
      this.collectLayers();
    }
  }

  /** docker build: the image of one step over `base` (undefined: FROM scratch), with a new layer made from
   *  `tar`, or none for a step that changed no file; `build` gets the new layer's diff id, if any, and
   *  returns the image config. The step's image has `base` as its parent (the build cache looks for it). */
  /** `tar`: the step's new layer; or a layer already in the store on top of `base`'s (a cache_from
   *  source's), by its chain and diff ids; or none. */
  async writeBuildStep(base: ImageRecord | undefined, tar: AsyncIterable<Buffer> | { chainId: string; diffId: string } | undefined, build: (diffId?: string) => any): Promise<ImageRecord> {
    const top = base?.topChain ?? null;
    const releaseBase = this.layers.hold(top ? [top] : []);
    let release = () => {};
    try {
      let chain = top;
      let diffId: string | undefined;
      if (tar && 'chainId' in tar) {
        if (!this.layers.get(tar.chainId)) throw new Error(`layer ${tar.chainId} is not in the store`);
        release = this.layers.hold([tar.chainId]);
        chain = tar.chainId;
        diffId = tar.diffId;
        tar = undefined;
      } else if (tar) {
        const layer = await this.layers.create(top, tar);
        release = this.layers.hold([layer.chainId]);
        chain = layer.chainId;
        diffId = layer.diffId;
      }
      // Written as writeImage does, without its event: Docker emits none for build steps (only the tags).
      const config = build(diffId);
      const text = JSON.stringify(config);
      const id = `sha256:${createHash('sha256').update(text).digest('hex')}`;
      const size = this.layers.stack(chain).reduce((n, l) => n + l.size, 0);
      crashPoint('build-step.before-image-row');
      this.store.insert({ id, config: text, topChain: chain, size, created: config.created ?? '', parent: base?.id ?? '' });
      this.configs.delete(id);
      crashPoint('build-step.after-image-row');
      return this.find(id);
    } finally {
      release();
      releaseBase();
      if (tar) this.collectLayers();
    }
  }

  /** The layers of an image, bottom first (chain id and size), for disk-usage accounting. */
  layerChain(img: ImageRecord): { chainId: string; size: number }[] {
    return this.stack(img).reverse().map((l) => ({ chainId: l.chainId, size: l.size }));
  }

  /** Per image, the size of its layers that another image uses too (GET /images/json?shared-size=1 and
   *  docker system df; cri-dockerd's image file system usage subtracts it). */
  sharedSizes(): Map<string, number> {
    const images = this.allImages();
    const chains = new Map(images.map((img) => [img.id, this.layerChain(img)]));
    const users = new Map<string, number>();
    for (const ls of chains.values()) for (const l of ls) users.set(l.chainId, (users.get(l.chainId) ?? 0) + 1);
    return new Map([...chains].map(([id, ls]) => [id, ls.filter((l) => (users.get(l.chainId) ?? 0) > 1).reduce((n, l) => n + l.size, 0)]));
  }

  /** Every visible image, for docker system df. */
  allImages(): ImageRecord[] {
    return this.store.all().map((r) => this.record(r));
  }

  /** The GET /images/json summary of one image (docker system df lists images in that shape). */
  summary(img: ImageRecord, apiVersion: string): Record<string, unknown> {
    return summaryView({ id: img.id, config: img.config, size: img.size, parent: img.parent, repoTags: this.familiarTags(img.id), repoDigests: this.familiarDigests(img.id) }, apiVersion);
  }

  // ---- start-up ------------------------------------------------------------------------------------

  /** Called once at daemon start, before anything else uses the store: removes spooled archives, finishes
   *  or undoes interrupted layer work, drops hidden images nobody uses, and layers no image uses — except
   *  those committed in the last day, which an interrupted pull or load made and its retry reuses (the
   *  next rmi or prune collects them). */
  async cleanup(): Promise<void> {
    await fsp.rm(this.tmpRoot, { recursive: true, force: true });
    await this.layers.cleanup();
    this.sweepHidden();
    const removed = this.layers.gc(this.store.allTops(), 24 * 3600 * 1000);
    if (removed.length) this.log.info({ layers: removed.length }, 'removed layers no image uses');
  }
}

