'use strict';
// Debian 12's 6.1 refuses "lowerdir+" at FSCONFIG_CMD_CREATE with EINVAL and says why only in the kernel
// log: the fs context's messages are empty. The addon must still take that as "not known here" (nothing has
// seen this kernel take lowerdir+) and mount through mount(2). BERTH_TEST_OVERLAY_LEGACY_PARSER=quiet gives
// exactly that refusal on any kernel. Its own file: the verdict is remembered for the rest of the process.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { addon, isRoot, read, write, tempDir, mountPoints } = require('./support');

const skip = isRoot ? false : 'needs root';

test('a silent EINVAL at create (Debian 6.1) still sends the overlay to mount(2)', { skip }, async (t) => {
  process.env.BERTH_TEST_OVERLAY_LEGACY_PARSER = 'quiet';
  const dir = tempDir('berth-ovl-quiet-');
  const p = (...x) => path.join(dir, ...x);
  t.after(async () => {
    delete process.env.BERTH_TEST_OVERLAY_LEGACY_PARSER;
    await addon.unmount(p('m'), true);
    assert.equal(mountPoints().some((m) => m.startsWith(dir)), false, 'no mount left behind');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  write(p('l1', 'a.txt'), 'top');
  write(p('l2', 'b.txt'), 'b');
  for (const d of ['u', 'w', 'm']) fs.mkdirSync(p(d));
  await addon.mountOverlay({ lowerdirs: [p('l1'), p('l2')], upperdir: p('u'), workdir: p('w'), target: p('m') });
  assert.equal(read(p('m', 'a.txt')), 'top');
  assert.equal(read(p('m', 'b.txt')), 'b');
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === p('m'));
  assert.match(line.split(' - ')[1], /lowerdir=/, 'mounted through mount(2)');
});
