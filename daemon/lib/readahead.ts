// Looking at the first bytes of a stream before deciding what to do with it (is it compressed, is it a
// tar), then handing on the whole stream, what was looked at included.

const asBuffer = (c: Buffer | Uint8Array): Buffer => (Buffer.isBuffer(c) ? c : Buffer.from(c));

/** Reads chunks of `it` until at least `n` bytes have come, or its end (`ended`). */
export async function readAhead(it: AsyncIterator<Buffer | Uint8Array>, n: number): Promise<{ chunks: Buffer[]; ended: boolean }> {
  const chunks: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const r = await it.next();
    if (r.done) return { chunks, ended: true };
    const c = asBuffer(r.value);
    chunks.push(c);
    len += c.length;
  }
  return { chunks, ended: false };
}

/** The chunks read ahead, then the rest of `it`. It calls `it.next()` itself rather than for-await over
 *  `it`, so a consumer that stops early leaves the rest of `it` to be read (drained) by its owner. */
export async function* replay(ahead: { chunks: Buffer[]; ended: boolean }, it: AsyncIterator<Buffer | Uint8Array>): AsyncGenerator<Buffer> {
  for (const c of ahead.chunks) yield c;
  if (ahead.ended) return;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield asBuffer(r.value);
  }
}
