'use strict';
// The v2 manager against a fake unified hierarchy: a temporary directory of plain files. The addon sees
// that it is not cgroup2fs and creates the control files it writes; optional files (memory.swap.max,
// io.weight) exist only where this test pre-creates them, as they exist on a real host only with swap
// accounting / a proportional I/O scheduler.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { addon, read, write, tempDir } = require('./support');

const MiB = 1024 * 1024;

function fakeTree() {
  const root = tempDir('berth-cgv2-');
  write(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
  write(path.join(root, 'cgroup.subtree_control'), '');
  return { root, layout: { version: 2, controllers: {}, unified: root } };
}

test('create enables controllers down the path and writes every limit', async (t) => {
  const { root, layout } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const leaf = path.join(root, 'berth', 'c1');
  write(path.join(leaf, 'memory.swap.max'), 'max');
  write(path.join(leaf, 'io.weight'), 'default 100');

  const dirs = await addon.cgroupCreate(layout, 'berth/c1', {
    memory: 64 * MiB,
    memorySwap: 128 * MiB,
    memoryReservation: 32 * MiB,
    pidsLimit: 100,
    cpuShares: 512,
    cpuQuota: 50000,
    cpuPeriod: 100000,
    cpusetCpus: '0',
    cpusetMems: '0',
    blkioWeight: 500,
  });
  assert.deepEqual(dirs, [leaf]);

  // Both ancestors enable what the root offers of cpuset/cpu/io/memory/pids; the leaf enables nothing.
  assert.equal(read(path.join(root, 'cgroup.subtree_control')), '+cpuset +cpu +io +memory +pids');
  assert.equal(read(path.join(root, 'berth', 'cgroup.subtree_control')), '+cpuset +cpu +io +memory +pids');
  assert.equal(read(path.join(leaf, 'cgroup.subtree_control')), undefined);

  assert.equal(read(path.join(leaf, 'memory.max')), String(64 * MiB));
  assert.equal(read(path.join(leaf, 'memory.swap.max')), String(64 * MiB)); // memorySwap - memory
  assert.equal(read(path.join(leaf, 'memory.low')), String(32 * MiB));
  assert.equal(read(path.join(leaf, 'pids.max')), '100');
  assert.equal(read(path.join(leaf, 'cpu.weight')), '20'); // 1 + ((512 - 2) * 9999) / 262142
  assert.equal(read(path.join(leaf, 'cpu.max')), '50000 100000');
  assert.equal(read(path.join(leaf, 'cpuset.cpus')), '0');
  assert.equal(read(path.join(leaf, 'cpuset.mems')), '0');
  assert.equal(read(path.join(leaf, 'io.weight')), '4950'); // 1 + ((500 - 10) * 9999) / 990
});

test('weights map onto the v2 scales at both ends', async (t) => {
  const { root, layout } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const leaf = path.join(root, 'w');
  write(path.join(leaf, 'io.weight'), '');
  for (const [shares, weight] of [[2, 1], [1024, 39], [262144, 10000], [1, 1], [1e6, 10000]]) {
    await addon.cgroupCreate(layout, 'w', { cpuShares: shares });
    assert.equal(read(path.join(leaf, 'cpu.weight')), String(weight), `shares ${shares}`);
  }
  for (const [blkio, weight] of [[10, 1], [1000, 10000]]) {
    await addon.cgroupUpdate(layout, 'w', { blkioWeight: blkio });
    assert.equal(read(path.join(leaf, 'io.weight')), String(weight), `blkio weight ${blkio}`);
  }
});

test('optional files that do not exist are skipped', async (t) => {
  const { root, layout } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  await addon.cgroupCreate(layout, 'berth/c2', { memory: 64 * MiB, memorySwap: 128 * MiB, blkioWeight: 500 });
  const leaf = path.join(root, 'berth', 'c2');
  assert.equal(read(path.join(leaf, 'memory.max')), String(64 * MiB));
  assert.equal(read(path.join(leaf, 'memory.swap.max')), undefined);
  assert.equal(read(path.join(leaf, 'io.weight')), undefined);
});

test('update changes only the fields it is given', async (t) => {
  const { root, layout } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const leaf = path.join(root, 'berth', 'c3');
  write(path.join(leaf, 'memory.swap.max'), 'max');
  await addon.cgroupCreate(layout, 'berth/c3', { memory: 64 * MiB, pidsLimit: 10, cpuQuota: 20000, cpuPeriod: 100000 });

  await addon.cgroupUpdate(layout, 'berth/c3', { pidsLimit: 0, cpuQuota: -1 });
  assert.equal(read(path.join(leaf, 'pids.max')), 'max');
  assert.equal(read(path.join(leaf, 'cpu.max')), 'max 100000');
  assert.equal(read(path.join(leaf, 'memory.max')), String(64 * MiB));

  await addon.cgroupUpdate(layout, 'berth/c3', { cpuPeriod: 50000 });
  assert.equal(read(path.join(leaf, 'cpu.max')), 'max 50000');
  await addon.cgroupUpdate(layout, 'berth/c3', { cpuQuota: 25000 });
  assert.equal(read(path.join(leaf, 'cpu.max')), '25000 50000');

  // The swap limit is derived from the memory limit already in force.
  await addon.cgroupUpdate(layout, 'berth/c3', { memorySwap: 96 * MiB });
  assert.equal(read(path.join(leaf, 'memory.swap.max')), String(32 * MiB));
  await addon.cgroupUpdate(layout, 'berth/c3', { memorySwap: -1 });
  assert.equal(read(path.join(leaf, 'memory.swap.max')), 'max');
  await addon.cgroupUpdate(layout, 'berth/c3', { memory: 0 });
  assert.equal(read(path.join(leaf, 'memory.max')), 'max');

  await assert.rejects(addon.cgroupUpdate(layout, 'berth/c3', { memorySwap: 128 * MiB }), {
    code: 'EINVAL',
    message: /needs a memory limit/,
  });
  await assert.rejects(addon.cgroupUpdate(layout, 'berth/c3', { memory: 64 * MiB, memorySwap: 32 * MiB }), {
    code: 'EINVAL',
    path: path.join(leaf, 'memory.swap.max'),
  });
});

test('a failed create reports what it was doing and leaves alone a cgroup it did not make', async (t) => {
  const { root, layout } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  write(path.join(root, 'berth', 'c4', 'memory.swap.max'), 'max');
  await assert.rejects(addon.cgroupCreate(layout, 'berth/c4', { memory: 64 * MiB, memorySwap: MiB }), {
    code: 'EINVAL',
    message: /creating cgroup berth\/c4: memory\+swap limit 1048576 is below the memory limit 67108864/,
  });
  // The leaf existed before the call, so it is not this call's to take back (the v1 tests cover the
  // rollback of directories a failed create did make).
  assert.equal(fs.existsSync(path.join(root, 'berth', 'c4', 'memory.swap.max')), true);
});

test('remove deletes the leaf, keeps the shared parent, and never signals in a fake tree', async (t) => {
  const { root, layout } = fakeTree();
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.after(() => {
    sleeper.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  });
  await addon.cgroupCreate(layout, 'berth/a', { pidsLimit: 5 });
  await addon.cgroupCreate(layout, 'berth/b', { pidsLimit: 5 });
  // A pid in a fake cgroup.procs is not a member of anything: remove must leave it alone.
  write(path.join(root, 'berth', 'a', 'cgroup.procs'), `${sleeper.pid}\n`);
  fs.mkdirSync(path.join(root, 'berth', 'a', 'nested'));
  write(path.join(root, 'berth', 'a', 'nested', 'cgroup.procs'), '');

  await addon.cgroupRemove(layout, 'berth/a');
  assert.equal(fs.existsSync(path.join(root, 'berth', 'a')), false);
  assert.equal(fs.existsSync(path.join(root, 'berth', 'b')), true);
  assert.equal(fs.existsSync(path.join(root, 'berth')), true);
  assert.equal(sleeper.exitCode, null);
  assert.equal(sleeper.signalCode, null);
  process.kill(sleeper.pid, 0); // still alive

  await addon.cgroupRemove(layout, 'berth/a'); // missing is not an error
  await addon.cgroupRemove(layout, 'never/made');
});

test('bad arguments reject with TypeErrors before any work', async (t) => {
  const { root, layout } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  for (const rel of ['', '/abs', '../escape', 'a/../b', 'a//b', 'a/', '.']) {
    await assert.rejects(addon.cgroupCreate(layout, rel, {}), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }, rel);
  }
  await assert.rejects(addon.cgroupCreate(layout, 'x', { memory: '1g' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(addon.cgroupCreate(layout, 'x', { pidsLimit: 1.5 }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.cgroupCreate({ version: 3, controllers: {}, unified: root }, 'x', {}), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.cgroupRemove(null, 'x'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.deepEqual(fs.readdirSync(root).sort(), ['cgroup.controllers', 'cgroup.subtree_control']);
});

test('a missing hierarchy is an error carrying errno, syscall and path', async () => {
  const layout = { version: 2, controllers: {}, unified: '/nonexistent/berth-cgroup' };
  const p = addon.cgroupCreate(layout, 'berth/x', {});
  assert.ok(p instanceof Promise);
  await assert.rejects(p, (e) => {
    assert.equal(e.code, 'ENOENT');
    assert.equal(e.errno, -2);
    assert.equal(e.syscall, 'statfs');
    assert.equal(e.path, '/nonexistent/berth-cgroup');
    assert.match(e.message, /^ENOENT: .*statfs '\/nonexistent\/berth-cgroup'/);
    return true;
  });
});

test('freeze writes cgroup.freeze 1, thaw writes 0; a missing cgroup is an error', async (t) => {
  const { root, layout } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  await addon.cgroupCreate(layout, 'berth/f1', {});
  const leaf = path.join(root, 'berth', 'f1');
  await addon.cgroupFreeze(layout, 'berth/f1', true);
  assert.equal(read(path.join(leaf, 'cgroup.freeze')), '1');
  await addon.cgroupFreeze(layout, 'berth/f1', false);
  assert.equal(read(path.join(leaf, 'cgroup.freeze')), '0');
  await assert.rejects(addon.cgroupFreeze(layout, 'berth/nosuch', true), (e) => typeof e.code === 'string');
  assert.throws(() => addon.cgroupFreeze(layout, 'berth/f1', 'yes'), /boolean/);
  await assert.rejects(addon.cgroupFreeze(layout, '../escape', true), /relPath/);
});
