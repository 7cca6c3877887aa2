'use strict';
// A kernel before 6.5 (Debian 12's 6.1, Ubuntu 22.04's 5.15) hands overlayfs mounted through the new mount
// API to the legacy option parser: it takes "lowerdir+" at FSCONFIG_SET_STRING and refuses it only at
// FSCONFIG_CMD_CREATE, with EINVAL. BERTH_TEST_OVERLAY_LEGACY_PARSER=1 makes the addon see exactly that
// here; the mount must then go through mount(2) (its options show "lowerdir=" rather than "lowerdir+="),
// also for more layers than fit in a page, and the probe must report the feature missing. Its own file: the
// answer is remembered for the rest of the process.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { addon, isRoot, read, write, tempDir, mountPoints } = require('./support');

const skip = isRoot ? false : 'needs root';

/** The super options of the mount at target, from /proc/self/mountinfo. */
function superOptions(target) {
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === target);
  assert.ok(line, `${target} is mounted`);
  return line.split(' - ')[1].split(' ')[2];
}

function workspace(t) {
  const dir = tempDir('berth-ovl-legacy-');
  const mounted = [];
  t.after(async () => {
    for (const m of mounted) await addon.unmount(m, true);
    assert.equal(mountPoints().some((m) => m.startsWith(dir)), false, 'no mount left behind');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, mounted };
}

test('a refusal of lowerdir+ at create sends the mount to mount(2), and later ones straight there', { skip }, async (t) => {
  process.env.BERTH_TEST_OVERLAY_LEGACY_PARSER = '1';
  t.after(() => delete process.env.BERTH_TEST_OVERLAY_LEGACY_PARSER);
  const ws = workspace(t);
  const p = (...x) => path.join(ws.dir, ...x);
  write(p('l1', 'a.txt'), 'top');
  write(p('l2', 'a.txt'), 'bottom');
  write(p('l2', 'b.txt'), 'b');
  for (const d of ['u', 'w', 'm']) fs.mkdirSync(p(d));
  ws.mounted.push(p('m'));
  // No probe has run in this process: the first mount finds out at create.
  await addon.mountOverlay({ lowerdirs: [p('l1'), p('l2')], upperdir: p('u'), workdir: p('w'), target: p('m') });
  assert.equal(read(p('m', 'a.txt')), 'top');
  assert.equal(read(p('m', 'b.txt')), 'b');
  assert.match(superOptions(p('m')), new RegExp(`lowerdir=${p('l1')}:${p('l2')},upperdir=`));

  // Many layers with long paths: over a page of options, each lower dir passed as /proc/self/fd/N.
  const lowers = [];
  for (let i = 0; i < 120; i++) {
    const d = p('layers', `${String(i).padStart(3, '0')}${'x'.repeat(60)}`);
    write(path.join(d, 'which.txt'), String(i));
    lowers.push(d);
  }
  assert.ok(lowers.join(':').length > 4096);
  for (const d of ['u2', 'w2', 'm2']) fs.mkdirSync(p(d));
  ws.mounted.push(p('m2'));
  await addon.mountOverlay({ lowerdirs: lowers, upperdir: p('u2'), workdir: p('w2'), target: p('m2') });
  assert.equal(read(p('m2', 'which.txt')), '0');
  assert.match(superOptions(p('m2')), /^rw,lowerdir=|,lowerdir=/);
  assert.doesNotMatch(superOptions(p('m2')), /lowerdir\+=/);
});

test('the probe reports lowerdir+ missing with the kernel\'s words, and leaves nothing behind', { skip }, async (t) => {
  process.env.BERTH_TEST_OVERLAY_LEGACY_PARSER = '1';
  t.after(() => delete process.env.BERTH_TEST_OVERLAY_LEGACY_PARSER);
  const ws = workspace(t);
  const scratch = path.join(ws.dir, 'probe');
  const features = await addon.kernelFeatures(scratch);
  const byName = Object.fromEntries(features.map((f) => [f.name, f]));
  assert.equal(byName['fsopen/fsconfig/fsmount/move_mount'].available, true);
  const plus = byName['overlayfs lowerdir+ through fsconfig'];
  assert.equal(plus.available, false);
  assert.equal(plus.since, '6.8');
  assert.match(plus.detail, /unrecognized mount option "lowerdir\+=/);
  assert.equal(fs.existsSync(scratch), false, 'the scratch dir is removed');
  for (const name of ['close_range(CLOSE_RANGE_CLOEXEC)', 'openat2', 'mount_setattr', 'pidfd_open', 'clone3', 'faccessat2', 'bpf']) {
    assert.equal(typeof byName[name].available, 'boolean', name);
    assert.match(byName[name].since, /^\d+\.\d+$/, name);
  }
});
