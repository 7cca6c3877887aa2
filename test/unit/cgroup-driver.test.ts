// The systemd cgroup driver's pure parts: slice names and their cgroup paths as systemd lays them out,
// the unit properties for Docker's limits (the same numbers the addon writes into the files), and
// exec-opts native.cgroupdriver from flags and daemon.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validSlice, slicePath, containerCgroup, resourceProps } from '../../daemon/runtime/systemd';
import { loadConfig, ConfigError } from '../../daemon/config/config';

test('slices: systemd names and the cgroup path each stands for', () => {
  for (const ok of ['system.slice', 'kubepods-besteffort.slice', 'a-b-c.slice', '-.slice', 'user_1.slice']) assert.ok(validSlice(ok), ok);
  for (const bad of ['berth', 'system', 'a--b.slice', '-a.slice', 'a-.slice', 'a/b.slice', '.slice', 'a b.slice']) assert.ok(!validSlice(bad), bad);
  assert.equal(slicePath('system.slice'), 'system.slice');
  assert.equal(slicePath('kubepods-besteffort.slice'), 'kubepods.slice/kubepods-besteffort.slice');
  assert.equal(slicePath('a-b-c.slice'), 'a.slice/a-b.slice/a-b-c.slice');
  assert.equal(slicePath('-.slice'), '');
  assert.equal(containerCgroup('kubepods-burstable.slice', 'abc'), 'kubepods.slice/kubepods-burstable.slice/berth-abc.scope');
  assert.equal(containerCgroup('-.slice', 'abc'), 'berth-abc.scope');
});

test('unit properties: Docker limits in systemd units, absent ones explicit at create only', () => {
  const inf = '18446744073709551615';
  const create = Object.fromEntries(resourceProps({ memory: 64 << 20, memorySwap: 96 << 20, pidsLimit: 42, cpuShares: 512, cpuQuota: 50000, cpuPeriod: 100000, blkioWeight: 500 }, true).map(([n, , ...v]) => [n, v.join(' ')]));
  assert.deepEqual(create, {
    MemoryMax: String(64 << 20), MemorySwapMax: String(32 << 20), TasksMax: '42', CPUWeight: '20',
    CPUQuotaPeriodUSec: '100000', CPUQuotaPerSecUSec: '500000', IOWeight: String(1 + Math.floor((490 * 9999) / 990)),
  });
  const none = Object.fromEntries(resourceProps({ memory: 0, pidsLimit: 0 }, true).map(([n, , ...v]) => [n, v.join(' ')]));
  assert.deepEqual(none, { MemoryMax: inf, TasksMax: inf }, 'no limit is no limit, not systemd\'s default TasksMax');
  assert.deepEqual(resourceProps({}, false), [], 'an update names only what changed');
  assert.deepEqual(resourceProps({ memorySwap: -1, cpuQuota: -1 }, false).map(([n, , v]) => [n, v]), [['MemorySwapMax', inf], ['CPUQuotaPerSecUSec', inf]]);
  // --cpus 1.5 with a 50 ms period: 75 ms per 50 ms = 1.5 s per second.
  assert.deepEqual(resourceProps({ cpuQuota: 75000, cpuPeriod: 50000 }, false).map(([n, , v]) => [n, v]), [['CPUQuotaPeriodUSec', '50000'], ['CPUQuotaPerSecUSec', '1500000']]);
});

test('exec-opts native.cgroupdriver: flag, daemon.json, and refusals', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-cgd-'));
  try {
    const f = path.join(dir, 'daemon.json');
    const load = (json: object, argv: string[] = []) => {
      writeFileSync(f, JSON.stringify(json));
      return loadConfig(['--config-file', f, ...argv], '/repo');
    };
    assert.equal(load({}).cgroupDriver, undefined, 'not given: chosen at start from the host');
    assert.equal(load({ 'exec-opts': ['native.cgroupdriver=systemd'] }).cgroupDriver, 'systemd');
    assert.equal(load({}, ['--exec-opt', 'native.cgroupdriver=cgroupfs']).cgroupDriver, 'cgroupfs');
    assert.equal(load({ 'exec-opts': ['native.cgroupdriver=systemd'] }, ['--exec-opt=native.cgroupdriver=cgroupfs']).cgroupDriver, 'cgroupfs', 'the flag wins');
    assert.throws(() => load({ 'exec-opts': ['native.cgroupdriver=lxc'] }), (e: Error) => e instanceof ConfigError && /lxc not supported/.test(e.message));
    assert.throws(() => load({}, ['--exec-opt', 'isolation=hyperv']), (e: Error) => e instanceof ConfigError && /unknown exec-opt/.test(e.message));
    assert.throws(() => load({ 'exec-opts': 'native.cgroupdriver=systemd' }), ConfigError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
