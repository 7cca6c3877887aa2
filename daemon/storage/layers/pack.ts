// Writes a directory tree as a tar stream (docker export of a container's root, docker commit of its
// read-write layer). Entries come in sorted order with their owner, permission bits and mtime; hardlinked
// files are written once and linked after; sockets are skipped (a tar cannot hold them). Mount points
// under the root (another st_dev) are written as directories but not entered.
//
// With `whiteouts` (a layer's upper directory), overlayfs' markers become the tar forms layers use: a 0/0
// character device is the whiteout `.wh.<name>`, and a directory the caller reports as opaque gets a
// `.wh..wh..opq` entry.
import fs, { promises as fsp, createReadStream } from 'node:fs';
import path from 'node:path';
import * as tar from 'tar-stream';

type TarHeader = Partial<tar.Header> & { name: string };
const endEntry = (e: unknown) => (e as { end(): void }).end();

export interface PackOptions {
  whiteouts?: boolean;
  /** Whether a directory (relative path, '' = root) is opaque; only asked with `whiteouts`. */
  isOpaque?: (rel: string) => Promise<boolean>;
  /** Owners as the archive gives them (a --userns-remap container's files are its range's on disk). */
  ids?: { uid: (id: number) => number; gid: (id: number) => number };
}

export interface WalkEntry {
  rel: string;
  abs: string;
  st: fs.Stats;
}

/** Every path under `root` (not the root itself), parents before children, names sorted; does not enter
 *  other file systems. */
export async function* walk(root: string): AsyncGenerator<WalkEntry> {
  const rootDev = (await fsp.lstat(root)).dev;
  async function* dir(rel: string): AsyncGenerator<WalkEntry> {
    const names = (await fsp.readdir(rel ? path.join(root, rel) : root)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const abs = path.join(root, r);
      let st: fs.Stats;
      try {
        st = await fsp.lstat(abs);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // gone meanwhile (a running container)
        throw e;
      }
      yield { rel: r, abs, st };
      if (st.isDirectory() && st.dev === rootDev) yield* dir(r);
    }
  }
  yield* dir('');
}

export const isWhiteout = (st: fs.Stats) => st.isCharacterDevice() && st.rdev === 0;

function major(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}
function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
}

function writeEntry(pack: tar.Pack, header: TarHeader, file?: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (!file) {
      // A file entry without a body still needs its (empty) data written; other types take none.
      if (header.type === 'file') pack.entry(header, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve()));
      return;
    }
    const entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    const rs = createReadStream(file, { highWaterMark: 1 << 20 });
    // The pack destroyed (its reader gone) destroys this entry: its error is heard here, and the file is
    // closed rather than left paused waiting for a 'drain' that will not come.
    entry.on('error', (e: Error) => {
      rs.destroy();
      reject(e);
    });
    entry.on('close', () => rs.destroy());
    let sent = 0;
    rs.on('data', (c: string | Buffer) => {
      const b = c as Buffer;
      // A file that grew since it was stat'ed (a running container) is cut at the size in the header.
      const room = (header.size ?? 0) - sent;
      const part = b.length > room ? b.subarray(0, room) : b;
      sent += part.length;
      if (part.length && !entry.write(part)) {
        rs.pause();
        entry.once('drain', () => rs.resume());
      }
    });
    rs.on('error', (e) => {
      entry.destroy(e);
      reject(e);
    });
    rs.on('end', () => {
      // …and one that shrank is padded with zeros, so that the archive stays well-formed.
      const missing = (header.size ?? 0) - sent;
      if (missing > 0) entry.write(Buffer.alloc(missing));
      endEntry(entry);
    });
  });
}

/** The tar of `root` as a stream; errors end the stream with the error. */
export function packDir(root: string, o: PackOptions = {}): tar.Pack {
  const pack = tar.pack();
  // A consumer that stops reading (a client gone) destroys the pack; the walk then stops too.
  let closed: (e: Error) => void = () => undefined;
  const gone = new Promise<never>((_, reject) => {
    closed = reject;
  });
  gone.catch(() => undefined);
  pack.on('close', () => closed(new Error('the tar stream was closed')));
  const addEntry = (h: TarHeader, file?: string) => Promise.race([writeEntry(pack, h, file), gone]);
  (async () => {
    const links = new Map<string, string>();
    if (o.whiteouts && o.isOpaque && (await o.isOpaque(''))) {
      await addEntry({ name: '.wh..wh..opq', type: 'file', size: 0, mode: 0o644, mtime: new Date(0) });
    }
    for await (const { rel, abs, st } of walk(root)) {
      const base: TarHeader = {
        name: rel, mode: st.mode & 0o7777, uid: o.ids ? o.ids.uid(st.uid) : st.uid, gid: o.ids ? o.ids.gid(st.gid) : st.gid, mtime: st.mtime,
      };
      if (o.whiteouts && isWhiteout(st)) {
        const i = rel.lastIndexOf('/');
        const name = i >= 0 ? `${rel.slice(0, i)}/.wh.${rel.slice(i + 1)}` : `.wh.${rel}`;
        await addEntry({ ...base, name, type: 'file', size: 0 });
        continue;
      }
      if (st.isDirectory()) {
        await addEntry({ ...base, name: `${rel}/`, type: 'directory' });
        if (o.whiteouts && o.isOpaque && (await o.isOpaque(rel))) {
          await addEntry({ name: `${rel}/.wh..wh..opq`, type: 'file', size: 0, mode: 0o644, mtime: new Date(0) });
        }
      } else if (st.isSymbolicLink()) {
        await addEntry({ ...base, type: 'symlink', linkname: await fsp.readlink(abs) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first !== undefined) {
          await addEntry({ ...base, type: 'link', linkname: first });
          continue;
        }
        if (st.nlink > 1) links.set(key, rel);
        await addEntry({ ...base, type: 'file', size: st.size }, abs);
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await addEntry({
          ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major(st.rdev), devminor: minor(st.rdev),
        });
      } else if (st.isFIFO()) {
        await addEntry({ ...base, type: 'fifo' });
      }
      // sockets: skipped
    }
    pack.finalize();
  })().catch((e) => pack.destroy(e as Error));
  return pack;
}
