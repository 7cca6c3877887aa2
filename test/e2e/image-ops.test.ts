// The docker CLI 28.2.2 against a real berthd for save, import, export, commit, diff, history, images
// filters, image prune and system df, plus hostile imports. Every berthd is destroyed in after(), also when
// a test fails.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, type Berthd } from '../helpers/berthd';
import { berthdForFile, scratchDir } from '../helpers/file';
import { api, dockerOk, dockerFails, show } from '../helpers/clients';
import { packTar } from '../fixtures/tar';
import { readTar, drain } from '../../daemon/storage/layers/apply';

const fixture = (n: string) => path.join(FIXTURES, n);
const IDS: { busybox: string; layered: string } = JSON.parse(readFileSync(fixture('ids.json'), 'utf8'));

const CLI = { timeoutMs: 120000, matchStdout: true };
const ok = (b: Berthd, ...args: string[]) => dockerOk(b, args, CLI);
const fails = (b: Berthd, re: RegExp, ...args: string[]) => dockerFails(b, re, args, CLI);


let runs = 0;
/** Runs a container to its end (detached, then waited for) and returns its output; it is removed unless
 *  `name` is given. */
async function runTo(b: Berthd, name: string | undefined, ...args: string[]): Promise<string> {
  const n = name ?? `ops-run-${process.pid}-${runs++}`;
  await ok(b, 'run', '-d', '--name', n, ...args);
  assert.equal((await ok(b, 'wait', n)).trim(), '0');
  const out = await ok(b, 'logs', n);
  if (!name) await ok(b, 'rm', n);
  return out;
}

/** Names of the members of a tar file. */
async function members(file: string | Buffer): Promise<string[]> {
  const buf = Buffer.isBuffer(file) ? file : readFileSync(file);
  const names: string[] = [];
  await readTar((async function* () { yield buf; })(), async (h, s) => {
    names.push(h.name);
    await drain(s);
  });
  return names;
}

function getBinary(b: Berthd, urlPath: string): Promise<{ status: number; body: Buffer; type?: string }> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: b.sock, path: urlPath }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), type: res.headers['content-type'] }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const layerDirs = (b: Berthd) => readdirSync(path.join(b.dataRoot, 'overlay2')).filter((n) => /^[a-f0-9]{64}$/.test(n)).sort();
const leftovers = (b: Berthd) => readdirSync(path.join(b.dataRoot, 'overlay2')).filter((n) => n.startsWith('tmp-'));

describe('image operations through the docker CLI', () => {
  const b = berthdForFile({ fixtures: ['busybox', 'layered'] });
  const scratch = scratchDir('berth-image-ops-');

  test('docker save → rmi → load keeps ids, tags and history; both layouts are in the archive', async () => {
    const hist = async (ref: string) => ok(b, 'history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}', ref);
    const before = { bb: await hist('busybox'), layered: await hist('layered') };
    const file = path.join(scratch, 'two.tar');
    await ok(b, 'save', '-o', file, 'busybox:latest', 'layered');
    const names = await members(file);
    for (const n of ['manifest.json', 'index.json', 'oci-layout', 'repositories']) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
    assert.ok(names.includes(`blobs/sha256/${IDS.busybox.slice(7)}`), 'the config blob is named by the image id');
    assert.equal(new Set(names).size, names.length, 'shared layers are written once');
    await ok(b, 'rmi', 'busybox', 'layered');
    assert.equal((await ok(b, 'images', '-q')).trim(), '');
    assert.deepEqual(layerDirs(b), [], 'layers no image uses are removed from disk');
    const out = await ok(b, 'load', '-i', file);
    assert.match(out, /Loaded image: busybox:latest/);
    assert.match(out, /Loaded image: layered:latest/);
    assert.deepEqual((await ok(b, 'images', '-q', '--no-trunc')).split('\n').filter(Boolean).sort(), [IDS.busybox, IDS.layered].sort());
    assert.equal(await hist('busybox'), before.bb);
    assert.equal(await hist('layered'), before.layered);
    // The same through GET /images/{name}/get, and by id (untagged).
    const one = await getBinary(b, '/v1.50/images/busybox/get');
    assert.equal(one.status, 200);
    assert.equal(one.type, 'application/x-tar');
    assert.ok((await members(one.body)).includes('manifest.json'));
    await fails(b, /reference does not exist/, 'save', '-o', path.join(scratch, 'x.tar'), 'doc-nosuch:1');
    assert.ok(!existsSync(path.join(scratch, 'x.tar')) || readFileSync(path.join(scratch, 'x.tar')).length === 0);
  });

  test('diff, export, import and commit of a container', async () => {
    await runTo(b, 'ops1', 'busybox', 'sh', '-c', 'echo hi > /tmp/added.txt; mkdir -p /tmp/newdir/sub; echo b > /tmp/newdir/sub/b.txt; rm /etc/group');
    const diff = (await ok(b, 'diff', 'ops1')).split('\n').filter(Boolean);
    for (const l of ['C /tmp', 'A /tmp/added.txt', 'A /tmp/newdir', 'A /tmp/newdir/sub/b.txt', 'C /etc', 'D /etc/group']) assert.ok(diff.includes(l), `${l} in\n${diff.join('\n')}`);
    await fails(b, /No such container: doc-nosuch/, 'diff', 'doc-nosuch');

    const exp = path.join(scratch, 'export.tar');
    await ok(b, 'export', 'ops1', '-o', exp);
    const names = await members(exp);
    assert.ok(names.includes('tmp/added.txt'));
    assert.ok(names.includes('bin/busybox'));
    assert.ok(!names.includes('etc/group'), 'the deleted file is not exported');
    assert.ok(!names.some((n) => n.includes('.wh.')), 'an export has no whiteouts');

    const impOut = await ok(b, 'import', '-c', 'CMD ["sh"]', '-c', 'ENV IMPORTED=1', '-m', 'doc import', exp, 'imp:1');
    assert.match(impOut, /^sha256:[a-f0-9]{64}\n$/);
    const [img] = JSON.parse(await ok(b, 'image', 'inspect', 'imp:1'));
    assert.deepEqual(img.Config.Cmd, ['sh']);
    assert.deepEqual(img.Config.Env, ['IMPORTED=1']);
    assert.equal(img.Comment, 'doc import');
    assert.equal(img.RootFS.Layers.length, 1);
    assert.equal((await runTo(b, undefined, 'imp:1', 'cat', '/tmp/added.txt')), 'hi\n');
    const hist = await ok(b, 'history', '--format', '{{.ID}}|{{.Comment}}', 'imp:1');
    assert.equal(hist, `${img.Id.slice(7, 19)}|doc import\n`);

    const stdinImp = await b.docker(['import', '-', 'imp:2'], { input: readFileSync(exp), timeoutMs: 120000 });
    assert.equal(stdinImp.code, 0, show(stdinImp));
    const [img2] = JSON.parse(await ok(b, 'image', 'inspect', 'imp:2'));
    assert.equal(img2.Comment, '');
    assert.match(await ok(b, 'history', '--format', '{{.Comment}}', 'imp:2'), /^Imported from -\n$/);

    // fromSrc=<url>: a loopback HTTP server.
    const srv = http.createServer((req, res) => {
      if (req.url === '/export.tar') res.end(readFileSync(exp));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (srv.address() as { port: number }).port;
      await ok(b, 'import', `http://127.0.0.1:${port}/export.tar`, 'imp:3');
      assert.equal((await runTo(b, undefined, 'imp:3', 'cat', '/tmp/added.txt')), 'hi\n');
    } finally {
      srv.close();
    }
    await fails(b, /connection refused/, 'import', 'http://127.0.0.1:1/nothing.tar', 'imp:4');
    await fails(b, /RUN is not a valid change command/, 'import', '-c', 'RUN true', exp, 'imp:5');

    const comOut = await ok(b, 'commit', '-c', 'ENV COMMITTED=1', '-c', 'CMD ["sh"]', '-m', 'doc commit', '-a', 'doc <doc@example>', 'ops1', 'com:1');
    const comId = comOut.trim();
    assert.match(comId, /^sha256:[a-f0-9]{64}$/);
    const [c] = JSON.parse(await ok(b, 'image', 'inspect', 'com:1'));
    assert.equal(c.Id, comId);
    assert.equal(c.Parent, IDS.busybox);
    assert.equal(c.Author, 'doc <doc@example>');
    assert.equal(c.Comment, 'doc commit');
    assert.ok(c.Config.Env.includes('COMMITTED=1'));
    assert.deepEqual(c.Config.Cmd, ['sh']);
    assert.equal(c.RootFS.Layers.length, 2);
    assert.equal(await runTo(b, undefined, 'com:1', 'sh', '-c', 'cat /tmp/newdir/sub/b.txt; test -e /etc/group || echo gone'), 'b\ngone\n');
    const baseHistory = (await ok(b, 'history', '-q', 'busybox')).split('\n').filter(Boolean).length;
    const ch = (await ok(b, 'history', '--format', '{{.ID}}|{{.Comment}}|{{.Size}}', 'com:1')).split('\n').filter(Boolean);
    assert.equal(ch.length, baseHistory + 1);
    assert.match(ch[0], new RegExp(`^${comId.slice(7, 19)}\\|doc commit\\|\\d`));
    assert.match(ch[1], new RegExp(`^${IDS.busybox.slice(7, 19)}\\|`));
    // The committed image saves and loads again under the same id.
    const saved = path.join(scratch, 'com.tar');
    await ok(b, 'save', '-o', saved, 'com:1');
    await ok(b, 'rm', 'ops1');
    await ok(b, 'rmi', 'com:1');
    await ok(b, 'load', '-i', saved);
    assert.equal(JSON.parse(await ok(b, 'image', 'inspect', 'com:1'))[0].Id, comId);
  });

  test('commit pauses a running container and leaves it running; --pause=false', async () => {
    await ok(b, 'run', '-d', '--name', 'ops2', 'busybox', 'sh', '-c', 'echo x > /x; exec sleep 300');
    try {
      await ok(b, 'commit', 'ops2', 'com:2');
      const live = path.join(scratch, 'live-export.tar');
      await ok(b, 'export', '-o', live, 'ops2');
      assert.ok((await members(live)).includes('x'), 'a running container is exported from its mounted root');
      assert.equal((await ok(b, 'inspect', '-f', '{{.State.Status}}', 'ops2')).trim(), 'running');
      const id = (await ok(b, 'commit', '--pause=false', 'ops2')).trim();
      assert.match(id, /^sha256:/);
      // An untagged commit is dangling; prune removes it (and only it).
      const dangling = (await ok(b, 'images', '-q', '--no-trunc', '--filter', 'dangling=true')).split('\n').filter(Boolean);
      assert.deepEqual(dangling, [id]);
      const pruned = await ok(b, 'image', 'prune', '-f');
      assert.match(pruned, new RegExp(`deleted: ${id}`));
      assert.match(pruned, /Total reclaimed space/);
      await fails(b, /No such image/, 'image', 'inspect', id);
    } finally {
      await b.docker(['rm', '-f', 'ops2']);
    }
  });

  test('commit keeps an opaque directory opaque: a re-created directory hides the image\'s old contents', async () => {
    await ok(b, 'run', '--name', 'ops3', '-u', '0', '--entrypoint', 'sh', 'layered', '-c', 'rm -rf /app && mkdir /app && echo new > /app/new');
    try {
      await ok(b, 'commit', 'ops3', 'com:opaque');
      const ls = await ok(b, 'run', '--rm', '--entrypoint', 'ls', 'com:opaque', '/app');
      assert.deepEqual(ls.split('\n').filter(Boolean), ['new']);
      // The layer itself carries the marker, as Docker writes it.
      const file = path.join(scratch, 'opaque.tar');
      await ok(b, 'save', '-o', file, 'com:opaque');
      assert.ok(readFileSync(file).includes(Buffer.from('app/.wh..wh..opq')), 'the committed layer marks /app opaque');
    } finally {
      await b.docker(['rm', '-f', 'ops3']);
      await b.docker(['rmi', 'com:opaque']);
    }
  });

  test('docker images filters and formats', async () => {
    await ok(b, 'tag', 'busybox', 'other:x');
    const q = (await ok(b, 'images', '-q', '--filter', 'reference=other')).trim();
    assert.equal(q, IDS.busybox.slice(7, 19));
    assert.equal((await ok(b, 'images', '--no-trunc', '-q', '--filter', 'reference=other:x')).trim(), IDS.busybox);
    const since = (await ok(b, 'images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `since=${IDS.busybox}`)).split('\n').filter(Boolean);
    assert.ok(!since.includes('busybox:latest'));
    assert.ok(since.includes('imp:1'));
    const beforeImp = (await ok(b, 'images', '--format', '{{.Repository}}', '--filter', 'before=imp:1')).split('\n').filter(Boolean);
    assert.ok(beforeImp.includes('busybox') && !beforeImp.includes('imp'));
    const digests = await ok(b, 'images', '--digests', '--format', '{{.Repository}} {{.Digest}}', 'busybox');
    assert.equal(digests, 'busybox <none>\n');
    assert.ok((await ok(b, 'images', '-a', '-q')).split('\n').filter(Boolean).length >= 4);
    await ok(b, 'rmi', 'other:x');
  });

  test('images made within one second keep their order for before/since (Created has nanoseconds)', async () => {
    await ok(b, 'run', '--name', 'nano-src', 'busybox', 'true');
    // Two commits back to back: the same wall-clock second in all but the rarest runs.
    const first = (await ok(b, 'commit', '-c', 'LABEL n=1', 'nano-src', 'nano:1')).trim();
    const second = (await ok(b, 'commit', '-c', 'LABEL n=2', 'nano-src', 'nano:2')).trim();
    assert.notEqual(first, second);
    const created = (await ok(b, 'image', 'inspect', '--format', '{{.Created}}', 'nano:1')).trim();
    assert.match(created, /\.\d+Z$/, 'Created carries fractional seconds');
    const beforeSecond = (await ok(b, 'images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', 'before=nano:2')).split('\n');
    assert.ok(beforeSecond.includes('nano:1'), `nano:1 was made before nano:2: ${beforeSecond}`);
    const sinceFirst = (await ok(b, 'images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', 'since=nano:1')).split('\n');
    assert.ok(sinceFirst.includes('nano:2') && !sinceFirst.includes('nano:1'));
    await ok(b, 'rm', 'nano-src');
    await ok(b, 'rmi', 'nano:1', 'nano:2');
  });

  test('docker system df and -v', async () => {
    const r = await api(b, 'GET', '/v1.50/system/df');
    assert.equal(r.status, 200);
    const df = r.json();
    assert.ok(df.LayersSize > 1_000_000);
    const bb = df.Images.find((i: { Id: string }) => i.Id === IDS.busybox);
    assert.ok(bb, 'busybox is listed');
    assert.equal(bb.SharedSize, bb.Size, 'busybox shares its only layer with the images built on it');
    assert.ok(Array.isArray(df.Containers));
    assert.deepEqual(df.Volumes, []);
    assert.deepEqual(df.BuildCache, []);
    const only = (await api(b, 'GET', '/v1.50/system/df?type=image')).json();
    assert.ok(Array.isArray(only.Images));
    assert.equal(only.Containers, undefined);
    assert.equal((await api(b, 'GET', '/v1.50/system/df?type=bogus')).status, 400);
    const table = await ok(b, 'system', 'df');
    assert.match(table, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE/);
    assert.match(table, /Images\s+\d+/);
    const verbose = await ok(b, 'system', 'df', '-v');
    assert.match(verbose, /Images space usage:/);
    assert.match(verbose, /busybox/);
  });

  test('hostile imports change nothing outside the data root and create no image', async () => {
    const sentinel = path.join(scratch, 'sentinel');
    writeFileSync(sentinel, 'untouched\n');
    const count = async () => (await ok(b, 'images', '-a', '-q')).split('\n').filter(Boolean).length;
    const n0 = await count();
    const cases: [string, Buffer, RegExp][] = [
      ['dotdot', await packTar([{ name: `../../../../../../..${sentinel}`, content: 'owned\n' }]), /points outside the layer/],
      ['absolute', await packTar([{ name: sentinel, content: 'owned\n' }]), /absolute path/],
      ['through a symlink', await packTar([{ name: 'escape', type: 'symlink', linkname: scratch }, { name: 'escape/sentinel', content: 'owned\n' }]), /symlink/],
      ['hardlink outside', await packTar([{ name: 'h', type: 'link', linkname: `../../..${sentinel}` }]), /outside the layer/],
      ['truncated', (await packTar([{ name: 'big', content: 'x'.repeat(5000) }])).subarray(0, 1500), /unexpected EOF|truncated|ended early/],
    ];
    for (const [what, tarBytes, re] of cases) {
      const f = path.join(scratch, `evil-${what.replace(/\W/g, '')}.tar`);
      writeFileSync(f, tarBytes);
      await fails(b, re, 'import', f, `evil:${what.replace(/\W/g, '')}`);
    }
    assert.equal(readFileSync(sentinel, 'utf8'), 'untouched\n');
    assert.ok(!existsSync(path.join(scratch, 'escape', 'sentinel')));
    assert.equal(await count(), n0);
    assert.deepEqual(leftovers(b), []);
  });

  test('hostile and broken loads: escaping symlink, missing layer, wrong digest, truncated stream', async () => {
    const sentinel = path.join(scratch, 'load-sentinel');
    writeFileSync(sentinel, 'untouched\n');
    const count = async () => (await ok(b, 'images', '-a', '-q')).split('\n').filter(Boolean).length;
    const n0 = await count();
    const archive = async (layer: Buffer, o: { diffId?: string; layers?: string[] } = {}) => {
      const diffId = o.diffId ?? `sha256:${createHash('sha256').update(layer).digest('hex')}`;
      const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } });
      const cfgName = `${createHash('sha256').update(config).digest('hex')}.json`;
      return packTar([
        { name: 'l/layer.tar', content: layer },
        { name: cfgName, content: config },
        { name: 'manifest.json', content: JSON.stringify([{ Config: cfgName, RepoTags: ['evil:load'], Layers: o.layers ?? ['l/layer.tar'] }]) },
      ]);
    };
    const escape = await packTar([{ name: 'escape', type: 'symlink', linkname: path.dirname(sentinel) }, { name: 'escape/load-sentinel', content: 'owned\n' }]);
    const good = await packTar([{ name: 'ok.txt', content: 'fine\n' }]);
    const cases: [string, Buffer, RegExp][] = [
      ['symlink', await archive(escape), /symlink/],
      ['missing', await archive(good, { layers: ['nosuch/layer.tar'] }), /has no "nosuch\/layer.tar"/],
      ['digest', await archive(good, { diffId: `sha256:${'0'.repeat(64)}` }), /invalid diffID/],
      ['truncated', readFileSync(fixture('busybox.tar')).subarray(0, 300_000), /unexpected EOF|truncated|ended early/],
    ];
    for (const [what, bytes, re] of cases) {
      const f = path.join(scratch, `evil-load-${what}.tar`);
      writeFileSync(f, bytes);
      await fails(b, re, 'load', '-i', f);
    }
    assert.equal(readFileSync(sentinel, 'utf8'), 'untouched\n');
    assert.equal(await count(), n0);
    await fails(b, /No such image/, 'image', 'inspect', 'evil:load');
    assert.deepEqual(leftovers(b), []);
    assert.ok(!existsSync(path.join(b.dataRoot, 'image', 'tmp')) || readdirSync(path.join(b.dataRoot, 'image', 'tmp')).length === 0);
  });

  test('docker image prune -a with label and until filters', async () => {
    const exp = path.join(scratch, 'export.tar');
    await ok(b, 'import', '-c', 'LABEL keep=no', exp, 'prunable:1');
    await ok(b, 'import', '-c', 'LABEL keep=yes', exp, 'kept:1');
    const all = async () => (await ok(b, 'images', '--format', '{{.Repository}}:{{.Tag}}')).split('\n').filter(Boolean).sort();
    const before = await all();
    // Nothing was created before 2000.
    assert.doesNotMatch(await ok(b, 'image', 'prune', '-a', '-f', '--filter', 'until=2000-01-01T00:00:00Z'), /deleted:/);
    assert.deepEqual(await all(), before);
    const out = await ok(b, 'image', 'prune', '-a', '-f', '--filter', 'label=keep=no');
    assert.match(out, /untagged: prunable:1/);
    assert.deepEqual(await all(), before.filter((n) => n !== 'prunable:1:latest' && n !== 'prunable:1'));
    assert.ok((await all()).includes('kept:1'));
    await ok(b, 'rmi', 'kept:1');
  });
});

describe('--platform on local images (API 1.48/1.50)', () => {
  const b = berthdForFile({ fixtures: ['busybox'] });
  const other = process.arch === 'arm64' ? 'linux/amd64' : 'linux/arm64';
  const mine = process.arch === 'arm64' ? 'linux/arm64' : 'linux/amd64';
  const mismatch = /was found but does not match the specified platform/;

  test('save, history, inspect, run and rmi of another platform fail and change nothing; the image\'s own works', async () => {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'berth-platform-'));
    try {
      const file = path.join(scratch, 'bb.tar');
      await fails(b, mismatch, 'save', '--platform', other, '-o', file, 'busybox');
      await ok(b, 'save', '--platform', mine, '-o', file, 'busybox');
      await fails(b, mismatch, 'history', '--platform', other, 'busybox');
      assert.equal((await ok(b, 'image', 'inspect', '--platform', mine, '-f', '{{.Os}}', 'busybox')).trim(), 'linux');
      await fails(b, mismatch, 'run', '--rm', '--pull', 'never', '--platform', other, 'busybox', 'true');
      assert.equal((await ok(b, 'run', '--rm', '--platform', mine, 'busybox', 'echo', 'ran')).trim(), 'ran');
      // rmi of a platform the image is not of removes nothing.
      await fails(b, mismatch, 'rmi', '--platform', other, 'busybox');
      assert.equal((await ok(b, 'images', '-q', 'busybox')).trim().length, 12);
      // load --platform keeps only the archive's images of that platform: none here is an error.
      await ok(b, 'rmi', 'busybox');
      await fails(b, /no image in the archive matches the specified platform/, 'load', '--platform', other, '-i', file);
      assert.equal((await ok(b, 'images', '-q')).trim(), '');
      assert.match(await ok(b, 'load', '--platform', mine, '-i', file), /Loaded image: busybox:latest/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
