// The layer store and the unpacker, against the real filesystem and the real addon (needs root): what each
// kind of entry becomes, hostile archives that must not write outside the layer (a sentinel file outside
// must stay as it was), diff-id checks, and crash clean-up.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, lstatSync, existsSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { applyTar } from '../../daemon/storage/layers/apply';
import { LayerStore, chainIdOf, chainIds } from '../../daemon/storage/layers/store';
import { decompressed } from '../../daemon/storage/layers/decompress';
import { layerFs } from '../../daemon/runtime/layerfs';
import { openDb, type DB } from '../../daemon/state/db';
import { BerthError } from '../../daemon/errors/errors';
import { packTar, type TarEntry } from '../fixtures/tar';

const isRoot = process.getuid?.() === 0;
const log = pino({ level: 'silent' });
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  // In pieces, as a network stream would arrive.
  for (let i = 0; i < b.length; i += 7000) yield b.subarray(i, i + 7000);
}

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'berth-layers-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
function freshDir(): string {
  const d = path.join(root, `d${n++}`);
  mkdirSync(d);
  return d;
}

/** A directory outside the layer with a sentinel file, and a snapshot to compare with afterwards. */
function outside(): { dir: string; sentinel: string; unchanged: () => void } {
  const dir = freshDir();
  const sentinel = path.join(dir, 'sentinel');
  writeFileSync(sentinel, 'untouched\n', { mode: 0o600 });
  const before = readdirSync(dir).sort();
  const st = statSync(sentinel);
  return {
    dir,
    sentinel,
    unchanged: () => {
      assert.deepEqual(readdirSync(dir).sort(), before, 'nothing was added outside the layer');
      const now = lstatSync(sentinel);
      assert.ok(now.isFile(), 'the sentinel is still a regular file');
      assert.equal(readFileSync(sentinel, 'utf8'), 'untouched\n');
      assert.equal(now.mode & 0o7777, 0o600);
      assert.equal(now.uid, st.uid);
      assert.equal(now.mtimeMs, st.mtimeMs);
    },
  };
}

async function apply(entries: TarEntry[], dest = freshDir()) {
  const tar = await packTar(entries);
  return { dest, res: await applyTar(once(tar), dest, { fs: layerFs }), tar };
}

async function rejected(entries: TarEntry[], re: RegExp): Promise<void> {
  const dest = freshDir();
  const tar = await packTar(entries);
  await assert.rejects(applyTar(once(tar), dest, { fs: layerFs }), (e: unknown) => {
    assert.ok(e instanceof BerthError, `expected a BerthError, got ${e}`);
    assert.equal(e.status, 400);
    assert.match(e.message, re);
    return true;
  });
}

describe('unpacking a layer', { skip: !isRoot && 'needs root (lchown, mknod, trusted xattrs)' }, () => {
  test('files, directories, links and devices keep owner, mode and mtime', async () => {
    const mtime = new Date('2021-05-06T07:08:09Z');
    const { dest, res, tar } = await apply([
      { name: 'dir/', type: 'directory', mode: 0o750, uid: 1000, gid: 1001, mtime },
      { name: 'dir/file', content: 'hello\n', mode: 0o4755, uid: 1000, gid: 1001, mtime },
      { name: 'dir/link', type: 'symlink', linkname: 'file', uid: 1000, gid: 1001 },
      { name: 'dir/abs-link', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'dir/hard', type: 'link', linkname: 'dir/file' },
      { name: 'dir/fifo', type: 'fifo', mode: 0o640 },
      { name: 'dir/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: './implied/parent/file', content: 'x' },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
    ]);
    assert.equal(res.diffId, sha(tar));
    const d = path.join(dest, 'dir');
    const st = lstatSync(d);
    assert.ok(st.isDirectory());
    assert.equal(st.mode & 0o7777, 0o750);
    assert.equal(st.uid, 1000);
    assert.equal(st.gid, 1001);
    assert.equal(st.mtime.getTime(), mtime.getTime(), 'directory mtime is set after its contents');
    const f = lstatSync(path.join(d, 'file'));
    assert.equal(f.mode & 0o7777, 0o4755, 'setuid survives chown');
    assert.equal(f.uid, 1000);
    assert.equal(f.mtime.getTime(), mtime.getTime());
    assert.equal(readFileSync(path.join(d, 'file'), 'utf8'), 'hello\n');
    assert.equal(readlinkSync(path.join(d, 'link')), 'file');
    assert.equal(lstatSync(path.join(d, 'link')).uid, 1000);
    assert.equal(readlinkSync(path.join(d, 'abs-link')), '/etc/passwd', 'symlink targets are data, not followed');
    assert.equal(lstatSync(path.join(d, 'hard')).ino, f.ino);
    assert.ok(lstatSync(path.join(d, 'fifo')).isFIFO());
    assert.equal(lstatSync(path.join(d, 'fifo')).mode & 0o777, 0o640);
    const dev = lstatSync(path.join(d, 'null'));
    assert.ok(dev.isCharacterDevice());
    assert.equal(dev.rdev, (1 << 8) | 3);
    assert.equal(readFileSync(path.join(dest, 'implied/parent/file'), 'utf8'), 'x');
    assert.equal(lstatSync(path.join(dest, 'implied')).mode & 0o777, 0o755);
    assert.equal(lstatSync(path.join(dest, 'tmp')).mode & 0o7777, 0o1777);
    // Sizes as Docker counts them: file 6 (the hardlink once) + symlink targets 4 + 11 + implied file 1.
    assert.equal(res.size, 6 + 4 + 11 + 1);
  });

  test('whiteouts become 0/0 character devices and opaque markers an xattr', async () => {
    const { dest } = await apply([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh.gone', content: '', uid: 5, gid: 6 },
      { name: 'never-seen/.wh.x', content: '' },
      { name: 'opaque/', type: 'directory' },
      { name: 'opaque/.wh..wh..opq', content: '' },
      { name: 'opaque/kept', content: 'k' },
      { name: 'late/.wh..wh..opq', content: '' },
      { name: '.wh..wh.plnk/', type: 'directory' },
      { name: '.wh..wh.aufs', content: '' },
    ]);
    const wh = lstatSync(path.join(dest, 'etc/gone'));
    assert.ok(wh.isCharacterDevice(), 'whiteout is a character device');
    assert.equal(wh.rdev, 0, 'device 0/0');
    assert.equal(wh.uid, 5);
    assert.equal(wh.gid, 6);
    assert.ok(!existsSync(path.join(dest, 'etc/.wh.gone')), 'the marker file itself is not written');
    assert.ok(lstatSync(path.join(dest, 'never-seen/x')).isCharacterDevice());
    assert.equal(readXattr(path.join(dest, 'opaque'), 'trusted.overlay.opaque'), 'y');
    assert.equal(readXattr(path.join(dest, 'late'), 'trusted.overlay.opaque'), 'y');
    assert.ok(!existsSync(path.join(dest, 'opaque/.wh..wh..opq')));
    assert.equal(readFileSync(path.join(dest, 'opaque/kept'), 'utf8'), 'k');
    assert.deepEqual(readdirSync(dest).sort(), ['etc', 'late', 'never-seen', 'opaque'], 'aufs metadata is skipped');
  });

  test('a later entry replaces an earlier one, also a symlink, without writing through it', async () => {
    const out = outside();
    const { dest } = await apply([
      { name: 'x', type: 'symlink', linkname: out.sentinel },
      { name: 'x', content: 'replaced' },
      { name: 'd', type: 'symlink', linkname: out.dir },
      { name: 'd/', type: 'directory' },
      { name: 'd/inside', content: 'in' },
      { name: 'w', type: 'symlink', linkname: out.sentinel },
      { name: '.wh.w', content: '' },
    ]);
    out.unchanged();
    assert.ok(lstatSync(path.join(dest, 'x')).isFile());
    assert.equal(readFileSync(path.join(dest, 'x'), 'utf8'), 'replaced');
    assert.ok(lstatSync(path.join(dest, 'd')).isDirectory());
    assert.equal(readFileSync(path.join(dest, 'd/inside'), 'utf8'), 'in');
    assert.ok(lstatSync(path.join(dest, 'w')).isCharacterDevice());
  });

  test('hostile archives are refused and write nothing outside', async (t) => {
    const out = outside();
    const rel = path.relative(root, out.dir);
    const cases: [string, TarEntry[], RegExp][] = [
      ['.. component', [{ name: `../${rel}/evil`, content: 'x' }], /outside the layer/],
      ['.. inside the path', [{ name: 'a/../../evil', content: 'x' }], /outside the layer/],
      ['absolute path', [{ name: `${out.dir}/evil`, content: 'x' }], /absolute path/],
      ['absolute overwrite', [{ name: out.sentinel, content: 'owned' }], /absolute path/],
      ['symlinked parent', [
        { name: 'escape', type: 'symlink', linkname: out.dir },
        { name: 'escape/evil', content: 'x' },
      ], /goes through the symlink/],
      ['symlinked parent, relative', [
        { name: 'escape', type: 'symlink', linkname: `../${rel}` },
        { name: 'escape/sentinel', content: 'owned' },
      ], /goes through the symlink/],
      ['symlinked grandparent', [
        { name: 'a/', type: 'directory' },
        { name: 'a/b', type: 'symlink', linkname: out.dir },
        { name: 'a/b/c/evil', content: 'x' },
      ], /goes through the symlink/],
      ['hardlink to outside (..)', [{ name: 'h', type: 'link', linkname: `../${rel}/sentinel` }], /outside the layer/],
      ['hardlink to outside (absolute)', [{ name: 'h', type: 'link', linkname: out.sentinel }], /absolute path/],
      ['hardlink through a symlink', [
        { name: 'l', type: 'symlink', linkname: out.dir },
        { name: 'h', type: 'link', linkname: 'l/sentinel' },
      ], /goes through the symlink/],
      ['hardlink to a missing target', [{ name: 'h', type: 'link', linkname: 'nothing' }], /not in the layer/],
      ['whiteout through a symlink', [
        { name: 'l', type: 'symlink', linkname: out.dir },
        { name: 'l/.wh.sentinel', content: '' },
      ], /goes through the symlink/],
      ['opaque marker through a symlink', [
        { name: 'l', type: 'symlink', linkname: out.dir },
        { name: 'l/.wh..wh..opq', content: '' },
      ], /goes through the symlink/],
      ['device through a symlink', [
        { name: 'l', type: 'symlink', linkname: out.dir },
        { name: 'l/dev', type: 'character-device', devmajor: 1, devminor: 3 },
      ], /goes through the symlink/],
      ['file as a parent', [
        { name: 'f', content: 'x' },
        { name: 'f/child', content: 'x' },
      ], /is not a directory/],
    ];
    for (const [what, entries, re] of cases) {
      await t.test(what, () => rejected(entries, re));
      out.unchanged();
    }
  });

  test('a truncated or corrupt tar is refused', async () => {
    const tar = await packTar([{ name: 'big', content: Buffer.alloc(100_000, 1) }]);
    await assert.rejects(applyTar(once(tar.subarray(0, 50_000)), freshDir(), { fs: layerFs }), /truncated/);
    const bad = Buffer.from(tar);
    bad[0] ^= 0xff; // breaks the header checksum
    await assert.rejects(applyTar(once(bad), freshDir(), { fs: layerFs }), /invalid tar header/);
  });
});

function readXattr(p: string, name: string): string | undefined {
  // Node has no getxattr; the addon only sets. Ask the kernel through /usr/bin/getfattr when present, else
  // through python's os.getxattr.
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  try {
    return execFileSync('python3', ['-c', 'import os,sys; sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2]).decode())', p, name], { encoding: 'utf8' });
  } catch {
    return undefined;
  }
}

describe('the layer store', { skip: !isRoot && 'needs root' }, () => {
  let db: DB;
  let dataRoot: string;
  let store: LayerStore;
  before(() => {
    dataRoot = freshDir();
    db = openDb(path.join(dataRoot, 'berth.db'));
    store = new LayerStore(db, dataRoot, log, layerFs);
  });
  after(() => db.close());

  const overlay = () => readdirSync(path.join(dataRoot, 'overlay2')).sort();

  test('chain ids follow the OCI rule', () => {
    const a = `sha256:${'a'.repeat(64)}`;
    const b = `sha256:${'b'.repeat(64)}`;
    assert.equal(chainIdOf(null, a), a);
    assert.equal(chainIdOf(a, b), `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`);
    assert.deepEqual(chainIds([a, b]), [a, chainIdOf(a, b)]);
  });

  test('a layer is committed once, keyed by chain id, and stacks on its parent', async () => {
    const t1 = await packTar([{ name: 'base', content: 'base' }]);
    const t2 = await packTar([{ name: 'top', content: 'top' }]);
    const l1 = await store.create(null, once(t1), sha(t1));
    assert.equal(l1.chainId, sha(t1));
    assert.equal(readFileSync(path.join(store.diffDir(l1), 'base'), 'utf8'), 'base');
    const again = await store.create(null, once(t1), sha(t1));
    assert.equal(again.cacheId, l1.cacheId, 'the same layer is not unpacked twice');
    const l2 = await store.create(l1.chainId, decompressed(once(gzipSync(t2))), sha(t2));
    assert.equal(l2.chainId, chainIdOf(l1.chainId, sha(t2)));
    assert.equal(l2.parent, l1.chainId);
    assert.deepEqual(store.stack(l2.chainId).map((l) => l.chainId), [l2.chainId, l1.chainId]);
    assert.deepEqual(overlay(), [l1.cacheId, l2.cacheId].sort());
    // gc keeps what a top needs, removes the rest (children first).
    assert.deepEqual(store.gc([l2.chainId]), []);
    const gone = store.gc([l1.chainId]);
    assert.deepEqual(gone.map((l) => l.chainId), [l2.chainId]);
    const release = store.hold([l1.chainId]);
    assert.deepEqual(store.gc([]), [], 'held layers stay');
    release();
    assert.deepEqual(store.gc([]).map((l) => l.chainId), [l1.chainId]);
    assert.equal(store.all().length, 0);
    // Directories are moved aside at once and removed in the background.
    await waitFor(() => overlay().length === 0);
  });

  test('a layer whose content does not match its diff id is refused and leaves nothing', async () => {
    const t = await packTar([{ name: 'f', content: 'data' }]);
    const wrong = `sha256:${'0'.repeat(64)}`;
    await assert.rejects(store.create(null, once(t), wrong), /invalid diffID/);
    assert.deepEqual(overlay(), []);
    assert.equal(store.get(chainIdOf(null, wrong)), undefined);
    assert.equal(store.all().length, 0);
    // A hostile layer: also nothing left.
    const h = await packTar([{ name: '../x', content: 'x' }]);
    await assert.rejects(store.create(null, once(h), sha(h)), /outside the layer/);
    assert.deepEqual(overlay(), []);
  });

  test('cleanup finishes a commit interrupted before the rename and removes stray work', async () => {
    const t = await packTar([{ name: 'f', content: 'crash' }]);
    const l = await store.create(null, once(t), sha(t));
    const dir = path.join(dataRoot, 'overlay2');
    // As if berthd died between the row commit and the rename:
    const { renameSync } = await import('node:fs');
    renameSync(path.join(dir, l.cacheId), path.join(dir, `tmp-${l.cacheId}`));
    // and as if it died while unpacking another layer and while removing a third:
    mkdirSync(path.join(dir, `tmp-${'1'.repeat(64)}`, 'diff'), { recursive: true });
    mkdirSync(path.join(dir, `del-${'2'.repeat(64)}`, 'diff'), { recursive: true });
    // A container's read-write layer lives here too and must be left alone.
    mkdirSync(path.join(dir, `${'3'.repeat(64)}-init`, 'diff'), { recursive: true });
    await store.cleanup();
    assert.deepEqual(overlay(), [l.cacheId, `${'3'.repeat(64)}-init`].sort());
    assert.equal(readFileSync(path.join(store.diffDir(l), 'f'), 'utf8'), 'crash');
    rmSync(path.join(dir, `${'3'.repeat(64)}-init`), { recursive: true });
    store.gc([]);
    await waitFor(() => overlay().length === 0);
  });
});

async function waitFor(fn: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
