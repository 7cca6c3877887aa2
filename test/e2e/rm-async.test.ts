// `docker rm` answers once the container is gone from the API and deletes its files (read-write layer,
// init layer, container and state directories) afterwards (issue 17: Docker's rm takes 5 ms, berth's took
// 22 ms deleting files first). The deletion is marked in the state database with the row's removal, so a
// berthd killed before the files are gone deletes them at its next start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pendingRemovals as pendingRows, removalsSettled } from '../helpers/removals';
import { berthdForFile } from '../helpers/file';
import { startBerthd, type StartOptions } from '../helpers/berthd';
import { dockerCli, loadFixtures, show } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok } = dockerCli(() => b, { timeoutMs: 60000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a container that writes `n` files into its read-write layer; returns its id and its files. */
async function filled(run: (args: string[]) => Promise<string>, name: string, n: number): Promise<{ id: string; dirs: string[] }> {
  await run(['run', '--name', name, 'busybox', 'sh', '-c', `mkdir /d && cd /d && i=0; while [ $i -lt ${n} ]; do echo x > f$i; i=$((i+1)); done`]);
  const info = JSON.parse(await run(['inspect', name]))[0];
  const layer = path.dirname(info.GraphDriver.Data.UpperDir as string);
  assert.ok(existsSync(path.join(info.GraphDriver.Data.UpperDir, 'd', `f${n - 1}`)), 'the files are in the read-write layer');
  return { id: info.Id, dirs: [layer, `${layer}-init`, path.dirname(info.LogPath as string)] };
}

async function goneWithin(dirs: string[], ms: number): Promise<void> {
  for (let i = 0; i < ms / 50 && dirs.some((d) => existsSync(d)); i++) await sleep(50);
  for (const d of dirs) assert.equal(existsSync(d), false, `${d} is deleted`);
}

test('docker rm: the container is gone from the API when rm returns, and its files follow', async () => {
  const { id, dirs } = await filled((a) => ok(...a), 'r1', 3000);
  const rm = await b.docker(['rm', 'r1']);
  assert.equal(rm.code, 0, show(rm));
  assert.equal(rm.stdout.trim(), 'r1');
  const insp = await b.docker(['inspect', id]);
  assert.notEqual(insp.code, 0);
  assert.match(insp.stderr, /No such (container|object)/);
  assert.ok(!(await ok('ps', '-a', '--no-trunc', '-q')).includes(id), 'ps -a lists it no more');
  // Its name is free at once; its id and layer are never reused, so the files still going are nobody's.
  await ok('create', '--name', 'r1', 'busybox', 'true');
  await goneWithin(dirs, 20000);
  // The mark goes just after the files: waited for, as the files were.
  assert.deepEqual(await removalsSettled(b.dataRoot), [], 'no removal is left marked');
  // The destroy event was sent (the CLI's `docker run --rm` and compose wait for it).
  const ev = await ok('events', '--since', '0', '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', `container=${id}`, '--format', '{{.Action}}');
  assert.ok(ev.split('\n').includes('destroy'), `events of the container: ${ev}`);
  await ok('rm', 'r1');
});

test('docker rm -f of running containers and rm of many: all answered, nothing left behind', async () => {
  const ids = (await Promise.all(Array.from({ length: 6 }, (_, i) => ok('run', '-d', '--name', `m${i}`, 'busybox', 'sleep', '1000')))).map((s) => s.trim());
  const infos = JSON.parse(await ok('inspect', ...ids)) as Array<{ GraphDriver: { Data: { UpperDir: string } } }>;
  const dirs = infos.map((c) => path.dirname(c.GraphDriver.Data.UpperDir));
  const out = await ok('rm', '-f', ...ids.map((_, i) => `m${i}`));
  assert.deepEqual(out.trim().split('\n').sort(), ids.map((_, i) => `m${i}`).sort());
  assert.equal((await ok('ps', '-aq')).trim(), '');
  await goneWithin([...dirs, ...ids.map((id) => path.join(b.dataRoot, 'containers', id))], 20000);
  assert.deepEqual(await removalsSettled(b.dataRoot), []);
});

test('a berthd killed after rm answered, before the files were deleted, deletes them at its next start', async () => {
  const opts: StartOptions = { env: {} };
  const d = await startBerthd(opts);
  try {
    await loadFixtures(d, ['busybox']);
    const run = async (args: string[]) => {
      const r = await d.docker(args, { timeoutMs: 60000 });
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${show(r)}`);
      return r.stdout;
    };
    const { id, dirs } = await filled(run, 'c1', 200);
    await d.stop();
    opts.env = { BERTH_CRASH_AT: 'rm.before-files' };
    await d.restart();
    const rm = await d.docker(['rm', 'c1']);
    assert.equal(rm.code, 0, `rm answered before the crash: ${show(rm)}`);
    for (let i = 0; i < 200 && d.proc.signalCode === null && d.proc.exitCode === null; i++) await sleep(25);
    assert.equal(d.proc.signalCode, 'SIGKILL', 'berthd died at the crash point');
    assert.ok(readFileSync(path.join(d.root, 'berthd.log'), 'utf8').includes('crash point rm.before-files'));
    assert.deepEqual(pendingRows(d.dataRoot), [id], 'the removal is marked');
    assert.ok(dirs.every((x) => existsSync(x)), 'the files are still there');
    opts.env = {};
    await d.restart();
    assert.equal((await run(['ps', '-aq'])).trim(), '', 'the container stays removed');
    await goneWithin(dirs, 20000);
    assert.deepEqual(await removalsSettled(d.dataRoot), [], 'and its mark is gone');
    assert.ok(readFileSync(path.join(d.root, 'berthd.log'), 'utf8').includes('finishing the removal of a container'));
    // The name is free.
    await run(['create', '--name', 'c1', 'busybox', 'true']);
  } finally {
    await d.destroy();
  }
});
