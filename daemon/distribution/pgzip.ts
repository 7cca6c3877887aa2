// gzip of a layer for docker push, compressed on every core at once.
//
// Deflate is the slowest step of a push, so a layer is cut into blocks of a fixed size that are compressed
// side by side on libuv's thread pool, each into a gzip member of its own, and the members are joined in
// order. A gzip file of several members is one file to every reader (RFC 1952 section 2.2): Go's
// compress/gzip (Docker Engine, containerd, the registry's clients) reads all members by default, as do
// zlib's gunzip, Node's createGunzip (berth's own pull and load) and the gzip tool.
//
// The compressor is libdeflate (the addon's gzipMember, addon/src/js/deflate.cc): whole-buffer deflate two
// to three times faster than zlib at the same level, at a ratio as good. It has no preset dictionary, so a
// block starts with an empty window; at 1 MiB per block that costs about 0.3 % of the output (bench/README.md,
// "Push"). Blocks that deflate cannot shrink are stored (sampled first, so they cost a copy, not a deflate).
//
// The output depends only on the input bytes and the level (block boundaries are fixed offsets, never where
// reads happened to end), so the same layer always gives the same blob and digest on a machine; a different
// libdeflate version may compress differently, as a different zlib would.
import { native } from '../runtime/native';

/** Input bytes per block (and per gzip member). */
export const BLOCK = 1 << 20;
/** Docker's push compresses at zlib's default level; libdeflate's 6 is the same trade. */
const DEFAULT_LEVEL = 6;

export interface ParallelGzipOptions {
  /** Level for compressible blocks (default 6, as Docker's push; 1–12). */
  level?: number;
  /** Blocks being compressed at once (default 4: libuv's thread pool). */
  inFlight?: number;
}

/**
 * `src` as a gzip file of one member per BLOCK bytes (see the top of the file). At most `inFlight` blocks are
 * compressed at once; input blocks live in a ring of `inFlight + 1` buffers reused for the whole layer, so
 * reading the input allocates nothing.
 */
export async function* parallelGzip(src: AsyncIterable<Buffer>, opts: ParallelGzipOptions = {}): AsyncGenerator<Buffer> {
  const level = opts.level ?? DEFAULT_LEVEL;
  const inFlight = Math.max(1, opts.inFlight ?? 4);
  // A buffer is refilled only once its block is compressed: inFlight being compressed, one being filled.
  const ring = Array.from({ length: inFlight + 1 }, () => Buffer.allocUnsafe(BLOCK));
  const pending: Promise<Buffer>[] = [];
  let index = 0;
  let fill = 0;
  let started = false;
  const start = (block: Buffer) => {
    const p = native.gzipMember(block, level);
    p.catch(() => undefined); // awaited in order below; a rejection must not count as unhandled meanwhile
    pending.push(p);
    started = true;
    index++;
    fill = 0;
  };
  try {
    for await (const chunk of src) {
      let rest = chunk;
      while (rest.length > 0) {
        // The buffer about to be filled must be free: its block (inFlight + 1 blocks ago) is done.
        if (fill === 0 && pending.length >= inFlight) yield await pending.shift()!;
        const buf = ring[index % ring.length];
        const take = Math.min(rest.length, BLOCK - fill);
        rest.copy(buf, fill, 0, take);
        fill += take;
        rest = rest.subarray(take);
        if (fill === BLOCK) start(buf);
      }
    }
    // An empty input is still one (empty) member: a gzip file has at least one.
    if (fill > 0 || !started) start(ring[index % ring.length].subarray(0, fill));
    while (pending.length > 0) yield await pending.shift()!;
  } finally {
    // Blocks still being compressed when the consumer stops early keep their input alive (the addon holds
    // a reference) and finish on their own.
    pending.length = 0;
  }
}
