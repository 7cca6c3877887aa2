// docker cp: HEAD/GET/PUT /containers/{id}/archive. Every path a client names is resolved inside the
// container's root: components are walked one at a time, symlinks are read and re-rooted (an absolute
// target starts again at the container's root, `..` never climbs above it), so no path, link or tar entry
// can reach the host's files. The walk is done again for every tar entry on the way in.
//
// Limits: a running container may swap a checked directory for a symlink between the walk and the open
// (the same window Docker's own resolver has); the last component is opened with O_NOFOLLOW, which closes
// the window for files written, not for the directories above them.
import { constants as FS, createReadStream, lstatSync, readlinkSync } from 'node:fs';
import { lstat, mkdir, open, readlink, readdir, symlink, unlink, rmdir, link, chmod, lchown, lutimes, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import * as tar from 'tar-stream';
import { invalid, notFound, BerthError } from '../errors/errors';
import { tarMessage } from '../storage/layers/apply';
import type { ContainerService, Live } from './service';

const MAX_LINKS = 40;

/** Files the runtime mounts over the rootfs: cp reads and writes the container directory's copy. */
const MOUNTED_FILES: Record<string, string> = { '/etc/hostname': 'hostname', '/etc/hosts': 'hosts', '/etc/resolv.conf': 'resolv.conf' };

/** What the walk below asks of the filesystem: an lstat (null when the path does not exist) or a readlink. */
type WalkAsk = { lstat: string } | { readlink: string };
type Resolved = { inner: string; host: string };

// The walk itself, written once for the async and the sync caller: it yields each filesystem question
// and is resumed with the answer.
function* walkInRoot(root: string, p: string, followFinal: boolean): Generator<WalkAsk, Resolved, Stats | string | null> {
  const stack: string[] = [];
  const queue = p.split('/').filter((c) => c !== '' && c !== '.');
  let links = 0;
  let missing = false;
  while (queue.length) {
    const c = queue.shift()!;
    if (c === '..') {
      stack.pop();
      continue;
    }
    const isLast = queue.length === 0;
    if (missing || (isLast && !followFinal)) {
      stack.push(c);
      continue;
    }
    const candidate = path.join(root, ...stack, c);
    const st = (yield { lstat: candidate }) as Stats | null;
    if (!st) {
      missing = true;
      stack.push(c);
      continue;
    }
    if (!st.isSymbolicLink()) {
      stack.push(c);
      continue;
    }
    if (++links > MAX_LINKS) throw invalid(`too many levels of symbolic links: ${p}`);
    const target = (yield { readlink: candidate }) as string;
    if (target.startsWith('/')) stack.length = 0;
    queue.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return { inner: '/' + stack.join('/'), host: stack.length ? path.join(root, ...stack) : root };
}

function missingPath(e: unknown): null {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
  return null;
}

/**
 * Resolves container path `p` under host directory `root`. Returns the container path (absolute, clean)
 * and the host path. `followFinal`: whether a symlink in the last component is followed too.
 * Components that do not exist are kept as given (cleaned lexically), so a target to be created resolves.
 */
export async function resolveInRoot(root: string, p: string, followFinal: boolean): Promise<Resolved> {
  const walk = walkInRoot(root, p, followFinal);
  let step = walk.next();
  while (!step.done) {
    const ask = step.value;
    step = walk.next('lstat' in ask ? await lstat(ask.lstat).catch(missingPath) : await readlink(ask.readlink));
  }
  return step.value;
}

/** resolveInRoot for the few small reads on a request's path (a container's /etc/passwd), where the
 *  thread-pool round trips of the async calls cost more than the calls themselves. */
export function resolveInRootSync(root: string, p: string, followFinal: boolean): Resolved {
  const walk = walkInRoot(root, p, followFinal);
  let step = walk.next();
  while (!step.done) {
    const ask = step.value;
    let answer: Stats | string | null;
    if ('lstat' in ask) {
      try {
        answer = lstatSync(ask.lstat);
      } catch (e) {
        answer = missingPath(e);
      }
    } else {
      answer = readlinkSync(ask.readlink);
    }
    step = walk.next(answer);
  }
  return step.value;
}

/** Go's os.FileMode bits for a stat (what X-Docker-Container-Path-Stat carries). */
export function goFileMode(st: Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m += 2 ** 31;
  else if (st.isSymbolicLink()) m += 2 ** 27;
  else if (st.isFIFO()) m += 2 ** 25;
  else if (st.isSocket()) m += 2 ** 24;
  else if (st.isCharacterDevice()) m += 2 ** 26 + 2 ** 21;
  else if (st.isBlockDevice()) m += 2 ** 26;
  if (st.mode & 0o4000) m += 2 ** 23;
  if (st.mode & 0o2000) m += 2 ** 22;
  if (st.mode & 0o1000) m += 2 ** 20;
  return m;
}

/** Go's time.Time JSON: RFC3339 with the fraction trimmed of trailing zeros. */
function goTime(st: Stats & { mtimeNs?: bigint }): string {
  const ns = st.mtimeNs ?? BigInt(Math.round(st.mtimeMs * 1e6));
  const secs = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  const base = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  return `${base}${frac ? '.' + frac : ''}Z`;
}

/** path.Base as Docker applies it to the requested path, keeping a trailing "/." as ".". */
function baseName(p: string): string {
  if (/(^|\/)\.$/.test(p)) return '.';
  const clean = path.posix.normalize('/' + p);
  return clean === '/' ? '/' : path.posix.basename(clean);
}

interface Located { inner: string; host: string; st: Stats; linkTarget: string }

async function locate(svc: ContainerService, live: Live, root: string, p: string, ref: string): Promise<Located> {
  if (!p) throw invalid('Path cannot be empty');
  // A trailing slash or "/." asks for the directory a symlink points to; otherwise the link itself.
  const follow = /\/\.?$/.test(p);
  const r = await resolveInRoot(root, p, follow);
  const mounted = MOUNTED_FILES[r.inner];
  const host = mounted ? path.join(svc.containerDir(live.rec.id), mounted) : r.host;
  let st: Stats;
  try {
    st = await lstat(host, { bigint: false });
    (st as Stats & { mtimeNs?: bigint }).mtimeNs = (await lstat(host, { bigint: true })).mtimeNs;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(`Could not find the file ${p} in container ${ref}`);
    throw e;
  }
  if (follow && !st.isDirectory()) throw invalid(`not a directory: ${p}`);
  let linkTarget = '';
  if (st.isSymbolicLink()) linkTarget = (await resolveInRoot(root, r.inner, true)).inner;
  return { inner: r.inner, host, st, linkTarget };
}

function statHeader(p: string, l: Located): string {
  const json = JSON.stringify({ name: baseName(p), size: l.st.size, mode: goFileMode(l.st), mtime: goTime(l.st), linkTarget: l.linkTarget });
  return Buffer.from(json).toString('base64');
}

/** HEAD: the stat header only. */
export async function statPath(svc: ContainerService, ref: string, p: string): Promise<string> {
  const live = svc.lookup(ref);
  return svc.withRootfs(live, async (root) => statHeader(p, await locate(svc, live, root, p, ref)), { mounts: true });
}

/** GET: a tar of the path (its top entry named as the requested basename) written to `out`. `onStat` is
 *  called with the header before the first byte, so that a missing path can still become a 404. */
export async function getArchive(svc: ContainerService, ref: string, p: string, onStat: (hdr: string) => Writable): Promise<void> {
  const live = svc.lookup(ref);
  await svc.withRootfs(live, async (root) => {
    const l = await locate(svc, live, root, p, ref);
    const out = onStat(statHeader(p, l));
    const pack = tar.pack();
    // pack is a streamx stream: piped by hand, since node's pipeline() does not see it end.
    const done = new Promise<void>((resolve, reject) => {
      out.once('finish', resolve);
      out.once('close', resolve);
      out.once('error', reject);
      pack.once('error', reject);
    });
    pack.pipe(out);
    try {
      await addTree(pack, l.host, baseName(p) === '/' ? '.' : baseName(p), l.st);
      pack.finalize();
    } catch (e) {
      pack.destroy(e as Error);
    }
    await done;
  }, { mounts: true });
}

async function addTree(pack: tar.Pack, host: string, name: string, st: Stats): Promise<void> {
  const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  if (st.isDirectory()) {
    await entry(pack, { ...base, name: name.endsWith('/') ? name : `${name}/`, type: 'directory' });
    for (const child of (await readdir(host)).sort()) {
      const cp = path.join(host, child);
      let cst: Stats;
      try {
        cst = await lstat(cp);
      } catch {
        continue; // gone meanwhile (a running container)
      }
      await addTree(pack, cp, name === '.' ? child : `${name.replace(/\/$/, '')}/${child}`, cst);
    }
  } else if (st.isSymbolicLink()) {
    await entry(pack, { ...base, type: 'symlink', linkname: await readlink(host) });
  } else if (st.isFile()) {
    const fh = await open(host, FS.O_RDONLY | FS.O_NOFOLLOW);
    try {
      const size = (await fh.stat()).size;
      await new Promise<void>((resolve, reject) => {
        if (size === 0) {
          pack.entry({ ...base, type: 'file', size }, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
          return;
        }
        const w = pack.entry({ ...base, type: 'file', size }, (err) => (err ? reject(err) : resolve()));
        const r = createReadStream('', { fd: fh.fd, autoClose: false, start: 0, end: size - 1 });
        r.on('error', reject);
        r.pipe(w);
      });
    } finally {
      await fh.close();
    }
  } else if (st.isFIFO()) {
    await entry(pack, { ...base, type: 'fifo' });
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const major = Math.floor(st.rdev / 256) & 0xfff, minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    await entry(pack, { ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
  }
  // Sockets are not archived (as tar does).
}

function entry(pack: tar.Pack, h: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(h, (err) => (err ? reject(err) : resolve())));
}

export interface PutOptions { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }

/** PUT: extracts the tar `body` into directory `p` of the container. */
export async function putArchive(svc: ContainerService, ref: string, p: string, body: Readable, o: PutOptions): Promise<void> {
  const live = svc.lookup(ref);
  if (!p) throw invalid('Path cannot be empty');
  await svc.withRootfs(live, async (root) => {
    const dest = await resolveInRoot(root, p, true);
    // Where the files would land decides, as in Docker: the deepest mount holding the destination (a
    // volume, bind, tmpfs or image), else the container's root.
    const under = (live.rec.mounts ?? [])
      .filter((m) => dest.inner === m.Destination || dest.inner.startsWith(`${m.Destination}/`))
      .sort((a, b) => b.Destination.length - a.Destination.length)[0];
    if (under ? !under.RW : live.rec.hostConfig.ReadonlyRootfs && svc.isRunningId(live.rec.id)) {
      throw new BerthError('forbidden', under ? 'mounted volume is marked read-only' : 'container rootfs is marked read-only');
    }
    let st: Stats;
    try {
      st = await stat(dest.host);
    } catch {
      throw notFound(`Could not find the file ${p} in container ${ref}`);
    }
    if (!st.isDirectory()) throw invalid(`extraction point is not a directory`);
    await extract(root, dest.inner, body, o);
  }, { mounts: true });
}

async function extract(root: string, destInner: string, body: Readable, o: PutOptions): Promise<void> {
  const ex = tar.extract();
  const dirTimes: Array<[string, Date]> = [];
  const work = (async () => {
    for await (const e of ex) {
      const h = e.header;
      e.on('error', () => { /* a truncated archive: the extractor reports it */ });
      try {
        await extractOne(root, destInner, h, e, o, dirTimes);
      } finally {
        e.resume();
      }
    }
  })();
  body.pipe(ex);
  body.on('error', (err) => ex.destroy(err));
  // A body that is not a whole tar is the client's error (400), in the words load and import use; the
  // member being written then fails too ("Stream was destroyed"), so the extractor's own error is told.
  let broken: Error | undefined;
  ex.on('error', (e: Error) => { broken ??= e; });
  await work.catch((e) => {
    const tarError = [e as Error, broken].find((x) => x && /Unexpected end of data|Invalid tar header/.test(x.message));
    throw e instanceof BerthError || !tarError ? e : invalid(tarMessage(tarError));
  });
  // Directory times last: writing into a directory changes its mtime.
  for (const [d, t] of dirTimes.reverse()) await lutimes(d, t, t).catch(() => {});
}

async function extractOne(root: string, destInner: string, h: tar.Header, e: AsyncIterable<unknown>, o: PutOptions, dirTimes: Array<[string, Date]>): Promise<void> {
  const rel = h.name.replace(/^\/+/, '');
  if (rel === '' || rel === '.' || rel === './') return;
  // The entry's parent is resolved in the root (symlinks followed, re-rooted); its own name is not followed.
  const r = await resolveInRoot(root, path.posix.join(destInner, rel), false);
  if (r.host === root) return;
  const parent = path.dirname(r.host);
  await mkdir(parent, { recursive: true });
  let existing: Stats | undefined;
  try {
    existing = await lstat(r.host);
  } catch {
    existing = undefined;
  }
  const isDir = h.type === 'directory';
  if (existing && o.noOverwriteDirNonDir) {
    if (existing.isDirectory() && !isDir) throw invalid(`cannot overwrite directory "${r.inner}" with non-directory "${rel}"`);
    if (!existing.isDirectory() && isDir) throw invalid(`cannot overwrite non-directory "${r.inner}" with directory "${rel}"`);
  }
  if (existing && !(existing.isDirectory() && isDir)) {
    if (existing.isDirectory()) await rmdir(r.host).catch(() => {});
    else await unlink(r.host);
  }
  const mode = (h.mode ?? 0o644) & 0o7777;
  switch (h.type) {
    case 'directory':
      if (!existing || !existing.isDirectory()) await mkdir(r.host, { mode });
      break;
    case 'file':
    case 'contiguous-file': {
      const fh = await open(r.host, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, mode);
      try {
        // tar-stream entries are streamx streams, which node's pipeline() does not finish on: read them
        // as async iterables instead.
        for await (const chunk of e) await fh.write(chunk as Buffer);
      } finally {
        await fh.close();
      }
      break;
    }
    case 'symlink':
      await symlink(h.linkname ?? '', r.host);
      break;
    case 'link': {
      const target = await resolveInRoot(root, path.posix.join(destInner, (h.linkname ?? '').replace(/^\/+/, '')), false);
      await link(target.host, r.host);
      break;
    }
    default:
      return; // devices and fifos are not created by cp (an unprivileged copy could not either)
  }
  const uid = o.copyUIDGID ? h.uid ?? 0 : 0;
  const gid = o.copyUIDGID ? h.gid ?? 0 : 0;
  await lchown(r.host, uid, gid).catch(() => {});
  if (h.type !== 'symlink') await chmod(r.host, mode);
  const mtime = h.mtime ?? new Date();
  if (h.type === 'directory') dirTimes.push([r.host, mtime]);
  else await lutimes(r.host, mtime, mtime).catch(() => {});
}
