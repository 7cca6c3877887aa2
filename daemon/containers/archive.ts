// docker cp: HEAD/GET/PUT /containers/{id}/archive. Every file is reached through the addon's in-root
// calls (runtime/inroot.ts): paths are resolved beneath an fd of the container's root (symlinks re-rooted,
// `..` never above it, by the kernel's openat2 RESOLVE_IN_ROOT or an O_PATH walk), and files are read,
// created, chowned and chmod'ed through fds. A running container that swaps a directory for a symlink
// while a copy runs can only send it elsewhere inside its own root, never to the host's files.
// A running container with volumes is reached through /proc/PID/root, opened only while PID is still the
// container's process.
import { toContainer, toHost } from '../runtime/userns';
import { write as writeCb, futimes as futimesCb } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import * as tar from 'tar-stream';
import { invalid, notFound, conflict, BerthError } from '../errors/errors';
import { withRoot, closeFile, errnoOf, readChunks, type Root, type InRootStat } from '../runtime/inroot';
import { tarMessage } from '../storage/layers/apply';
import type { ContainerService, Live } from './service';
import { drainOrClose } from '../lib/streams';

const writeFd = promisify(writeCb);
const futimes = promisify(futimesCb);

/** Files the runtime mounts over the rootfs: cp reads the container directory's copy. */
const MOUNTED_FILES: Record<string, string> = { '/etc/hostname': 'hostname', '/etc/hosts': 'hosts', '/etc/resolv.conf': 'resolv.conf' };

/** Go's os.FileMode bits for a stat (what X-Docker-Container-Path-Stat carries). */
export function goFileMode(st: InRootStat): number {
  let m = st.mode & 0o777;
  switch (st.type) {
    case 'dir': m += 2 ** 31; break;
    case 'symlink': m += 2 ** 27; break;
    case 'fifo': m += 2 ** 25; break;
    case 'socket': m += 2 ** 24; break;
    case 'char': m += 2 ** 26 + 2 ** 21; break;
    case 'block': m += 2 ** 26; break;
    default: break;
  }
  if (st.mode & 0o4000) m += 2 ** 23;
  if (st.mode & 0o2000) m += 2 ** 22;
  if (st.mode & 0o1000) m += 2 ** 20;
  return m;
}

/** Go's time.Time JSON: RFC3339 with the fraction trimmed of trailing zeros. */
function goTime(st: InRootStat): string {
  const frac = String(st.mtimeNsec).padStart(9, '0').replace(/0+$/, '');
  const base = new Date(st.mtimeSec * 1000).toISOString().slice(0, 19);
  return `${base}${frac ? '.' + frac : ''}Z`;
}

const mtimeOf = (st: InRootStat) => new Date(st.mtimeSec * 1000 + Math.floor(st.mtimeNsec / 1e6));

/** path.Base as Docker applies it to the requested path, keeping a trailing "/." as ".". */
function baseName(p: string): string {
  if (/(^|\/)\.$/.test(p)) return '.';
  const clean = path.posix.normalize('/' + p);
  return clean === '/' ? '/' : path.posix.basename(clean);
}

/** Runs fn with the container's root open (through /proc/PID/root for a running container with
 *  volumes) and its own directory (the hosts, hostname and resolv.conf berth mounts over the root). */
async function inContainer<T>(svc: ContainerService, live: Live, fn: (root: Root, own: Root) => Promise<T>): Promise<T> {
  try {
    return await svc.withRootfs(live, (rootPath, owner) => withRoot(rootPath, (root) => withRoot(svc.containerDir(live.rec.id), (own) => fn(root, own)), owner), { mounts: true });
  } catch (e) {
    // The process whose /proc/PID/root was to be used is gone (the container stopped meanwhile).
    if (errnoOf(e) === 'ESRCH') throw conflict(`Container ${live.rec.id} is not running: ${(e as Error).message}`);
    throw e;
  }
}

/** Where a requested path is: the root it is read from (the container's, or its own directory for the
 *  files berth mounts) and the path there, its path in the container, its lstat and, for a symlink,
 *  where it leads in the container. */
interface Located { root: Root; at: string; inner: string; st: InRootStat; linkTarget: string }

async function locate(root: Root, own: Root, p: string, ref: string): Promise<Located> {
  if (!p) throw invalid('Path cannot be empty');
  // A trailing slash or "/." asks for the directory a symlink points to; otherwise the link itself.
  const follow = /\/\.?$/.test(p);
  const missing = () => notFound(`Could not find the file ${p} in container ${ref}`);
  let r: { inner: string; stat: InRootStat | null };
  try {
    r = await root.resolve(p, follow);
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw missing();
    if (code === 'ELOOP') throw invalid(`too many levels of symbolic links: ${p}`);
    throw e;
  }
  const mounted = MOUNTED_FILES[r.inner];
  const at = mounted ? own : root;
  const atPath = mounted ? `/${mounted}` : r.inner;
  const st = mounted ? (await own.resolve(atPath, false)).stat : r.stat;
  if (!st) throw missing();
  if (follow && st.type !== 'dir') throw invalid(`not a directory: ${p}`);
  let linkTarget = '';
  if (st.type === 'symlink') linkTarget = await root.resolve(r.inner, true).then((t) => t.inner, () => '');
  return { root: at, at: atPath, inner: r.inner, st, linkTarget };
}

function statHeader(p: string, l: Located): string {
  const json = JSON.stringify({ name: baseName(p), size: l.st.size, mode: goFileMode(l.st), mtime: goTime(l.st), linkTarget: l.linkTarget });
  return Buffer.from(json).toString('base64');
}

/** HEAD: the stat header only. */
export async function statPath(svc: ContainerService, ref: string, p: string): Promise<string> {
  const live = svc.lookup(ref);
  return inContainer(svc, live, async (root, own) => statHeader(p, await locate(root, own, p, ref)));
}

/** GET: a tar of the path (its top entry named as the requested basename) written to `out`. `onStat` is
 *  called with the header before the first byte, so that a missing path can still become a 404. */
export async function getArchive(svc: ContainerService, ref: string, p: string, onStat: (hdr: string) => Writable): Promise<void> {
  const live = svc.lookup(ref);
  await inContainer(svc, live, async (root, own) => {
    const l = await locate(root, own, p, ref);
    const out = onStat(statHeader(p, l));
    if (out.destroyed) throw new Error('the client closed the connection');
    const pack = tar.pack();
    // pack is a streamx stream: piped by hand, since node's pipeline() does not see it end. The client
    // going away (out closed before it finished) destroys the pack, which fails the walk below; the mount
    // is let go only once the walk has closed its files.
    const done = new Promise<void>((resolve, reject) => {
      out.once('finish', resolve);
      out.once('close', () => {
        if (!out.writableFinished) pack.destroy(new Error('the client closed the connection'));
        resolve();
      });
      out.once('error', reject);
      pack.once('error', reject);
    });
    done.catch(() => undefined);
    pack.pipe(out);
    try {
      await addTree(pack, l.root, l.at, baseName(p) === '/' ? '.' : baseName(p), l.st, shiftsOf(svc, live).toCtr);
      pack.finalize();
    } catch (e) {
      if (!pack.destroyed) pack.destroy(e as Error);
    }
    await done;
  });
}

/** Gone meanwhile (a running container), or no longer of the type it was listed as. */
const vanished = (e: unknown) => ['ENOENT', 'ENOTDIR', 'ELOOP', 'EINVAL'].includes(errnoOf(e) ?? '');

/** A remapped container's files are owned by host ids of its range: its archives speak its own ids. */
interface IdShift { uid: (id: number) => number; gid: (id: number) => number }
const SAME: IdShift = { uid: (id) => id, gid: (id) => id };
function shiftsOf(svc: ContainerService, live: ReturnType<ContainerService['lookup']>): { toCtr: IdShift; toHost: IdShift } {
  const r = svc.remapOf(live.rec);
  if (!r) return { toCtr: SAME, toHost: SAME };
  return {
    toCtr: { uid: (id) => toContainer(r.uidMappings, id), gid: (id) => toContainer(r.gidMappings, id) },
    toHost: { uid: (id) => toHost(r.uidMappings, id), gid: (id) => toHost(r.gidMappings, id) },
  };
}

async function addTree(pack: tar.Pack, root: Root, at: string, name: string, st: InRootStat, ids: IdShift = SAME): Promise<void> {
  const base = { name, mode: st.mode & 0o7777, uid: ids.uid(st.uid), gid: ids.gid(st.gid), mtime: mtimeOf(st) };
  switch (st.type) {
    case 'dir': {
      await entry(pack, { ...base, name: name.endsWith('/') ? name : `${name}/`, type: 'directory' });
      let children: Array<{ name: string; stat: InRootStat }>;
      try {
        children = await root.list(at);
      } catch (e) {
        if (vanished(e)) return;
        throw e;
      }
      for (const c of children) {
        await addTree(pack, root, path.posix.join(at, c.name), name === '.' ? c.name : `${name.replace(/\/$/, '')}/${c.name}`, c.stat, ids);
      }
      return;
    }
    case 'symlink': {
      const linkname = await root.readlink(at).catch((e) => (vanished(e) ? null : Promise.reject(e)));
      if (linkname !== null) await entry(pack, { ...base, type: 'symlink', linkname });
      return;
    }
    case 'file': {
      let f: { fd: number; stat: InRootStat };
      try {
        f = await root.openFile(at);
      } catch (e) {
        if (vanished(e)) return;
        throw e;
      }
      try {
        const size = f.stat.size;
        // Exactly `size` bytes: a file that grows meanwhile is cut, one that shrinks fails the entry.
        await new Promise<void>((resolve, reject) => {
          if (size === 0) {
            pack.entry({ ...base, type: 'file', size }, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
            return;
          }
          // A client gone destroys the pack and with it this entry: its error is heard here (unheard, it would
          // take berthd down), the reading stops, and the promise settles only once the reading has stopped,
          // so that the fd is never closed under a read still running.
          let failure: Error | undefined;
          let entryDone = false;
          let readDone = false;
          const settle = () => {
            if (!readDone || (!entryDone && !failure)) return;
            if (failure) reject(failure);
            else resolve();
          };
          const w = pack.entry({ ...base, type: 'file', size }, (err) => {
            if (err) failure ??= err;
            entryDone = true;
            settle();
          });
          w.on('error', (err: Error) => {
            failure ??= err;
          });
          void (async () => {
            for await (const c of readChunks(f.fd, size)) {
              if (failure || w.destroyed) break;
              if (!w.write(c)) await drainOrClose(w);
            }
            if (!failure && w.destroyed) failure = new Error('the archive\'s reader went away');
            if (!failure) w.end(() => undefined);
          })().catch((err: Error) => {
            failure ??= err;
            w.destroy(err);
          }).finally(() => {
            readDone = true;
            settle();
          });
        });
      } finally {
        await closeFile(f.fd);
      }
      return;
    }
    case 'fifo':
      await entry(pack, { ...base, type: 'fifo' });
      return;
    case 'char':
    case 'block':
      await entry(pack, { ...base, type: st.type === 'char' ? 'character-device' : 'block-device', devmajor: st.rdevMajor, devminor: st.rdevMinor });
      return;
    default:
      // Sockets are not archived (as tar does).
  }
}

function entry(pack: tar.Pack, h: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(h, (err) => (err ? reject(err) : resolve())));
}

export interface PutOptions { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }

/** PUT: extracts the tar `body` into directory `p` of the container. */
export async function putArchive(svc: ContainerService, ref: string, p: string, body: Readable, o: PutOptions): Promise<void> {
  const live = svc.lookup(ref);
  if (!p) throw invalid('Path cannot be empty');
  await inContainer(svc, live, async (root) => {
    const dest = await root.resolve(p, true).catch((e) => {
      if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errnoOf(e) ?? '')) throw notFound(`Could not find the file ${p} in container ${ref}`);
      throw e;
    });
    // Where the files would land decides, as in Docker: the deepest mount holding the destination (a
    // volume, bind, tmpfs or image), else the container's root.
    const under = (live.rec.mounts ?? [])
      .filter((m) => dest.inner === m.Destination || dest.inner.startsWith(`${m.Destination}/`))
      .sort((a, b) => b.Destination.length - a.Destination.length)[0];
    if (under ? !under.RW : live.rec.hostConfig.ReadonlyRootfs && svc.isRunningId(live.rec.id)) {
      throw new BerthError('forbidden', under ? 'mounted volume is marked read-only' : 'container rootfs is marked read-only');
    }
    if (!dest.stat) throw notFound(`Could not find the file ${p} in container ${ref}`);
    if (dest.stat.type !== 'dir') throw invalid(`extraction point is not a directory`);
    await extract(root, dest.inner, body, o, shiftsOf(svc, live).toHost);
  });
}

async function extract(root: Root, destInner: string, body: Readable, o: PutOptions, ids: IdShift = SAME): Promise<void> {
  const ex = tar.extract();
  const dirTimes: Array<[string, number]> = [];
  const work = (async () => {
    for await (const e of ex) {
      const h = e.header;
      e.on('error', () => { /* a truncated archive: the extractor reports it */ });
      try {
        await extractOne(root, destInner, h, e, o, dirTimes, ids);
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
  for (const [d, t] of dirTimes.reverse()) await root.setTimes(d, t).catch(() => {});
}

/** Whether `p` (clean, absolute) is `dir` or below it. */
const within = (dir: string, p: string) => dir === '/' || p === dir || p.startsWith(`${dir}/`);

async function extractOne(root: Root, destInner: string, h: tar.Header, e: AsyncIterable<unknown>, o: PutOptions, dirTimes: Array<[string, number]>, ids: IdShift): Promise<void> {
  const rel = h.name.replace(/^\/+/, '');
  if (rel === '' || rel === '.' || rel === './') return;
  // A name that climbs out of the extraction directory is refused before anything of it is written (the
  // directory's own symlinks are then followed inside the root only).
  const target = path.posix.join(destInner, rel);
  if (!within(destInner, target)) throw invalid(`${JSON.stringify(h.name)} is outside of ${JSON.stringify(destInner)}`);
  if (target === destInner) return;
  let linkname: string | undefined;
  if (h.type === 'link') {
    linkname = path.posix.join(destInner, (h.linkname ?? '').replace(/^\/+/, ''));
    if (!within(destInner, linkname) || linkname === destInner) throw invalid(`invalid hardlink ${JSON.stringify(target)} -> ${JSON.stringify(h.linkname ?? '')}`);
  } else if (h.type === 'symlink') {
    linkname = h.linkname ?? '';
  }
  const type = h.type === 'directory' ? 'dir' : h.type === 'file' || h.type === 'contiguous-file' ? 'file' : h.type === 'symlink' ? 'symlink' : h.type === 'link' ? 'link' : undefined;
  if (!type) return; // devices and fifos are not created by cp (an unprivileged copy could not either)
  const mtime = (h.mtime ?? new Date()).getTime() / 1000;
  let fd: number;
  try {
    fd = await root.place({
      path: target, type, mode: (h.mode ?? 0o644) & 0o7777,
      uid: ids.uid(o.copyUIDGID ? h.uid ?? 0 : 0), gid: ids.gid(o.copyUIDGID ? h.gid ?? 0 : 0),
      linkname, ...(type === 'symlink' ? { mtime } : {}),
      parents: { mode: 0o755, uid: ids.uid(0), gid: ids.gid(0) }, noOverwriteDirNonDir: o.noOverwriteDirNonDir,
    });
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EISDIR' && o.noOverwriteDirNonDir) throw invalid(`cannot overwrite directory "${target}" with non-directory "${rel}"`);
    if (code === 'ENOTDIR' && o.noOverwriteDirNonDir && type === 'dir') throw invalid(`cannot overwrite non-directory "${target}" with directory "${rel}"`);
    if (type === 'link' && (code === 'ENOENT' || code === 'EPERM')) throw invalid(`invalid hardlink ${JSON.stringify(target)} -> ${JSON.stringify(h.linkname ?? '')}: ${(err as Error).message}`);
    throw err;
  }
  if (type === 'dir') dirTimes.push([target, mtime]);
  if (fd < 0) return;
  try {
    // tar-stream entries are streamx streams, which node's pipeline() does not finish on: read them as
    // async iterables instead.
    for await (const chunk of e) {
      const b = chunk as Buffer;
      for (let off = 0; off < b.length;) off += (await writeFd(fd, b, off, b.length - off)).bytesWritten;
    }
    await futimes(fd, mtime, mtime);
  } finally {
    await closeFile(fd);
  }
}
