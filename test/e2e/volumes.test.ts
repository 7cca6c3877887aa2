// Volumes and bind mounts through the docker CLI 28.2.2 against a real berthd: `docker volume`
// create/ls/inspect/rm/prune, named and anonymous volumes (-v, --mount, an image's VOLUME), binds with
// ro/rw, tmpfs, --volumes-from, the copy of the image's files into an empty volume, volumes with driver
// options (a tmpfs mounted while used), docker cp into a volume, rm -v and --rm, and bad specifications.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
let host: string;

before(() => {
  host = mkdtempSync(path.join(os.tmpdir(), 'berth-vol-'));
});

after(() => {
  if (host) rmSync(host, { recursive: true, force: true });
});

const { ok, fails } = dockerCli(() => b);

const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];
const volumeNames = async () => (await ok('volume', 'ls', '-q')).split('\n').filter(Boolean).sort();
const mounted = (p: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);

test('docker volume create, ls with filters, inspect, rm; errors as Docker gives them', async () => {
  const created = (await ok('volume', 'create', '--label', 'team=a', 'v-a')).trim();
  assert.equal(created, 'v-a');
  await ok('volume', 'create', 'v-b');
  const again = await api(b, 'POST', '/volumes/create', { body: { Name: 'v-a' } });
  assert.equal(again.status, 201);
  assert.deepEqual(again.json().Labels, { team: 'a' });
  const v = JSON.parse(await ok('volume', 'inspect', 'v-a'))[0];
  assert.deepEqual(Object.keys(v).sort(), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
  assert.equal(v.Driver, 'local');
  assert.equal(v.Scope, 'local');
  assert.equal(v.Mountpoint, path.join(b.dataRoot, 'volumes', 'v-a', '_data'));
  assert.match(v.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(existsSync(v.Mountpoint));
  assert.deepEqual((await ok('volume', 'ls', '-q', '-f', 'label=team=a')).trim(), 'v-a');
  assert.deepEqual((await ok('volume', 'ls', '-q', '-f', 'name=v-b')).trim(), 'v-b');
  // `docker inspect` without --type finds volumes too.
  assert.equal(JSON.parse(await ok('inspect', 'v-b'))[0].Name, 'v-b');

  await fails(/includes invalid characters for a local volume name/, 'volume', 'create', 'bad/name');
  await fails(/invalid option/, 'volume', 'create', '-o', 'bogus=1', 'v-c');
  const bad = await api(b, 'POST', '/volumes/create', { body: { Name: 5 } });
  assert.equal(bad.status, 400, bad.body);
  assert.ok(!(await volumeNames()).includes('v-c'));

  await ok('volume', 'rm', 'v-a', 'v-b');
  assert.ok(!existsSync(v.Mountpoint));
  const gone = await api(b, 'DELETE', '/volumes/v-a');
  assert.equal(gone.status, 404);
  assert.equal(gone.json().message, 'get v-a: no such volume');
  assert.equal((await api(b, 'DELETE', '/volumes/v-a?force=1')).status, 204);
});

test('a named volume keeps data between containers; Mounts in inspect; rm refuses while in use', async () => {
  await ok('run', '--name', 'vn-1', '-v', 'vn-data:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f; id -u > /data/u');
  const out = await ok('run', '--rm', '-v', 'vn-data:/srv:ro', 'busybox', 'sh', '-c', 'cat /srv/f; touch /srv/x 2>&1 || true');
  assert.match(out, /^kept\n.*Read-only file system/s);
  const m = (await inspect('vn-1')).Mounts;
  assert.deepEqual(m, [{
    Type: 'volume', Name: 'vn-data', Source: path.join(b.dataRoot, 'volumes', 'vn-data', '_data'), Destination: '/data',
    Driver: 'local', Mode: 'z', RW: true, Propagation: '',
  }]);
  const ps = JSON.parse((await api(b, 'GET', '/containers/json?all=1&filters=' + encodeURIComponent(JSON.stringify({ name: ['vn-1'] })))).body);
  assert.equal(ps[0].Mounts[0].Name, 'vn-data');
  const id = (await inspect('vn-1')).Id;
  const busy = await api(b, 'DELETE', '/volumes/vn-data');
  assert.equal(busy.status, 409);
  assert.equal(busy.json().message, `remove vn-data: volume is in use - [${id}]`);
  // rm -v of a container does not remove named volumes.
  await ok('rm', '-v', 'vn-1');
  assert.equal(readFileSync(path.join(b.dataRoot, 'volumes', 'vn-data', '_data', 'f'), 'utf8'), 'kept\n');
  await ok('volume', 'rm', 'vn-data');
});

test('bind mounts: ro and rw, a missing host directory made for -v, refused for --mount; tmpfs', async () => {
  const dir = path.join(host, 'share');
  const made = path.join(host, 'made', 'here');
  await ok('run', '--rm', '-v', `${host}:/h`, 'busybox', 'mkdir', '/h/share');
  writeFileSync(path.join(dir, 'in.txt'), 'from host\n');
  const ro = await ok('run', '--rm', '-v', `${dir}:/mnt:ro`, 'busybox', 'sh', '-c', 'cat /mnt/in.txt; echo x > /mnt/out.txt 2>&1 || echo refused');
  assert.match(ro, /^from host\n.*refused\n$/s);
  assert.ok(!existsSync(path.join(dir, 'out.txt')));
  await ok('run', '--name', 'bm-rw', '--mount', `type=bind,source=${dir},target=/mnt`, 'busybox', 'sh', '-c', 'echo back > /mnt/out.txt');
  assert.equal(readFileSync(path.join(dir, 'out.txt'), 'utf8'), 'back\n');
  assert.deepEqual((await inspect('bm-rw')).Mounts, [{ Type: 'bind', Source: dir, Destination: '/mnt', Mode: '', RW: true, Propagation: 'rprivate' }]);
  await ok('rm', 'bm-rw');
  await ok('run', '--rm', '-v', `${made}:/m`, 'busybox', 'true');
  assert.ok(existsSync(made));
  await fails(/bind source path does not exist: \/nonexistent-berth-path/, 'run', '--rm', '--mount', 'type=bind,source=/nonexistent-berth-path,target=/m', 'busybox', 'true');
  assert.ok(!existsSync('/nonexistent-berth-path'));

  const t = await ok('run', '--rm', '--tmpfs', '/scratch:size=1m', '--mount', 'type=tmpfs,target=/t2,tmpfs-size=2097152', 'busybox', 'sh', '-c', 'grep -E " /(scratch|t2) " /proc/mounts');
  assert.match(t, /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,.*size=1024k/m);
  assert.match(t, /^tmpfs \/t2 tmpfs rw,nosuid,nodev,noexec,.*size=2048k/m);
});

test('anonymous volumes: -v /path, --volumes-from, rm -v and --rm remove them', async () => {
  const before = await volumeNames();
  await ok('create', '-v', '/dbdata', '--name', 'dbstore', 'busybox', 'true');
  const anon = (await inspect('dbstore')).Mounts[0];
  assert.match(anon.Name, /^[0-9a-f]{64}$/);
  assert.equal(anon.Destination, '/dbdata');
  assert.deepEqual((await inspect('dbstore')).Config.Volumes, { '/dbdata': {} });
  await ok('run', '--rm', '--volumes-from', 'dbstore', 'busybox', 'sh', '-c', 'echo shared > /dbdata/y');
  assert.equal((await ok('run', '--rm', '--volumes-from', 'dbstore:ro', 'busybox', 'cat', '/dbdata/y')).trim(), 'shared');
  await fails(/Read-only file system/, 'run', '--rm', '--volumes-from', 'dbstore:ro', 'busybox', 'sh', '-c', 'echo no > /dbdata/z');
  // The --rm containers above used the volume without owning it: it is still there.
  assert.ok((await volumeNames()).includes(anon.Name));
  await ok('rm', '-v', 'dbstore');
  assert.deepEqual(await volumeNames(), before);

  await ok('run', '--rm', '-v', '/tmpdata', 'busybox', 'sh', '-c', 'echo x > /tmpdata/x');
  assert.deepEqual(await volumeNames(), before);
  // Without -v the anonymous volume stays (dangling), and prune takes it.
  await ok('run', '--name', 'keepanon', '-v', '/kept', 'busybox', 'true');
  await ok('rm', 'keepanon');
  assert.equal((await volumeNames()).length, before.length + 1);
  assert.equal((await ok('volume', 'ls', '-q', '-f', 'dangling=true')).trim().split('\n').filter(Boolean).length, before.length + 1);
  await ok('volume', 'create', 'named-unused');
  const pruned = await ok('volume', 'prune', '-f');
  assert.match(pruned, /Deleted Volumes:\n[0-9a-f]{64}\n/);
  assert.ok((await volumeNames()).includes('named-unused'));
  await ok('volume', 'prune', '-f', '-a');
  assert.ok(!(await volumeNames()).includes('named-unused'));
});

test('an empty volume is filled from the image (not with nocopy); a volume with driver options is mounted while used', async () => {
  await ok('run', '--rm', '-v', 'cu-etc:/etc', 'busybox', 'true');
  assert.match(await ok('run', '--rm', '-v', 'cu-etc:/x', 'busybox', 'cat', '/x/passwd'), /^root:/m);
  await ok('run', '--rm', '--mount', 'type=volume,source=cu-none,target=/etc,volume-nocopy', 'busybox', 'true');
  // (Only the mount points of /etc/hosts, /etc/hostname and /etc/resolv.conf are made in it, as with Docker.)
  assert.doesNotMatch(await ok('run', '--rm', '-v', 'cu-none:/x', 'busybox', 'ls', '-A', '/x'), /passwd/);
  await ok('volume', 'rm', 'cu-etc', 'cu-none');

  await ok('volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=4m', 'tv');
  const data = path.join(b.dataRoot, 'volumes', 'tv', '_data');
  assert.deepEqual(JSON.parse(await ok('volume', 'inspect', 'tv'))[0].Options, { device: 'tmpfs', o: 'size=4m', type: 'tmpfs' });
  await ok('run', '-d', '--name', 'tv-user', '-v', 'tv:/v', 'busybox', 'sh', '-c', 'echo in-tmpfs > /v/f; sleep 1000');
  const df = await ok('exec', 'tv-user', 'sh', '-c', 'grep " /v " /proc/mounts');
  assert.match(df, /^tmpfs \/v tmpfs .*size=4096k/m);
  assert.ok(mounted(data));
  await ok('rm', '-f', 'tv-user');
  assert.ok(!mounted(data));
  await ok('volume', 'rm', 'tv');
});

test('docker cp into and out of a volume of a running container; volumes survive kill -9 of berthd', async () => {
  await ok('run', '-d', '--name', 'cpv', '-v', 'cp-vol:/data', 'busybox', 'sleep', '1000');
  const src = path.join(host, 'cp-in.txt');
  writeFileSync(src, 'copied in\n');
  await ok('cp', src, 'cpv:/data/');
  assert.equal(readFileSync(path.join(b.dataRoot, 'volumes', 'cp-vol', '_data', 'cp-in.txt'), 'utf8'), 'copied in\n');
  assert.equal((await ok('exec', 'cpv', 'cat', '/data/cp-in.txt')).trim(), 'copied in');
  await ok('exec', 'cpv', 'sh', '-c', 'echo made inside > /data/out.txt');
  const outDir = path.join(host, 'cp-out');
  await ok('cp', 'cpv:/data/out.txt', outDir);
  assert.equal(readFileSync(outDir, 'utf8'), 'made inside\n');

  await b.kill9();
  await b.restart();
  assert.ok((await volumeNames()).includes('cp-vol'));
  assert.equal((await inspect('cpv')).Mounts[0].Name, 'cp-vol');
  assert.equal((await ok('exec', 'cpv', 'cat', '/data/out.txt')).trim(), 'made inside');
  await ok('rm', '-f', 'cpv');
  await ok('volume', 'rm', 'cp-vol');
  assert.deepEqual(readdirSync(path.join(b.dataRoot, 'volumes')), []);
});

test('docker cp of a stopped container reaches its volumes; a read-only bind refuses the copy; the builder-free root stays clean', async () => {
  const ro = path.join(host, 'ro-src');
  await ok('run', '--rm', '-v', `${host}:/h`, 'busybox', 'mkdir', '-p', '/h/ro-src');
  writeFileSync(path.join(ro, 'keep.txt'), 'host file\n');
  await ok('create', '--name', 'cps', '-v', 'cps-vol:/data', '-v', `${ro}:/ro:ro`, 'busybox', 'cat', '/data/in.txt');
  const src = path.join(host, 'cps-in.txt');
  writeFileSync(src, 'into a stopped container\n');
  await ok('cp', src, 'cps:/data/in.txt');
  assert.equal(readFileSync(path.join(b.dataRoot, 'volumes', 'cps-vol', '_data', 'in.txt'), 'utf8'), 'into a stopped container\n');
  // The container's own layer did not get the file: it went to the volume.
  assert.ok(!existsSync(path.join(JSON.parse(await ok('inspect', 'cps'))[0].GraphDriver.Data.UpperDir, 'data', 'in.txt')));
  assert.equal((await ok('start', '-a', 'cps')).trim(), 'into a stopped container');
  // Out of the read-only bind works; into it does not, and the host file is untouched.
  const back = path.join(host, 'keep-back.txt');
  await ok('cp', 'cps:/ro/keep.txt', back);
  assert.equal(readFileSync(back, 'utf8'), 'host file\n');
  const r = await b.docker(['cp', src, 'cps:/ro/new.txt']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /mounted volume is marked read-only/);
  assert.ok(!existsSync(path.join(ro, 'new.txt')));
  // Nothing stays mounted on the host after the copies.
  const merged = JSON.parse(await ok('inspect', 'cps'))[0].GraphDriver.Data.MergedDir;
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(merged));
  await ok('rm', '-v', 'cps');
  await ok('volume', 'rm', 'cps-vol');
});

test('docker cp into a --read-only container: its root refuses, its volumes take the files', async () => {
  const src = path.join(host, 'rofs-in.txt');
  writeFileSync(src, 'into the volume\n');
  await ok('run', '-d', '--name', 'rofs', '--read-only', '-v', 'rofs-vol:/data', 'busybox', 'sleep', '600');
  const r = await b.docker(['cp', src, 'rofs:/etc/x.txt']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /container rootfs is marked read-only/);
  await ok('cp', src, 'rofs:/data/in.txt');
  assert.equal((await ok('exec', 'rofs', 'cat', '/data/in.txt')).trim(), 'into the volume');
  await ok('rm', '-f', '-v', 'rofs');
  await ok('volume', 'rm', 'rofs-vol');
});

test('bad specifications are refused and create nothing', async () => {
  const before = await volumeNames();
  await fails(/invalid mode: bogus/, 'create', '-v', 'x-vol:/data:bogus', 'busybox', 'true');
  await fails(/Duplicate mount point: \/data/, 'create', '-v', 'd1:/data', '-v', 'd2:/data', 'busybox', 'true');
  await fails(/destination can't be '\/'/, 'create', '-v', 'd3:/', 'busybox', 'true');
  await fails(/includes invalid characters for a local volume name/, 'create', '-v', 'bad$name:/data', 'busybox', 'true');
  await fails(/type/, 'create', '--mount', 'type=weird,target=/x', 'busybox', 'true');
  assert.deepEqual(await volumeNames(), before);
  assert.equal((await ok('ps', '-aq')).trim(), '');
});

test('a missing container named by --volumes-from or --network container: is a 400, so the CLI does not go pulling the image', async () => {
  const before = (await ok('ps', '-aq')).split('\n').filter(Boolean).length;
  for (const args of [['--volumes-from', 'no-such-donor'], ['--network', 'container:no-such-donor']]) {
    const r = await b.docker(['run', '--rm', ...args, 'busybox', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No such container: no-such-donor/);
    assert.doesNotMatch(r.stderr, /Unable to find image|pull/i, 'a 404 would have sent the CLI to the registry');
    const raw = await api(b, 'POST', '/v1.50/containers/create', { body: { Image: 'busybox', HostConfig: args[0] === '--volumes-from' ? { VolumesFrom: ['no-such-donor'] } : { NetworkMode: 'container:no-such-donor' } } });
    assert.equal(raw.status, 400, raw.body);
  }
  assert.equal((await ok('ps', '-aq')).split('\n').filter(Boolean).length, before, 'nothing was created');
});

test('volume rm never deletes through a mount it could not take down; the volume stays until it can', async () => {
  await ok('volume', 'create', 'held-vol');
  const data = (await ok('volume', 'inspect', '--format', '{{.Mountpoint}}', 'held-vol')).trim();
  const inner = path.join(data, 'device');
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkdir', ['-p', inner]);
  // Something the host mounted inside the volume (a device, a bind): its files are not the volume's to delete.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'berth-test-held', inner]);
  try {
    writeFileSync(path.join(inner, 'precious'), 'keep me\n');
    const r = await b.docker(['volume', 'rm', 'held-vol']);
    assert.notEqual(r.code, 0, 'the removal fails');
    assert.match(r.stderr, /still mounted/);
    assert.equal(readFileSync(path.join(inner, 'precious'), 'utf8'), 'keep me\n', 'nothing was deleted through the mount');
    assert.match(await ok('volume', 'ls', '-q'), /held-vol/, 'the volume is still listed');
  } finally {
    execFileSync('umount', [inner]);
  }
  await ok('volume', 'rm', 'held-vol');
  assert.equal(existsSync(data), false);
});
