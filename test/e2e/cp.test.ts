// docker cp against a real berthd: files and directories into and out of running and stopped containers,
// the X-Docker-Container-Path-Stat header, 404s, and paths that try to leave the container's root through
// symlinks and `..` (a sentinel file on the host must stay unread and unwritten).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync, existsSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
let work: string;
const SENTINEL = 'berth-cp-sentinel-' + process.pid;
let sentinelDir: string;

before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'berth-cp-'));
  sentinelDir = mkdtempSync(path.join(os.tmpdir(), 'berth-sentinel-'));
  writeFileSync(path.join(sentinelDir, SENTINEL), 'host secret\n');
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
  if (sentinelDir) rmSync(sentinelDir, { recursive: true, force: true });
});

const { ok } = dockerCli(() => b);

function statHeader(h: Record<string, unknown>): { name: string; size: number; mode: number; mtime: string; linkTarget: string } {
  const v = h['x-docker-container-path-stat'];
  assert.equal(typeof v, 'string', 'stat header present');
  return JSON.parse(Buffer.from(v as string, 'base64').toString('utf8'));
}

test('copy a file and a directory in and out of a running container', async () => {
  await ok('run', '-d', '--name', 'cp-r', 'busybox', 'sleep', '1000');
  writeFileSync(path.join(work, 'hostfile.txt'), 'hello from host\n');
  mkdirSync(path.join(work, 'hostdir', 'sub'), { recursive: true });
  writeFileSync(path.join(work, 'hostdir', 'a.txt'), 'a\n');
  writeFileSync(path.join(work, 'hostdir', 'sub', 'b.txt'), 'b\n');

  await ok('cp', path.join(work, 'hostfile.txt'), 'cp-r:/tmp/');
  await ok('cp', path.join(work, 'hostdir'), 'cp-r:/tmp/newdir');

  const out = path.join(work, 'out');
  mkdirSync(out);
  await ok('cp', 'cp-r:/tmp/newdir', out + '/');
  assert.equal(readFileSync(path.join(out, 'newdir', 'sub', 'b.txt'), 'utf8'), 'b\n');
  await ok('cp', 'cp-r:/tmp/hostfile.txt', path.join(out, 'back.txt'));
  assert.equal(readFileSync(path.join(out, 'back.txt'), 'utf8'), 'hello from host\n');
  await ok('cp', 'cp-r:/etc/hostname', path.join(out, 'hostname'));
  assert.match(readFileSync(path.join(out, 'hostname'), 'utf8'), /^[0-9a-f]{12}\n$/);

  const head = await api(b, 'HEAD', '/containers/cp-r/archive?path=%2Ftmp%2F');
  assert.equal(head.status, 200);
  const st = statHeader(head.headers);
  assert.equal(st.name, 'tmp');
  assert.equal(st.mode, 0x80000000 + 0x100000 + 0o777);
  const miss = await api(b, 'GET', '/containers/cp-r/archive?path=%2Fnonexistent');
  assert.equal(miss.status, 404);
  assert.equal(miss.json().message, 'Could not find the file /nonexistent in container cp-r');
  const r = await b.docker(['cp', path.join(work, 'hostfile.txt'), 'cp-r:/nonexistent-dir/sub/']);
  assert.notEqual(r.code, 0);
  await ok('rm', '-f', 'cp-r');
});

test('copy into and out of a stopped container, with -a keeping ownership', async () => {
  await ok('create', '--name', 'cp-s', 'busybox', 'cat', '/data/f.txt');
  writeFileSync(path.join(work, 'f.txt'), 'stopped copy\n');
  await ok('cp', path.join(work, 'f.txt'), 'cp-s:/f.txt');
  await ok('cp', '-a', path.join(work, 'f.txt'), 'cp-s:/etc/f-archive.txt');
  const out = path.join(work, 'out-s');
  mkdirSync(out);
  await ok('cp', 'cp-s:/f.txt', path.join(out, 'f.txt'));
  assert.equal(readFileSync(path.join(out, 'f.txt'), 'utf8'), 'stopped copy\n');
  const get = await api(b, 'GET', '/containers/cp-s/archive?path=%2Fetc%2Fpasswd');
  assert.equal(get.status, 200);
  assert.equal(get.headers['content-type'], 'application/x-tar');
  assert.equal(statHeader(get.headers).name, 'passwd');
  // Nothing stays mounted for a stopped container.
  const merged = (await ok('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', 'cp-s')).trim();
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${merged} `), 'rootfs unmounted after cp');
  await ok('rm', 'cp-s');
});

test('symlinks and .. cannot leave the container root', async () => {
  // Links inside the container that point at the host's sentinel directory, at / and far above.
  await ok('run', '-d', '--name', 'cp-x', 'busybox', 'sh', '-c',
    `ln -s ${sentinelDir} /evil && ln -s / /rootlink && ln -s ../../../../../../.. /up && ln -s ${sentinelDir}/${SENTINEL} /evilfile && mkdir /d && sleep 1000`);
  for (let i = 0; i < 50 && (await b.docker(['cp', 'cp-x:/d', path.join(work, 'probe')])).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));

  // Reading through them finds the container's paths (which do not exist), never the host file.
  for (const p of [`/evil/${SENTINEL}`, `/up${sentinelDir}/${SENTINEL}`, `/rootlink/../../..${sentinelDir}/${SENTINEL}`, `/../../..${sentinelDir}/${SENTINEL}`]) {
    const r = await api(b, 'GET', `/containers/cp-x/archive?path=${encodeURIComponent(p)}`);
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.body.slice(0, 200)}`);
  }
  // The link itself is archived as a link, not followed.
  const l = await api(b, 'HEAD', `/containers/cp-x/archive?path=%2Fevilfile`);
  assert.equal(l.status, 200);
  const st = statHeader(l.headers);
  assert.equal(st.mode & 0x8000000, 0x8000000, 'symlink bit');
  assert.equal(st.linkTarget, `${sentinelDir}/${SENTINEL}`); // inside the container's root

  // Writing through them lands inside the container.
  writeFileSync(path.join(work, SENTINEL), 'overwritten!\n');
  const before = readFileSync(path.join(sentinelDir, SENTINEL), 'utf8');
  for (const dest of ['/up/', '/rootlink/', `/up${sentinelDir}/`]) {
    await b.docker(['cp', path.join(work, SENTINEL), `cp-x:${dest}`]);
  }
  // A tar entry that climbs with .. and one written through a link entry.
  const tarFile = path.join(work, 'evil.tar');
  const { execFileSync } = await import('node:child_process');
  mkdirSync(path.join(work, 'tarsrc'), { recursive: true });
  writeFileSync(path.join(work, 'tarsrc', 'x'), 'x\n');
  execFileSync('tar', ['-C', path.join(work, 'tarsrc'), '--transform', `s|^x$|../../../../..${sentinelDir}/${SENTINEL}|`, '-cf', tarFile, 'x']);
  const put = await api(b, 'PUT', '/containers/cp-x/archive?path=%2Fd', { body: readFileSync(tarFile), headers: { 'Content-Type': 'application/x-tar' } });
  assert.ok(put.status === 200 || put.status === 404 || put.status === 400, put.body);
  assert.equal(readFileSync(path.join(sentinelDir, SENTINEL), 'utf8'), before, 'host sentinel untouched');
  assert.deepEqual(readdirSync(sentinelDir), [SENTINEL]);
  assert.ok(statSync(path.join(sentinelDir, SENTINEL)).isFile());
  // ... and the copies are in the container's own root.
  const merged = (await ok('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', 'cp-x')).trim();
  assert.ok(existsSync(path.join(merged, SENTINEL)), 'written at the container root');
  await ok('rm', '-f', 'cp-x');
});
