// A full disk (DESIGN promise 5): berthd's data root on a small tmpfs made here. Loading, importing or
// committing an image that does not fit fails with a clear "no space left on device" and leaves nothing
// listed and no half layer behind, also after a restart; a container that fills the disk gets ENOSPC inside
// while berthd keeps answering; once space is freed everything works again and the state survives restarts.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, readdirSync, existsSync, statfsSync, createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, type Berthd } from '../helpers/berthd';
import { umount2 } from '../helpers/cleanup';
import { api, loadFixtures, waitFor, show } from '../helpers/clients';

const SIZE_MB = 64;
let mnt = '';
let mounted = false;
let work = '';
let b: Berthd | undefined;
let bigArchive = '';
let bigLayer = '';

/** Bytes used on the tmpfs. */
function used(): number {
  const s = statfsSync(mnt);
  return (s.blocks - s.bfree) * s.bsize;
}

function free(): number {
  const s = statfsSync(mnt);
  return s.bavail * s.bsize;
}

function sha256File(p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(p).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

/** A docker-archive with one layer holding `mb` MiB of random bytes (incompressible), outside the tmpfs. */
async function makeBigArchive(mb: number): Promise<void> {
  const layerDir = path.join(work, 'layer');
  mkdirSync(layerDir);
  execFileSync('dd', ['if=/dev/urandom', `of=${path.join(layerDir, 'big.bin')}`, 'bs=1M', `count=${mb}`], { stdio: 'ignore' });
  bigLayer = path.join(work, 'layer.tar');
  execFileSync('tar', ['-cf', bigLayer, '-C', layerDir, '.']);
  rmSync(layerDir, { recursive: true });
  const diffId = await sha256File(bigLayer);
  const config = JSON.stringify({
    architecture: os.arch() === 'arm64' ? 'arm64' : 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z',
    config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] }, history: [{ created: '2024-01-01T00:00:00Z' }],
  });
  const configHex = createHash('sha256').update(config).digest('hex');
  const arch = path.join(work, 'arch');
  mkdirSync(path.join(arch, diffId), { recursive: true });
  execFileSync('mv', [bigLayer, path.join(arch, diffId, 'layer.tar')]);
  bigLayer = path.join(arch, diffId, 'layer.tar');
  writeFileSync(path.join(arch, `${configHex}.json`), config);
  writeFileSync(path.join(arch, 'manifest.json'), JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['big:toobig'], Layers: [`${diffId}/layer.tar`] }]));
  bigArchive = path.join(work, 'big.tar');
  execFileSync('tar', ['-cf', bigArchive, '-C', arch, 'manifest.json', `${configHex}.json`, `${diffId}/layer.tar`]);
}

async function images(): Promise<string[]> {
  const r = await b!.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.equal(r.code, 0, show(r));
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** Files under the data root whose names say they are temporary or half written. */
function leftovers(): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6 || !existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (/(^|[-.])(tmp|partial|incoming|load-|import-|commit-)/.test(e.name) && !/^tmp$/.test(e.name)) out.push(p);
      if (e.isDirectory() && !p.includes('/containers/') && !p.includes('/overlay/') && !p.includes('/layers/')) walk(p, depth + 1);
    }
  };
  walk(b!.dataRoot, 0);
  const tmp = path.join(b!.dataRoot, 'image', 'tmp');
  if (existsSync(tmp)) for (const e of readdirSync(tmp)) out.push(path.join(tmp, e));
  return [...new Set(out)].sort();
}

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'berth-fulldisk-work-'));
  mnt = mkdtempSync(path.join(os.tmpdir(), 'berth-fulldisk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m,mode=0711`, 'berth-fulldisk', mnt]);
  mounted = true;
  await makeBigArchive(SIZE_MB + 16);
  b = await startBerthd({ dataRoot: path.join(mnt, 'data') });
  await loadFixtures(b, ['busybox']);
});

after(async () => {
  if (b && process.env.BERTH_TEST_KEEP_LOG) writeFileSync(process.env.BERTH_TEST_KEEP_LOG, readFileSync(path.join(b.root, 'berthd.log')));
  if (b) await b.destroy().catch(() => {});
  if (mounted) {
    // Whatever berthd left mounted under the tmpfs (container rootfs overlays), deepest first, then the tmpfs.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])
      .filter((m) => m && m.startsWith(mnt + '/')).sort((x, y) => y.length - x.length);
    for (const m of mounts) umount2(m);
    umount2(mnt);
  }
  if (mnt) rmSync(mnt, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('full disk', () => {
  test('docker load of an image bigger than the free space fails clearly and leaves nothing behind', { timeout: 150_000 }, async () => {
    const before0 = used();
    assert.ok(free() < (SIZE_MB + 16) * 1024 * 1024);
    const r = await b!.docker(['load', '-i', bigArchive], { timeoutMs: 120000 });
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stdout + r.stderr, /no space left on device/i, show(r));
    assert.deepEqual(await images(), ['busybox:latest']);
    await waitFor('space given back', () => used() <= before0 + 1024 * 1024 || undefined, 15000);
    assert.deepEqual(leftovers(), []);
    // berthd answers and works.
    const ok = await b!.docker(['run', '--rm', 'busybox', 'echo', 'fine']);
    assert.equal(ok.code, 0, show(ok));
    assert.equal(ok.stdout, 'fine\n');
    // After a restart: still only busybox, no half layer, the space is free.
    await b!.stop();
    await b!.restart();
    assert.deepEqual(await images(), ['busybox:latest']);
    assert.deepEqual(leftovers(), []);
    assert.ok(used() <= before0 + 1024 * 1024, `used ${used()} before ${before0}`);
  });

  test('docker import that does not fit fails cleanly', { timeout: 150_000 }, async () => {
    const before0 = used();
    const r = await b!.docker(['import', bigLayer, 'big:imported'], { timeoutMs: 120000 });
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stdout + r.stderr, /no space left on device/i, show(r));
    assert.deepEqual(await images(), ['busybox:latest']);
    await waitFor('space given back', () => used() <= before0 + 1024 * 1024 || undefined, 15000);
    assert.deepEqual(leftovers(), []);
  });

  test('docker commit that does not fit fails cleanly; the container is kept', { timeout: 150_000 }, async () => {
    // A container with about 60% of the free space in its upper layer: committing it needs that again.
    const mb = Math.floor((free() / (1024 * 1024)) * 0.6);
    const c = await b!.docker(['run', '--name', 'fat', 'busybox', 'sh', '-c', `dd if=/dev/urandom of=/fat.bin bs=1M count=${mb} 2>/dev/null; echo wrote`]);
    assert.equal(c.code, 0, show(c));
    assert.equal(c.stdout, 'wrote\n');
    const before0 = used();
    const r = await b!.docker(['commit', 'fat', 'fat:committed'], { timeoutMs: 120000 });
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stdout + r.stderr, /no space left on device/i, show(r));
    assert.deepEqual(await images(), ['busybox:latest']);
    await waitFor('space given back', () => used() <= before0 + 1024 * 1024 || undefined, 15000);
    assert.deepEqual(leftovers(), []);
    const i = await api(b!, 'GET', '/containers/fat/json');
    assert.equal(i.status, 200);
    const rm = await b!.docker(['rm', 'fat']);
    assert.equal(rm.code, 0, show(rm));
  });

  test('a container that fills the disk gets ENOSPC; berthd keeps answering; freeing space brings everything back', { timeout: 150_000 }, async () => {
    const keep = await b!.docker(['create', '--name', 'keeper', '--label', 'k=v', 'busybox', 'true']);
    assert.equal(keep.code, 0, show(keep));
    const d = await b!.docker(['run', '-d', '--name', 'filler', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/fill bs=1M 2>/fill.err; echo $? > /dd.rc; sleep 600']);
    assert.equal(d.code, 0, show(d));
    await waitFor('the disk is full', () => free() < 1024 * 1024 || undefined, 60000);
    await waitFor('dd ended', async () => (await b!.docker(['exec', 'filler', 'cat', '/dd.rc'])).code === 0 || undefined, 30000).catch(() => {});
    // ENOSPC inside the container.
    const w = await b!.docker(['exec', 'filler', 'sh', '-c', 'echo more >> /fill']);
    assert.notEqual(w.code, 0, show(w));
    assert.match(w.stderr, /no space left on device/i, show(w));
    // berthd answers: ps, inspect, info, logs.
    const ps = await b!.docker(['ps', '-a', '--format', '{{.Names}} {{.State}}']);
    assert.equal(ps.code, 0, show(ps));
    assert.match(ps.stdout, /^filler running$/m);
    assert.match(ps.stdout, /^keeper created$/m);
    const ins = await b!.docker(['inspect', '--format', '{{.State.Status}}', 'filler']);
    assert.equal(ins.code, 0, show(ins));
    assert.equal(ins.stdout.trim(), 'running');
    const info = await api(b!, 'GET', '/info');
    assert.equal(info.status, 200);
    // A state change while full either works or fails with Docker's JSON error shape; never a crash.
    const cr = await api(b!, 'POST', '/containers/create?name=whilefull', { body: { Image: 'busybox', Cmd: ['true'] } });
    if (cr.status !== 201) {
      assert.equal(cr.status, 500, cr.body);
      assert.match(cr.json().message, /no space left on device|disk|full/i);
    }
    // Starting a container needs disk (its upper dir, hosts files): it fails with a clear message, or works.
    const run = await b!.docker(['run', '--rm', 'busybox', 'true']);
    if (run.code !== 0) assert.match(run.stderr, /no space left on device/i, show(run));
    assert.doesNotMatch(run.stderr, /EOF|connection reset/i);
    // Free the space: rm -f the filler (berthd keeps room in its database for this).
    const rm = await b!.docker(['rm', '-f', 'filler']);
    assert.equal(rm.code, 0, show(rm));
    await waitFor('space is back', () => free() > 20 * 1024 * 1024 || undefined, 30000);
    const ok = await b!.docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo again > /x && cat /x']);
    assert.equal(ok.code, 0, show(ok));
    assert.equal(ok.stdout, 'again\n');
    if (cr.status === 201) await b!.docker(['rm', 'whilefull']);

    // SQLite is consistent after a restart, and so after kill -9.
    await b!.stop();
    await b!.restart();
    const ps2 = await b!.docker(['ps', '-a', '--format', '{{.Names}} {{.State}}']);
    assert.equal(ps2.code, 0, show(ps2));
    assert.equal(ps2.stdout.trim(), 'keeper created');
    assert.deepEqual(await images(), ['busybox:latest']);
    await b!.kill9();
    await b!.restart();
    const st = await b!.docker(['start', '-a', 'keeper']);
    assert.equal(st.code, 0, show(st));
    const integrity = execFileSync('python3', ['-c', 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])', path.join(b!.dataRoot, 'berth.db')], { encoding: 'utf8' });
    assert.equal(integrity.trim(), 'ok');
    const rmk = await b!.docker(['rm', 'keeper']);
    assert.equal(rmk.code, 0, show(rmk));
    assert.deepEqual(leftovers(), []);
  });
});
