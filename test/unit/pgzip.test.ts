// parallelGzip (daemon/distribution/pgzip.ts): a layer deflated block by block on the thread pool must be one
// valid gzip member that gunzip (zlib, and the gzip tool) gives back byte for byte, the same bytes however the
// input was cut into reads (a push's digest must not depend on read sizes), compressed where deflate can
// compress and stored where it cannot, and an input that fails must fail the output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { parallelGzip, BLOCK } from '../../daemon/distribution/pgzip';

async function* pieces(data: Buffer, size: (i: number) => number): AsyncGenerator<Buffer> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = Math.max(1, size(i));
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function gz(src: AsyncIterable<Buffer>, inFlight?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of parallelGzip(src, { inFlight })) out.push(Buffer.from(b));
  return Buffer.concat(out);
}

/** Text-like bytes that deflate shrinks (a tar of source files, say), `n` long. */
function text(n: number, seed: number): Buffer {
  const words = ['layer', 'container', 'berth', 'registry', 'manifest', 'digest', '\n', 'func', '{', '}', String(seed)];
  const parts: string[] = [];
  let len = 0;
  let x = seed;
  while (len < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const w = words[x % words.length] + ' ';
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('round trip: empty, small, exactly one block, many blocks mixing text and random data', async () => {
  const mixed = Buffer.concat([text(BLOCK + 5000, 1), randomBytes(2 * BLOCK + 77), text(BLOCK / 2, 2), randomBytes(100), text(3 * BLOCK, 3)]);
  for (const data of [Buffer.alloc(0), Buffer.from('hello\n'), text(BLOCK, 4), mixed]) {
    const out = await gz(pieces(data, () => 64 * 1024));
    assert.equal(out[0], 0x1f);
    assert.equal(out[1], 0x8b);
    assert.equal(sha(gunzipSync(out)), sha(data), `length ${data.length}`);
  }
});

test('the gzip tool accepts the member and gets the same bytes back', async () => {
  const data = Buffer.concat([text(2 * BLOCK + 3, 5), randomBytes(BLOCK + 9)]);
  const out = await gz(pieces(data, () => 300_000));
  const r = spawnSync('gzip', ['-dc'], { input: out, maxBuffer: 64 * BLOCK });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.equal(sha(r.stdout), sha(data));
});

test('the output depends only on the input bytes, not on how it was read nor on the parallelism', async () => {
  const data = Buffer.concat([text(3 * BLOCK + 1234, 6), randomBytes(BLOCK + 5), text(BLOCK, 7)]);
  const a = await gz(pieces(data, () => BLOCK));
  const b = await gz(pieces(data, (i) => 1 + ((i * 7919) % 200_000)));
  const c = await gz(pieces(data, () => 3 * BLOCK), 1);
  assert.equal(sha(a), sha(b));
  assert.equal(sha(a), sha(c));
});

test('compressible blocks are compressed across block boundaries, incompressible ones stored', async () => {
  const t = text(4 * BLOCK, 8);
  const tz = await gz(pieces(t, () => 1 << 16));
  assert.ok(tz.length < t.length / 3, `text: ${tz.length} of ${t.length}`);
  const r = randomBytes(4 * BLOCK);
  const rz = await gz(pieces(r, () => 1 << 16));
  // Stored blocks: 5 bytes per 64 KiB and a sync flush per block, never more than about 0.1 % over.
  assert.ok(rz.length <= r.length * 1.001 + 64, `random: ${rz.length} of ${r.length}`);
  assert.equal(sha(gunzipSync(rz)), sha(r));
});

test('an input that fails makes the output fail', async () => {
  async function* broken(): AsyncGenerator<Buffer> {
    yield text(BLOCK * 2, 9);
    throw new Error('the tar changed on disk');
  }
  await assert.rejects(gz(broken()), /the tar changed on disk/);
});
