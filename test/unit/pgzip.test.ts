// parallelGzip (daemon/distribution/pgzip.ts): a layer deflated block by block on the thread pool (libdeflate,
// one gzip member per block) must be a valid gzip file that gunzip (zlib, Node's streaming gunzip that berth's
// pull uses, the gzip tool) gives back byte for byte, and whose members each stand on their own as Go's
// compress/gzip reads them (header, a deflate stream that ends, CRC-32 and length of that member); the same
// bytes however the input was cut into reads (a push's digest must not depend on read sizes), compressed
// where deflate can compress and stored where it cannot, and an input that fails must fail the output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { crc32, gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import { decompressed } from '../../daemon/storage/layers/decompress';
import { parallelGzip, BLOCK } from '../../daemon/distribution/pgzip';
import { native } from '../../daemon/runtime/native';

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

test('compressible blocks are compressed about as well as zlib level 6 does, incompressible ones stored', async () => {
  const t = text(4 * BLOCK, 8);
  const tz = await gz(pieces(t, () => 1 << 16));
  assert.ok(tz.length < t.length / 3, `text: ${tz.length} of ${t.length}`);
  // Programs are what layers mostly hold: node's own, 4 MiB from its middle (code and data).
  const prog = readFileSync(process.execPath);
  const p = prog.subarray(Math.max(0, (prog.length >> 1) - 2 * BLOCK)).subarray(0, 4 * BLOCK);
  const pz = await gz(pieces(p, () => 1 << 16));
  const zlib6 = gzipSync(p, { level: 6 }).length;
  // One member per block starts each block with an empty window: about 0.3 % on programs.
  assert.ok(pz.length < zlib6 * 1.02, `programs: ${pz.length}, zlib level 6 ${zlib6}`);
  const r = randomBytes(4 * BLOCK);
  const rz = await gz(pieces(r, () => 1 << 16));
  // Stored blocks: 5 bytes per 64 KiB plus 18 bytes of gzip framing per block, never more than about 0.1 % over.
  assert.ok(rz.length <= r.length * 1.001 + 64, `random: ${rz.length} of ${r.length}`);
  assert.equal(sha(gunzipSync(rz)), sha(r));
});

/** The members of a gzip file, each checked as Go's compress/gzip reader checks it: a header it accepts, a
 *  deflate stream that ends on its own, then the CRC-32 and length of that member's bytes. */
function members(gzFile: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < gzFile.length) {
    assert.deepEqual([...gzFile.subarray(at, at + 4)], [0x1f, 0x8b, 0x08, 0x00], `member ${out.length} header at ${at}`);
    const body = gzFile.subarray(at + 10);
    const { buffer, engine } = inflateRawSync(body, { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    const used = engine.bytesWritten;
    const trailer = body.subarray(used, used + 8);
    assert.equal(trailer.length, 8, `member ${out.length}: trailer`);
    assert.equal(trailer.readUInt32LE(0), crc32(buffer) >>> 0, `member ${out.length}: CRC-32`);
    assert.equal(trailer.readUInt32LE(4), buffer.length, `member ${out.length}: length`);
    out.push(buffer);
    at += 10 + used + 8;
  }
  return out;
}

test('one member per block, each complete on its own as Go reads gzip', async () => {
  const data = Buffer.concat([text(2 * BLOCK + 100, 10), randomBytes(BLOCK), text(1000, 11)]);
  const m = members(await gz(pieces(data, () => 200_000)));
  assert.deepEqual(m.map((b) => b.length), [BLOCK, BLOCK, BLOCK, 1100]);
  assert.equal(sha(Buffer.concat(m)), sha(data));
  // An empty layer is one empty member.
  assert.deepEqual(members(await gz(pieces(Buffer.alloc(0), () => 1))).map((b) => b.length), [0]);
});

test('berth\'s own pull path (decompressed) reads every member back', async () => {
  const data = Buffer.concat([text(3 * BLOCK + 7, 12), randomBytes(BLOCK / 2)]);
  const packed = await gz(pieces(data, () => BLOCK));
  // Delivered as a socket would, in small pieces that cut members anywhere.
  const got: Buffer[] = [];
  for await (const c of decompressed(Readable.from(pieces(packed, () => 16_384)))) got.push(Buffer.from(c));
  assert.equal(sha(Buffer.concat(got)), sha(data));
});

test('an input that fails makes the output fail', async () => {
  async function* broken(): AsyncGenerator<Buffer> {
    yield text(BLOCK * 2, 9);
    throw new Error('the tar changed on disk');
  }
  await assert.rejects(gz(broken()), /the tar changed on disk/);
});

test('the addon\'s gzipMember refuses what it cannot compress, as a rejected promise', async () => {
  await assert.rejects(native.gzipMember('text' as unknown as Buffer, 6), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(native.gzipMember(Buffer.from('x'), 13), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(native.gzipMember(Buffer.from('x'), 2.5), { code: 'ERR_INVALID_ARG_VALUE' });
  // Level 0 stores: valid gzip, slightly larger than the input.
  const t = text(100_000, 13);
  const stored = await native.gzipMember(t, 0);
  assert.ok(stored.length > t.length);
  assert.equal(sha(gunzipSync(stored)), sha(t));
});
