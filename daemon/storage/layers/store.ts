// The layer store: read-only image layers, unpacked once each, keyed by chain id.
//
// Terms (OCI image spec): a layer's *diff id* is the sha256 of its uncompressed tar; its *chain id* names the
// layer together with everything under it: chain(L1) = diff(L1), chain(Ln) = sha256(chain(Ln-1) + " " +
// diff(Ln)). The same tar on another parent is another layer. A layer's files live in
// <dataRoot>/overlay2/<cacheId>/diff, where the cache id is random, so the directory name says nothing about
// the content; the `layers` table maps chain → cache id and is the truth.
//
// Beside `diff`, a layer keeps what it takes to give back exactly the tar whose sha256 is the diff id (for
// push and save) without a second copy of its contents: tar-split metadata (tarsplit.ts; headers, padding
// and where each file's bytes are in diff/), recorded while the tar is unpacked. Layers made by older
// versions of berth may instead keep `layer.tar` (the whole tar) or `blob` + `blob.json` (the compressed blob
// a pull downloaded); those are still read.
//
// Lifecycle: prepare() unpacks into overlay2/tmp-<cacheId> and checks the diff id; commit() syncs the file
// system (syncfs: the files and their directory entries are on disk), writes the row, then renames the
// directory into place (create() does both). Layers of one pull unpack in parallel and are
// committed in order, each once its parent is. gc() deletes rows of layers no image needs and moves their directories to
// overlay2/del-<cacheId> inside the same transaction, then removes them. cleanup() at start finishes or undoes
// whatever a kill -9 interrupted: a tmp- directory with a committed row is rolled forward, a del- directory
// whose row survived is put back, anything else with those prefixes is removed. Directories without a prefix
// that are not layers (the containers' read-write layers live beside them) are never touched.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, existsSync, renameSync, readFileSync, createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { DB } from '../../state/db';
import type { LayerFs } from '../../runtime/layerfs';
import { invalid } from '../../errors/errors';
import { applyTar } from './apply';
import { decompressed } from './decompress';
import { assembleTar, SplitRecorder, teeInto, SPLIT_FILE, SPLIT_META, SPLIT_SIDE } from './tarsplit';
import { SplitPaths } from './apply';
import { syncFs } from '../../lib/durable';
import { crashPoint } from '../../lib/crash';

async function* fileChunks(file: string): AsyncGenerator<Buffer> {
  const rs = createReadStream(file, { highWaterMark: 1024 * 1024 });
  try {
    for await (const c of rs as AsyncIterable<Buffer>) yield c;
  } finally {
    rs.destroy();
  }
}

export interface LayerRecord {
  chainId: string;
  diffId: string;
  parent: string | null;
  cacheId: string;
  size: number;
  createdAt: string;
}

interface Row {
  chain_id: string;
  diff_id: string;
  parent: string | null;
  cache_id: string;
  size: number;
  created_at: string;
}

const toRecord = (r: Row): LayerRecord => ({ chainId: r.chain_id, diffId: r.diff_id, parent: r.parent, cacheId: r.cache_id, size: r.size, createdAt: r.created_at });

export function chainIdOf(parent: string | null, diffId: string): string {
  if (!parent) return diffId;
  return `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}`;
}

/** Chain ids of a whole stack of diff ids, bottom first. */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  let parent: string | null = null;
  for (const d of diffIds) {
    parent = chainIdOf(parent, d);
    out.push(parent);
  }
  return out;
}

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** A compressed blob a layer was made from (pull). */
export interface LayerBlob {
  digest: string;
  mediaType: string;
  size: number;
}

/** A layer unpacked into its temporary directory and checked, not yet committed (prepare()). */
export interface PreparedLayer {
  cacheId: string;
  diffId: string;
  size: number;
}

/** The stream checked against the diff id as it is read: throws at its end when the bytes differ. */
async function* verified(src: AsyncIterable<Buffer>, diffId: string): AsyncGenerator<Buffer> {
  const h = createHash('sha256');
  for await (const c of src) {
    h.update(c);
    yield c;
  }
  const got = `sha256:${h.digest('hex')}`;
  if (got !== diffId) {
    throw new Error(`could not verify layer data for ${diffId} (the files of the layer give ${got}): its files were changed on disk; pull or load the image again`);
  }
}

export class LayerStore {
  readonly root: string;
  /** Layers a running operation builds on (a load whose image row is not written yet): gc() keeps them. */
  private readonly holds = new Map<string, number>();
  /** Unpacks in progress, by chain id, so that two loads of one layer unpack it once. */
  private readonly inflight = new Map<string, Promise<LayerRecord>>();

  constructor(private readonly db: DB, dataRoot: string, private readonly log: Logger, private readonly fs: LayerFs) {
    this.root = path.join(dataRoot, 'overlay2');
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
  }

  get(chainId: string): LayerRecord | undefined {
    const r = this.db.prepare('SELECT * FROM layers WHERE chain_id = ?').get(chainId) as Row | undefined;
    return r && toRecord(r);
  }

  all(): LayerRecord[] {
    return (this.db.prepare('SELECT * FROM layers').all() as Row[]).map(toRecord);
  }

  dir(l: LayerRecord): string {
    return path.join(this.root, l.cacheId);
  }

  diffDir(l: LayerRecord): string {
    return path.join(this.root, l.cacheId, 'diff');
  }

  /** The stack under and including `top`, topmost first. */
  stack(top: string | null): LayerRecord[] {
    const out: LayerRecord[] = [];
    for (let c = top; c; ) {
      const l = this.get(c);
      if (!l) throw new Error(`layer ${c} is missing from the layer store`);
      out.push(l);
      c = l.parent;
    }
    return out;
  }

  /** The compressed blob a pulled layer came from, if it has one. */
  blobOf(l: LayerRecord): (LayerBlob & { file: string }) | undefined {
    try {
      const meta = JSON.parse(readFileSync(path.join(this.dir(l), 'blob.json'), 'utf8')) as LayerBlob;
      return { ...meta, file: path.join(this.dir(l), 'blob') };
    } catch {
      return undefined;
    }
  }

  /** The layer's exact uncompressed tar (its sha256 is the diff id, checked as it streams: a layer whose
   *  files were changed throws at the end), from its tar-split metadata (or, for layers of older berths,
   *  layer.tar or the kept blob); undefined for a layer that has none of them. */
  tarOf(l: LayerRecord): AsyncIterable<Buffer> | undefined {
    if (existsSync(path.join(this.dir(l), SPLIT_FILE))) return verified(assembleTar(this.dir(l)), l.diffId);
    const raw = path.join(this.dir(l), 'layer.tar');
    if (existsSync(raw)) return fileChunks(raw);
    const b = this.blobOf(l);
    if (b && existsSync(b.file)) return decompressed(fileChunks(b.file));
    return undefined;
  }

  /** The size of tarOf(l) when it is known without reading it. */
  async tarSize(l: LayerRecord): Promise<number | undefined> {
    try {
      const meta = JSON.parse(await fsp.readFile(path.join(this.dir(l), SPLIT_META), 'utf8')) as { size?: number };
      if (typeof meta.size === 'number') return meta.size;
    } catch { /* not a tar-split layer */ }
    const st = await fsp.stat(path.join(this.dir(l), 'layer.tar')).catch(() => undefined);
    return st?.size;
  }

  /** Keeps these layers (and so everything under them) through gc() until the returned release is called. */
  hold(chainIds: Iterable<string>): () => void {
    const ids = [...chainIds];
    for (const c of ids) this.holds.set(c, (this.holds.get(c) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const c of ids) {
        const n = (this.holds.get(c) ?? 1) - 1;
        if (n <= 0) this.holds.delete(c);
        else this.holds.set(c, n);
      }
    };
  }

  /**
   * Unpacks `tar` (uncompressed tar bytes) as a layer on top of `parent`. With `expectedDiffId` the content
   * must hash to it, and an existing layer is returned without reading the stream (pass a lazy iterable).
   * The new layer is committed (row, then directory in place) only when the whole tar was good; on any error
   * nothing of it remains. Until an image row refers to it, the caller keeps it with hold(), or gc() may
   * collect it.
   */
  async create(parent: string | null, tar: AsyncIterable<Buffer>, expectedDiffId?: string): Promise<LayerRecord> {
    if (parent && !this.get(parent)) throw new Error(`parent layer ${parent} does not exist`);
    if (expectedDiffId !== undefined) {
      if (!DIGEST_RE.test(expectedDiffId)) throw invalid(`invalid diff id ${JSON.stringify(expectedDiffId)}`);
      const chain = chainIdOf(parent, expectedDiffId);
      const have = this.get(chain);
      if (have) return have;
      const running = this.inflight.get(chain);
      if (running) {
        // Another load is unpacking the same layer; if its archive turns out bad, ours may still be good.
        try {
          return await running;
        } catch {
          const now = this.get(chain);
          if (now) return now;
        }
      }
      const p = this.unpack(parent, tar, expectedDiffId);
      this.inflight.set(chain, p);
      try {
        return await p;
      } finally {
        if (this.inflight.get(chain) === p) this.inflight.delete(chain);
      }
    }
    return this.unpack(parent, tar, undefined);
  }

  private async unpack(parent: string | null, tar: AsyncIterable<Buffer>, expected: string | undefined): Promise<LayerRecord> {
    // The parent must not be collected while this layer is being unpacked onto it.
    const release = this.hold(parent ? [parent] : []);
    try {
      const p = await this.prepare(tar, expected);
      return await this.commit(parent, p);
    } finally {
      release();
    }
  }

  /**
   * Unpacks `tar` (uncompressed tar bytes) into a new temporary layer directory, recording its tar-split
   * metadata, and checks it against `expected` (a diff id) when given. Nothing is committed: pass the result
   * to commit() or discard(). On error nothing of it remains. A crash leaves only a tmp- directory, which
   * cleanup() removes.
   */
  async prepare(tar: AsyncIterable<Buffer>, expected?: string): Promise<PreparedLayer> {
    if (expected !== undefined && !DIGEST_RE.test(expected)) throw invalid(`invalid diff id ${JSON.stringify(expected)}`);
    const cacheId = randomBytes(32).toString('hex');
    const tmp = path.join(this.root, `tmp-${cacheId}`);
    await fsp.mkdir(path.join(tmp, 'diff'), { recursive: true, mode: 0o755 });
    const rec = new SplitRecorder(path.join(tmp, SPLIT_FILE));
    try {
      const split = new SplitPaths(path.join(tmp, SPLIT_SIDE));
      const res = await applyTar(teeInto(tar, rec), path.join(tmp, 'diff'), { fs: this.fs, warn: (m) => this.log.warn(m), split });
      if (expected !== undefined && res.diffId !== expected) {
        throw invalid(`invalid diffID for layer: expected ${JSON.stringify(expected)}, got ${JSON.stringify(res.diffId)}`);
      }
      await rec.close();
      const missing = rec.refs.filter((i) => !split.paths.has(i) && !split.side.has(i));
      if (missing.length) {
        // Cannot happen with the unpacker's bookkeeping; should it, the layer still works but cannot be
        // saved or pushed (tarOf says so), which is better than handing out wrong bytes.
        this.log.warn({ diffId: res.diffId, missing: missing.length }, 'tar-split metadata incomplete; the layer cannot be saved or pushed');
        await fsp.rm(path.join(tmp, SPLIT_FILE), { force: true });
      } else {
        await fsp.writeFile(path.join(tmp, SPLIT_META), JSON.stringify({
          size: rec.total, paths: Object.fromEntries(split.paths), side: Object.fromEntries(split.side),
        }), { mode: 0o600 });
      }
      return { cacheId, diffId: res.diffId, size: res.size };
    } catch (e) {
      await rec.abort();
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** Removes a prepared layer that will not be committed. */
  async discard(p: PreparedLayer): Promise<void> {
    await fsp.rm(path.join(this.root, `tmp-${p.cacheId}`), { recursive: true, force: true }).catch(() => undefined);
  }

  /** Commits a prepared layer on top of `parent` (which must exist): the row, then the directory in place.
   *  When that chain exists already, the prepared copy is dropped and the existing layer returned. */
  async commit(parent: string | null, p: PreparedLayer): Promise<LayerRecord> {
    const tmp = path.join(this.root, `tmp-${p.cacheId}`);
    try {
      if (parent && !this.get(parent)) throw new Error(`parent layer ${parent} does not exist`);
      const chain = chainIdOf(parent, p.diffId);
      const rec: LayerRecord = { chainId: chain, diffId: p.diffId, parent, cacheId: p.cacheId, size: p.size, createdAt: new Date().toISOString() };
      // The files and directory entries of the layer reach the disk before the row that names it: after a
      // power cut a committed layer is whole, and an uncommitted tmp- directory is removed by cleanup().
      await syncFs(tmp);
      crashPoint('layer.before-row');
      const inserted = this.db.prepare('INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, cache_id, size, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(rec.chainId, rec.diffId, rec.parent, rec.cacheId, rec.size, rec.createdAt).changes === 1;
      if (!inserted) {
        // Someone else committed the same chain meanwhile; theirs wins.
        await fsp.rm(tmp, { recursive: true, force: true });
        return this.get(chain)!;
      }
      // The row is committed; a crash before this rename is rolled forward by cleanup().
      renameSync(tmp, path.join(this.root, p.cacheId));
      crashPoint('layer.after-commit');
      this.log.debug({ chain, diffId: p.diffId, cacheId: p.cacheId, size: p.size }, 'layer committed');
      return rec;
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Removes every layer that is neither under one of `tops` (the top layers of the images that exist) nor
   * held. Rows go in one transaction, children before parents; directories are moved aside in the same
   * transaction and removed afterwards. Returns the removed layers, topmost first. With `graceMs`, layers
   * committed less than that long ago are kept too (at start-up: the finished layers of a pull that a crash
   * interrupted, which the same pull then reuses).
   */
  gc(tops: Iterable<string | null>, graceMs = 0): LayerRecord[] {
    const all = this.all();
    const byChain = new Map(all.map((l) => [l.chainId, l]));
    const keep = new Set<string>();
    const mark = (c: string | null) => {
      for (let x = c; x && !keep.has(x); x = byChain.get(x)?.parent ?? null) keep.add(x);
    };
    for (const t of tops) mark(t);
    for (const h of this.holds.keys()) mark(h);
    if (graceMs > 0) {
      const since = Date.now() - graceMs;
      for (const l of all) if (Date.parse(l.createdAt) >= since) mark(l.chainId);
    }
    const victims = all.filter((l) => !keep.has(l.chainId));
    if (victims.length === 0) return [];
    const depth = (l: LayerRecord) => {
      let d = 0;
      for (let x = l.parent; x; x = byChain.get(x)?.parent ?? null) d++;
      return d;
    };
    victims.sort((a, b) => depth(b) - depth(a));
    const moved: string[] = [];
    const del = this.db.prepare('DELETE FROM layers WHERE chain_id = ?');
    try {
      this.db.transaction(() => {
        for (const v of victims) {
          del.run(v.chainId);
          const aside = path.join(this.root, `del-${v.cacheId}`);
          try {
            renameSync(this.dir(v), aside);
            moved.push(aside);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          }
        }
      })();
    } catch (e) {
      // The rows are back (rolled back); put their directories back too.
      for (const aside of moved) renameSync(aside, path.join(this.root, path.basename(aside).slice('del-'.length)));
      throw e;
    }
    void Promise.all(moved.map((d) => fsp.rm(d, { recursive: true, force: true })))
      .catch((e) => this.log.warn({ err: e }, 'removing layer directories failed; the next start retries'));
    for (const v of victims) this.log.debug({ chain: v.chainId, cacheId: v.cacheId }, 'layer removed');
    return victims;
  }

  /** Start-up: finishes or undoes work a crash interrupted (see the file comment). */
  async cleanup(): Promise<void> {
    const rows = this.all();
    const byCache = new Map(rows.map((l) => [l.cacheId, l]));
    for (const name of await fsp.readdir(this.root)) {
      const m = /^(tmp|del)-([a-f0-9]{64})$/.exec(name);
      if (!m && !name.startsWith('tmp-') && !name.startsWith('del-')) continue;
      const p = path.join(this.root, name);
      const cacheId = m?.[2];
      if (cacheId && byCache.has(cacheId) && !existsSync(path.join(this.root, cacheId))) {
        renameSync(p, path.join(this.root, cacheId));
        this.log.info({ cacheId, from: name }, m![1] === 'tmp' ? 'layer rolled forward after a crash' : 'layer restored after an interrupted removal');
        continue;
      }
      await fsp.rm(p, { recursive: true, force: true });
      this.log.info({ dir: name }, 'removed an unfinished layer directory');
    }
    for (const l of rows) {
      if (!existsSync(this.diffDir(l))) this.log.error({ chain: l.chainId, cacheId: l.cacheId }, 'layer directory is missing; images using it cannot run');
    }
  }
}
