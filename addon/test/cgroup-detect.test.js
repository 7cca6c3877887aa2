'use strict';
// cgroupDetect against mountinfo texts of the host shapes berth meets, and against this host.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { addon, tempDir } = require('./support');

const dir = tempDir('berth-detect-');
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

function detect(lines) {
  const file = path.join(dir, `mountinfo-${Math.random().toString(16).slice(2)}`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return addon.cgroupDetect(file);
}

const root = '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw';
const tmpfs = '31 23 0:28 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755';

test('a hybrid host (v1 controllers plus an empty cgroup2) is version 1', () => {
  const layout = detect([
    root,
    tmpfs,
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct',
    '34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime shared:11 - cgroup cgroup rw,cpuset,clone_children',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
  ]);
  assert.deepEqual(layout, {
    version: 1,
    controllers: {
      cpu: '/sys/fs/cgroup/cpu,cpuacct',
      cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
      cpuset: '/sys/fs/cgroup/cpuset',
      memory: '/sys/fs/cgroup/memory',
      pids: '/sys/fs/cgroup/pids',
      'name=systemd': '/sys/fs/cgroup/systemd',
    },
    unified: '/sys/fs/cgroup/unified',
  });
});

test('a unified host is version 2 and prefers the cgroup2 mount at /sys/fs/cgroup', () => {
  const layout = detect([
    root,
    '50 22 0:40 / /run/other-cgroup rw - cgroup2 cgroup2 rw',
    '30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
  ]);
  assert.deepEqual(layout, { version: 2, controllers: {}, unified: '/sys/fs/cgroup' });
});

test('only a name=systemd v1 hierarchy beside cgroup2 is still version 2', () => {
  const layout = detect([
    root,
    '30 22 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
    '31 22 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
  ]);
  assert.equal(layout.version, 2);
  assert.equal(layout.unified, '/sys/fs/cgroup/unified');
});

test('octal escapes in mount points are decoded', () => {
  const layout = detect([root, '32 22 0:29 / /cg\\040dir/mem rw - cgroup cgroup rw,memory']);
  assert.equal(layout.controllers.memory, '/cg dir/mem');
  assert.equal(layout.unified, '');
});

test('no cgroup mount at all is an ENOENT error', () => {
  assert.throws(() => detect([root, tmpfs]), (e) => e.code === 'ENOENT' && e.errno === -2 && /no cgroup/.test(e.message));
});

test('a missing mountinfo file is an error naming it', () => {
  const missing = path.join(dir, 'nope');
  assert.throws(() => addon.cgroupDetect(missing), { code: 'ENOENT', syscall: 'open', path: missing });
});

test('bad arguments are TypeErrors', () => {
  assert.throws(() => addon.cgroupDetect(42), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE');
});

test('this host', () => {
  const layout = addon.cgroupDetect();
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const v1 = /- cgroup cgroup \S*\b(memory|cpu|pids)\b/.test(mountinfo);
  assert.equal(layout.version, v1 ? 1 : 2);
  if (v1) assert.ok(layout.controllers.memory, 'memory hierarchy found');
});
