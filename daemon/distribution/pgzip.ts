// gzip of a layer for docker push, compressed on every core at once.
//
// One zlib stream runs on one thread at a time, and deflate is the slowest step of a push (11 MiB/s per core
// on the test machines), so a layer is cut into blocks of a fixed size that are deflated side by side in
// libuv's thread pool and joined in order. Each block but the first is primed with the last 32 KiB of the
// one before it (deflate's whole window), so matches across the boundary are still found, and ends with a
// sync flush (an empty stored block), which leaves it on a byte boundary; a final empty block, the CRC-32 of
// all the input and its length close the member. The output depends only on the input bytes (block
// boundaries are fixed offsets, never where reads happened to end), so the same layer always gives the same
// blob and digest.
//
// A block that deflate cannot shrink (already compressed files: .gz, images, media, random data) costs as
// much CPU as any other and saves nothing. Before deflating a block, three 16 KiB samples of it (start,
// middle, end) are deflated at level 1; if none shrinks below 97 %, the block is written as stored blocks
// (level 0, a copy). The decision depends only on the block's bytes, so it too is the same every time.
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';

/** Input bytes per block. */
export const BLOCK = 1 << 20;
/** deflate's window: what a block is primed with from the block before. */
const WINDOW = 32 * 1024;
const SAMPLE = 16 * 1024;
/** A sample that deflates to more than this fraction of its size counts as incompressible. */
const STORE_RATIO = 0.97;
/** The raw deflate of an empty final block with fixed codes (BFINAL=1, BTYPE=01, end-of-block code). */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);
/** gzip's member header as zlib writes it: no name, no mtime, OS unix. */
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

function deflate(input: Buffer, opts: ZlibOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => deflateRaw(input, opts, (err, out) => (err ? reject(err) : resolve(out))));
}

/** Whether deflate would save anything on `block`, judged from three samples of it. */
async function compressible(block: Buffer): Promise<boolean> {
  if (block.length <= 3 * SAMPLE) return true;
  // One after another: the first sample of a compressible block nearly always says so, and the others
  // (a third of a block's cost at level 1 otherwise) are never deflated.
  for (const o of [0, (block.length - SAMPLE) >> 1, block.length - SAMPLE]) {
    const out = await deflate(block.subarray(o, o + SAMPLE), { level: 1, chunkSize: SAMPLE * 2 });
    if (out.length < SAMPLE * STORE_RATIO) return true;
  }
  return false;
}

async function deflateBlock(block: Buffer, dict: Buffer | undefined, level: number): Promise<Buffer> {
  const store = !(await compressible(block));
  // deflateBound: stored blocks add 5 bytes per 64 KiB; one output buffer instead of 16 KiB pieces joined.
  const chunkSize = block.length + (block.length >> 8) + 1024;
  return deflate(block, {
    level: store ? 0 : level,
    finishFlush: constants.Z_SYNC_FLUSH,
    chunkSize,
    ...(dict && !store ? { dictionary: dict } : {}),
  });
}

export interface ParallelGzipOptions {
  /** zlib level for compressible blocks (default: zlib's default, 6, as Docker's push). */
  level?: number;
  /** Blocks being deflated at once (default 4: libuv's thread pool). */
  inFlight?: number;
}

/**
 * `src` as one gzip member, deflated block by block on the thread pool (see the top of the file). At most
 * `inFlight` blocks are deflated at once; input blocks live in a ring of `inFlight + 2` buffers reused for
 * the whole layer, so reading the input allocates nothing.
 */
export async function* parallelGzip(src: AsyncIterable<Buffer>, opts: ParallelGzipOptions = {}): AsyncGenerator<Buffer> {
  const level = opts.level ?? constants.Z_DEFAULT_COMPRESSION;
  const inFlight = Math.max(1, opts.inFlight ?? 4);
  // A buffer is refilled only when the block after it (primed from its tail) is done: with at most
  // `inFlight` blocks pending, inFlight + 1 buffers would do; one more keeps the one being filled apart.
  const ring = Array.from({ length: inFlight + 2 }, () => Buffer.allocUnsafe(BLOCK));
  const pending: Promise<Buffer>[] = [];
  let crc = 0;
  let total = 0;
  let index = 0;
  let fill = 0;
  let prev: Buffer | undefined;
  yield HEADER;
  const start = (block: Buffer) => {
    crc = crc32(block, crc);
    total += block.length;
    const p = deflateBlock(block, prev?.subarray(prev.length - WINDOW), level);
    p.catch(() => undefined); // awaited in order below; a rejection must not count as unhandled meanwhile
    pending.push(p);
    prev = block;
    index++;
    fill = 0;
  };
  try {
    for await (const chunk of src) {
      let rest = chunk;
      while (rest.length > 0) {
        const buf = ring[index % ring.length];
        const take = Math.min(rest.length, BLOCK - fill);
        rest.copy(buf, fill, 0, take);
        fill += take;
        rest = rest.subarray(take);
        if (fill === BLOCK) {
          start(buf);
          if (pending.length >= inFlight) yield await pending.shift()!;
        }
      }
    }
    if (fill > 0) start(ring[index % ring.length].subarray(0, fill));
    while (pending.length > 0) yield await pending.shift()!;
  } finally {
    // Blocks still being deflated when the consumer stops early read the ring; they finish on their own.
    pending.length = 0;
  }
  const trailer = Buffer.allocUnsafe(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(total >>> 0, 4); // ISIZE: the length modulo 2^32
  yield Buffer.concat([FINAL_BLOCK, trailer]);
}
