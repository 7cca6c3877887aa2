// Unpacks one layer tar into an empty directory the way overlayfs wants it, and refuses any archive that
// would write outside that directory (DESIGN promise 10).
//
// What an entry becomes:
//   file, dir, symlink, hardlink (target inside this layer), char/block device, fifo — with owner (lchown),
//   permission bits (including setuid/setgid/sticky), mtime, and PAX xattrs;
//   `.wh.<name>`        → a whiteout: character device 0/0 named <name>;
//   `.wh..wh..opq`      → the parent directory gets trusted.overlay.opaque=y;
//   other `.wh..wh.*`   → aufs bookkeeping, skipped.
// What is refused (the whole layer fails, nothing is kept): an absolute name, a `..` component, a parent
// path that goes through a symlink or a non-directory inside the layer, a hardlink whose target is outside
// the layer or not there yet, and entry types that have no meaning here.
//
// Since only berthd writes inside the layer directory while it is being unpacked, checking the parents with
// lstat before each write is enough: nothing can swap a directory for a symlink behind our back. Files are
// created with O_EXCL, which never follows a symlink at the last component.
import { createHash } from 'node:crypto';
import fs, { constants as fsc } from 'node:fs';
import path from 'node:path';
import * as tar from 'tar-stream';
import type { LayerFs } from '../../runtime/layerfs';
import { invalid, BerthError } from '../../errors/errors';
import { coalesced } from './decompress';
import { OffThreadHash } from './hasher';

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

export interface ApplyResult {
  /** sha256 of every byte of the uncompressed tar stream, as `sha256:<hex>`. */
  diffId: string;
  /** Bytes the layer holds on disk, counted as Docker does (non-directories, hardlinked inodes once). */
  size: number;
}

export interface ApplyOptions {
  fs: LayerFs;
  warn?: (msg: string) => void;
  /** Where each entry's contents ended up, for tar-split (see tarsplit.ts). */
  split?: SplitPaths;
}

/**
 * Where the contents of the tar's entries can be read back after unpacking, by entry index (entries counted
 * as the tar reader reports them): `paths` are regular files inside the layer, `side` are files in `sideDir`.
 * Contents that do not end up as a file of the layer (a whiteout entry with a body, an entry overwritten or
 * removed by a later one in the same tar) are kept in `sideDir`, so that the original tar can always be
 * given back byte for byte. An inode is never written again after its entry: replacing a path unlinks it.
 */
export class SplitPaths {
  readonly paths = new Map<number, string>();
  readonly side = new Map<number, string>();
  /** Recorded entry of each path still in the layer. */
  private readonly byPath = new Map<string, number>();
  private sideMade = false;

  constructor(readonly sideDir: string) {}

  file(index: number, rel: string): void {
    this.paths.set(index, rel);
    this.byPath.set(rel, index);
  }

  private ensureSide(): void {
    if (this.sideMade) return;
    fs.mkdirSync(this.sideDir, { recursive: true, mode: 0o700 });
    this.sideMade = true;
  }

  /** Stores an entry's body that has no place in the layer; resolves once it is read to the end. */
  async sideBody(index: number, stream: EntryStream): Promise<void> {
    let fd: number | undefined;
    try {
      for await (const chunk of stream) {
        if (chunk.length === 0) continue;
        if (fd === undefined) {
          this.ensureSide();
          fd = fs.openSync(path.join(this.sideDir, String(index)), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
          this.side.set(index, String(index));
        }
        let off = 0;
        while (off < chunk.length) off += await writeAsync(fd, chunk, off);
      }
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /** `rel` (and, for a directory, everything under it) is about to be removed: recorded files move aside. */
  beforeRemove(rel: string, abs: (r: string) => string, isDir: boolean): void {
    if (this.byPath.size === 0) return;
    const hit = (p: string) => p === rel || (isDir && p.startsWith(`${rel}/`));
    for (const [p, index] of [...this.byPath]) {
      if (!hit(p)) continue;
      this.ensureSide();
      fs.renameSync(abs(p), path.join(this.sideDir, String(index)));
      this.byPath.delete(p);
      this.paths.delete(index);
      this.side.set(index, String(index));
    }
  }
}

/** A tar member header as tar-stream gives it (PAX records decoded to text). */
export type Header = Omit<tar.Header, 'pax'> & { pax?: Record<string, string> | null };
/** A member's bytes; the consumer must read it to the end. */
export type EntryStream = AsyncIterable<Buffer>;

/** A layer member's path made relative and clean: '' is the layer root. Throws on a name that could leave
 *  the layer. */
export function cleanEntryName(name: string, what = 'archive entry'): string {
  if (name.startsWith('/')) throw invalid(`${what} ${JSON.stringify(name)} has an absolute path; refusing to unpack it`);
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw invalid(`${what} ${JSON.stringify(name)} points outside the layer (".."); refusing to unpack it`);
    parts.push(p);
  }
  return parts.join('/');
}

function isErrno(e: unknown, code: string): boolean {
  return (e as NodeJS.ErrnoException)?.code === code;
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
}

/** Seconds (with fraction) of an entry's mtime/atime: PAX records carry sub-second times. */
function entryTimes(h: Header): { atime: number; mtime: number } {
  const pax = h.pax ?? {};
  const mtime = pax.mtime !== undefined && Number.isFinite(Number(pax.mtime)) ? Number(pax.mtime) : (h.mtime ? h.mtime.getTime() / 1000 : 0);
  const atime = pax.atime !== undefined && Number.isFinite(Number(pax.atime)) ? Number(pax.atime) : mtime;
  return { atime, mtime };
}

/** errno codes that a well-formed layer never causes. */
const ARCHIVE_FAULTS = new Set(['ENAMETOOLONG', 'ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EEXIST', 'EMLINK']);

// Metadata system calls (lstat, mkdir, symlink, link, chown, chmod, utimes, open, close) are made
// synchronously: they cost microseconds and never wait for data I/O, while a round trip through libuv's
// thread pool costs more than the call itself and doubled the time to unpack a layer of 57,000 files. File
// contents, which can wait for the disk, are written asynchronously.
class Unpacker {
  /** Directories (relative) known to be real directories we may write into. */
  private readonly dirs = new Set<string>(['']);
  /** Directory times are set last: writing inside a directory changes its mtime. */
  private readonly dirTimes: { abs: string; atime: number; mtime: number }[] = [];
  /** Bytes each non-directory path holds, as Docker's size counts them (a hardlink adds nothing). */
  private readonly sizes = new Map<string, number>();

  /** Index of the entry being unpacked, counted as the tar reader reports them. */
  private index = -1;

  constructor(private readonly dest: string, private readonly o: ApplyOptions) {}

  /** Reads an entry's body that the layer does not keep (kept aside when recording for tar-split). */
  private setBodyAside(stream: EntryStream): Promise<void> {
    return this.o.split ? this.o.split.sideBody(this.index, stream) : drain(stream);
  }

  private abs(rel: string): string {
    return rel === '' ? this.dest : path.join(this.dest, rel);
  }

  get size(): number {
    let n = 0;
    for (const v of this.sizes.values()) n += v;
    return n;
  }

  /** Makes sure every parent of `rel` is a real directory inside the layer, creating missing ones (0755,
   *  root-owned, as Docker does); refuses symlinks and non-directories on the way. */
  private ensureParents(rel: string, name: string): void {
    const parts = rel.split('/');
    parts.pop();
    let cur = '';
    for (const p of parts) {
      cur = cur ? `${cur}/${p}` : p;
      if (this.dirs.has(cur)) continue;
      const st = lstatOrNull(this.abs(cur));
      if (st === null) {
        fs.mkdirSync(this.abs(cur), { mode: 0o755 });
        fs.chmodSync(this.abs(cur), 0o755);
      } else if (st.isSymbolicLink()) {
        throw invalid(`archive entry ${JSON.stringify(name)} goes through the symlink ${JSON.stringify(cur)}; refusing to write outside the layer`);
      } else if (!st.isDirectory()) {
        throw invalid(`archive entry ${JSON.stringify(name)}: ${JSON.stringify(cur)} is not a directory`);
      }
      this.dirs.add(cur);
    }
  }

  /** Clears the way for a new entry at `rel`: an existing directory is kept only when the new entry is a
   *  directory too (its metadata is then re-applied); anything else is removed. */
  private replace(rel: string, newIsDir: boolean): boolean {
    const st = lstatOrNull(this.abs(rel));
    if (st === null) return false;
    if (st.isDirectory() && newIsDir) return true;
    this.o.split?.beforeRemove(rel, (r) => this.abs(r), st.isDirectory());
    fs.rmSync(this.abs(rel), { recursive: true, force: true });
    this.sizes.delete(rel);
    if (st.isDirectory()) {
      const under = `${rel}/`;
      for (const d of [...this.dirs]) if (d === rel || d.startsWith(under)) this.dirs.delete(d);
      for (const k of [...this.sizes.keys()]) if (k.startsWith(under)) this.sizes.delete(k);
    }
    return false;
  }

  /** Unpacks one entry. A system call that fails because of what the archive asks for (a name too long,
   *  a path that cannot exist) is the archive's fault: a 400 naming the entry, never a 500 with a path of
   *  the data root. Running out of space or permissions stays the daemon's error. */
  async entry(h: Header, stream: EntryStream): Promise<void> {
    try {
      await this.unpackEntry(h, stream);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException)?.code;
      if (code && ARCHIVE_FAULTS.has(code)) throw invalid(`archive entry ${JSON.stringify(h.name)} cannot be unpacked (${code})`, e);
      throw e;
    }
  }

  private async unpackEntry(h: Header, stream: EntryStream): Promise<void> {
    this.index++;
    const name = h.name;
    const rel = cleanEntryName(name);
    const base = rel.split('/').pop() ?? '';

    if (base.startsWith(WHITEOUT_PREFIX)) {
      await this.setBodyAside(stream);
      return this.whiteout(rel, base, h);
    }
    if (rel === '') {
      // The layer root: only a directory entry makes sense; its metadata applies to the layer directory.
      await this.setBodyAside(stream);
      if (h.type !== 'directory') throw invalid(`archive entry ${JSON.stringify(name)} names the layer root but is not a directory`);
      await this.meta(rel, h, true);
      this.dirTimes.push({ abs: this.dest, ...entryTimes(h) });
      return;
    }
    this.ensureParents(rel, name);
    const abs = this.abs(rel);
    const mode = h.mode !== undefined ? h.mode & 0o7777 : 0o644;

    switch (h.type) {
      case 'directory': {
        await this.setBodyAside(stream);
        const existed = this.replace(rel, true);
        if (!existed) fs.mkdirSync(abs, { mode: 0o700 });
        this.dirs.add(rel);
        await this.meta(rel, h, true);
        this.dirTimes.push({ abs, ...entryTimes(h) });
        return;
      }
      case 'file':
      case 'contiguous-file': {
        this.replace(rel, false);
        const fd = fs.openSync(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        let size = 0;
        try {
          for await (const chunk of stream) {
            let off = 0;
            while (off < chunk.length) off += await writeAsync(fd, chunk, off);
            size += chunk.length;
          }
          fs.fchownSync(fd, h.uid ?? 0, h.gid ?? 0);
          fs.fchmodSync(fd, mode);
          const t = entryTimes(h);
          fs.futimesSync(fd, t.atime, t.mtime);
        } finally {
          fs.closeSync(fd);
        }
        this.sizes.set(rel, size);
        if (size > 0) this.o.split?.file(this.index, rel);
        await this.xattrs(rel, h);
        return;
      }
      case 'symlink': {
        await this.setBodyAside(stream);
        this.replace(rel, false);
        if (!h.linkname) throw invalid(`archive entry ${JSON.stringify(name)} is a symlink without a target`);
        fs.symlinkSync(h.linkname, abs);
        this.sizes.set(rel, Buffer.byteLength(h.linkname));
        await this.meta(rel, h, false);
        return;
      }
      case 'link': {
        await this.setBodyAside(stream);
        const target = cleanEntryName(h.linkname ?? '', 'hardlink target of');
        if (target === '') throw invalid(`archive entry ${JSON.stringify(name)} is a hardlink to the layer root`);
        this.ensureParents(target, `${name} -> ${h.linkname}`);
        const tst = lstatOrNull(this.abs(target));
        if (tst === null) throw invalid(`archive entry ${JSON.stringify(name)} is a hardlink to ${JSON.stringify(h.linkname)}, which is not in the layer`);
        if (tst.isDirectory()) throw invalid(`archive entry ${JSON.stringify(name)} is a hardlink to a directory`);
        if (target === rel) return; // a link to itself: nothing to do
        // A link whose target lies under the directory it replaces would point at what was just removed.
        if (target.startsWith(`${rel}/`)) throw invalid(`archive entry ${JSON.stringify(name)} is a hardlink to ${JSON.stringify(h.linkname)}, which is inside the directory it replaces`);
        this.replace(rel, false);
        // link(2) does not follow a symlink at the target: linking a symlink copies the link itself.
        fs.linkSync(this.abs(target), abs);
        this.sizes.set(rel, 0);
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await this.setBodyAside(stream);
        this.replace(rel, false);
        const t = h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c';
        await this.o.fs.mknod(abs, t, mode, h.devmajor ?? 0, h.devminor ?? 0);
        this.sizes.set(rel, 0);
        await this.meta(rel, h, true);
        return;
      }
      default:
        throw invalid(`archive entry ${JSON.stringify(name)} has an unsupported type (${h.type ?? 'unknown'})`);
    }
  }

  private async whiteout(rel: string, base: string, h: Header): Promise<void> {
    const dirRel = rel.split('/').slice(0, -1).join('/');
    if (base === WHITEOUT_OPAQUE) {
      // The directory itself may only appear later in the stream, or not at all.
      this.ensureParents(`${dirRel ? `${dirRel}/` : ''}${base}`, h.name);
      await this.o.fs.setXattr(this.abs(dirRel), OPAQUE_XATTR, 'y');
      return;
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) return; // .wh..wh.plnk, .wh..wh.aufs: aufs bookkeeping
    const orig = base.slice(WHITEOUT_PREFIX.length);
    if (orig === '' || orig === '.' || orig === '..') throw invalid(`archive entry ${JSON.stringify(h.name)} is not a valid whiteout`);
    const target = dirRel ? `${dirRel}/${orig}` : orig;
    this.ensureParents(target, h.name);
    this.replace(target, false);
    await this.o.fs.mkWhiteout(this.abs(target));
    fs.lchownSync(this.abs(target), h.uid ?? 0, h.gid ?? 0);
    this.sizes.set(target, 0);
  }

  /** Owner, permission bits (not for symlinks: Linux has no lchmod), times (not for directories: they are
   *  set at the end) and xattrs of an entry that was just created. */
  private async meta(rel: string, h: Header, chmod: boolean): Promise<void> {
    const abs = this.abs(rel);
    fs.lchownSync(abs, h.uid ?? 0, h.gid ?? 0);
    if (chmod) fs.chmodSync(abs, (h.mode ?? 0o755) & 0o7777);
    if (h.type !== 'directory') {
      const t = entryTimes(h);
      fs.lutimesSync(abs, t.atime, t.mtime);
    }
    await this.xattrs(rel, h);
  }

  /** PAX `SCHILY.xattr.*` records. trusted.* is refused (overlayfs keeps its own metadata there, and an
   *  archive must not forge it). tar-stream hands us values as UTF-8 text, so a binary value (file
   *  capabilities are binary) that did not survive decoding is skipped with a warning rather than stored
   *  corrupted. */
  private async xattrs(rel: string, h: Header): Promise<void> {
    const pax = h.pax;
    if (!pax) return;
    for (const [k, v] of Object.entries(pax)) {
      if (!k.startsWith('SCHILY.xattr.')) continue;
      const name = k.slice('SCHILY.xattr.'.length);
      if (name.startsWith('trusted.')) {
        this.o.warn?.(`ignoring xattr ${name} on ${rel}: trusted.* is not taken from archives`);
        continue;
      }
      if (v.includes('\uFFFD')) {
        this.o.warn?.(`ignoring xattr ${name} on ${rel}: its binary value cannot be carried through`);
        continue;
      }
      try {
        await this.o.fs.setXattr(this.abs(rel), name, v);
      } catch (e) {
        if (isErrno(e, 'ENOTSUP') || isErrno(e, 'EOPNOTSUPP') || isErrno(e, 'EPERM')) {
          this.o.warn?.(`ignoring xattr ${name} on ${rel}: ${(e as Error).message}`);
          continue;
        }
        throw e;
      }
    }
  }

  finish(): void {
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const d = this.dirTimes[i];
      try {
        fs.lutimesSync(d.abs, d.atime, d.mtime);
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
      }
    }
  }
}

function writeAsync(fd: number, buf: Buffer, off: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

export async function drain(stream: EntryStream): Promise<void> {
  for await (const _ of stream) { /* discard */ }
}

/** Unpacks the uncompressed tar bytes of `source` into `dest` (an existing, empty directory) and returns
 *  the diff id and size. On error the directory is left as it is: the caller removes it. */
export async function applyTar(source: AsyncIterable<Buffer>, dest: string, o: ApplyOptions): Promise<ApplyResult> {
  const u = new Unpacker(dest, o);
  const digest = await readTar(source, (h, stream) => u.entry(h, stream), { hash: 'worker' });
  u.finish();
  return { diffId: `sha256:${digest}`, size: u.size };
}

/**
 * Feeds `source` through a tar parser and calls `onEntry` for each member, one at a time; the handler must
 * consume the member's stream. Resolves with the sha256 (hex) of all bytes of `source`, read to its end.
 * The first error (from the source, the parser or a handler) stops everything and is thrown.
 */
export async function readTar(source: AsyncIterable<Buffer>, onEntry: (h: Header, stream: EntryStream) => Promise<void>, o: { hash?: boolean | 'worker' } = {}): Promise<string> {
  // 'worker': the hash runs in a worker thread (hasher.ts) while this thread parses and writes.
  const off = o.hash === 'worker' ? new OffThreadHash() : undefined;
  const hash = o.hash === false || off ? undefined : createHash('sha256');
  const ex = tar.extract();
  let failure: unknown;
  // The archive's own fault (cut short, not a tar), which also fails the member being read: it is what
  // the caller is told, whichever of the two errors came first.
  let tarFailure: unknown;
  // The handler of the member being read: on an error elsewhere (a truncated archive) it is let finish
  // before the error is thrown, so that what it was making is cleaned up by the time the caller cleans up.
  let current: Promise<void> | undefined;
  let wakeWriter: (() => void) | undefined;

  const finished = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      // An archive that ends inside this member fails the member's stream, maybe before its handler has
      // begun to read it (it may be opening a file first): unheard, that error would end the process. The
      // extractor reports the same failure below, once.
      stream.on('error', () => { /* reported through the extractor */ });
      current = onEntry(header as Header, stream as unknown as EntryStream);
      current.then(
        () => next(),
        (e) => {
          failure ??= e;
          ex.destroy(e as Error);
          reject(failure);
          // An entry left half read keeps the extractor's write pending, and a streamx stream with a
          // pending write never finishes destroying: no 'close' comes, so the writer below waiting for
          // 'drain' is woken here (a full disk hung `docker load` there).
          wakeWriter?.();
        },
      );
    });
    ex.on('error', (e: Error) => {
      tarFailure = invalid(tarMessage(e));
      failure ??= tarFailure;
      reject(failure);
    });
    ex.on('finish', () => resolve());
    ex.on('close', () => reject(failure ?? invalid('the archive ended early')));
  });
  finished.catch(() => { /* observed below */ });

  try {
    for await (const chunk of coalesced(source)) {
      if (failure) break;
      hash?.update(chunk);
      off?.update(chunk);
      if (!ex.write(chunk)) {
        await new Promise<void>((r) => {
          const done = () => {
            ex.off('drain', done);
            ex.off('close', done);
            wakeWriter = undefined;
            r();
          };
          ex.on('drain', done);
          ex.on('close', done);
          wakeWriter = done;
        });
      }
    }
    if (!failure) ex.end(undefined);
  } catch (e) {
    failure ??= e;
    ex.destroy(e as Error);
  }
  try {
    await finished;
  } catch (e) {
    failure ??= e;
  }
  if (failure) {
    off?.drop();
    if (current) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([current.catch(() => undefined), new Promise<void>((r) => { timer = setTimeout(r, 10_000); })]);
      clearTimeout(timer);
    }
    throw failure instanceof BerthError ? failure : (tarFailure ?? failure);
  }
  if (off) return off.digest();
  return hash?.digest('hex') ?? '';
}

/** tar-stream's messages, in the words a user of `docker load` can act on. */
export function tarMessage(e: Error): string {
  if (/Unexpected end of data/.test(e.message)) return 'unexpected EOF: the archive is truncated';
  if (/Invalid tar header/.test(e.message)) return `invalid tar header: the archive is corrupt or not a tar file`;
  return e.message;
}
