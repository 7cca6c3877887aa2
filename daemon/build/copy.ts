// COPY and ADD: finding the sources (in the build context or in another stage's or image's root), hashing
// them for the build cache, and writing them into a step container's root filesystem.
//
// Every path on both sides is resolved inside its root (resolveInRoot: symlinks re-rooted, `..` never above
// the root), so neither a context nor an image can make the builder read or write host files. New files
// get uid/gid 0 unless --chown says otherwise (Docker's rule for both COPY and ADD); modes and mtimes are
// kept. ADD of a local tar archive (plain, gzip, bzip2, xz or zstd) unpacks it instead; its members keep
// their owners unless --chown is given.
import { createHash } from 'node:crypto';
import { constants as FS, createReadStream, type Stats } from 'node:fs';
import { chmod, lchown, lstat, lutimes, mkdir, open, readdir, readlink, rm, symlink, link, stat } from 'node:fs/promises';
import path from 'node:path';
import { invalid } from '../errors/errors';
import { resolveInRoot } from '../containers/archive';
import { readTar, drain, cleanEntryName, type Header } from '../storage/layers/apply';
import { decompressed, detectCompression } from '../storage/layers/decompress';

/** One source of a COPY/ADD: its path inside its root and on the host. */
export interface Source {
  inner: string;
  host: string;
  st: Stats;
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

/** Every path under `root` (relative, no leading slash), parents before children. */
async function listTree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  let names: string[];
  try {
    names = await readdir(rel ? path.join(root, rel) : root);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const r = rel ? `${rel}/${n}` : n;
    out.push(r);
    const st = await lstat(path.join(root, r));
    if (st.isDirectory()) out.push(...(await listTree(root, r)));
  }
  return out;
}

/** The sources one COPY/ADD names, in `root`. `what` is `COPY`/`ADD` for Docker's error text. */
export async function findSources(root: string, patterns: string[], what: string): Promise<Source[]> {
  const out: Source[] = [];
  for (const p of patterns) {
    const clean = path.posix.normalize(`/${p}`);
    if (hasWildcard(p)) {
      const re = matchRegExp(clean.slice(1));
      for (const rel of await listTree(root)) {
        if (!re.test(rel)) continue;
        // A symlink named as a source is followed, inside the root, as Docker does.
        const r = await resolveInRoot(root, `/${rel}`, true);
        const st = await lstat(r.host).catch(() => undefined);
        if (st) out.push({ inner: `/${rel}`, host: r.host, st });
      }
      continue;
    }
    const r = await resolveInRoot(root, clean, true);
    let st: Stats;
    try {
      st = await lstat(r.host);
    } catch {
      throw invalid(`${what} failed: file not found in build context or excluded by .dockerignore: stat ${p.replace(/^\/+/, '')}: file does not exist`);
    }
    out.push({ inner: r.inner, host: r.host, st });
  }
  if (out.length === 0) throw invalid(`${what} failed: no source files were specified`);
  return out;
}

/** The cache key of the sources: `file:<sha256>`, `dir:<sha256>` or `multi:<sha256>` as Docker labels them
 *  in history. The hash covers names, types, modes, link targets and contents (not times), so it is not
 *  Docker's own (a tarsum), only its shape. */
export async function hashSources(sources: Source[]): Promise<string> {
  const one = async (s: Source): Promise<string> => {
    const h = createHash('sha256');
    const add = async (host: string, name: string, st: Stats) => {
      h.update(`${name}\0${st.mode.toString(8)}\0`);
      if (st.isSymbolicLink()) h.update(`link:${await readlink(host)}\0`);
      else if (st.isFile()) {
        h.update(`${st.size}\0`);
        for await (const c of createReadStream(host)) h.update(c as Buffer);
      }
    };
    if (s.st.isDirectory()) {
      for (const rel of await listTree(s.host)) {
        const host = path.join(s.host, rel);
        await add(host, rel, await lstat(host));
      }
      return `dir:${h.digest('hex')}`;
    }
    // The name counts: `COPY a /x/` and `COPY b /x/` with equal contents make different files.
    await add(s.host, path.posix.basename(s.inner), s.st);
    return `file:${h.digest('hex')}`;
  };
  const parts = await Promise.all(sources.map(one));
  if (parts.length === 1) return parts[0];
  return `multi:${createHash('sha256').update(parts.join(',')).digest('hex')}`;
}

/** Makes the directory `inner` (and missing parents, 0755) inside `root`; returns its host path. New
 *  directories belong to `owner`. */
export async function ensureDir(root: string, inner: string, owner: Owner): Promise<string> {
  const r = await resolveInRoot(root, inner, true);
  const missing: string[] = [];
  for (let cur = r.host; cur.length > root.length; cur = path.dirname(cur)) {
    try {
      const st = await stat(cur);
      if (!st.isDirectory()) throw invalid(`${r.inner} is not a directory`);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      missing.unshift(cur);
    }
  }
  for (const d of missing) {
    await mkdir(d, { mode: 0o755 });
    await chmod(d, 0o755);
    await lchown(d, owner.uid, owner.gid);
  }
  return r.host;
}

interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

/** Writes one entry at `inner` in `root` (the last component is not followed). `content` for files. */
async function writeEntry(root: string, inner: string, kind: 'dir' | 'file' | 'symlink' | 'link', meta: EntryMeta,
  o: { content?: AsyncIterable<Buffer>; linkname?: string }): Promise<void> {
  await ensureDir(root, path.posix.dirname(inner), { uid: meta.uid, gid: meta.gid });
  const r = await resolveInRoot(root, inner, false);
  if (r.host === root) return;
  const existing = await lstat(r.host).catch(() => undefined);
  if (existing && !(existing.isDirectory() && kind === 'dir')) await rm(r.host, { recursive: true, force: true });
  switch (kind) {
    case 'dir':
      if (!existing?.isDirectory()) await mkdir(r.host, { mode: 0o700 });
      break;
    case 'file': {
      const fh = await open(r.host, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, 0o600);
      try {
        for await (const c of o.content ?? []) await fh.write(c);
      } finally {
        await fh.close();
      }
      break;
    }
    case 'symlink':
      await symlink(o.linkname ?? '', r.host);
      break;
    case 'link': {
      const target = await resolveInRoot(root, o.linkname ?? '', false);
      await link(target.host, r.host);
      return;
    }
  }
  await lchown(r.host, meta.uid, meta.gid);
  if (kind !== 'symlink') await chmod(r.host, meta.mode & 0o7777);
  await lutimes(r.host, meta.mtime, meta.mtime).catch(() => undefined);
}

function metaOf(st: Stats, owner: Owner | undefined, chmodBits: number | undefined): EntryMeta {
  return { mode: chmodBits ?? st.mode & 0o7777, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtime: st.mtime };
}

/** Copies one source tree (or file) to `inner` in `root`. */
async function copyTree(root: string, s: { host: string; st: Stats }, inner: string, owner: Owner | undefined, chmodBits: number | undefined): Promise<void> {
  const st = s.st;
  if (st.isDirectory()) {
    await writeEntry(root, inner, 'dir', metaOf(st, owner, chmodBits), {});
    for (const n of (await readdir(s.host)).sort()) {
      const host = path.join(s.host, n);
      await copyTree(root, { host, st: await lstat(host) }, path.posix.join(inner, n), owner, chmodBits);
    }
  } else if (st.isSymbolicLink()) {
    await writeEntry(root, inner, 'symlink', metaOf(st, owner, undefined), { linkname: await readlink(s.host) });
  } else if (st.isFile()) {
    await writeEntry(root, inner, 'file', metaOf(st, owner, chmodBits), { content: createReadStream(s.host) as AsyncIterable<Buffer> });
  }
  // Sockets, fifos and devices in a build context are skipped, as Docker's context tar skips sockets.
}

/** Whether the file is a tar archive, plain or compressed (what ADD unpacks). */
export async function isArchive(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (detectCompression(head.subarray(0, bytesRead)) !== 'none') return true;
    return bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

/** Unpacks the archive `file` into the directory `inner` of `root` (ADD). Member names may not leave it. */
async function unpackInto(root: string, file: string, inner: string, owner: Owner | undefined): Promise<void> {
  await ensureDir(root, inner, owner ?? { uid: 0, gid: 0 });
  await readTar(decompressed(createReadStream(file) as AsyncIterable<Buffer>), async (h: Header, stream) => {
    const rel = cleanEntryName(h.name);
    const target = rel ? path.posix.join(inner, rel) : inner;
    const meta: EntryMeta = {
      mode: (h.mode ?? 0o644) & 0o7777, uid: owner?.uid ?? h.uid ?? 0, gid: owner?.gid ?? h.gid ?? 0, mtime: h.mtime ?? new Date(0),
    };
    switch (h.type) {
      case 'directory':
        await drain(stream);
        return writeEntry(root, target, 'dir', meta, {});
      case 'file':
      case 'contiguous-file':
        return writeEntry(root, target, 'file', meta, { content: stream });
      case 'symlink':
        await drain(stream);
        return writeEntry(root, target, 'symlink', meta, { linkname: h.linkname ?? '' });
      case 'link':
        await drain(stream);
        return writeEntry(root, target, 'link', meta, { linkname: path.posix.join(inner, cleanEntryName(h.linkname ?? '')) });
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

/** Copies the sources into `root` as COPY/ADD do. */
export async function copySources(root: string, sources: Source[], o: CopyOptions): Promise<void> {
  let dest = o.dest.startsWith('/') ? o.dest : path.posix.join(o.workdir || '/', o.dest);
  const wantsDir = o.dest.endsWith('/') || o.dest === '.' || o.dest.endsWith('/.');
  if (sources.length > 1 && !wantsDir) {
    throw invalid(`When using ${o.what} with more than one source file, the destination must be a directory and end with a /`);
  }
  dest = path.posix.normalize(dest);
  for (const s of sources) {
    if (s.st.isDirectory()) {
      await ensureDir(root, dest, o.owner ?? { uid: 0, gid: 0 });
      for (const n of (await readdir(s.host)).sort()) {
        const host = path.join(s.host, n);
        await copyTree(root, { host, st: await lstat(host) }, path.posix.join(dest, n), o.owner, o.chmod);
      }
      continue;
    }
    if (o.unpack && s.st.isFile() && (await isArchive(s.host))) {
      await unpackInto(root, s.host, dest, o.owner);
      continue;
    }
    let target = dest;
    const existing = await resolveInRoot(root, dest, true).then((r) => stat(r.host)).catch(() => undefined);
    if (wantsDir || existing?.isDirectory()) target = path.posix.join(dest, path.posix.basename(s.inner));
    await copyTree(root, s, target, o.owner, o.chmod);
  }
}
