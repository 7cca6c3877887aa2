// Archives and layers arrive plain or compressed; the first bytes say which. gzip is undone here (zlib is
// in Node), zstd with fzstd (Node 20's zlib has no zstd; fzstd is a small pure-JS streaming decoder, chosen
// so that no native module is needed); bzip2 and xz are recognised so that the error says what the archive
// is instead of "invalid tar header".
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { invalid } from '../../errors/errors';
import { readAhead, replay } from '../../lib/readahead';

/** Bytes of the chunks handed to the tar parser and to zlib: each costs tens of microseconds per chunk
 *  whatever its size (zlib: a trip through the thread pool), and sockets and pipes deliver 16–64 KiB at a
 *  time; feeding 1 MiB made gunzip four times faster here. */
const TAR_CHUNK = 1 << 20;
/** A chunk at least this large is passed on as it is (joining it to others would copy it for little gain). */
const PASS_CHUNK = TAR_CHUNK / 4;

/**
 * Chunks whose producer reuses their memory: the function is called once the chunk has been consumed
 * (only the gzip path calls it, when zlib has read the chunk; a chunk never handed back is simply
 * garbage). A chunk the consumer joins to others or keeps is never handed back.
 */
export const afterUse = new WeakMap<Buffer, () => void>();

/** `src` in chunks of at least TAR_CHUNK bytes (except the last). */
export async function* coalesced(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of src) {
    if (c.length >= PASS_CHUNK) {
      // What is pending goes first, on its own (zlib's output alternates large pieces and small ones).
      if (n > 0) {
        yield parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
        parts = [];
        n = 0;
      }
      yield c;
      continue;
    }
    parts.push(c);
    n += c.length;
    if (n >= TAR_CHUNK) {
      yield parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
      parts = [];
      n = 0;
    }
  }
  if (n > 0) yield parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
}

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  return 'none';
}

/**
 * The chunks of a byte stream one by one, as the stream produced them. Iterating a byte-mode Readable
 * (for await) reads everything it has buffered at once, which joins the buffered chunks into a new buffer:
 * a copy, and an allocation V8 counts towards its next full garbage collection.
 */
export async function* chunksOf(r: Readable): AsyncGenerator<Buffer> {
  const q: Buffer[] = [];
  let ended = false;
  let err: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  r.on('data', (c: Buffer) => {
    q.push(c);
    if (q.length >= 2) r.pause();
    notify();
  });
  r.on('end', () => {
    ended = true;
    notify();
  });
  r.on('error', (e) => {
    err ??= e;
    notify();
  });
  r.on('close', () => {
    if (!ended) err ??= new Error('premature close');
    notify();
  });
  try {
    for (;;) {
      if (q.length) {
        const c = q.shift()!;
        if (q.length < 2 && r.isPaused()) r.resume();
        yield c;
        continue;
      }
      if (err) throw err;
      if (ended) return;
      await new Promise<void>((res) => (wake = res));
    }
  } finally {
    r.destroy();
  }
}

/** The uncompressed bytes of `src`, whatever compression it starts with. */
export async function* decompressed(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  const ahead = await readAhead(it, 6);
  const kind = detectCompression(Buffer.concat(ahead.chunks));
  const whole = () => replay(ahead, it);
  try {
    if (kind === 'none') {
      yield* whole();
      return;
    }
    if (kind === 'zstd') {
      const ready: Buffer[] = [];
      const z = new ZstdDecompress((data) => {
        ready.push(Buffer.from(data));
      });
      try {
        for await (const c of whole()) {
          z.push(c);
          while (ready.length) yield ready.shift()!;
        }
        z.push(new Uint8Array(0), true);
      } catch (e) {
        if (e instanceof Error && !(e as NodeJS.ErrnoException).code?.startsWith?.('ERR_')) throw invalid(`zstd: ${e.message}`);
        throw e;
      }
      while (ready.length) yield ready.shift()!;
      return;
    }
    if (kind !== 'gzip') throw invalid(`${kind}-compressed archives are not supported; use an uncompressed, gzip- or zstd-compressed tar`);
    // Large output chunks: every chunk costs a trip through the tar parser and the unpacker, and zlib's
    // default of 16 KiB made that the most expensive part of a pull.
    const gz = createGunzip({ chunkSize: 1 << 20 });
    // Fed one chunk at a time, so that a chunk whose producer wants it back (afterUse) is handed back as
    // soon as zlib has consumed it; an error of the source reaches the reader through gz.
    void (async () => {
      try {
        for await (const c of coalesced(whole())) {
          await new Promise<void>((res, rej) => {
            gz.write(c, (e) => (e ? rej(e) : res()));
          });
          const back = afterUse.get(c);
          if (back) {
            afterUse.delete(c);
            back();
          }
        }
        gz.end();
      } catch (e) {
        gz.destroy(e as Error);
      }
    })();
    const out = gz;
    try {
      yield* chunksOf(out);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (typeof code === 'string' && code.startsWith('Z_')) throw invalid(`gzip: ${(e as Error).message}`);
      throw e;
    }
  } finally {
    if (typeof it.return === 'function') await it.return().catch(() => undefined);
  }
}
