// The docker CLI 28.2.2 against a real berthd, for images: load (docker-save, OCI layout, gzip, stdin),
// images, image inspect, history, tag, rmi, and what a broken or hostile archive or a kill -9 during a
// load leaves behind (nothing). The error cases in detail are in test/unit/images.test.ts; here each path
// is driven once through the CLI.
// Every berthd is destroyed in after()/finally, also when a test fails.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { startBerthd, FIXTURES, DOCKER, type Berthd } from '../helpers/berthd';
import { berthdForFile, scratchDir } from '../helpers/file';
import { packTar } from '../fixtures/tar';
import { show, dockerOk, dockerFails } from '../helpers/clients';

const fixture = (n: string) => path.join(FIXTURES, n);
const IDS: { busybox: string; layered: string } = JSON.parse(readFileSync(fixture('ids.json'), 'utf8'));


const CLI = { timeoutMs: 120000, matchStdout: true };
const ok = (b: Berthd, ...args: string[]) => dockerOk(b, args, CLI);
const fails = (b: Berthd, re: RegExp, ...args: string[]) => dockerFails(b, re, args, CLI);


/** `docker images` as rows of columns (header dropped). */
async function imageRows(b: Berthd, ...extra: string[]): Promise<string[][]> {
  const out = await ok(b, 'images', '--format', '{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}', ...extra);
  return out.split('\n').filter(Boolean).map((l) => l.split('\t')).sort((a, b) => (a.join() < b.join() ? -1 : 1));
}

/** Work left in the data root by an image operation that did not finish. */
function leftovers(b: Berthd): string[] {
  const out: string[] = [];
  const ov = path.join(b.dataRoot, 'overlay2');
  if (existsSync(ov)) out.push(...readdirSync(ov).filter((n) => n.startsWith('tmp-')).map((n) => `overlay2/${n}`));
  const spool = path.join(b.dataRoot, 'image', 'tmp');
  if (existsSync(spool)) out.push(...readdirSync(spool).map((n) => `image/tmp/${n}`));
  return out;
}

const short = (id: string) => id.slice(7, 19);

describe('images through the docker CLI', () => {
  const b = berthdForFile();
  const scratch = scratchDir('berth-images-e2e-');

  test('docker load: docker-save archive, OCI layout, gzip, stdin', async () => {
    assert.equal(await ok(b, 'load', '-i', fixture('busybox.tar')), 'Loaded image: busybox:latest\n');
    assert.equal(await ok(b, 'load', '-i', fixture('busybox-oci.tar')), 'Loaded image: busybox:latest\n');
    const gz = path.join(scratch, 'layered.tar.gz');
    writeFileSync(gz, gzipSync(readFileSync(fixture('layered.tar'))));
    assert.equal(await ok(b, 'load', '-i', gz), 'Loaded image: layered:latest\n');
    const r = await b.docker(['load'], { input: readFileSync(fixture('busybox.tar')) });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'Loaded image: busybox:latest\n');
    assert.deepEqual(leftovers(b), []);
  });

  test('docker images lists both fixtures with their ids and sizes', async () => {
    const rows = await imageRows(b);
    assert.deepEqual(rows.map((r) => r.slice(0, 3)), [
      ['busybox', 'latest', short(IDS.busybox)],
      ['layered', 'latest', short(IDS.layered)],
    ]);
    for (const r of rows) assert.match(r[3], /^\d+(\.\d+)?MB$/, `size column ${r[3]}`);
    const table = await ok(b, 'images');
    assert.match(table.split('\n')[0], /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    const ids = (await ok(b, 'images', '-q', '--no-trunc')).split('\n').filter(Boolean).sort();
    assert.deepEqual(ids, [IDS.busybox, IDS.layered].sort());
    assert.deepEqual((await ok(b, 'images', '--filter', 'reference=busy*', '--format', '{{.Repository}}')).trim(), 'busybox');
    assert.deepEqual((await ok(b, 'images', '--filter', 'label=org.berth.fixture=layered', '-q')).trim(), short(IDS.layered));
  });

  test('docker image inspect has Docker\'s fields', async () => {
    const [img] = JSON.parse(await ok(b, 'image', 'inspect', 'busybox'));
    assert.equal(img.Id, IDS.busybox);
    assert.deepEqual(img.RepoTags, ['busybox:latest']);
    assert.deepEqual(img.RepoDigests, []);
    assert.equal(img.Parent, '');
    assert.equal(img.Created, '2024-01-01T00:00:00Z');
    assert.deepEqual(img.Config.Cmd, ['sh']);
    assert.deepEqual(img.Config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    assert.equal(img.Architecture, 'amd64');
    assert.equal(img.Os, 'linux');
    assert.equal(typeof img.Size, 'number');
    assert.ok(img.Size > 1_000_000);
    assert.equal(img.GraphDriver.Name, 'overlay2');
    assert.ok(existsSync(path.join(img.GraphDriver.Data.UpperDir, 'bin', 'busybox')), 'UpperDir is the layer on disk');
    assert.ok(img.GraphDriver.Data.UpperDir.startsWith(path.join(b.dataRoot, 'overlay2') + '/'));
    assert.equal(img.RootFS.Type, 'layers');
    assert.equal(img.RootFS.Layers.length, 1);
    assert.match(img.Metadata.LastTagTime, /^\d{4}-|^0001-/);
    // The CLI speaks 1.50 with berth: no ContainerConfig, no VirtualSize; older clients get them.
    assert.ok(!('ContainerConfig' in img));
    assert.ok(!('VirtualSize' in img));
    const [old] = JSON.parse((await b.docker(['image', 'inspect', 'busybox'], { env: { DOCKER_API_VERSION: '1.41' } })).stdout);
    assert.equal(old.VirtualSize, old.Size);
    assert.equal(old.Config.Hostname, '');
    assert.ok('ContainerConfig' in old);

    const [lay] = JSON.parse(await ok(b, 'image', 'inspect', IDS.layered));
    assert.deepEqual(lay.RepoTags, ['layered:latest']);
    assert.equal(lay.RootFS.Layers.length, 3);
    assert.equal(lay.GraphDriver.Data.LowerDir.split(':').length, 2);
    assert.equal(lay.Config.User, 'app');
    assert.equal(lay.Config.WorkingDir, '/app');
    assert.equal((await ok(b, 'image', 'inspect', '-f', '{{.Id}}', short(IDS.layered))).trim(), IDS.layered, 'short id lookup');
    await fails(b, /No such image: nosuch/, 'image', 'inspect', 'nosuch');
  });

  test('docker history shows the config history, newest first', async () => {
    const out = await ok(b, 'history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}', 'layered');
    const rows = out.trim().split('\n').map((l) => l.split('|'));
    assert.equal(rows.length, 9);
    assert.equal(rows[0][0], IDS.layered);
    assert.equal(rows[0][1], '/bin/sh -c #(nop)  CMD ["default-arg"]');
    assert.equal(rows[1][0], '<missing>');
    assert.match(rows[8][1], /ADD file:/);
    assert.match(rows[8][2], /MB$/);
  });

  test('docker tag and rmi: untag vs delete, names with registries, unknown names', async () => {
    await ok(b, 'tag', 'busybox', 'doc-tag:v1');
    await ok(b, 'tag', 'busybox:latest', 'localhost:5000/doc/tag:v3');
    await ok(b, 'tag', IDS.busybox, '127.0.0.1:5000/bb:1');
    const rows = await imageRows(b);
    const sameId = rows.filter((r) => r[2] === short(IDS.busybox)).map((r) => `${r[0]}:${r[1]}`).sort();
    assert.deepEqual(sameId, ['127.0.0.1:5000/bb:1', 'busybox:latest', 'doc-tag:v1', 'localhost:5000/doc/tag:v3']);
    const [viaRegistryName] = JSON.parse(await ok(b, 'image', 'inspect', 'localhost:5000/doc/tag:v3'));
    assert.equal(viaRegistryName.Id, IDS.busybox);
    assert.deepEqual(viaRegistryName.RepoTags, ['127.0.0.1:5000/bb:1', 'busybox:latest', 'doc-tag:v1', 'localhost:5000/doc/tag:v3']);

    assert.equal(await ok(b, 'rmi', 'doc-tag:v1', 'localhost:5000/doc/tag:v3'), 'Untagged: doc-tag:v1\nUntagged: localhost:5000/doc/tag:v3\n');
    await fails(b, new RegExp(`conflict: unable to delete ${short(IDS.busybox)} \\(must be forced\\) - image is referenced in multiple repositories`), 'rmi', short(IDS.busybox));
    await fails(b, /No such image: doc-tag:nosuch/, 'rmi', 'doc-tag:nosuch');
    await fails(b, /No such image: doc-nosuch:1/, 'tag', 'doc-nosuch:1', 'x:1');
    assert.equal(await ok(b, 'rmi', '127.0.0.1:5000/bb:1'), 'Untagged: 127.0.0.1:5000/bb:1\n');

    // The last tag of an image: the image and its own layers go; the base layer layered shares stays.
    await ok(b, 'tag', 'layered', 'layered:copy');
    const out = await ok(b, 'rmi', '-f', short(IDS.layered));
    const lines = out.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['Untagged: layered:copy', 'Untagged: layered:latest', `Deleted: ${IDS.layered}`]);
    assert.equal(lines.length, 5, `two layers removed:\n${out}`);
    assert.ok(existsSync(path.join(JSON.parse(await ok(b, 'image', 'inspect', 'busybox'))[0].GraphDriver.Data.UpperDir, 'bin', 'busybox')));
    assert.equal(await ok(b, 'load', '-q', '-i', fixture('layered.tar')), 'Loaded image: layered:latest\n');
  });

  test('rmi of an image a container uses is a conflict', async () => {
    const cid = (await ok(b, 'create', '--name', 'img-user', 'busybox', 'true')).trim();
    try {
      await fails(b, new RegExp(`conflict: unable to remove repository reference "busybox" \\(must force\\) - container ${cid.slice(0, 12)} is using its referenced image ${short(IDS.busybox)}`), 'rmi', 'busybox');
      assert.ok((await ok(b, 'images', '-q')).includes(short(IDS.busybox)));
    } finally {
      await b.docker(['rm', '-f', 'img-user']);
    }
  });

  test('a truncated, a garbage and a hostile archive load nothing', async () => {
    const before = await imageRows(b);
    const overlayBefore = readdirSync(path.join(b.dataRoot, 'overlay2')).sort();
    const truncated = path.join(scratch, 'truncated.tar');
    const whole = readFileSync(fixture('layered.tar'));
    writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    await fails(b, /truncated|unexpected EOF/, 'load', '-i', truncated);
    const garbage = await b.docker(['load'], { input: 'garbage\n' });
    assert.notEqual(garbage.code, 0, show(garbage));

    // A layer that tries to write next to the data root, and one that goes through a symlink.
    const sentinel = path.join(scratch, 'sentinel');
    writeFileSync(sentinel, 'untouched\n');
    const evilLayer = await packTar([
      { name: 'escape', type: 'symlink', linkname: scratch },
      { name: 'escape/sentinel', content: 'owned\n' },
    ]);
    const evilLayer2 = await packTar([{ name: `../../../../../../..${scratch}/sentinel`, content: 'owned\n' }]);
    for (const layer of [evilLayer, evilLayer2]) {
      const diff = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
      const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diff] } }));
      const archive = await packTar([
        { name: 'cfg.json', content: cfg },
        { name: 'l/layer.tar', content: layer },
        { name: 'manifest.json', content: JSON.stringify([{ Config: 'cfg.json', RepoTags: ['evil:1'], Layers: ['l/layer.tar'] }]) },
      ]);
      const p = path.join(scratch, 'evil.tar');
      writeFileSync(p, archive);
      await fails(b, /outside the layer|goes through the symlink/, 'load', '-i', p);
    }
    assert.equal(readFileSync(sentinel, 'utf8'), 'untouched\n');
    assert.deepEqual(readdirSync(scratch).sort(), ['evil.tar', 'layered.tar.gz', 'sentinel', 'truncated.tar']);
    assert.deepEqual(await imageRows(b), before);
    await waitFor(() => readdirSync(path.join(b.dataRoot, 'overlay2')).filter((n) => !n.startsWith('del-')).sort().join() === overlayBefore.join());
    assert.deepEqual(leftovers(b), []);
  });

  test('a pull from docker.io with no network (and no mirror) fails at once, naming the image; image events are emitted', async () => {
    // The harness points berthd's proxy at a closed loopback port: no traffic leaves the host.
    const r = await b.docker(['pull', 'busybox:nosuch'], { timeoutMs: 30000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /failed to resolve reference "docker\.io\/library\/busybox:nosuch"/);
    const since = Math.floor(Date.now() / 1000) - 1;
    await ok(b, 'tag', 'busybox', 'ev:1');
    await ok(b, 'rmi', 'ev:1');
    const until = Math.floor(Date.now() / 1000) + 1;
    const ev = await ok(b, 'events', '--since', String(since), '--until', String(until), '--filter', 'type=image', '--format', '{{.Action}} {{.Actor.Attributes.name}}');
    assert.match(ev, /^tag ev:1$/m);
    assert.match(ev, new RegExp(`^untag ${IDS.busybox}$`, 'm'));
  });
});

describe('a kill -9 during docker load', () => {
  test('leaves no half image and no temporary files after the restart', async () => {
    const b = await startBerthd();
    try {
      const archive = readFileSync(fixture('layered.tar'));
      // Feed half the archive through stdin and stop there, so the daemon is mid-load when it dies.
      const child = spawn(DOCKER, ['load'], { env: { ...process.env, DOCKER_HOST: b.host, DOCKER_CONFIG: path.join(b.root, 'docker-config') }, stdio: ['pipe', 'ignore', 'ignore'] });
      const exited = new Promise((r) => child.on('close', r));
      child.stdin.on('error', () => undefined);
      child.stdin.write(archive.subarray(0, Math.floor(archive.length / 2)));
      await waitFor(() => existsSync(path.join(b.dataRoot, 'image', 'tmp')) && readdirSync(path.join(b.dataRoot, 'image', 'tmp')).length > 0 && spoolBytes(b) > 0, 15000);
      await b.kill9();
      child.stdin.destroy();
      child.kill('SIGKILL');
      await exited;
      await b.restart();
      assert.deepEqual(await imageRows(b), []);
      assert.deepEqual(leftovers(b), []);
      assert.equal(await ok(b, 'load', '-q', '-i', fixture('layered.tar')), 'Loaded image: layered:latest\n');
      assert.deepEqual((await imageRows(b)).map((r) => r[2]), [short(IDS.layered)]);

      // The same while a layer is being unpacked: the half-made layer directory goes at the next start.
      const slow = spawn(DOCKER, ['load'], { env: { ...process.env, DOCKER_HOST: b.host, DOCKER_CONFIG: path.join(b.root, 'docker-config') }, stdio: ['pipe', 'ignore', 'ignore'] });
      const slowExit = new Promise((r) => slow.on('close', r));
      slow.stdin.on('error', () => undefined);
      slow.stdin.end(readFileSync(fixture('busybox.tar')));
      // Whatever stage it reached when killed, the restart must show either the whole image or nothing.
      await new Promise((r) => setTimeout(r, 150));
      await b.kill9();
      slow.kill('SIGKILL');
      await slowExit;
      await b.restart();
      const rows = await imageRows(b);
      assert.ok(rows.length === 1 || rows.length === 2, JSON.stringify(rows));
      assert.deepEqual(leftovers(b), []);
      for (const r of rows) {
        const [img] = JSON.parse(await ok(b, 'image', 'inspect', r[2]));
        for (const d of [img.GraphDriver.Data.UpperDir, ...(img.GraphDriver.Data.LowerDir ?? '').split(':').filter(Boolean)]) {
          assert.ok(statSync(d).isDirectory(), `layer directory ${d} exists`);
        }
      }
    } finally {
      await b.destroy();
    }
  });
});

function spoolBytes(b: Berthd): number {
  let n = 0;
  const dir = path.join(b.dataRoot, 'image', 'tmp');
  for (const d of readdirSync(dir)) {
    for (const f of readdirSync(path.join(dir, d))) n += statSync(path.join(dir, d, f)).size;
  }
  return n;
}

async function waitFor(fn: () => boolean, ms = 10000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if (fn()) return;
    } catch { /* not there yet */ }
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}
