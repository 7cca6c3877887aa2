// How berthd stores image layers and hands them out again, through the docker CLI 28.2.2: a layer is
// written once (tar-split metadata beside the unpacked files, no layer.tar and no compressed blob kept),
// and save and push regenerate the very bytes it came from; push uploads in chunks (POST, PATCH with
// Content-Range, PUT); rmi of one of several tags of an image a container uses just untags. Debian's
// docker-registry runs on loopback behind a small counting proxy of this test's own; registry, proxy and
// berthds are stopped and removed in after(), by PID.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, readdirSync, lstatSync, openSync, readSync, writeSync, closeSync, existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, type Berthd } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { dockerOk, dockerFails } from '../helpers/clients';
import { packTar } from '../fixtures/tar';
import { readTar } from '../../daemon/storage/layers/apply';
import { forwardToRegistry, startRegistry, type Registry } from '../helpers/registry';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const CLI = { timeoutMs: 180000, matchStdout: true };
const ok = (b: Berthd, ...args: string[]) => dockerOk(b, args, CLI);
const fails = (b: Berthd, re: RegExp, ...args: string[]) => dockerFails(b, re, args, CLI);

/** Passes every request to the registry, remembering method, path and Content-Range of each. */
class CountingProxy {
  server!: http.Server;
  port = 0;
  seen: { method: string; path: string; range?: string; length?: string }[] = [];
  constructor(private readonly upstream: number) {}
  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      this.seen.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0], range: req.headers['content-range'] as string | undefined, length: req.headers['content-length'] });
      forwardToRegistry(req, res, this.upstream, this.port);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  close(): void {
    this.server?.closeAllConnections();
    this.server?.close();
  }
}

/** Every file under `dir` (relative paths), without following symlinks. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  if (existsSync(dir)) walk('');
  return out;
}

/** Members of a `docker save` archive with their sha256 and size. */
async function memberHashes(file: string): Promise<Map<string, { digest: string; size: number }>> {
  const m = new Map<string, { digest: string; size: number }>();
  const buf = readFileSync(file);
  await readTar((async function* () { yield buf; })(), async (h, s) => {
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of s) {
      hash.update(c);
      n += c.length;
    }
    m.set(h.name, { digest: `sha256:${hash.digest('hex')}`, size: n });
  });
  return m;
}

const diffIdsOf = async (b: Berthd, ref: string): Promise<string[]> => JSON.parse(await ok(b, 'image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref));

describe('image layers are stored once and handed out byte for byte', () => {
  let dir: string;
  let reg: Registry;
  let proxy: CountingProxy;
  const b = berthdForFile({ fixtures: ['busybox', 'layered'] });
  let b2: Berthd | undefined;
  let A: string; // the registry, through the counting proxy
  let trickyId = '';
  let pushedDigest = '';
  const big = randomBytes(12 * 1024 * 1024 + 12345);

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-image-store-'));
    reg = await startRegistry(dir);
    proxy = new CountingProxy(reg.port);
    await proxy.start();
    A = `127.0.0.1:${proxy.port}`;
  });

  after(async () => {
    await b2?.destroy();
    proxy?.close();
    reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('load keeps no copy of a layer; save → rmi → load gives the same ids and the exact layer tars, odd tars too', async () => {
    // A layer tar no directory walk could reproduce: a path written twice, a directory replaced by a file,
    // a whiteout with a body, a hardlink, a long (PAX) name, a big file, odd modes and owners.
    const longName = `deep/${'n'.repeat(120)}/file.txt`;
    const layer = await packTar([
      { name: 'twice.txt', content: 'first version, longer than the second\n' },
      { name: 'd/', type: 'directory', mode: 0o750 },
      { name: 'd/inner.txt', content: 'inside d\n', uid: 1000, gid: 1000 },
      { name: 'big.bin', content: big, mode: 0o600 },
      { name: 'link.bin', type: 'link', linkname: 'big.bin' },
      { name: '.wh.gone', content: 'a whiteout with a body\n' },
      { name: longName, content: 'long name\n' },
      { name: 'twice.txt', content: 'second\n' },
      { name: 'd', content: 'now a file\n' },
    ]);
    const diffId = sha(layer);
    const config = JSON.stringify({
      architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [diffId] }, history: [{ created: '2024-01-01T00:00:00Z', created_by: 'berth test' }],
    });
    const cfgName = `${sha(config).slice(7)}.json`;
    const archive = path.join(dir, 'tricky.tar');
    writeFileSync(archive, await packTar([
      { name: 'l/layer.tar', content: layer },
      { name: cfgName, content: config },
      { name: 'manifest.json', content: JSON.stringify([{ Config: cfgName, RepoTags: ['tricky:1'], Layers: ['l/layer.tar'] }]) },
    ]));
    await ok(b, 'load', '-i', archive);
    trickyId = sha(config);
    assert.equal((await ok(b, 'image', 'inspect', '--format', '{{.Id}}', 'tricky:1')).trim(), trickyId);

    // Nothing in the data root holds a layer's bytes a second time.
    const files = filesUnder(b.dataRoot);
    assert.deepEqual(files.filter((f) => /(^|\/)(layer\.tar|blob)$/.test(f)), [], 'no layer.tar or blob copies');
    const overlay = path.join(b.dataRoot, 'overlay2');
    const layerDirs = readdirSync(overlay).filter((n) => /^[a-f0-9]{64}$/.test(n));
    assert.ok(layerDirs.length >= 3, layerDirs.join(' '));
    for (const d of layerDirs) assert.ok(existsSync(path.join(overlay, d, 'tar-split.gz')), `tar-split metadata in ${d}`);
    // Only the file contents are big: the data root holds about one copy of the 12 MiB file.
    const inodes = new Map<number, number>();
    for (const f of files) {
      // The state database keeps a few MiB of free pages and WAL on purpose (headroom for a full disk).
      if (/^berth\.db(-wal|-shm)?$/.test(f)) continue;
      const st = lstatSync(path.join(b.dataRoot, f));
      if (st.isFile()) inodes.set(st.ino, st.size);
    }
    const bytes = [...inodes.values()].reduce((n, v) => n + v, 0);
    assert.ok(bytes < big.length * 1.5 + 4 * 1024 * 1024, `data root holds ${bytes} bytes`);

    const before = (await ok(b, 'images', '-q', '--no-trunc')).split('\n').filter(Boolean).sort();
    const saved = path.join(dir, 'saved.tar');
    await ok(b, 'save', '-o', saved, 'busybox', 'layered', 'tricky:1');
    const members = await memberHashes(saved);
    const all = new Set([...(await diffIdsOf(b, 'layered')), ...(await diffIdsOf(b, 'tricky:1'))]);
    for (const d of all) {
      const m = members.get(`blobs/sha256/${d.slice(7)}`);
      assert.ok(m, `layer ${d} in the archive`);
      assert.equal(m.digest, d, 'the saved layer tar is the exact tar the layer came from');
    }
    assert.equal(members.get(`blobs/sha256/${diffId.slice(7)}`)!.size, layer.length);

    await ok(b, 'rmi', 'busybox', 'layered', 'tricky:1');
    assert.deepEqual(readdirSync(overlay).filter((n) => /^[a-f0-9]{64}$/.test(n)), []);
    await ok(b, 'load', '-i', saved);
    assert.deepEqual((await ok(b, 'images', '-q', '--no-trunc')).split('\n').filter(Boolean).sort(), before);
    const again = path.join(dir, 'saved-again.tar');
    await ok(b, 'save', '-o', again, 'busybox', 'layered', 'tricky:1');
    assert.equal(sha(readFileSync(again)), sha(readFileSync(saved)), 'a second save is byte-identical');
  });

  test('push streams each layer in one PATCH; a fresh daemon that loaded the saved image pushes the same digest', async () => {
    assert.ok(trickyId, 'needs the first test');
    await ok(b, 'tag', 'tricky:1', `${A}/store/tricky:1`);
    proxy.seen = [];
    const out = await ok(b, 'push', `${A}/store/tricky:1`);
    assert.match(out, /Pushed/);
    pushedDigest = /1: digest: (sha256:[a-f0-9]{64}) size: \d+/.exec(out)?.[1] ?? '';
    assert.ok(pushedDigest, out);
    // Each layer goes up as one streamed PATCH per upload session (compressed while it is sent), as Docker's
    // registry client sends it: no Content-Range, then a PUT with the digest and no data.
    const patches = proxy.seen.filter((r) => r.method === 'PATCH');
    assert.ok(patches.length >= 1, `the layers go up in PATCHes: ${JSON.stringify(proxy.seen)}`);
    const sessions = new Set(patches.map((r) => r.path));
    assert.equal(sessions.size, patches.length, `one PATCH per upload session: ${JSON.stringify(patches)}`);
    assert.ok(proxy.seen.some((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/')), 'PUT finishes the upload');
    assert.ok(!proxy.seen.some((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && Number(r.length) > 0), 'the PUT carries no data');
    const again = await ok(b, 'push', `${A}/store/tricky:1`);
    assert.match(again, /Layer already exists/);
    assert.doesNotMatch(again, /Pushed/);
    assert.match(again, new RegExp(`digest: ${pushedDigest}`));

    b2 = await startBerthd();
    await ok(b2, 'load', '-i', path.join(dir, 'saved.tar'));
    await ok(b2, 'tag', 'tricky:1', `${A}/store/other:1`);
    const fresh = await ok(b2, 'push', `${A}/store/other:1`);
    assert.match(fresh, new RegExp(`1: digest: ${pushedDigest} size: \\d+`), 'the regenerated layer compresses to the same blob');
  });

  test('pull keeps no blob; the pulled image saves to the same layer tars and pushes to the same digest', async () => {
    assert.ok(b2 && pushedDigest, 'needs the earlier tests');
    await ok(b2, 'rmi', 'tricky:1', `${A}/store/other:1`);
    const out = await ok(b2, 'pull', `${A}/store/tricky:1`);
    assert.match(out, /Pull complete/);
    assert.match(out, new RegExp(`Digest: ${pushedDigest}`));
    assert.equal((await ok(b2, 'image', 'inspect', '--format', '{{.Id}}', `${A}/store/tricky:1`)).trim(), trickyId);
    assert.deepEqual(filesUnder(b2.dataRoot).filter((f) => /(^|\/)(layer\.tar|blob)$/.test(f) || f.startsWith('image/blobs/')), [], 'nothing of the blobs is kept');
    const saved = path.join(dir, 'pulled.tar');
    await ok(b2, 'save', '-o', saved, `${A}/store/tricky:1`);
    const members = await memberHashes(saved);
    for (const d of await diffIdsOf(b2, `${A}/store/tricky:1`)) assert.equal(members.get(`blobs/sha256/${d.slice(7)}`)?.digest, d);
    await ok(b2, 'tag', `${A}/store/tricky:1`, `${A}/store/third:1`);
    const pushed = await ok(b2, 'push', `${A}/store/third:1`);
    assert.match(pushed, /Mounted from store\/(tricky|other)|Layer already exists/);
    assert.match(pushed, new RegExp(`1: digest: ${pushedDigest}`));
  });

  test('a layer whose files changed on disk is not saved with wrong bytes', async () => {
    assert.ok(trickyId, 'needs the first test');
    // A one-layer image: its layer's files are the UpperDir inspect shows.
    const layerDiff: string = JSON.parse(await ok(b, 'image', 'inspect', '--format', '{{json .GraphDriver.Data}}', 'tricky:1')).UpperDir;
    const f = path.join(layerDiff, 'big.bin');
    assert.ok(existsSync(f), f);
    const fd = openSync(f, 'r+');
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, 4096);
    one[0] ^= 0xff;
    writeSync(fd, one, 0, 1, 4096);
    closeSync(fd);
    // The archive streams out as it is made, so the daemon can only cut it short (as Docker does); the
    // client sees the save fail, and the daemon goes on.
    await fails(b, /unexpected EOF|could not verify layer data/, 'save', '-o', path.join(dir, 'changed.tar'), 'tricky:1');
    assert.match(readFileSync(path.join(b.root, 'berthd.log'), 'utf8'), /could not verify layer data/);
    one[0] ^= 0xff;
    const fd2 = openSync(f, 'r+');
    writeSync(fd2, one, 0, 1, 4096);
    closeSync(fd2);
    await ok(b, 'save', '-o', path.join(dir, 'restored.tar'), 'tricky:1');
  });

  test('load: a layer tar used twice in one image, and a hostile big layer, on the path that unpacks while reading', async () => {
    const pad = randomBytes(200 * 1024);
    const l1 = await packTar([{ name: 'one.bin', content: pad }]);
    const l2 = await packTar([{ name: 'two.txt', content: 'two\n' }]);
    const archive = async (layers: Buffer[], order: number[], tag: string) => {
      const diffIds = order.map((i) => sha(layers[i]));
      const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } });
      const cfgName = `${sha(config).slice(7)}.json`;
      return { id: sha(config), bytes: await packTar([
        ...layers.map((l, i) => ({ name: `l${i}/layer.tar`, content: l })),
        { name: cfgName, content: config },
        { name: 'manifest.json', content: JSON.stringify([{ Config: cfgName, RepoTags: [tag], Layers: order.map((i) => `l${i}/layer.tar`) }]) },
      ]) };
    };
    const twice = await archive([l1, l2], [0, 1, 0], 'store-twice:1');
    const f = path.join(dir, 'twice.tar');
    writeFileSync(f, twice.bytes);
    await ok(b, 'load', '-i', f);
    assert.equal((await ok(b, 'image', 'inspect', '--format', '{{.Id}}', 'store-twice:1')).trim(), twice.id);
    const saved = path.join(dir, 'twice-saved.tar');
    await ok(b, 'save', '-o', saved, 'store-twice:1');
    const members = await memberHashes(saved);
    assert.equal(members.get(`blobs/sha256/${sha(l1).slice(7)}`)?.digest, sha(l1));
    await ok(b, 'rmi', 'store-twice:1');

    const sentinelDir = mkdtempSync(path.join(os.tmpdir(), 'berth-store-sentinel-'));
    try {
      writeFileSync(path.join(sentinelDir, 'sentinel'), 'untouched\n');
      const evil = await packTar([
        { name: 'pad.bin', content: pad },
        { name: 'escape', type: 'symlink', linkname: sentinelDir },
        { name: 'escape/sentinel', content: 'owned\n' },
      ]);
      const bad = await archive([evil], [0], 'store-evil:1');
      const ef = path.join(dir, 'evil.tar');
      writeFileSync(ef, bad.bytes);
      await fails(b, /symlink/, 'load', '-i', ef);
      assert.equal(readFileSync(path.join(sentinelDir, 'sentinel'), 'utf8'), 'untouched\n');
      await fails(b, /No such image/, 'image', 'inspect', 'store-evil:1');
      assert.deepEqual(readdirSync(path.join(b.dataRoot, 'overlay2')).filter((n) => n.startsWith('tmp-')), []);
    } finally {
      rmSync(sentinelDir, { recursive: true, force: true });
    }
  });

  test('rmi of one of several tags of an image a container uses untags it; the last tag is refused', async () => {
    await ok(b, 'tag', 'layered', 'store-tags:a');
    await ok(b, 'create', '--name', 'store-user', 'store-tags:a', 'true');
    try {
      assert.equal(await ok(b, 'rmi', 'store-tags:a'), 'Untagged: store-tags:a\n');
      const id = (await ok(b, 'image', 'inspect', '--format', '{{.Id}}', 'layered')).trim();
      assert.ok(id.startsWith('sha256:'));
      await fails(b, /conflict: unable to remove repository reference "layered" \(must force\) - container [a-f0-9]{12} is using its referenced image/, 'rmi', 'layered');
      assert.equal((await ok(b, 'image', 'inspect', '--format', '{{.Id}}', 'layered')).trim(), id);
    } finally {
      await b.docker(['rm', '-f', 'store-user']);
    }
  });
});
