// In a VM guest of the fixture (test/vm/vm.sh, plain mode: cgroup v2 alone, no systemd): every limit
// the docker CLI sets is read back from the kernel's own files of the container's cgroup, at create, after
// docker update, and through pause/unpause. Registers its tests only inside such a guest (BERTH_VM_GUEST,
// set by test/vm/suite.sh): on a development machine with cgroup v1 there are no such files to read.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { dockerCli } from '../helpers/clients';

if (process.env.BERTH_VM_GUEST === '1') {
  const b = berthdForFile({ fixtures: ['busybox'] });
  const cli = dockerCli(() => b);
  const ok = async (...args: string[]) => (await cli.ok(...args)).trim();
  const fails = cli.fails;

  const file = (id: string, name: string) => readFileSync(path.join('/sys/fs/cgroup', b.cgroupParent, id, name), 'utf8').trim();

  // A block device for io.max: a loop device over a file of this test (the guest has no disk).
  const backing = path.join(os.tmpdir(), `berth-vm-io-${process.pid}.img`);
  let loop = '';
  after(() => {
    if (loop) execFileSync('losetup', ['-d', loop]);
    rmSync(backing, { force: true });
  });

  test('the host is what this file tests: cgroup v2 alone, and docker info says so', async () => {
    assert.equal(execFileSync('stat', ['-fc', '%T', '/sys/fs/cgroup'], { encoding: 'utf8' }).trim(), 'cgroup2fs');
    const info = JSON.parse(await ok('info', '--format', '{{json .}}'));
    assert.equal(info.CgroupVersion, '2');
    assert.equal(info.CgroupDriver, 'cgroupfs', 'no systemd here: cgroupfs is the default');
    assert.equal(info.KernelVersion, os.release());
  });

  test('limits at create are in memory.max, memory.swap.max, cpu.max, cpu.weight, pids.max and io.max', async () => {
    writeFileSync(backing, Buffer.alloc(4 << 20));
    execFileSync('modprobe', ['loop']);
    loop = execFileSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' }).trim();
    const rdev = statSync(loop).rdev;
    const dev = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & ~0xff)}`;
    const id = await ok('run', '-d', '--name', 'lim', '--memory', '64m', '--memory-swap', '96m', '--cpus', '0.5',
      '--cpu-shares', '512', '--pids-limit', '42', '--device-read-bps', `${loop}:1mb`, '--device-write-iops', `${loop}:77`,
      'busybox', 'sleep', '1000');
    assert.equal(file(id, 'memory.max'), String(64 << 20));
    assert.equal(file(id, 'memory.swap.max'), String(32 << 20), 'memory+swap 96m over memory 64m: 32m of swap');
    assert.equal(file(id, 'cpu.max'), '50000 100000');
    assert.equal(file(id, 'cpu.weight'), String(1 + Math.floor(((512 - 2) * 9999) / 262142)));
    assert.equal(file(id, 'pids.max'), '42');
    assert.match(file(id, 'io.max'), new RegExp(`^${dev} rbps=1048576 wbps=max riops=max wiops=77$`, 'm'));
    // The container's init is in that cgroup and sees it as its root (a cgroup namespace of its own).
    const pid = Number(await ok('inspect', '--format', '{{.State.Pid}}', id));
    assert.equal(readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim(), `0::/${b.cgroupParent}/${id}`);
    assert.equal(await ok('exec', id, 'cat', '/proc/self/cgroup'), '0::/');
    assert.equal(await ok('exec', id, 'cat', '/sys/fs/cgroup/memory.max'), String(64 << 20));

    // Beyond pids.max, fork fails inside the container.
    const forks = await b.docker(['exec', id, 'sh', '-c', 'for i in $(seq 60); do sleep 30 & done; wait']);
    assert.notEqual(forks.code, 0);
    assert.match(forks.stderr + forks.stdout, /can't fork|Resource temporarily unavailable|fork/i);
    assert.ok(Number(file(id, 'pids.current')) <= 42);
    assert.ok(Number(file(id, 'pids.events').split(' ')[1]) > 0, 'pids.events counts the refused forks');
  });

  test('docker update changes the files; pause and unpause go through cgroup.freeze', async () => {
    // The guest has one vCPU: --cpus above 1 is refused, as Docker refuses more CPUs than the host has.
    await ok('update', '--memory', '128m', '--memory-swap', '256m', '--pids-limit', '50', '--cpus', '0.75', '--cpu-shares', '1024', 'lim');
    const id = await ok('inspect', '--format', '{{.Id}}', 'lim');
    assert.equal(file(id, 'memory.max'), String(128 << 20));
    assert.equal(file(id, 'memory.swap.max'), String(128 << 20));
    assert.equal(file(id, 'pids.max'), '50');
    assert.equal(file(id, 'cpu.max'), '75000 100000');
    assert.equal(file(id, 'cpu.weight'), String(1 + Math.floor(((1024 - 2) * 9999) / 262142)));

    await ok('pause', 'lim');
    assert.equal(file(id, 'cgroup.freeze'), '1');
    assert.match(file(id, 'cgroup.events'), /^frozen 1$/m);
    assert.equal(await ok('inspect', '--format', '{{.State.Status}}', 'lim'), 'paused');
    await ok('unpause', 'lim');
    assert.equal(file(id, 'cgroup.freeze'), '0');
    assert.match(file(id, 'cgroup.events'), /^frozen 0$/m);

    await ok('rm', '-f', 'lim');
    assert.equal(existsSync(path.join('/sys/fs/cgroup', b.cgroupParent, id)), false, 'the cgroup goes with the container');
  });

  test('a memory+swap limit below the memory limit is refused, and a device that is not one', async () => {
    await fails(/swap/i, 'run', '--rm', '--memory', '64m', '--memory-swap', '32m', 'busybox', 'true');
    await fails(/not a block device/i, 'run', '--rm', '--device-read-bps', '/dev/null:1mb', 'busybox', 'true');
  });
}
