// A `docker load` archive, spooled to disk so that it can be read in any order without holding it in
// memory: manifest.json usually comes last, after the layers it describes.
//
// Members are written to numbered files in a private temp directory; their names are only keys of a map,
// never paths on disk, so a hostile name cannot place a file anywhere. Symlinks and hardlinks between
// members (older `docker save` writes a shared layer.tar once and links the others to it) are resolved in
// the archive's own namespace, which is rooted: `..` at the top stays at the top.
import { createReadStream, promises as fsp, constants as fsc } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { invalid } from '../errors/errors';
import { readTar, drain } from '../storage/layers/apply';

interface Member {
  file: string;
  size: number;
}

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

  private constructor(readonly dir: string) {}

  /** Reads the whole archive (uncompressed tar bytes) into a new directory under `tmpRoot`. Any error in
   *  the archive removes what was spooled and is thrown. */
  static async create(tmpRoot: string, source: AsyncIterable<Buffer>): Promise<Spool> {
    await fsp.mkdir(tmpRoot, { recursive: true, mode: 0o700 });
    const dir = path.join(tmpRoot, `load-${randomBytes(8).toString('hex')}`);
    await fsp.mkdir(dir, { mode: 0o700 });
    const s = new Spool(dir);
    let n = 0;
    try {
      await readTar(source, async (h, stream) => {
        const key = split(h.name).join('/');
        switch (h.type) {
          case 'file':
          case 'contiguous-file': {
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
      });
    } catch (e) {
      await s.dispose();
      throw e;
    }
    return s;
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
    return (async function* () {
      const rs = createReadStream(m.file);
      try {
        for await (const c of rs as AsyncIterable<Buffer>) yield c;
      } finally {
        rs.destroy();
      }
    })();
  }

  async dispose(): Promise<void> {
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
