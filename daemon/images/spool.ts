// A `docker load` archive, spooled to disk so that it can be read in any order without holding it in
// memory: manifest.json usually comes last, after the layers it describes.
//
// Members are written to numbered files in a private temp directory; their names are only keys of a map,
// never paths on disk, so a hostile name cannot place a file anywhere. Symlinks and hardlinks between
// members (older `docker save` writes a shared layer.tar once and links the others to it) are resolved in
// the archive's own namespace, which is rooted: `..` at the top stays at the top.
//
// A member that is itself a plain tar (a layer, in every layout docker save writes) is not spooled: with a
// layer store at hand it is unpacked at once, as it streams in, into a prepared (uncommitted) layer, so a
// load reads and writes each layer once. Whether it is a layer, and of which image, is known only from the
// index files at the end: load commits the prepared layers it needs (takePrepared) and dispose() removes the
// rest. A member that fails to unpack is remembered with its error, told only if a manifest uses it.
import { createReadStream, promises as fsp, constants as fsc } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { invalid } from '../errors/errors';
import { readTar, drain, type EntryStream } from '../storage/layers/apply';
import type { LayerStore, PreparedLayer, LayerRecord } from '../storage/layers/store';
import { readAhead, replay } from '../lib/readahead';

interface Member {
  /** The spooled bytes; absent for a member unpacked as a layer. */
  file?: string;
  size: number;
  /** The member unpacked as a layer (until committed), or why it could not be. */
  prepared?: PreparedLayer;
  error?: unknown;
  /** The layer it became once committed (a second use unpacks from that layer's own tar). */
  committed?: LayerRecord;
}

/** A tar header block: "ustar" at offset 257 (POSIX "ustar\0", GNU "ustar "). */
const isTarHeader = (b: Buffer) => b.length >= 512 && b.toString('latin1', 257, 262) === 'ustar';

/** Members below this size are always spooled (configs, manifests, tiny layers). */
const UNPACK_MIN = 64 * 1024;

const MAX_LINK_HOPS = 40;

function split(name: string): string[] {
  const out: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') out.pop();
    else out.push(p);
  }
  return out;
}

export class Spool {
  private readonly files = new Map<string, Member>();
  private readonly symlinks = new Map<string, string>();
  private readonly hardlinks = new Map<string, string>();
  /** Prepared layers not committed yet: dispose() removes them. */
  private readonly prepared = new Set<PreparedLayer>();
  private layers: LayerStore | undefined;

  private constructor(readonly dir: string) {}

  /** Reads the whole archive (uncompressed tar bytes) into a new directory under `tmpRoot`. Any error in
   *  the archive removes what was spooled and is thrown. */
  static async create(tmpRoot: string, source: AsyncIterable<Buffer>, layers?: LayerStore): Promise<Spool> {
    await fsp.mkdir(tmpRoot, { recursive: true, mode: 0o700 });
    const dir = path.join(tmpRoot, `load-${randomBytes(8).toString('hex')}`);
    await fsp.mkdir(dir, { mode: 0o700 });
    const s = new Spool(dir);
    s.layers = layers;
    let n = 0;
    try {
      await readTar(source, async (h, stream) => {
        const key = split(h.name).join('/');
        switch (h.type) {
          case 'file':
          case 'contiguous-file': {
            if (layers && (h.size ?? 0) >= UNPACK_MIN) {
              const m = await s.tryUnpack(layers, stream, dir, n++);
              s.forget(key);
              s.files.set(key, m);
              return;
            }
            const file = path.join(dir, `m${n++}`);
            const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
            let size = 0;
            try {
              for await (const chunk of stream) {
                let off = 0;
                while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
                size += chunk.length;
              }
            } finally {
              await fh.close();
            }
            s.forget(key);
            s.files.set(key, { file, size });
            return;
          }
          case 'symlink':
            await drain(stream);
            s.forget(key);
            if (h.linkname) s.symlinks.set(key, h.linkname);
            return;
          case 'link':
            await drain(stream);
            s.forget(key);
            if (h.linkname) s.hardlinks.set(key, split(h.linkname).join('/'));
            return;
          default:
            // Directories and anything else carry nothing a load needs.
            await drain(stream);
        }
      }, { hash: false });
    } catch (e) {
      await s.dispose();
      throw e;
    }
    return s;
  }

  /** Unpacks a member that starts like a tar as a prepared layer; any other member is spooled. Always
   *  reads the member to its end. */
  private async tryUnpack(layers: LayerStore, stream: EntryStream, dir: string, index: number): Promise<Member> {
    const it = stream[Symbol.asyncIterator]();
    const ahead = await readAhead(it, 512);
    let size = 0;
    // The member's bytes: what was read ahead, then the rest; giving up early (a bad layer) leaves the
    // rest to be drained here.
    const all = async function* (): AsyncGenerator<Buffer> {
      for await (const c of replay(ahead, it)) {
        size += c.length;
        yield c;
      }
    };
    if (isTarHeader(Buffer.concat(ahead.chunks))) {
      try {
        const prepared = await layers.prepare(all());
        this.prepared.add(prepared);
        return { prepared, size };
      } catch (e) {
        for (;;) {
          const r = await it.next();
          if (r.done) break;
          size += r.value.length;
        }
        return { error: e, size };
      }
    }
    const file = path.join(dir, `m${index}`);
    const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      for await (const chunk of all()) {
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
    } finally {
      await fh.close();
    }
    return { file, size };
  }

  /**
   * The layer a member holds, for load: a prepared layer (handed over once: the caller commits it), the
   * layer it already became, or the member's bytes to unpack. Throws the error that unpacking it met.
   */
  layerSource(name: string): { prepared: PreparedLayer } | { committed: LayerRecord } | { bytes: AsyncIterable<Buffer> } {
    const m = this.member(name);
    if (!m) throw invalid(`the archive has no ${JSON.stringify(name)}`);
    if (m.error !== undefined) throw m.error;
    if (m.committed) return { committed: m.committed };
    if (m.prepared) return { prepared: m.prepared };
    return { bytes: this.open(name) };
  }

  /** The prepared layer of `name` was committed as `rec` (or dropped, when rec is the existing layer). */
  committed(name: string, rec: LayerRecord): void {
    const m = this.member(name);
    if (!m?.prepared) return;
    this.prepared.delete(m.prepared);
    m.prepared = undefined;
    m.committed = rec;
  }

  private forget(key: string): void {
    this.files.delete(key);
    this.symlinks.delete(key);
    this.hardlinks.delete(key);
  }

  /** The spooled member a name leads to, following links inside the archive; undefined when none. */
  private member(name: string): Member | undefined {
    let hops = 0;
    let pending = split(name);
    let cur: string[] = [];
    while (pending.length) {
      cur.push(pending.shift()!);
      const key = cur.join('/');
      const link = this.symlinks.get(key);
      if (link !== undefined) {
        if (++hops > MAX_LINK_HOPS) throw invalid(`archive member ${JSON.stringify(name)}: too many levels of symbolic links`);
        const base = link.startsWith('/') ? [] : cur.slice(0, -1);
        pending = [...split([...base, link].join('/')), ...pending];
        cur = [];
        continue;
      }
      const hard = this.hardlinks.get(key);
      if (hard !== undefined && pending.length === 0) {
        if (++hops > MAX_LINK_HOPS) throw invalid(`archive member ${JSON.stringify(name)}: too many levels of links`);
        pending = split(hard);
        cur = [];
      }
    }
    return this.files.get(cur.join('/'));
  }

  has(name: string): boolean {
    return this.member(name) !== undefined;
  }

  /** The bytes of a small member (a manifest or an image config); refuses members above `limit`. */
  async read(name: string, limit = 32 * 1024 * 1024): Promise<Buffer> {
    const m = this.member(name);
    if (!m) throw invalid(`the archive has no ${JSON.stringify(name)}`);
    if (!m.file) throw invalid(`${JSON.stringify(name)} in the archive is a layer tar, not ${name.endsWith('.json') ? 'JSON' : 'a small file'}`);
    if (m.size > limit) throw invalid(`${JSON.stringify(name)} in the archive is too large (${m.size} bytes)`);
    return fsp.readFile(m.file);
  }

  async readJson<T = unknown>(name: string): Promise<{ bytes: Buffer; value: T }> {
    const bytes = await this.read(name);
    try {
      return { bytes, value: JSON.parse(bytes.toString('utf8')) as T };
    } catch (e) {
      throw invalid(`invalid JSON in ${JSON.stringify(name)} of the archive: ${(e as Error).message}`);
    }
  }

  /** A member's bytes as a stream that opens the file only when first read and closes it when dropped. */
  open(name: string): AsyncIterable<Buffer> {
    const m = this.member(name);
    if (!m) throw invalid(`the archive has no ${JSON.stringify(name)}`);
    const file = m.file;
    if (!file) throw invalid(`${JSON.stringify(name)} in the archive was unpacked as a layer`);
    return (async function* () {
      const rs = createReadStream(file, { highWaterMark: 1 << 20 });
      try {
        for await (const c of rs as AsyncIterable<Buffer>) yield c;
      } finally {
        rs.destroy();
      }
    })();
  }

  async dispose(): Promise<void> {
    for (const p of this.prepared) await this.layers?.discard(p);
    this.prepared.clear();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
