'use strict';
// Special files for layer unpacking: whiteouts, device nodes, fifos, extended attributes.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { addon, isRoot, tempDir, devMajor, devMinor } = require('./support');

const skip = isRoot ? false : 'needs root';

function scratch(t) {
  const dir = tempDir('berth-nodes-');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Node has no getxattr; python3 does (os.getxattr). Returns the value as text, or undefined.
function getXattr(file, name) {
  const r = spawnSync('python3', ['-c', 'import os,sys; sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())', file, name], { encoding: 'utf8' });
  if (r.error) return undefined;
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}
const hasPython = !spawnSync('python3', ['-c', 'import os; os.getxattr'], { encoding: 'utf8' }).error;

test('mkWhiteout makes a 0/0 character device', { skip }, async (t) => {
  const dir = scratch(t);
  const p = addon.mkWhiteout(path.join(dir, 'wh'));
  assert.ok(p instanceof Promise);
  assert.equal(await p, undefined);
  const st = fs.lstatSync(path.join(dir, 'wh'));
  assert.ok(st.isCharacterDevice());
  assert.equal(st.rdev, 0);

  await assert.rejects(addon.mkWhiteout(path.join(dir, 'wh')), (e) => {
    assert.equal(e.code, 'EEXIST');
    assert.equal(e.errno, -17);
    assert.equal(e.syscall, 'mknod');
    assert.equal(e.path, path.join(dir, 'wh'));
    assert.match(e.message, /^EEXIST: .*, mknod '.*wh'$/);
    return true;
  });
});

test('mknod makes character and block devices and fifos with exact modes', { skip }, async (t) => {
  const dir = scratch(t);
  const old = process.umask(0o077); // the addon's result must not depend on the umask
  try {
    await addon.mknod(path.join(dir, 'null'), 'c', 0o666, 1, 3);
    await addon.mknod(path.join(dir, 'loop'), 'b', 0o640, 7, 300);
    await addon.mknod(path.join(dir, 'fifo'), 'p', 0o1755, 0, 0);
  } finally {
    process.umask(old);
  }
  const c = fs.lstatSync(path.join(dir, 'null'));
  assert.ok(c.isCharacterDevice());
  assert.equal([devMajor(c.rdev), devMinor(c.rdev)].join(':'), '1:3');
  assert.equal(c.mode & 0o7777, 0o666);
  const b = fs.lstatSync(path.join(dir, 'loop'));
  assert.ok(b.isBlockDevice());
  assert.equal([devMajor(b.rdev), devMinor(b.rdev)].join(':'), '7:300');
  assert.equal(b.mode & 0o7777, 0o640);
  const f = fs.lstatSync(path.join(dir, 'fifo'));
  assert.ok(f.isFIFO());
  assert.equal(f.mode & 0o7777, 0o1755);
});

test('mknod refuses bad arguments before touching the disk', async (t) => {
  const dir = scratch(t);
  const at = path.join(dir, 'x');
  await assert.rejects(addon.mknod(at, 'x', 0o600, 0, 0), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.mknod(at, 'c', 0o10000, 1, 1), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.mknod(at, 'c', 0o600, -1, 1), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.mknod(at, 'c', '600', 1, 1), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(addon.mkWhiteout(42), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(addon.setXattr(at, 'user.x'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(fs.existsSync(at), false);
});

test('setXattr sets trusted.overlay.opaque and user attributes, on links themselves', { skip }, async (t) => {
  const dir = scratch(t);
  fs.mkdirSync(path.join(dir, 'd'));
  await addon.setXattr(path.join(dir, 'd'), 'trusted.overlay.opaque', 'y');
  fs.writeFileSync(path.join(dir, 'f'), '');
  await addon.setXattr(path.join(dir, 'f'), 'user.berth', 'a value');
  fs.symlinkSync('f', path.join(dir, 'link'));
  // A user.* attribute on a symlink is refused by the kernel (EPERM): proof that lsetxattr did not follow.
  await assert.rejects(addon.setXattr(path.join(dir, 'link'), 'user.berth', 'x'), { code: 'EPERM', syscall: 'lsetxattr' });
  await assert.rejects(addon.setXattr(path.join(dir, 'missing'), 'user.berth', 'x'), {
    code: 'ENOENT',
    path: path.join(dir, 'missing'),
  });
  if (hasPython) {
    assert.equal(getXattr(path.join(dir, 'd'), 'trusted.overlay.opaque'), 'y');
    assert.equal(getXattr(path.join(dir, 'f'), 'user.berth'), 'a value');
  }
});
