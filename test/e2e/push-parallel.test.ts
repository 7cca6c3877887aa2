// docker push of a layer that berthd gzips block by block on several threads (daemon/distribution/pgzip.ts):
// the blob the registry holds is a gzip file of one member per 1 MiB block (libdeflate has no streaming),
// each member complete on its own as Go's reader checks it, whose content is the layer's tar byte for byte
// (its sha256 is the image's diff id), the manifest names the blob's true digest and size, pushing the same image to
// another registry gives the same blob digest, and the image pulled back has the same layers. The layer
// mixes random files (stored blocks) and text (deflated blocks) over several 1 MiB blocks. Two Debian
// docker-registry processes on loopback, stopped by PID in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';
import { berthdForFile } from '../helpers/file';
import { dockerCli } from '../helpers/clients';
import { packTar } from '../fixtures/tar';
import { startRegistry, type Registry } from '../helpers/registry';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir: string;
let r1: Registry;
let r2: Registry;
before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-push-parallel-'));
  r1 = await startRegistry(dir, 'one');
  r2 = await startRegistry(dir, 'two');
});
after(() => {
  r1?.stop();
  r2?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const b = berthdForFile({ fixtures: [] });
const { ok } = dockerCli(() => b, { timeoutMs: 120000, matchStdout: true });

/** Text deflate shrinks, `n` bytes. */
function text(n: number): Buffer {
  const lines: string[] = [];
  for (let i = 0, len = 0; len < n; i++) {
    const l = `line ${i} of a layer pushed in parallel blocks, ${i % 97} ${(i * 7) % 13}\n`;
    lines.push(l);
    len += l.length;
  }
  return Buffer.from(lines.join('')).subarray(0, n);
}

/** How many gzip members `gz` holds, each checked as Go's compress/gzip checks one (header, a deflate
 *  stream that ends, that member's CRC-32 and length). */
function memberCount(gz: Buffer): number {
  let n = 0;
  for (let at = 0; at < gz.length; n++) {
    assert.deepEqual([...gz.subarray(at, at + 3)], [0x1f, 0x8b, 0x08], `member ${n} at ${at}`);
    const { buffer, engine } = inflateRawSync(gz.subarray(at + 10), { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    const end = at + 10 + engine.bytesWritten;
    assert.equal(gz.readUInt32LE(end), crc32(buffer) >>> 0, `member ${n}: CRC-32`);
    assert.equal(gz.readUInt32LE(end + 4), buffer.length, `member ${n}: length`);
    at = end + 8;
  }
  return n;
}

async function manifestOf(base: string, repo: string, tag: string): Promise<{ layers: { digest: string; size: number; mediaType: string }[] }> {
  const r = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  assert.equal(r.status, 200);
  return r.json() as Promise<{ layers: { digest: string; size: number; mediaType: string }[] }>;
}

async function blob(base: string, repo: string, digest: string): Promise<Buffer> {
  const r = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
  assert.equal(r.status, 200);
  return Buffer.from(await r.arrayBuffer());
}

test('a layer gzipped in parallel blocks arrives whole, with its true digest, the same every time', async () => {
  const layerTar = await packTar([
    { name: 'data/', type: 'directory', mode: 0o755 },
    { name: 'data/random1.bin', content: randomBytes(1_700_000) },
    { name: 'data/text.txt', content: text(2_600_000) },
    { name: 'data/random2.bin', content: randomBytes(1_300_000) },
    { name: 'data/small.txt', content: 'hello\n' },
  ]);
  const file = path.join(dir, 'layer.tar');
  writeFileSync(file, layerTar);
  await ok('import', file, 'pp:1');
  const diffIds: string[] = JSON.parse(await ok('image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'pp:1'));
  assert.deepEqual(diffIds, [sha(layerTar)]);

  const A = `127.0.0.1:${r1.port}`;
  const B = `127.0.0.1:${r2.port}`;
  await ok('tag', 'pp:1', `${A}/e2e/pp:1`);
  assert.match(await ok('push', `${A}/e2e/pp:1`), /Pushed/);
  const m1 = await manifestOf(r1.base, 'e2e/pp', '1');
  assert.equal(m1.layers.length, 1);
  const gz = await blob(r1.base, 'e2e/pp', m1.layers[0].digest);
  assert.equal(sha(gz), m1.layers[0].digest);
  assert.equal(gz.length, m1.layers[0].size);
  assert.equal(m1.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  const unzipped = gunzipSync(gz);
  assert.equal(sha(unzipped), diffIds[0]);
  assert.equal(memberCount(gz), Math.ceil(layerTar.length / (1 << 20)));
  // The text was compressed, the random files were not blown up: smaller than the tar, more than its random part.
  assert.ok(gz.length < layerTar.length - 1_500_000 && gz.length > 3_000_000, `blob ${gz.length} of tar ${layerTar.length}`);

  // Another registry knows nothing of the blob: the layer is compressed again, to the same bytes.
  await ok('tag', 'pp:1', `${B}/other/pp:2`);
  assert.match(await ok('push', `${B}/other/pp:2`), /Pushed/);
  const m2 = await manifestOf(r2.base, 'other/pp', '2');
  assert.equal(m2.layers[0].digest, m1.layers[0].digest);

  // Pulled back (unpacked and checked against the diff id by the pull), the image has the same layer.
  await ok('rmi', 'pp:1', `${A}/e2e/pp:1`, `${B}/other/pp:2`);
  await ok('pull', `${A}/e2e/pp:1`);
  assert.deepEqual(JSON.parse(await ok('image', 'inspect', '--format', '{{json .RootFS.Layers}}', `${A}/e2e/pp:1`)), diffIds);
});
