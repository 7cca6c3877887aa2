'use strict';
// The v1 manager: first against a fake tree of plain files (exact file contents, cpuset inheritance,
// rollback), then against this host's real v1 hierarchies under a throw-away berth-test-<random>/x.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { addon, isRoot, read, write, tempDir } = require('./support');

const MiB = 1024 * 1024;

// A fake hybrid host: cpu and cpuacct co-mounted, the rest one hierarchy each.
function fakeTree() {
  const root = tempDir('berth-cgv1-');
  const m = (name) => path.join(root, name);
  const layout = {
    version: 1,
    controllers: {
      cpu: m('cpu,cpuacct'),
      cpuacct: m('cpu,cpuacct'),
      cpuset: m('cpuset'),
      memory: m('memory'),
      pids: m('pids'),
      blkio: m('blkio'),
      'name=systemd': m('systemd'),
    },
    unified: '',
  };
  for (const dir of new Set(Object.values(layout.controllers))) fs.mkdirSync(dir);
  write(path.join(m('cpuset'), 'cpuset.cpus'), '0-3\n');
  write(path.join(m('cpuset'), 'cpuset.mems'), '0\n');
  return { root, layout, m };
}

test('fake v1: create makes the path in each hierarchy once, inherits the cpuset and writes limits', async (t) => {
  const { root, layout, m } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  write(path.join(m('memory'), 'berth', 'c1', 'memory.memsw.limit_in_bytes'), '');
  write(path.join(m('blkio'), 'berth', 'c1', 'blkio.weight'), '');

  const dirs = await addon.cgroupCreate(layout, 'berth/c1', {
    memory: 64 * MiB,
    memorySwap: 128 * MiB,
    memoryReservation: 32 * MiB,
    pidsLimit: -1,
    cpuShares: 512,
    cpuQuota: 25000,
    cpuPeriod: 100000,
    blkioWeight: 300,
  });
  assert.deepEqual(
    dirs.sort(),
    ['blkio', 'cpu,cpuacct', 'cpuset', 'memory', 'pids', 'systemd'].map((h) => path.join(m(h), 'berth', 'c1')).sort(),
  );

  for (const level of [['berth'], ['berth', 'c1']]) {
    assert.equal(read(path.join(m('cpuset'), ...level, 'cpuset.cpus')), '0-3');
    assert.equal(read(path.join(m('cpuset'), ...level, 'cpuset.mems')), '0');
  }
  const mem = (f) => read(path.join(m('memory'), 'berth', 'c1', f));
  assert.equal(mem('memory.limit_in_bytes'), String(64 * MiB));
  assert.equal(mem('memory.memsw.limit_in_bytes'), String(128 * MiB));
  assert.equal(mem('memory.soft_limit_in_bytes'), String(32 * MiB));
  assert.equal(read(path.join(m('pids'), 'berth', 'c1', 'pids.max')), 'max');
  const cpu = (f) => read(path.join(m('cpu,cpuacct'), 'berth', 'c1', f));
  assert.equal(cpu('cpu.shares'), '512');
  assert.equal(cpu('cpu.cfs_quota_us'), '25000');
  assert.equal(cpu('cpu.cfs_period_us'), '100000');
  assert.equal(read(path.join(m('blkio'), 'berth', 'c1', 'blkio.weight')), '300');

  // An explicit cpuset wins over the inherited one; without memsw the swap limit is skipped.
  await addon.cgroupCreate(layout, 'berth/c2', { cpusetCpus: '1', memory: 8 * MiB, memorySwap: 16 * MiB, blkioWeight: 300 });
  assert.equal(read(path.join(m('cpuset'), 'berth', 'c2', 'cpuset.cpus')), '1');
  assert.equal(read(path.join(m('cpuset'), 'berth', 'c2', 'cpuset.mems')), '0');
  assert.equal(read(path.join(m('memory'), 'berth', 'c2', 'memory.memsw.limit_in_bytes')), undefined);
  assert.equal(read(path.join(m('blkio'), 'berth', 'c2', 'blkio.weight')), undefined);

  await addon.cgroupRemove(layout, 'berth/c1');
  for (const d of dirs) assert.equal(fs.existsSync(d), false, d);
  assert.equal(fs.existsSync(path.join(m('memory'), 'berth', 'c2')), true);
});

test('fake v1: a limit on an unmounted controller is refused, "unlimited" is not', async (t) => {
  const { root, layout } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  delete layout.controllers.pids;
  await assert.rejects(addon.cgroupCreate(layout, 'berth/p', { pidsLimit: 100 }), {
    code: 'EOPNOTSUPP',
    message: /controller 'pids' is not mounted/,
  });
  await addon.cgroupCreate(layout, 'berth/p', { pidsLimit: 0 });
});

test('fake v1: a failed create removes the directories it made in every hierarchy', async (t) => {
  const { root, layout, m } = fakeTree();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  // "berth" is a plain file in the pids hierarchy, so making berth/c3 there fails midway.
  fs.writeFileSync(path.join(m('pids'), 'berth'), '');
  await assert.rejects(addon.cgroupCreate(layout, 'berth/c3', { memory: 64 * MiB }), {
    code: 'ENOTDIR',
    syscall: 'mkdir',
    path: path.join(m('pids'), 'berth'),
  });
  for (const h of ['blkio', 'cpu,cpuacct', 'memory']) {
    assert.equal(fs.existsSync(path.join(m(h), 'berth')), false, h);
  }
});

// ---- the real hierarchies of this host ----

const host = (() => {
  try {
    return addon.cgroupDetect();
  } catch {
    return undefined;
  }
})();
const realSkip = !isRoot ? 'needs root' : host?.version !== 1 ? 'host is not cgroup v1' : false;

test('real v1: create, update, kill and remove a cgroup', { skip: realSkip }, async () => {
  const name = `berth-test-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const rel = `${name}/x`;
  const hierarchies = [...new Set(Object.values(host.controllers))];
  const at = (controller, ...f) => path.join(host.controllers[controller], rel, ...f);
  let sleeper;
  try {
    const dirs = await addon.cgroupCreate(host, rel, {
      memory: 64 * MiB,
      memorySwap: 128 * MiB,
      memoryReservation: 32 * MiB,
      pidsLimit: 64,
      cpuShares: 512,
      cpuQuota: 50000,
      cpuPeriod: 100000,
      blkioWeight: 500,
    });
    assert.deepEqual(dirs.sort(), hierarchies.map((h) => path.join(h, rel)).sort());
    for (const d of dirs) assert.ok(fs.statSync(d).isDirectory(), d);

    assert.equal(read(at('memory', 'memory.limit_in_bytes')), String(64 * MiB));
    assert.equal(read(at('memory', 'memory.soft_limit_in_bytes')), String(32 * MiB));
    const memsw = fs.existsSync(at('memory', 'memory.memsw.limit_in_bytes'));
    if (memsw) assert.equal(read(at('memory', 'memory.memsw.limit_in_bytes')), String(128 * MiB));
    assert.equal(read(at('pids', 'pids.max')), '64');
    assert.equal(read(at('cpu', 'cpu.shares')), '512');
    assert.equal(read(at('cpu', 'cpu.cfs_quota_us')), '50000');
    assert.equal(read(at('cpu', 'cpu.cfs_period_us')), '100000');
    if (host.controllers.cpuset) {
      const rootCpus = read(path.join(host.controllers.cpuset, 'cpuset.cpus'));
      assert.equal(read(path.join(host.controllers.cpuset, name, 'cpuset.cpus')), rootCpus);
      assert.equal(read(at('cpuset', 'cpuset.cpus')), rootCpus);
      assert.equal(read(at('cpuset', 'cpuset.mems')), read(path.join(host.controllers.cpuset, 'cpuset.mems')));
    }

    // Shrinking and growing memory+swap each need the two writes in a different order.
    await addon.cgroupUpdate(host, rel, { memory: 32 * MiB, memorySwap: 48 * MiB });
    assert.equal(read(at('memory', 'memory.limit_in_bytes')), String(32 * MiB));
    if (memsw) assert.equal(read(at('memory', 'memory.memsw.limit_in_bytes')), String(48 * MiB));
    await addon.cgroupUpdate(host, rel, { memory: 256 * MiB, memorySwap: 512 * MiB });
    assert.equal(read(at('memory', 'memory.limit_in_bytes')), String(256 * MiB));
    if (memsw) assert.equal(read(at('memory', 'memory.memsw.limit_in_bytes')), String(512 * MiB));
    await addon.cgroupUpdate(host, rel, { pidsLimit: 0, cpuQuota: -1 });
    assert.equal(read(at('pids', 'pids.max')), 'max');
    assert.equal(read(at('cpu', 'cpu.cfs_quota_us')), '-1');
    // The kernel's refusal comes back as an errno error on the file.
    await assert.rejects(addon.cgroupUpdate(host, rel, { cpuPeriod: 1 }), {
      code: 'EINVAL',
      syscall: 'write',
      path: at('cpu', 'cpu.cfs_period_us'),
    });

    // A member process, frozen like a paused container: remove must thaw it, kill it and wait for it.
    sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    await once(sleeper, 'spawn');
    for (const d of dirs) fs.writeFileSync(path.join(d, 'cgroup.procs'), String(sleeper.pid));
    if (host.controllers.freezer) fs.writeFileSync(at('freezer', 'freezer.state'), 'FROZEN');
    const exited = once(sleeper, 'exit');
    await addon.cgroupRemove(host, rel);
    const [code, signal] = await exited;
    assert.equal(code, null);
    assert.equal(signal, 'SIGKILL');
    for (const d of dirs) assert.equal(fs.existsSync(d), false, d);
    for (const h of hierarchies) assert.ok(fs.existsSync(path.join(h, name)), 'the shared parent stays');

    await addon.cgroupRemove(host, rel); // missing is not an error
  } finally {
    // Whatever happened above, leave no process and no cgroup behind.
    if (sleeper && sleeper.exitCode === null && sleeper.signalCode === null) {
      if (host.controllers.freezer) {
        try {
          fs.writeFileSync(at('freezer', 'freezer.state'), 'THAWED');
        } catch {}
      }
      sleeper.kill('SIGKILL');
      await once(sleeper, 'exit');
    }
    for (const h of hierarchies) {
      for (const d of [path.join(h, rel), path.join(h, name)]) {
        try {
          fs.rmdirSync(d);
        } catch (e) {
          if (e.code !== 'ENOENT') throw e;
        }
      }
    }
  }
});
