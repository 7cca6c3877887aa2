'use strict';
// overlayfs mounts through the addon, with both mount paths: the new mount API (fsopen/fsconfig) and the
// mount(2) fallback that older kernels use (forced with BERTH_OVERLAY_MOUNT_API=legacy).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { addon, isRoot, read, write, tempDir, mountPoints, devMajor, devMinor } = require('./support');

const skip = isRoot ? false : 'needs root';

// Every mount a test makes is recorded here and undone in t.after, whatever the test did.
function workspace(t) {
  const dir = tempDir('berth-ovl-');
  const mounted = new Set();
  t.after(async () => {
    for (const target of mounted) await addon.unmount(target, true);
    assert.equal(mountPoints().some((m) => m.startsWith(dir)), false, 'no mount left behind');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    async mount(spec) {
      mounted.add(spec.target);
      return addon.mountOverlay(spec);
    },
  };
}

// Runs fn with BERTH_OVERLAY_MOUNT_API set to api (undefined: the default path).
async function withApi(api, fn) {
  const saved = process.env.BERTH_OVERLAY_MOUNT_API;
  if (api) process.env.BERTH_OVERLAY_MOUNT_API = api;
  else delete process.env.BERTH_OVERLAY_MOUNT_API;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.BERTH_OVERLAY_MOUNT_API;
    else process.env.BERTH_OVERLAY_MOUNT_API = saved;
  }
}

for (const api of [undefined, 'legacy']) {
  const label = api ? 'mount(2)' : 'default API';

  test(`${label}: two lowers + upper give the merged view; writes land in upper; whiteouts hide`, { skip }, async (t) => {
    const ws = workspace(t);
    const p = (...x) => path.join(ws.dir, ...x);
    // lower1 is the top lower layer, lower2 the bottom one.
    write(p('lower1', 'a.txt'), 'a from lower1');
    write(p('lower1', 'shared.txt'), 'top');
    write(p('lower2', 'b.txt'), 'b from lower2');
    write(p('lower2', 'shared.txt'), 'bottom');
    write(p('lower2', 'gone.txt'), 'hidden by a whiteout');
    write(p('lower2', 'dir', 'old.txt'), 'hidden by an opaque dir');
    write(p('upper', 'dir', 'new.txt'), 'from upper');
    fs.mkdirSync(p('work'));
    fs.mkdirSync(p('merged'));
    // Layer contents as a layer unpacker would leave them: a whiteout and an opaque directory.
    await addon.mkWhiteout(p('upper', 'gone.txt'));
    await addon.setXattr(p('upper', 'dir'), 'trusted.overlay.opaque', 'y');

    await withApi(api, () =>
      ws.mount({ lowerdirs: [p('lower1'), p('lower2')], upperdir: p('upper'), workdir: p('work'), target: p('merged') }),
    );
    assert.ok(mountPoints().includes(p('merged')));

    const merged = (...x) => p('merged', ...x);
    assert.deepEqual(fs.readdirSync(merged()).sort(), ['a.txt', 'b.txt', 'dir', 'shared.txt']);
    assert.equal(read(merged('a.txt')), 'a from lower1');
    assert.equal(read(merged('b.txt')), 'b from lower2');
    assert.equal(read(merged('shared.txt')), 'top', 'the first lowerdir is the topmost');
    assert.equal(fs.existsSync(merged('gone.txt')), false, 'the whiteout hides the lower file');
    assert.deepEqual(fs.readdirSync(merged('dir')), ['new.txt'], 'the opaque dir hides the lower one');

    fs.writeFileSync(merged('c.txt'), 'written through the mount');
    assert.equal(read(p('upper', 'c.txt')), 'written through the mount');
    assert.equal(fs.existsSync(p('lower1', 'c.txt')), false);

    // Deleting a lower file through the mount leaves overlayfs's own whiteout in upper.
    fs.unlinkSync(merged('b.txt'));
    const wh = fs.statSync(p('upper', 'b.txt'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(devMajor(wh.rdev), 0);
    assert.equal(devMinor(wh.rdev), 0);
    assert.equal(read(p('lower2', 'b.txt')), 'b from lower2');

    await addon.unmount(p('merged'));
    assert.equal(mountPoints().includes(p('merged')), false);
    assert.deepEqual(fs.readdirSync(p('merged')), []);
    // Not mounted, or not there at all, is not an error.
    await addon.unmount(p('merged'));
    await addon.unmount(p('does-not-exist'), true);
  });

  test(`${label}: 150 layers with long paths (over one page of options)`, { skip }, async (t) => {
    const ws = workspace(t);
    const lowers = [];
    for (let i = 0; i < 150; i++) {
      const d = path.join(ws.dir, 'layers', `${String(i).padStart(3, '0')}${'f'.repeat(61)}`, 'diff');
      write(path.join(d, `layer-${i}.txt`), String(i));
      write(path.join(d, 'which.txt'), String(i));
      lowers.push(d);
    }
    assert.ok(lowers.join(':').length > 4096);
    const target = path.join(ws.dir, 'merged');
    fs.mkdirSync(target);
    const [upperdir, workdir] = [path.join(ws.dir, 'u'), path.join(ws.dir, 'w')];
    fs.mkdirSync(upperdir);
    fs.mkdirSync(workdir);
    await withApi(api, () => ws.mount({ lowerdirs: lowers, upperdir, workdir, target }));
    assert.equal(read(path.join(target, 'which.txt')), '0');
    assert.equal(read(path.join(target, 'layer-149.txt')), '149');
    assert.equal(fs.readdirSync(target).length, 151);
    await addon.unmount(target, true);
  });
}

test('mount(2) with more layers than even short paths fit in a page is E2BIG', { skip }, async (t) => {
  const ws = workspace(t);
  const lowers = [];
  for (let i = 0; i < 300; i++) {
    const d = path.join(ws.dir, 'l', String(i));
    fs.mkdirSync(d, { recursive: true });
    lowers.push(d);
  }
  const target = path.join(ws.dir, 'merged');
  fs.mkdirSync(target);
  const spec = { lowerdirs: lowers, upperdir: path.join(ws.dir, 'u'), workdir: path.join(ws.dir, 'w'), target };
  fs.mkdirSync(spec.upperdir);
  fs.mkdirSync(spec.workdir);
  await withApi('legacy', () =>
    assert.rejects(ws.mount(spec), (e) => e.code === 'E2BIG' && e.path === target && /300 layers/.test(e.message)),
  );
  // The new mount API has no such limit (overlayfs itself allows 500 lower layers).
  await ws.mount(spec);
  assert.ok(mountPoints().includes(target));
});

test('mount errors carry code, errno, syscall and path; bad specs are refused up front', { skip }, async (t) => {
  const ws = workspace(t);
  const p = (...x) => path.join(ws.dir, ...x);
  for (const d of ['l', 'u', 'w', 'm']) fs.mkdirSync(p(d));
  for (const api of [undefined, 'legacy']) {
    // Whichever directory is missing, the error names it.
    for (const spec of [
      { lowerdirs: [p('l')], upperdir: p('u'), workdir: p('w'), target: p('missing') },
      { lowerdirs: [p('l'), p('missing')], upperdir: p('u'), workdir: p('w'), target: p('m') },
      { lowerdirs: [p('l')], upperdir: p('missing'), workdir: p('w'), target: p('m') },
    ]) {
      await withApi(api, () =>
        assert.rejects(ws.mount(spec), (e) => {
          assert.equal(e.code, 'ENOENT');
          assert.equal(e.errno, -2);
          assert.equal(typeof e.syscall, 'string');
          assert.equal(e.path, p('missing'));
          return true;
        }, `${api ?? 'default'} ${JSON.stringify(spec)}`),
      );
    }
  }
  await assert.rejects(ws.mount({ lowerdirs: [p('l') + ':x'], upperdir: p('u'), workdir: p('w'), target: p('m') }), {
    code: 'EINVAL',
    message: /cannot carry/,
  });
  await assert.rejects(ws.mount({ lowerdirs: [], upperdir: p('u'), workdir: p('w'), target: p('m') }), {
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
  });
  await assert.rejects(ws.mount({ lowerdirs: [p('l')], upperdir: p('u'), target: p('m') }), {
    code: 'ERR_INVALID_ARG_TYPE',
  });
  await assert.rejects(addon.unmount('relative/path'), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(mountPoints().includes(p('m')), false);
});
