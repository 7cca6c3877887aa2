// Unit tests for the pieces of save/import/export/commit/diff that need no daemon: the -c change parser,
// the directory tar writer (with overlay whiteouts), the upper-dir change list, and the tar-split recorder.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, linkSync, rmSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar-stream';
import { applyChanges, splitWords } from '../../daemon/images/changes';
import { packDir } from '../../daemon/storage/layers/pack';
import { changesOf } from '../../daemon/containers/changes';
import { SplitRecorder, teeInto, assembleTar, SPLIT_META } from '../../daemon/storage/layers/tarsplit';
import { readTar, drain } from '../../daemon/storage/layers/apply';
import { packTar } from '../fixtures/tar';

async function collect(src: AsyncIterable<unknown>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of src) out.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(out);
}

async function entries(buf: Buffer): Promise<{ name: string; type: string; linkname?: string | null; content: string; mode?: number }[]> {
  const out: { name: string; type: string; linkname?: string | null; content: string; mode?: number }[] = [];
  await readTar((async function* () { yield buf; })(), async (h, stream) => {
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c);
    out.push({ name: h.name, type: h.type ?? '', linkname: h.linkname, content: Buffer.concat(chunks).toString(), mode: h.mode });
  });
  return out;
}

describe('-c changes (import, commit)', () => {
  test('CMD and ENTRYPOINT in JSON and shell form', () => {
    assert.deepEqual(applyChanges({}, ['CMD ["sh"]']).Cmd, ['sh']);
    assert.deepEqual(applyChanges({}, ['CMD echo hi']).Cmd, ['/bin/sh', '-c', 'echo hi']);
    const c = applyChanges({ Cmd: ['old'] }, ['ENTRYPOINT ["/bin/top", "-b"]']);
    assert.deepEqual(c.Entrypoint, ['/bin/top', '-b']);
    assert.equal(c.Cmd, null, 'a new ENTRYPOINT drops the inherited CMD');
    const both = applyChanges({}, ['ENTRYPOINT ["a"]', 'CMD ["b"]']);
    assert.deepEqual([both.Entrypoint, both.Cmd], [['a'], ['b']]);
  });

  test('ENV, LABEL with both syntaxes and quotes; replacing a variable keeps its place', () => {
    const c = applyChanges({ Env: ['PATH=/bin', 'A=0'] }, ['ENV A=1 B="two words"', 'ENV C three  words', 'LABEL x=1 "y z"=\'q r\'']);
    assert.deepEqual(c.Env, ['PATH=/bin', 'A=1', 'B=two words', 'C=three words']);
    assert.deepEqual(c.Labels, { x: '1', 'y z': 'q r' });
    assert.deepEqual(splitWords('a\\ b "c d" \'e\\f\''), ['a b', 'c d', 'e\\f']);
  });

  test('EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, ONBUILD', () => {
    const c = applyChanges({ WorkingDir: '/srv' }, ['EXPOSE 80 53/udp 8000-8001', 'VOLUME ["/data"]', 'VOLUME /a /b', 'USER nobody',
      'WORKDIR app', 'STOPSIGNAL SIGINT', 'ONBUILD RUN echo hi', 'expose 443']);
    assert.deepEqual(Object.keys(c.ExposedPorts).sort(), ['443/tcp', '53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
    assert.deepEqual(Object.keys(c.Volumes).sort(), ['/a', '/b', '/data']);
    assert.equal(c.User, 'nobody');
    assert.equal(c.WorkingDir, '/srv/app');
    assert.equal(c.StopSignal, 'SIGINT');
    assert.deepEqual(c.OnBuild, ['RUN echo hi']);
  });

  test('refuses what Docker refuses', () => {
    assert.throws(() => applyChanges({}, ['RUN echo']), /RUN is not a valid change command/);
    assert.throws(() => applyChanges({}, ['EXPOSE nope']), /invalid containerPort/);
    assert.throws(() => applyChanges({}, ['ENV =x']), /names can not be blank/);
    assert.throws(() => applyChanges({}, ['ONBUILD ONBUILD RUN x']), /Chaining ONBUILD/);
    assert.throws(() => applyChanges({}, ['ENV A="unterminated']), /unterminated quote/);
  });
});

describe('directory tar writer and change list', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-pack-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('packs files, dirs, symlinks and hardlinks in sorted order; whiteouts become .wh. entries', async () => {
    const root = path.join(dir, 'upper');
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    mkdirSync(path.join(root, 'tmp', 'new'), { recursive: true });
    writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\n', { mode: 0o640 });
    writeFileSync(path.join(root, 'tmp', 'new', 'a.txt'), 'A');
    linkSync(path.join(root, 'tmp', 'new', 'a.txt'), path.join(root, 'tmp', 'new', 'b.txt'));
    symlinkSync('../etc/group', path.join(root, 'tmp', 'link'));
    execFileSync('mknod', [path.join(root, 'etc', 'passwd'), 'c', '0', '0']);
    const got = await entries(await collect(packDir(root, { whiteouts: true })));
    assert.deepEqual(got.map((e) => `${e.type} ${e.name}${e.linkname ? ` -> ${e.linkname}` : ''}`), [
      'directory etc/',
      'file etc/group',
      'file etc/.wh.passwd',
      'directory tmp/',
      'symlink tmp/link -> ../etc/group',
      'directory tmp/new/',
      'file tmp/new/a.txt',
      'link tmp/new/b.txt -> tmp/new/a.txt',
    ]);
    assert.equal(got[1].content, 'root:x:0:\n');
    assert.equal((got[1].mode ?? 0) & 0o777, 0o640);
    // Without `whiteouts` (export) the device is written as it is.
    const plain = await entries(await collect(packDir(root)));
    assert.ok(plain.some((e) => e.name === 'etc/passwd' && e.type === 'character-device'));

    const lower = path.join(dir, 'lower');
    mkdirSync(path.join(lower, 'etc'), { recursive: true });
    mkdirSync(path.join(lower, 'tmp'), { recursive: true });
    writeFileSync(path.join(lower, 'etc', 'group'), 'old');
    writeFileSync(path.join(lower, 'etc', 'passwd'), 'old');
    assert.deepEqual(await changesOf(root, [lower]), [
      { Path: '/etc', Kind: 0 },
      { Path: '/etc/group', Kind: 0 },
      { Path: '/etc/passwd', Kind: 2 },
      { Path: '/tmp', Kind: 0 },
      { Path: '/tmp/link', Kind: 1 },
      { Path: '/tmp/new', Kind: 1 },
      { Path: '/tmp/new/a.txt', Kind: 1 },
      { Path: '/tmp/new/b.txt', Kind: 1 },
    ]);
  });

  test('tar-split gives back the exact bytes of a tar (PAX records, long names, odd sizes)', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
    const src = await packTar([
      { name: 'a/', type: 'directory' },
      { name: 'a/one', content: 'x'.repeat(513) },
      { name: long, content: 'long name' },
      { name: 'a/empty', content: '' },
      { name: 'a/pax', content: 'p', pax: { 'SCHILY.xattr.user.k': 'v' } },
      { name: 'a/sym', type: 'symlink', linkname: 'one' },
    ]);
    const layer = path.join(dir, 'split');
    mkdirSync(path.join(layer, 'diff'), { recursive: true });
    const rec = new SplitRecorder(path.join(layer, 'tar-split.gz'));
    const paths: Record<string, string> = {};
    let index = 0;
    await readTar(teeInto((async function* () {
      for (let i = 0; i < src.length; i += 700) yield src.subarray(i, i + 700);
    })(), rec), async (h, stream) => {
      const i = index++;
      if (h.type === 'file') {
        const rel = `f${i}`;
        paths[String(i)] = rel;
        writeFileSync(path.join(layer, 'diff', rel), await collect(stream));
      } else await drain(stream);
    });
    await rec.close();
    writeFileSync(path.join(layer, SPLIT_META), JSON.stringify({ size: rec.total, paths }));
    const back = await collect(assembleTar(layer));
    assert.equal(back.length, src.length);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(src).digest('hex'));
    assert.ok(readFileSync(path.join(layer, 'tar-split.gz')).length < src.length);
  });
});
