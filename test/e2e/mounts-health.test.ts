// What API 1.43 to 1.48 brought to mounts, healthchecks and annotations, through the docker CLI 28 and the
// raw API:
// read-only binds that are read-only all the way down (and the bind-recursive options that change it),
// volume subpaths, image mounts, healthcheck start intervals, and a client's healthcheck settings over
// the image's; annotations kept, given to the runtime and listed from API 1.46.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthdForFile, scratchDir } from '../helpers/file';
import { api, dockerCli, waitFor } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok, fails } = dockerCli(() => b, { trim: true });
// A host directory with a tmpfs mounted inside it: the submount a recursive bind carries along.
// Unmounted and removed by scratchDir, also when the test process is ended first.
const host = scratchDir('berth-rro-');
const sub = path.join(host, 'sub');

before(() => {
  mkdirSync(sub);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'berth-rro-test', sub]);
  writeFileSync(path.join(sub, 'seen'), 'x');
});

/** Whether the container could create a file in the submount (and in the bind's top directory). */
const probe = 'touch /r/sub/w 2>/dev/null && echo sub=rw || echo sub=ro; touch /r/w 2>/dev/null && echo top=rw || echo top=ro; rm -f /r/sub/w /r/w';

describe('read-only binds', () => {
  test('are read-only down to their submounts, with -v :ro and --mount readonly', async () => {
    assert.equal(await ok('run', '--rm', '-v', `${host}:/r:ro`, 'busybox', 'sh', '-c', probe), 'sub=ro\ntop=ro');
    assert.equal(await ok('run', '--rm', '--mount', `type=bind,src=${host},dst=/r,readonly`, 'busybox', 'sh', '-c', probe), 'sub=ro\ntop=ro');
    assert.equal(await ok('run', '--rm', '--mount', `type=bind,src=${host},dst=/r,readonly,bind-recursive=readonly,bind-propagation=rprivate`, 'busybox', 'sh', '-c', probe), 'sub=ro\ntop=ro');
    // A writable bind's submounts stay writable.
    assert.equal(await ok('run', '--rm', '-v', `${host}:/r`, 'busybox', 'sh', '-c', probe), 'sub=rw\ntop=rw');
  });

  test('bind-recursive=writable leaves the submounts writable; disabled leaves them out', async () => {
    assert.equal(await ok('run', '--rm', '--mount', `type=bind,src=${host},dst=/r,readonly,bind-recursive=writable`, 'busybox', 'sh', '-c', probe), 'sub=rw\ntop=ro');
    // Without recursion the submount is not there: the empty directory under it shows.
    assert.equal(await ok('run', '--rm', '--mount', `type=bind,src=${host},dst=/r,bind-recursive=disabled`, 'busybox', 'ls', '-A', '/r/sub'), '');
    assert.equal(await ok('run', '--rm', '--mount', `type=bind,src=${host},dst=/r`, 'busybox', 'ls', '-A', '/r/sub'), 'seen');
  });

  test('clients of an API older than 1.44 keep read-only at the top mount only', async () => {
    const r = await b.docker(['run', '--rm', '-v', `${host}:/r:ro`, 'busybox', 'sh', '-c', probe], { env: { DOCKER_API_VERSION: '1.43' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'sub=rw\ntop=ro');
    const forced = await api(b, 'POST', '/v1.43/containers/create', {
      body: { Image: 'busybox', HostConfig: { Mounts: [{ Type: 'bind', Source: host, Target: '/r', ReadOnly: true, BindOptions: { ReadOnlyForceRecursive: true } }] } },
    });
    assert.equal(forced.status, 400, forced.body);
    assert.match(forced.json().message, /ReadOnlyForceRecursive needs API v1.44/);
  });

  test('contradictory bind options are refused with 400 and make nothing', async () => {
    const before = (await api(b, 'GET', '/containers/json?all=1')).json().length;
    for (const [bo, re] of [
      [{ ReadOnlyNonRecursive: true }, /must not set ReadOnlyNonRecursive when ReadOnly is false/],
      [{ ReadOnlyForceRecursive: true }, /must not set ReadOnlyForceRecursive when ReadOnly is false/],
      [{ ReadOnlyNonRecursive: true, ReadOnlyForceRecursive: true, ro: true }, /must not set both/],
      [{ ReadOnlyForceRecursive: true, Propagation: 'rslave', ro: true }, /needs Propagation rprivate/],
    ] as Array<[Record<string, unknown>, RegExp]>) {
      const { ro, ...opts } = bo;
      const r = await api(b, 'POST', '/containers/create', {
        body: { Image: 'busybox', HostConfig: { Mounts: [{ Type: 'bind', Source: host, Target: '/r', ReadOnly: !!ro, BindOptions: opts }] } },
      });
      assert.equal(r.status, 400, r.body);
      assert.match(r.json().message, re);
    }
    assert.equal((await api(b, 'GET', '/containers/json?all=1')).json().length, before);
  });
});

describe('volume subpaths', () => {
  test('a directory of the volume is mounted; through its own links, never above its root', async () => {
    await ok('volume', 'create', 'subvol');
    await ok('run', '--rm', '-v', 'subvol:/v', 'busybox', 'sh', '-c',
      'mkdir -p /v/a/b && echo in-a > /v/a/b/f && echo top > /v/topfile && ln -s / /v/rootlink && ln -s ../.. /v/a/up');
    assert.equal(await ok('run', '--rm', '--mount', 'type=volume,src=subvol,dst=/m,volume-subpath=a/b', 'busybox', 'cat', '/m/f'), 'in-a');
    // A link to "/" inside the volume means the volume's root, not the host's.
    assert.equal(await ok('run', '--rm', '--mount', 'type=volume,src=subvol,dst=/m,volume-subpath=rootlink', 'busybox', 'cat', '/m/topfile'), 'top');
    assert.equal(await ok('run', '--rm', '--mount', 'type=volume,src=subvol,dst=/m,volume-subpath=a/up', 'busybox', 'cat', '/m/topfile'), 'top');
    // Read-only and writable as asked, and what is written lands in the subdirectory.
    await ok('run', '--rm', '--mount', 'type=volume,src=subvol,dst=/m,volume-subpath=a', 'busybox', 'sh', '-c', 'echo new > /m/written');
    assert.equal(await ok('run', '--rm', '-v', 'subvol:/v', 'busybox', 'cat', '/v/a/written'), 'new');
    await fails(/Read-only file system/, 'run', '--rm', '--mount', 'type=volume,src=subvol,dst=/m,volume-subpath=a,readonly', 'busybox', 'touch', '/m/x');
  });

  test('a missing subpath fails the start; one that climbs out is refused at create', async () => {
    await fails(/subpath nope does not exist in the volume/, 'run', '--rm', '--mount', 'type=volume,src=subvol,dst=/m,volume-subpath=nope', 'busybox', 'true');
    await fails(/subpath must be a relative path within the volume/, 'create', '--mount', 'type=volume,src=subvol,dst=/m,volume-subpath=../x', 'busybox');
    await fails(/subpath must be a relative path within the volume/, 'create', '--mount', 'type=volume,src=subvol,dst=/m,volume-subpath=/etc', 'busybox');
  });
});

describe('tmpfs options', () => {
  test('TmpfsOptions.Options (API 1.46) reach the mount; a malformed one is refused', async () => {
    const r = await api(b, 'POST', '/v1.46/containers/create', {
      body: { Image: 'busybox', Cmd: ['grep', ' /t ', '/proc/mounts'], HostConfig: { Mounts: [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { Options: [['exec'], ['nr_inodes', '100']] } }] } },
    });
    assert.equal(r.status, 201, r.body);
    const id = r.json().Id;
    await ok('start', id);
    await ok('wait', id);
    const line = await ok('logs', id);
    assert.match(line, /nr_inodes=100/);
    assert.doesNotMatch(line, /noexec/);
    await ok('rm', id);
    const bad = await api(b, 'POST', '/v1.46/containers/create', {
      body: { Image: 'busybox', HostConfig: { Mounts: [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { Options: [['a,b']] } }] } },
    });
    assert.equal(bad.status, 400, bad.body);
  });
});

describe('image mounts', () => {
  test('an image is mounted read-only, whole or a subpath; it counts as used; it is unmounted at the exit', async () => {
    // An image of its own (one tag only, so that rmi would remove it rather than untag it).
    const ctx = mkdtempSync(path.join(os.tmpdir(), 'berth-imgmount-'));
    try {
      writeFileSync(path.join(ctx, 'marker'), 'from-the-image\n');
      writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY marker /marker\n');
      await ok('build', '-q', '-t', 'mounted:v1', ctx);
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
    assert.equal(await ok('run', '--rm', '--mount', 'type=image,source=mounted:v1,target=/img', 'busybox', 'sh', '-c',
      'cat /img/marker; touch /img/x 2>/dev/null || echo read-only'), 'from-the-image\nread-only');
    assert.equal(await ok('run', '--rm', '--mount', 'type=image,source=mounted:v1,target=/img,image-subpath=bin', 'busybox', 'ls', '/img/busybox'), '/img/busybox');
    const id = await ok('run', '-d', '--mount', 'type=image,source=mounted:v1,target=/img', 'busybox', 'sleep', '600');
    assert.deepEqual(JSON.parse(await ok('inspect', '-f', '{{json .Mounts}}', id)),
      [{ Type: 'image', Source: 'mounted:v1', Destination: '/img', Mode: '', RW: false, Propagation: 'rprivate' }]);
    const mountDir = path.join(b.dataRoot, 'containers', id, 'image-mounts', '0');
    assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mountDir} `), 'the image is mounted while the container runs');
    // The image is in use: removing it needs force, as for a container's own image.
    await fails(/must force|is using/, 'rmi', 'mounted:v1');
    await ok('stop', '-t', '0', id);
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mountDir} `), 'unmounted after the exit');
    // A restart mounts it again.
    await ok('start', id);
    assert.equal(await ok('exec', id, 'ls', '/img/bin/busybox'), '/img/bin/busybox');
    await ok('rm', '-f', id);
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mountDir} `));
    await ok('rmi', 'mounted:v1');
  });

  test('an unknown image, a missing or climbing subpath are refused', async () => {
    await fails(/No such image: nosuch/, 'create', '--mount', 'type=image,source=nosuch,target=/img', 'busybox');
    await fails(/subpath must be a relative path within the image/, 'create', '--mount', 'type=image,source=busybox,target=/img,image-subpath=../x', 'busybox');
    await fails(/subpath nope does not exist in the image/, 'run', '--rm', '--mount', 'type=image,source=busybox,target=/img,image-subpath=nope', 'busybox', 'true');
  });
});

describe('healthchecks', () => {
  test('--health-interval alone keeps the image HEALTHCHECK command', async () => {
    const ctx = mkdtempSync(path.join(os.tmpdir(), 'berth-hc-'));
    try {
      writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nHEALTHCHECK --interval=60s --retries=7 CMD echo from-image\n');
      await ok('build', '-q', '-t', 'hcimg', ctx);
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
    const id = await ok('run', '-d', '--health-interval', '200ms', 'hcimg', 'sleep', '600');
    const hc = JSON.parse(await ok('inspect', '-f', '{{json .Config.Healthcheck}}', id));
    assert.deepEqual(hc.Test, ['CMD-SHELL', 'echo from-image']);
    assert.equal(hc.Interval, 200e6);
    assert.equal(hc.Retries, 7);
    await waitFor('a healthy probe of the image command', async () =>
      (await ok('inspect', '-f', '{{.State.Health.Status}}', id)) === 'healthy' || undefined);
    assert.match(await ok('inspect', '-f', '{{(index .State.Health.Log 0).Output}}', id), /from-image/);
    await ok('rm', '-f', id);
  });

  test('probes come every StartInterval during the start period, failures there do not count', async () => {
    const id = await ok('run', '-d', '--health-cmd', 'exit 1', '--health-interval', '1h', '--health-retries', '1',
      '--health-start-period', '1h', '--health-start-interval', '100ms', 'busybox', 'sleep', '600');
    await waitFor('three probes within the start period', async () =>
      Number(await ok('inspect', '-f', '{{len .State.Health.Log}}', id)) >= 3 || undefined);
    assert.equal(await ok('inspect', '-f', '{{.State.Health.Status}} {{.State.Health.FailingStreak}}', id), 'starting 0');
    await ok('rm', '-f', id);
  });

  test('durations under 1ms and negative retries are refused with 400', async () => {
    for (const [hc, re] of [
      [{ Test: ['CMD', 'true'], Interval: 1000 }, /Interval in Healthcheck cannot be less than 1ms/],
      [{ Test: ['CMD', 'true'], StartInterval: 5 }, /StartInterval in Healthcheck cannot be less than 1ms/],
      [{ Test: ['CMD', 'true'], Retries: -1 }, /Retries in Healthcheck cannot be negative/],
    ] as Array<[object, RegExp]>) {
      const r = await api(b, 'POST', '/containers/create', { body: { Image: 'busybox', Healthcheck: hc } });
      assert.equal(r.status, 400, r.body);
      assert.match(r.json().message, re);
    }
  });
});

describe('annotations', () => {
  test('--annotation is kept in HostConfig, given to the runtime, and listed from API 1.46', async () => {
    const id = await ok('run', '-d', '--annotation', 'org.example.role=cache', 'busybox', 'sleep', '600');
    assert.deepEqual(JSON.parse(await ok('inspect', '-f', '{{json .HostConfig.Annotations}}', id)), { 'org.example.role': 'cache' });
    const spec = JSON.parse(readFileSync(path.join(b.execRoot, 'containers', id, 'config.json'), 'utf8'));
    assert.equal(spec.annotations['org.example.role'], 'cache');
    const list = (v: string) => api(b, 'GET', `/${v}/containers/json?filters=${encodeURIComponent(JSON.stringify({ id: [id] }))}`).then((r) => r.json()[0].HostConfig);
    assert.deepEqual(await list('v1.46'), { NetworkMode: 'bridge', Annotations: { 'org.example.role': 'cache' } });
    assert.deepEqual(await list('v1.45'), { NetworkMode: 'bridge' });
    await ok('rm', '-f', id);
  });
});
