// COPY and ADD: finding the sources (in the build context or in another stage's or image's root), hashing
// them for the build cache, and writing them into a step container's root filesystem.
//
// Both sides are reached through the addon's in-root calls (runtime/inroot.ts): every path is resolved
// beneath an fd of its root (symlinks re-rooted, `..` never above the root) and files are read and
// written through fds, so neither a context nor an image can make the builder read or write host files.
// New files get uid/gid 0 unless --chown says otherwise (Docker's rule for both COPY and ADD); modes and
// mtimes are kept. ADD of a local tar archive (plain, gzip, bzip2, xz or zstd) unpacks it instead; its
// members keep their owners unless --chown is given.
import { createHash } from 'node:crypto';
import { write as writeCb, futimes as futimesCb } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { invalid } from '../errors/errors';
import { withRoot, closeFile, errnoOf, readFileChunks, type Root, type InRootStat } from '../runtime/inroot';
import { readTar, drain, cleanEntryName, type Header } from '../storage/layers/apply';
import { decompressed, detectCompression } from '../storage/layers/decompress';

const writeFd = promisify(writeCb);
const futimes = promisify(futimesCb);

/** One source of a COPY/ADD: the root it is in (a host directory), where it is in that root (symlinks
 *  resolved), the name it is copied under, and its lstat. */
export interface Source {
  root: string;
  at: string;
  name: string;
  st: InRootStat;
}
export interface Owner {
  uid: number;
  gid: number;
}

const hasWildcard = (p: string) => /[*?[]/.test(p);

/** Go's filepath.Match pattern as a regular expression (`*` and `?` never match `/`). */
function matchRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw invalid(`syntax error in pattern ${pattern}`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Every path under directory `dir` of `root` (relative, no leading slash), parents before children. */
async function listTree(root: Root, dir: string, rel = ''): Promise<Array<{ rel: string; st: InRootStat }>> {
  const out: Array<{ rel: string; st: InRootStat }> = [];
  let entries: Array<{ name: string; stat: InRootStat }>;
  try {
    entries = await root.list(rel ? path.posix.join(dir, rel) : dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    out.push({ rel: r, st: e.stat });
    if (e.stat.type === 'dir') out.push(...(await listTree(root, dir, r)));
  }
  return out;
}

/** The sources one COPY/ADD names, in `rootPath`. `what` is `COPY`/`ADD` for Docker's error text. */
export async function findSources(rootPath: string, patterns: string[], what: string): Promise<Source[]> {
  const out: Source[] = [];
  await withRoot(rootPath, async (root) => {
    for (const p of patterns) {
      const clean = path.posix.normalize(`/${p}`);
      if (hasWildcard(p)) {
        const re = matchRegExp(clean.slice(1));
        for (const { rel } of await listTree(root, '/')) {
          if (!re.test(rel)) continue;
          // A symlink named as a source is followed, inside the root, as Docker does.
          const r = await root.resolve(`/${rel}`, true).catch(() => undefined);
          if (r?.stat) out.push({ root: rootPath, at: r.inner, name: path.posix.basename(rel), st: r.stat });
        }
        continue;
      }
      const r = await root.resolve(clean, true).catch(() => undefined);
      if (!r?.stat) {
        throw invalid(`${what} failed: file not found in build context or excluded by .dockerignore: stat ${p.replace(/^\/+/, '')}: file does not exist`);
      }
      out.push({ root: rootPath, at: r.inner, name: path.posix.basename(r.inner), st: r.stat });
    }
  });
  if (out.length === 0) throw invalid(`${what} failed: no source files were specified`);
  return out;
}

/** The cache key of the sources: `file:<sha256>`, `dir:<sha256>` or `multi:<sha256>` as Docker labels them
 *  in history. The hash covers names, types, modes, link targets and contents (not times), so it is not
 *  Docker's own (a tarsum), only its shape. */
export async function hashSources(sources: Source[]): Promise<string> {
  const one = (s: Source): Promise<string> => withRoot(s.root, async (root) => {
    const h = createHash('sha256');
    const add = async (at: string, name: string, st: InRootStat) => {
      h.update(`${name}\0${st.mode.toString(8)}\0`);
      if (st.type === 'symlink') h.update(`link:${await root.readlink(at)}\0`);
      else if (st.type === 'file') {
        h.update(`${st.size}\0`);
        for await (const c of readFileChunks(root, at)) h.update(c);
      }
    };
    if (s.st.type === 'dir') {
      for (const { rel, st } of await listTree(root, s.at)) await add(path.posix.join(s.at, rel), rel, st);
      return `dir:${h.digest('hex')}`;
    }
    // The name counts: `COPY a /x/` and `COPY b /x/` with equal contents make different files.
    await add(s.at, s.name, s.st);
    return `file:${h.digest('hex')}`;
  });
  const parts = await Promise.all(sources.map(one));
  if (parts.length === 1) return parts[0];
  return `multi:${createHash('sha256').update(parts.join(',')).digest('hex')}`;
}

/** Makes the directory `inner` (and missing parents, 0755) inside `root`. New directories belong to
 *  `owner`. */
async function ensureDirIn(root: Root, inner: string, owner: Owner): Promise<void> {
  await root.mkdirAll(inner, { mode: 0o755, ...owner }).catch((e) => {
    if (errnoOf(e) === 'ENOTDIR') throw invalid(`${inner} is not a directory`);
    throw e;
  });
}

/** ensureDirIn for a root given by its host path (WORKDIR). */
export async function ensureDir(rootPath: string, inner: string, owner: Owner): Promise<void> {
  await withRoot(rootPath, (root) => ensureDirIn(root, inner, owner));
}

interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

/** Writes one entry at `inner` in `root` (the last component is not followed; missing parents are made
 *  for the entry's owner). `content` for files. */
async function writeEntry(root: Root, inner: string, kind: 'dir' | 'file' | 'symlink' | 'link', meta: EntryMeta,
  o: { content?: AsyncIterable<Buffer>; linkname?: string }): Promise<void> {
  const fd = await root.place({
    path: inner, type: kind, mode: meta.mode & 0o7777, uid: meta.uid, gid: meta.gid, linkname: o.linkname,
    ...(kind === 'file' || kind === 'link' ? {} : { mtime: meta.mtime }),
    parents: { mode: 0o755, uid: meta.uid, gid: meta.gid },
  }).catch((e) => {
    if (errnoOf(e) === 'ENOTDIR') throw invalid(`${path.posix.dirname(inner)} is not a directory`);
    throw e;
  });
  if (fd < 0) return;
  try {
    for await (const c of o.content ?? []) {
      for (let off = 0; off < c.length;) off += (await writeFd(fd, c, off, c.length - off)).bytesWritten;
    }
    await futimes(fd, meta.mtime, meta.mtime);
  } finally {
    await closeFile(fd);
  }
}

function metaOf(st: InRootStat, owner: Owner | undefined, chmodBits: number | undefined): EntryMeta {
  return { mode: chmodBits ?? st.mode & 0o7777, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtime: st.mtimeSec + st.mtimeNsec / 1e9 };
}

/** Copies one source tree (or file) at `at` of `src` to `inner` in `dst`. */
async function copyTree(dst: Root, src: Root, at: string, st: InRootStat, inner: string, owner: Owner | undefined, chmodBits: number | undefined): Promise<void> {
  if (st.type === 'dir') {
    await writeEntry(dst, inner, 'dir', metaOf(st, owner, chmodBits), {});
    for (const c of await src.list(at)) await copyTree(dst, src, path.posix.join(at, c.name), c.stat, path.posix.join(inner, c.name), owner, chmodBits);
  } else if (st.type === 'symlink') {
    await writeEntry(dst, inner, 'symlink', metaOf(st, owner, undefined), { linkname: await src.readlink(at) });
  } else if (st.type === 'file') {
    await writeEntry(dst, inner, 'file', metaOf(st, owner, chmodBits), { content: readFileChunks(src, at) });
  }
  // Sockets, fifos and devices in a build context are skipped, as Docker's context tar skips sockets.
}

/** Whether file `at` of `root` is a tar archive, plain or compressed (what ADD unpacks). */
async function isArchive(root: Root, at: string): Promise<boolean> {
  const head: Buffer[] = [];
  let n = 0;
  for await (const c of readFileChunks(root, at)) {
    head.push(c);
    n += c.length;
    if (n >= 512) break;
  }
  const b = Buffer.concat(head).subarray(0, 512);
  if (detectCompression(b) !== 'none') return true;
  return b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar';
}

/** Unpacks the archive `at` of `src` into the directory `inner` of `dst` (ADD). Member names may not leave it. */
async function unpackInto(dst: Root, src: Root, at: string, inner: string, owner: Owner | undefined): Promise<void> {
  await ensureDirIn(dst, inner, owner ?? { uid: 0, gid: 0 });
  await readTar(decompressed(readFileChunks(src, at)), async (h: Header, stream) => {
    const rel = cleanEntryName(h.name);
    const target = rel ? path.posix.join(inner, rel) : inner;
    const meta: EntryMeta = {
      mode: (h.mode ?? 0o644) & 0o7777, uid: owner?.uid ?? h.uid ?? 0, gid: owner?.gid ?? h.gid ?? 0, mtime: (h.mtime ?? new Date(0)).getTime() / 1000,
    };
    switch (h.type) {
      case 'directory':
        await drain(stream);
        return writeEntry(dst, target, 'dir', meta, {});
      case 'file':
      case 'contiguous-file':
        return writeEntry(dst, target, 'file', meta, { content: stream });
      case 'symlink':
        await drain(stream);
        return writeEntry(dst, target, 'symlink', meta, { linkname: h.linkname ?? '' });
      case 'link':
        await drain(stream);
        return writeEntry(dst, target, 'link', meta, { linkname: path.posix.join(inner, cleanEntryName(h.linkname ?? '')) });
      default:
        await drain(stream); // devices and fifos: not made by a build step
    }
  });
}

export interface CopyOptions {
  /** `/app/` or `app` as written (expanded): a trailing slash makes it a directory. */
  dest: string;
  /** The stage's WORKDIR, for a relative `dest`. */
  workdir: string;
  owner?: Owner;
  chmod?: number;
  /** ADD: local archives are unpacked. */
  unpack: boolean;
  what: string;
}

/** Copies the sources into `rootPath` as COPY/ADD do. */
export async function copySources(rootPath: string, sources: Source[], o: CopyOptions): Promise<void> {
  let dest = o.dest.startsWith('/') ? o.dest : path.posix.join(o.workdir || '/', o.dest);
  const wantsDir = o.dest.endsWith('/') || o.dest === '.' || o.dest.endsWith('/.');
  if (sources.length > 1 && !wantsDir) {
    throw invalid(`When using ${o.what} with more than one source file, the destination must be a directory and end with a /`);
  }
  dest = path.posix.normalize(dest);
  await withRoot(rootPath, async (dst) => {
    for (const s of sources) {
      await withRoot(s.root, async (src) => {
        if (s.st.type === 'dir') {
          await ensureDirIn(dst, dest, o.owner ?? { uid: 0, gid: 0 });
          for (const c of await src.list(s.at)) {
            await copyTree(dst, src, path.posix.join(s.at, c.name), c.stat, path.posix.join(dest, c.name), o.owner, o.chmod);
          }
          return;
        }
        if (o.unpack && s.st.type === 'file' && (await isArchive(src, s.at))) {
          await unpackInto(dst, src, s.at, dest, o.owner);
          return;
        }
        let target = dest;
        const existing = (await dst.resolve(dest, true).catch(() => undefined))?.stat;
        if (wantsDir || existing?.type === 'dir') target = path.posix.join(dest, s.name);
        await copyTree(dst, src, s.at, s.st, target, o.owner, o.chmod);
      });
    }
  });
}
