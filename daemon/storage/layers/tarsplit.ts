// Tar-split: what it takes to give back a layer's tar byte for byte after it was unpacked, without keeping a
// second copy of its contents. `docker save` and `push` must hand out the very bytes whose sha256 is the
// layer's diff id, and re-packing the directory would never reproduce them (header fields, entry order,
// padding, PAX records all vary by writer).
//
// While a layer is unpacked, the raw stream can be cut into segments (SplitRecorder): everything that is not
// a regular file's contents (headers, PAX and GNU long-name records, padding, the end-of-archive blocks and
// whatever follows them) is kept verbatim; a regular file's contents are replaced by a reference to the n-th
// entry, whose path inside the layer the unpacker reports (applyTar's `split`, SplitPaths). assembleTar()
// copies the kept bytes and reads each file's contents back from the layer directory. The few bodies that
// have no file in the layer (an entry a later one overwrote, a whiteout with contents) are kept whole in
// `tar-split.d/<entry index>`. The metadata is a few hundred bytes per file, so a layer is written once.
//
// File format (`tar-split.gz`, gzip): a sequence of records, each a 1-byte kind then
//   kind 1 (raw):  u32 length, bytes
//   kind 2 (file): u32 entry index, f64 size
// and beside it `tar-split.json`: {"size": <total tar bytes>, "paths": {"<entry index>": "<relative path>"},
// "side": {"<entry index>": "<file name in tar-split.d>"}}.
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { createGzip, createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';

export const SPLIT_FILE = 'tar-split.gz';
export const SPLIT_META = 'tar-split.json';
export const SPLIT_SIDE = 'tar-split.d';

const BLOCK = 512;
const RAW = 1;
const FILE = 2;
/** Typeflags that are metadata for the next entry, not entries of their own. */
const META_TYPES = new Set(['x', 'g', 'L', 'K']);
/** Typeflags whose contents are a regular file's bytes. */
const FILE_TYPES = new Set(['0', '\0', '7']);

function parseNumeric(field: Buffer): number {
  if (field[0] & 0x80) {
    // GNU base-256: big-endian in the remaining bits.
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    return v;
  }
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** `size=` of a PAX extended header, if it has one. */
function paxSize(body: Buffer): number | undefined {
  let off = 0;
  let found: number | undefined;
  while (off < body.length) {
    const sp = body.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(body.toString('latin1', off, sp), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = body.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0 && rec.slice(0, eq) === 'size') found = Number(rec.slice(eq + 1));
    off += len;
  }
  return found;
}

type Phase =
  | { k: 'header' }
  | { k: 'meta'; left: number; pad: number; pax: boolean; body: Buffer[] }
  | { k: 'content'; left: number; pad: number }
  | { k: 'pad'; left: number }
  | { k: 'tail' };

/** Cuts a raw tar stream into kept bytes and file references as it passes (feed() every chunk, in order,
 *  then close()). Entries are counted as a tar reader reports them (metadata records excluded). */
export class SplitRecorder {
  private readonly gz = createGzip({ level: 1 });
  private readonly done: Promise<void>;
  private phase: Phase = { k: 'header' };
  private hdr: Buffer[] = [];
  private hdrLen = 0;
  private raw: Buffer[] = [];
  private rawLen = 0;
  private entry = -1;
  private nextSize: number | undefined;
  total = 0;
  /** Entry indexes whose bodies were left out (each must be found again by assembleTar). */
  readonly refs: number[] = [];

  constructor(file: string) {
    this.done = pipeline(this.gz, createWriteStream(file, { mode: 0o600 }));
    this.done.catch(() => undefined);
  }

  private keep(b: Buffer): void {
    if (b.length === 0) return;
    this.raw.push(b);
    this.rawLen += b.length;
    if (this.rawLen >= 1 << 16) this.flushRaw();
  }

  private flushRaw(): void {
    if (this.rawLen === 0) return;
    const h = Buffer.alloc(5);
    h[0] = RAW;
    h.writeUInt32BE(this.rawLen, 1);
    this.gz.write(h);
    this.gz.write(Buffer.concat(this.raw, this.rawLen));
    this.raw = [];
    this.rawLen = 0;
  }

  private fileRef(entry: number, size: number): void {
    this.flushRaw();
    this.refs.push(entry);
    const r = Buffer.alloc(13);
    r[0] = FILE;
    r.writeUInt32BE(entry, 1);
    r.writeDoubleBE(size, 5);
    this.gz.write(r);
  }

  feed(chunk: Buffer): void {
    this.total += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const p = this.phase;
      switch (p.k) {
        case 'tail':
          this.keep(chunk.subarray(off));
          return;
        case 'header': {
          const take = chunk.subarray(off, off + (BLOCK - this.hdrLen));
          this.hdr.push(take);
          this.hdrLen += take.length;
          off += take.length;
          if (this.hdrLen < BLOCK) return;
          const h = Buffer.concat(this.hdr, BLOCK);
          this.hdr = [];
          this.hdrLen = 0;
          this.onHeader(h);
          break;
        }
        case 'meta': {
          const take = chunk.subarray(off, off + Math.min(p.left, chunk.length - off));
          this.keep(take);
          if (p.pax) p.body.push(take);
          p.left -= take.length;
          off += take.length;
          if (p.left === 0) {
            if (p.pax) this.nextSize = paxSize(Buffer.concat(p.body)) ?? this.nextSize;
            this.phase = p.pad ? { k: 'pad', left: p.pad } : { k: 'header' };
          }
          break;
        }
        case 'content': {
          const n = Math.min(p.left, chunk.length - off);
          p.left -= n;
          off += n;
          if (p.left === 0) this.phase = p.pad ? { k: 'pad', left: p.pad } : { k: 'header' };
          break;
        }
        case 'pad': {
          const take = chunk.subarray(off, off + Math.min(p.left, chunk.length - off));
          this.keep(take);
          p.left -= take.length;
          off += take.length;
          if (p.left === 0) this.phase = { k: 'header' };
          break;
        }
      }
    }
  }

  private onHeader(h: Buffer): void {
    this.keep(h);
    if (h.every((b) => b === 0)) {
      this.phase = { k: 'tail' };
      return;
    }
    const type = String.fromCharCode(h[156]);
    let size = parseNumeric(h.subarray(124, 136));
    if (META_TYPES.has(type)) {
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      this.phase = size ? { k: 'meta', left: size, pad, pax: type === 'x', body: [] } : { k: 'header' };
      return;
    }
    this.entry++;
    if (this.nextSize !== undefined) size = this.nextSize;
    this.nextSize = undefined;
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (FILE_TYPES.has(type) && size > 0) {
      this.fileRef(this.entry, size);
      this.phase = { k: 'content', left: size, pad };
    } else if (size > 0) {
      this.phase = { k: 'meta', left: size, pad, pax: false, body: [] };
    } else {
      this.phase = { k: 'header' };
    }
  }

  async close(): Promise<void> {
    if (this.hdrLen) this.keep(Buffer.concat(this.hdr, this.hdrLen));
    this.hdr = [];
    this.hdrLen = 0;
    this.flushRaw();
    this.gz.end();
    await this.done;
  }

  /** Stops recording; resolves once the file is closed (its stream opens it lazily: removing the
   *  directory before that could leave the file, and so the directory, behind). */
  abort(): Promise<void> {
    this.gz.destroy();
    return this.done.then(() => undefined, () => undefined);
  }
}

export interface SplitMeta {
  size: number;
  paths: Record<string, string>;
  side?: Record<string, string>;
}

export async function readSplitMeta(layerDir: string): Promise<SplitMeta> {
  return JSON.parse(await fsp.readFile(path.join(layerDir, SPLIT_META), 'utf8')) as SplitMeta;
}

/** Reassembles the layer's original tar from `layerDir` (holding diff/, tar-split.gz and tar-split.json). */
export async function* assembleTar(layerDir: string): AsyncGenerator<Buffer> {
  const meta = await readSplitMeta(layerDir);
  const diff = path.join(layerDir, 'diff');
  // Both ends are closed at the end: destroying the gunzip alone leaves the file piped into it open.
  const file = createReadStream(path.join(layerDir, SPLIT_FILE));
  const src = file.pipe(createGunzip());
  let buf: Buffer = Buffer.alloc(0);
  const it = (src as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const need = async (n: number): Promise<boolean> => {
    while (buf.length < n) {
      const r = await it.next();
      if (r.done) return false;
      buf = buf.length ? Buffer.concat([buf, r.value]) : r.value;
    }
    return true;
  };
  try {
    for (;;) {
      if (!(await need(1))) return;
      const kind = buf[0];
      if (kind === RAW) {
        if (!(await need(5))) throw new Error('tar-split record truncated');
        let left = buf.readUInt32BE(1);
        buf = buf.subarray(5);
        while (left > 0) {
          if (buf.length === 0 && !(await need(1))) throw new Error('tar-split record truncated');
          const take = buf.subarray(0, Math.min(left, buf.length));
          buf = buf.subarray(take.length);
          left -= take.length;
          yield Buffer.from(take);
        }
      } else if (kind === FILE) {
        if (!(await need(13))) throw new Error('tar-split record truncated');
        const entry = buf.readUInt32BE(1);
        const size = buf.readDoubleBE(5);
        buf = buf.subarray(13);
        const rel = meta.paths[String(entry)];
        const aside = meta.side?.[String(entry)];
        if (rel === undefined && aside === undefined) throw new Error(`tar-split names entry ${entry}, which the layer does not record`);
        let got = 0;
        const rs = createReadStream(rel !== undefined ? path.join(diff, rel) : path.join(layerDir, SPLIT_SIDE, aside!), { highWaterMark: 1 << 20 });
        try {
          for await (const c of rs as AsyncIterable<Buffer>) {
            const take = c.length > size - got ? c.subarray(0, size - got) : c;
            got += take.length;
            if (take.length) yield take;
            if (got >= size) break;
          }
        } finally {
          rs.destroy();
        }
        if (got !== size) throw new Error(`layer file ${rel ?? aside} has changed since it was unpacked (${got} of ${size} bytes)`);
      } else {
        throw new Error(`tar-split: unknown record kind ${kind}`);
      }
    }
  } finally {
    src.destroy();
    file.destroy();
  }
}

/** A stream of `src` that also feeds `rec`. */
export async function* teeInto(src: AsyncIterable<Buffer>, rec: SplitRecorder): AsyncGenerator<Buffer> {
  for await (const c of src) {
    rec.feed(c);
    yield c;
  }
}
