'use strict';
// The in-root calls (src/fs/inroot.h) against a tree full of escapes: symlinks to /, to a host directory,
// relative ones climbing out, /proc magic links, loops, and ".." everywhere. Nothing outside the root is
// read, written or linked to. The file runs twice: here with openat2 (where the kernel has it), and in a
// child process with BERTH_INROOT_WALK=1, the O_PATH walk older kernels get.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { addon, isRoot, tempDir } = require('./support');

const walk = !!process.env.BERTH_INROOT_WALK;
const top = tempDir('berth-inroot-');
const root = path.join(top, 'root');
const outside = path.join(top, 'outside');
const SECRET = `outside-secret-${process.pid}\n`;
test.after(() => fs.rmSync(top, { recursive: true, force: true }));

fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
fs.mkdirSync(path.join(root, 'd', 'sub'), { recursive: true });
fs.mkdirSync(outside);
fs.writeFileSync(path.join(outside, 'secret'), SECRET);
fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
fs.symlinkSync('/', path.join(root, 'up'));
fs.symlinkSync('../../../../../../..', path.join(root, 'd', 'rel'));
fs.symlinkSync('/etc', path.join(root, 'abs'));
fs.symlinkSync(outside, path.join(root, 'host'));
fs.symlinkSync(path.join(outside, 'secret'), path.join(root, 'hostfile'));
fs.symlinkSync('/proc/self/root', path.join(root, 'magic'));
fs.symlinkSync('loop', path.join(root, 'loop'));

const outsideState = () => fs.readdirSync(outside).sort().map((n) => `${n}:${fs.readFileSync(path.join(outside, n), 'utf8')}`).join(',');
const before = outsideState();

async function withRoot(fn) {
  const fd = await addon.rootOpen(root);
  try {
    return await fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

test(`the resolver in use (${walk ? 'walk' : 'openat2'})`, () => {
  assert.equal(addon.inRootResolver(), walk ? 'walk' : 'openat2');
});

test('symlinks and .. are re-rooted: inner paths never leave the root', () => withRoot(async (r) => {
  for (const [p, inner] of [
    ['/up/etc/passwd', '/etc/passwd'], ['d/rel/etc/passwd', '/etc/passwd'], ['../../../etc/passwd', '/etc/passwd'],
    ['abs/passwd', '/etc/passwd'], ['up/up/d/rel/up/abs/../etc/passwd', '/etc/passwd'],
  ]) {
    const got = await addon.inRootResolve(r, p, true);
    assert.equal(got.inner, inner, p);
    assert.equal(got.stat.type, 'file', p);
  }
  // Host paths named by symlinks lead to the same path inside the root, which is not there.
  assert.equal((await addon.inRootResolve(r, `host/secret`, true)).stat, null);
  assert.equal((await addon.inRootResolve(r, 'hostfile', true)).stat, null);
  assert.equal((await addon.inRootResolve(r, 'hostfile', false)).stat.type, 'symlink');
  await assert.rejects(addon.inRootResolve(r, 'loop', true), { code: 'ELOOP' });
}));

test('reads never reach the host: files, lists and the synchronous read', () => withRoot(async (r) => {
  for (const p of ['host/secret', 'hostfile', 'up' + outside + '/secret', 'd/rel' + outside + '/secret', 'magic' + outside + '/secret']) {
    await assert.rejects(addon.inRootOpenFile(r, p), (e) => ['ENOENT', 'ELOOP', 'EINVAL', 'EXDEV'].includes(e.code), p);
    assert.equal(addon.inRootReadFileSync(root, p, 1 << 20), null, p);
  }
  await assert.rejects(addon.inRootList(r, 'host'), (e) => ['ENOENT', 'ELOOP', 'ENOTDIR'].includes(e.code));
  const f = await addon.inRootOpenFile(r, 'up/etc/passwd');
  assert.match(fs.readFileSync(f.fd, 'utf8'), /^root:/);
  fs.closeSync(f.fd);
  assert.match(addon.inRootReadFileSync(root, 'd/rel/abs/passwd', 1 << 20), /^root:/);
  assert.deepEqual((await addon.inRootList(r, 'd')).map((e) => `${e.name}:${e.stat.type}`), ['rel:symlink', 'sub:dir']);
}));

test('writes land inside: through symlinked parents, over symlinks, and hard links to the host refused', () => withRoot(async (r) => {
  const own = { mode: 0o755, uid: 0, gid: 0 };
  // A parent that is a symlink to a host directory leads to that path inside the root, which is not there
  // (as `mkdir -p` does, a dangling symlink is not made into a directory).
  await assert.rejects(addon.inRootPlace(r, { path: 'host/secret', type: 'file', mode: 0o600, uid: 0, gid: 0, parents: own }), { code: 'ENOENT' });
  let fd = await addon.inRootPlace(r, { path: `d/rel${outside}/secret`, type: 'file', mode: 0o600, uid: 0, gid: 0, parents: own });
  fs.writeSync(fd, 'inside\n');
  fs.closeSync(fd);
  assert.equal(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8'), 'inside\n');
  // A symlink where the file goes is replaced, never written through.
  fd = await addon.inRootPlace(r, { path: 'hostfile', type: 'file', mode: 0o4755, uid: 0, gid: 0 });
  fs.closeSync(fd);
  assert.ok(fs.lstatSync(path.join(root, 'hostfile')).isFile());
  assert.equal(fs.lstatSync(path.join(root, 'hostfile')).mode & 0o7777, 0o4755);
  await addon.inRootPlace(r, { path: 'd/rel/newdir', type: 'dir', mode: 0o700, uid: 0, gid: 0, mtime: 1000 });
  assert.equal(fs.statSync(path.join(root, 'newdir')).mtimeMs, 1000000);
  await addon.inRootPlace(r, { path: 'abs/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: outside });
  assert.equal(fs.readlinkSync(path.join(root, 'etc', 'link')), outside);
  // A hard link's target is looked up inside too: the copy made above, never the host's file.
  await addon.inRootPlace(r, { path: 'hl', type: 'link', mode: 0, uid: 0, gid: 0, linkname: `up${outside}/secret` });
  assert.equal(fs.statSync(path.join(root, 'hl')).ino, fs.statSync(path.join(root, outside, 'secret')).ino);
  await assert.rejects(addon.inRootPlace(r, { path: 'hl2', type: 'link', mode: 0, uid: 0, gid: 0, linkname: `host/nothing` }), { code: 'ENOENT' });
  await addon.inRootPlace(r, { path: 'hl', type: 'link', mode: 0, uid: 0, gid: 0, linkname: 'abs/passwd' });
  assert.equal(fs.statSync(path.join(root, 'hl')).ino, fs.statSync(path.join(root, 'etc', 'passwd')).ino);
  await assert.rejects(addon.inRootPlace(r, { path: 'd', type: 'file', mode: 0o644, uid: 0, gid: 0, noOverwriteDirNonDir: true }), { code: 'EISDIR' });
  await addon.inRootMkdirAll(r, 'up/a/b/../c', own);
  assert.ok(fs.statSync(path.join(root, 'a', 'c')).isDirectory());
  await addon.inRootSetTimes(r, 'a/c', 2000);
  assert.equal(fs.statSync(path.join(root, 'a', 'c')).mtimeMs, 2000000);
  assert.equal(outsideState(), before);
}));

test('copy-up copies a tree beneath the root into an empty directory only', () => withRoot(async (r) => {
  const src = path.join(root, 'img');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a'), 'A');
  fs.linkSync(path.join(src, 'a'), path.join(src, 'sub', 'a2'));
  fs.symlinkSync('/etc/passwd', path.join(src, 'ln'));
  fs.chmodSync(path.join(src, 'sub'), 0o710);
  fs.symlinkSync('img', path.join(root, 'imglink'));
  const dst = path.join(top, `vol-${walk ? 'w' : 'o'}`);
  fs.mkdirSync(dst);
  const dfd = await addon.rootOpen(dst);
  try {
    assert.equal(await addon.inRootCopyUp(r, 'up/imglink', dfd), true);
    assert.equal(fs.readFileSync(path.join(dst, 'a'), 'utf8'), 'A');
    assert.equal(fs.statSync(path.join(dst, 'sub', 'a2')).ino, fs.statSync(path.join(dst, 'a')).ino, 'hard links kept');
    assert.equal(fs.readlinkSync(path.join(dst, 'ln')), '/etc/passwd');
    assert.equal(fs.statSync(path.join(dst, 'sub')).mode & 0o777, 0o710);
    assert.equal(await addon.inRootCopyUp(r, 'img', dfd), false, 'not into a directory with files');
    const empty = path.join(top, `vol2-${walk ? 'w' : 'o'}`);
    fs.mkdirSync(empty);
    const efd = await addon.rootOpen(empty);
    const outside2 = path.join(top, `outside2-${walk ? 'w' : 'o'}`);
    fs.mkdirSync(outside2);
    fs.writeFileSync(path.join(outside2, 'secret'), SECRET);
    fs.symlinkSync(outside2, path.join(root, `host2-${walk ? 'w' : 'o'}`));
    assert.equal(await addon.inRootCopyUp(r, `host2-${walk ? 'w' : 'o'}`, efd), false, 'a source outside is not found');
    fs.closeSync(efd);
    assert.deepEqual(fs.readdirSync(empty), []);
  } finally {
    fs.closeSync(dfd);
  }
}));

test('bind mounts by fd, made and undone', { skip: !isRoot && 'needs root' }, () => withRoot(async (r) => {
  const stage = path.join(top, `stage-${walk ? 'w' : 'o'}`);
  fs.mkdirSync(stage);
  const sfd = await addon.rootOpen(stage);
  const src = await addon.inRootOpenPath(r, 'up/abs', true);
  try {
    const m = await addon.bindMountInRoot(src, sfd, 'point', { readOnly: true });
    assert.ok(fs.existsSync(path.join(stage, 'point', 'passwd')));
    assert.throws(() => fs.writeFileSync(path.join(stage, 'point', 'x'), ''), { code: 'EROFS' });
    await addon.unmountFd(m);
    fs.closeSync(m);
    assert.ok(!fs.existsSync(path.join(stage, 'point', 'passwd')));
  } finally {
    fs.closeSync(src);
    fs.closeSync(sfd);
  }
}));

test('a root of a process whose start time differs is refused', async () => {
  await assert.rejects(addon.rootOpen(`/proc/${process.pid}/root`, { pid: process.pid, startTime: '1' }), { code: 'ESRCH' });
  const start = fs.readFileSync(`/proc/${process.pid}/stat`, 'latin1').split(') ')[1].split(' ')[19];
  fs.closeSync(await addon.rootOpen(`/proc/${process.pid}/root`, { pid: process.pid, startTime: start }));
});

if (!walk) {
  test('the same, through the O_PATH walk (BERTH_INROOT_WALK=1)', () => {
    // A plain `node --test` of its own (not a child reporting to this runner, which would exit 0).
    const env = { ...process.env, BERTH_INROOT_WALK: '1' };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--test', __filename], { env, encoding: 'utf8', timeout: 120000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
}
