// HostConfig resources beyond memory/CPU/pids, read back from the cgroup files the kernel uses:
// --memory-swappiness, --oom-kill-disable, --device-read/write-bps/iops, --cpu-rt-runtime; and the ones this
// host cannot hold answered as Docker answers (a warning and discarded, or refused): --blkio-weight-device
// without a proportional I/O scheduler, --gpus without a device driver, Windows' IOMaximum* fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok } = dockerCli(() => b);

function v1Mount(ctl: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep > 0 && f[sep + 1] === 'cgroup' && f[sep + 3]?.split(',').includes(ctl)) return f[4];
  }
  return undefined;
}
const isV1 = v1Mount('memory') !== undefined;

/** A block device of this machine and its major:minor. */
function blockDevice(): { path: string; majmin: string } {
  for (const name of readdirSync('/sys/block')) {
    const dev = `/dev/${name}`;
    if (!existsSync(dev) || !statSync(dev).isBlockDevice() || name.startsWith('loop') || name.startsWith('ram')) continue;
    return { path: dev, majmin: readFileSync(`/sys/block/${name}/dev`, 'utf8').trim() };
  }
  throw new Error('no block device on this machine');
}

const cgFile = (ctl: string, id: string, file: string) =>
  readFileSync(path.join(isV1 ? v1Mount(ctl)! : '/sys/fs/cgroup', b.cgroupParent, id, file), 'utf8');

async function idOf(name: string): Promise<string> {
  return (await ok('inspect', '--format', '{{.Id}}', name)).trim();
}

test('--device-read-bps/--device-write-iops are written for the device, read back from the kernel', async () => {
  const dev = blockDevice();
  await ok('run', '-d', '--name', 'io-limits', '--device-read-bps', `${dev.path}:1mb`, '--device-write-iops', `${dev.path}:120`, 'busybox', 'sleep', '300');
  const id = await idOf('io-limits');
  if (isV1) {
    assert.match(cgFile('blkio', id, 'blkio.throttle.read_bps_device'), new RegExp(`^${dev.majmin} 1048576$`, 'm'));
    assert.match(cgFile('blkio', id, 'blkio.throttle.write_iops_device'), new RegExp(`^${dev.majmin} 120$`, 'm'));
  } else {
    assert.match(cgFile('io', id, 'io.max'), new RegExp(`^${dev.majmin} rbps=1048576 wbps=max riops=max wiops=120$`, 'm'));
  }
  const hc = JSON.parse(await ok('inspect', '--format', '{{json .HostConfig.BlkioDeviceReadBps}}', 'io-limits'));
  assert.deepEqual(hc, [{ Path: dev.path, Rate: 1048576 }]);
  await ok('rm', '-f', 'io-limits');
});

test('--memory-swappiness and --oom-kill-disable reach the memory cgroup (v1), or are discarded with Docker\'s warnings (v2)', async () => {
  const r = await b.docker(['run', '-d', '--name', 'mem-knobs', '-m', '64m', '--memory-swappiness', '7', '--oom-kill-disable', 'busybox', 'sleep', '300']);
  assert.equal(r.code, 0, r.stderr);
  const id = await idOf('mem-knobs');
  if (isV1) {
    assert.equal(cgFile('memory', id, 'memory.swappiness').trim(), '7');
    assert.match(cgFile('memory', id, 'memory.oom_control'), /^oom_kill_disable 1$/m);
    assert.equal((await ok('inspect', '--format', '{{.HostConfig.OomKillDisable}} {{.HostConfig.MemorySwappiness}}', 'mem-knobs')).trim(), 'true 7');
  } else {
    assert.match(r.stderr, /Memory swappiness discarded/);
    assert.match(r.stderr, /OomKillDisable discarded/);
  }
  await ok('rm', '-f', 'mem-knobs');
  const bad = await api(b, 'POST', '/v1.50/containers/create', { body: { Image: 'busybox', HostConfig: { MemorySwappiness: 101 } } });
  assert.equal(bad.status, 400);
  assert.match(bad.json().message, /Invalid value: 101, valid memory swappiness range is 0-100/);
});

test('--cpu-rt-runtime takes a real-time budget below the parent\'s, and is checked against the period', async () => {
  const bad = await api(b, 'POST', '/v1.50/containers/create', { body: { Image: 'busybox', HostConfig: { CpuRealtimePeriod: 100000, CpuRealtimeRuntime: 200000 } } });
  assert.equal(bad.status, 400);
  if (!isV1 || !existsSync(path.join(v1Mount('cpu')!, 'cpu.rt_runtime_us'))) {
    assert.match(bad.json().message, /does not support CPU real-time scheduler/);
    return;
  }
  assert.match(bad.json().message, /cpu-rt-runtime cannot be higher than cpu-rt-period/);
  // As with dockerd's --cpu-rt-runtime: the daemon's parent cgroup must hold a budget to hand out.
  await ok('run', '--rm', 'busybox', 'true'); // makes the parent cgroup
  const parent = path.join(v1Mount('cpu')!, b.cgroupParent, 'cpu.rt_runtime_us');
  writeFileSync(parent, '100000');
  await ok('run', '-d', '--name', 'rt', '--cpu-rt-runtime', '50000', 'busybox', 'sleep', '300');
  assert.equal(cgFile('cpu', await idOf('rt'), 'cpu.rt_runtime_us').trim(), '50000');
  await ok('rm', '-f', 'rt');
});

test('what this host cannot hold: --gpus and IOMaximum* refused, --blkio-weight-device discarded with a warning when there is no weight file', async () => {
  const before = (await ok('ps', '-aq')).split('\n').filter(Boolean).length;
  const g = await b.docker(['run', '--rm', '--gpus', 'all', 'busybox', 'true']);
  assert.notEqual(g.code, 0);
  assert.match(g.stderr, /could not select device driver "" with capabilities: \[\[gpu\]\]/);
  const q = await api(b, 'POST', '/v1.50/containers/create', { body: { Image: 'busybox', HostConfig: { IOMaximumBandwidth: 1000 } } });
  assert.equal(q.status, 400);
  assert.match(q.json().message, /does not support Maximum IO Bandwidth or Maximum IO IOps/);
  assert.equal((await ok('ps', '-aq')).split('\n').filter(Boolean).length, before, 'nothing was created');

  const dev = blockDevice();
  const weightFile = isV1 ? ['blkio.weight_device', 'blkio.bfq.weight_device'].some((f) => existsSync(path.join(v1Mount('blkio')!, f))) : undefined;
  const r = await b.docker(['create', '--name', 'wdev', '--blkio-weight-device', `${dev.path}:300`, 'busybox', 'true']);
  assert.equal(r.code, 0, r.stderr);
  if (weightFile === false) {
    assert.match(r.stderr, /does not support Block I\/O weight_device .*Weight-device discarded/);
    assert.equal((await ok('inspect', '--format', '{{json .HostConfig.BlkioWeightDevice}}', 'wdev')).trim(), '[]');
  }
  await ok('rm', 'wdev');
});
