// In a VM guest of the fixture (plain mode): berthd starts on this kernel with cgroup v2 alone, answers
// the CLI, loads an image and reports the kernel and cgroup it runs on. The least every kernel of
// test/vm/run.sh must pass; the container suites come on top. Registers its tests only inside such a guest
// (BERTH_VM_GUEST, set by test/vm/suite.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { berthdForFile } from '../helpers/file';
import { dockerCli } from '../helpers/clients';

if (process.env.BERTH_VM_GUEST === '1') {
  const b = berthdForFile({ fixtures: ['busybox'] });
  const { ok } = dockerCli(() => b);

  test('berthd runs on this kernel: docker info and images', async () => {
    const info = JSON.parse(await ok('info', '--format', '{{json .}}'));
    assert.equal(info.KernelVersion, os.release());
    assert.equal(info.CgroupVersion, '2');
    assert.equal(info.CgroupDriver, 'cgroupfs');
    assert.match(await ok('images', '--format', '{{.Repository}}:{{.Tag}}'), /^busybox:latest$/m);
  });
}
