// Host-side file work inside a container's root, a volume or a build context, done so that it cannot
// leave that directory: the addon resolves every path beneath a directory fd (openat2 RESOLVE_IN_ROOT, or
// its own O_PATH walk on kernels without it) and acts through fds, never through host paths (see
// addon/src/fs/inroot.h). A container that swaps a directory for a symlink while berthd works in its root
// can only send the work somewhere else inside that root.
//
// A Root holds one directory fd; it is closed by close() (withRoot closes it for you).
import { close as closeCb, read as readCb } from 'node:fs';
import { promisify } from 'node:util';
import { native } from './native';
import type { InRootStat, PlaceSpec } from '../../addon/index';
import type { ProcessRef } from './process';

export type { InRootStat, PlaceSpec };

const closeFd = promisify(closeCb);
const readFd = promisify(readCb);

export class Root {
  private closed = false;

  private constructor(readonly fd: number, readonly label: string) {}

  /** `path`: a directory berthd controls, or /proc/PID/root of `owner`, checked to still be that process
   *  once the root is open (ESRCH otherwise). */
  static async open(path: string, owner?: ProcessRef): Promise<Root> {
    return new Root(await native.rootOpen(path, owner), path);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeFd(this.fd);
  }

  /** Where `p` leads inside the root, and its lstat (null when missing). */
  resolve(p: string, follow: boolean): Promise<{ inner: string; stat: InRootStat | null }> {
    return native.inRootResolve(this.fd, p, follow);
  }

  list(p: string): Promise<Array<{ name: string; stat: InRootStat }>> {
    return native.inRootList(this.fd, p);
  }

  /** A regular file opened for reading; the caller closes the fd (closeFd). */
  openFile(p: string): Promise<{ fd: number; stat: InRootStat }> {
    return native.inRootOpenFile(this.fd, p);
  }

  readlink(p: string): Promise<string> {
    return native.inRootReadlink(this.fd, p);
  }

  mkdirAll(p: string, owner: { mode: number; uid: number; gid: number }): Promise<void> {
    return native.inRootMkdirAll(this.fd, p, owner);
  }

  /** One object at spec.path; a file's fd (open for writing, the caller closes it) or -1. */
  place(spec: PlaceSpec): Promise<number> {
    return native.inRootPlace(this.fd, spec);
  }

  setTimes(p: string, mtime: number): Promise<void> {
    return native.inRootSetTimes(this.fd, p, mtime);
  }

  /** Docker's copy-up: directory `srcPath` of this root into the empty directory `dst`. */
  copyUpInto(srcPath: string, dst: Root): Promise<boolean> {
    return native.inRootCopyUp(this.fd, srcPath, dst.fd);
  }

  /** Bind-mounts what `source` leads to (inside its own root) on `p` beneath this root. */
  async bindFrom(source: Root, sourcePath: string, p: string, o: { file?: boolean; readOnly?: boolean } = {}): Promise<Mounted> {
    const src = await native.inRootOpenPath(source.fd, sourcePath, true);
    try {
      return new Mounted(await native.bindMountInRoot(src, this.fd, p, o));
    } finally {
      await closeFd(src);
    }
  }
}

/** A mount made by Root.bindFrom, held by an fd of its root until unmounted. */
export class Mounted {
  private done = false;

  constructor(private readonly fd: number) {}

  /** Detaches the mount; a second call does nothing. */
  async unmount(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await native.unmountFd(this.fd);
    } finally {
      await closeFd(this.fd);
    }
  }
}

/** Runs fn with `path` open as a Root, closed afterwards whatever happens. */
export async function withRoot<T>(path: string, fn: (r: Root) => Promise<T>, owner?: ProcessRef): Promise<T> {
  const root = await Root.open(path, owner);
  try {
    return await fn(root);
  } finally {
    await root.close();
  }
}

/** A file's fd from Root.openFile or Root.place, closed. */
export function closeFile(fd: number): Promise<void> {
  return closeFd(fd);
}

/** The bytes of an open file, read in order one chunk at a time (up to `limit` bytes): never a read
 *  still under way once the loop is left, so the fd can be closed right after. */
export async function* readChunks(fd: number, limit = Infinity): AsyncIterable<Buffer> {
  let left = limit;
  while (left > 0) {
    const buf = Buffer.allocUnsafe(Math.min(65536, left));
    const { bytesRead } = await readFd(fd, buf, 0, buf.length, null);
    if (bytesRead === 0) return;
    left -= bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

/** The contents of regular file `p` of `root`, chunk by chunk; the file is closed when the loop ends. */
export async function* readFileChunks(root: Root, p: string): AsyncIterable<Buffer> {
  const f = await root.openFile(p);
  try {
    yield* readChunks(f.fd);
  } finally {
    await closeFd(f.fd);
  }
}

/** Small files on paths where a pool round trip costs more than the read (a container's /etc/passwd on
 *  the exec path): synchronous, at most `limit` bytes, null when there is no such file. */
export function readFileInRootSync(rootPath: string, p: string, limit = 4 << 20): string | null {
  return native.inRootReadFileSync(rootPath, p, limit);
}

/** 'openat2' or 'walk'. */
export function inRootResolver(): 'openat2' | 'walk' {
  return native.inRootResolver();
}

/** Errors from the addon carry the errno name in `code`. */
export function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}
