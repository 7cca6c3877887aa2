// The windows a kill -9 of berthd can hit around a container's life, and what the next berthd makes of
// them: a start the shim made but berthd did not record is adopted as running; a shim that is alive but
// does not answer keeps its container, is reported in docker info and is reached once it answers; a
// container whose exit was recorded but whose root was not unmounted gets it unmounted at restore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { alive, dockerCli } from '../helpers/clients';
import type { StartOptions } from '../helpers/berthd';

const start: StartOptions = { env: {} };
const b = berthdForFile({ fixtures: ['busybox'], start });
const { ok, fails } = dockerCli(() => b);

/** Restarts berthd with BERTH_CRASH_AT set to `point` (or unset). */
async function restartWith(point: string): Promise<void> {
  start.env = point ? { BERTH_CRASH_AT: point } : {};
  await b.restart();
}

async function diedAtCrashPoint(): Promise<void> {
  for (let i = 0; i < 200 && b.proc.exitCode === null && b.proc.signalCode === null; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(b.proc.signalCode, 'SIGKILL', 'berthd killed itself at the crash point');
  const log = readFileSync(path.join(b.root, 'berthd.log'), 'utf8');
  assert.match(log, /crash point/);
}

function mountCount(p: string): number {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === p).length;
}

test('a start berthd died before recording is adopted: running, same pid, its network kept, and it stops and starts again', async () => {
  await b.stop();
  await restartWith('start.after-shim');
  await b.docker(['run', '-d', '--name', 'adopted', 'busybox', 'sleep', '1000']);
  await diedAtCrashPoint();
  await restartWith('');
  const [status, pidS] = (await ok('inspect', '--format', '{{.State.Status}} {{.State.Pid}}', 'adopted')).trim().split(' ');
  const pid = Number(pidS);
  assert.equal(status, 'running');
  assert.ok(pid > 0 && alive(pid), `pid ${pid} is the live container process`);
  assert.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0], 'sleep');
  // Its network survived the sweep: eth0 still has its address.
  const ip = (await ok('inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'adopted')).trim();
  assert.match(ip, /^10\.213\./);
  assert.match(await ok('exec', 'adopted', 'ip', '-4', 'addr', 'show', 'eth0'), new RegExp(ip.replace(/\./g, '\\.')));
  // A restart of berthd keeps it, with the same pid.
  await b.kill9();
  await restartWith('');
  assert.equal((await ok('inspect', '--format', '{{.State.Pid}}', 'adopted')).trim(), String(pid));
  await ok('stop', '-t', '1', 'adopted');
  assert.equal(alive(pid), false);
  await ok('start', 'adopted');
  assert.equal((await ok('inspect', '--format', '{{.State.Status}}', 'adopted')).trim(), 'running');
  await ok('rm', '-f', 'adopted');
});

test('a shim that is alive but does not answer keeps its container, is reported by docker info, and is reached once it answers', async () => {
  await ok('run', '-d', '--name', 'mute', 'busybox', 'sleep', '1000');
  const id = (await ok('inspect', '--format', '{{.Id}} {{.State.Pid}}', 'mute')).trim().split(' ');
  const pid = Number(id[1]);
  const sock = path.join(b.execRoot, 'containers', id[0], 'shim.sock');
  await b.kill9();
  // The shim keeps listening, but on a name berthd does not know: no connection can be made.
  renameSync(sock, `${sock}.hidden`);
  let hidden = true;
  try {
    await restartWith('');
    assert.equal((await ok('inspect', '--format', '{{.State.Status}} {{.State.Pid}}', 'mute')).trim(), `running ${pid}`);
    assert.equal(alive(pid), true, 'the container was not killed');
    const warnings = JSON.parse(await ok('info', '--format', '{{json .Warnings}}')) as string[];
    assert.ok(warnings.some((w) => /mute .*does not answer/.test(w)), warnings.join('\n'));
    await fails(/does not answer/, 'stop', 'mute');
    await fails(/does not answer/, 'rm', '-f', 'mute');
    assert.equal(alive(pid), true);
    renameSync(`${sock}.hidden`, sock);
    hidden = false;
    // Retried with a back-off of at most 5 s.
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      left = (JSON.parse(await ok('info', '--format', '{{json .Warnings}}')) as string[] | null ?? []).filter((w) => /does not answer/.test(w));
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(left, []);
    await ok('stop', '-t', '1', 'mute');
    assert.equal(alive(pid), false);
    await ok('rm', 'mute');
  } finally {
    if (hidden) renameSync(`${sock}.hidden`, sock);
  }
});

test('a container whose exit was recorded but whose root stayed mounted gets it unmounted at restore; the next start mounts one overlay', async () => {
  await ok('run', '-d', '--name', 'stale', 'busybox', 'sleep', '1000');
  await b.stop();
  await restartWith('exit.after-save');
  await b.docker(['stop', '-t', '0', 'stale']);
  await diedAtCrashPoint();
  await restartWith('');
  const layer = (await ok('inspect', '--format', '{{.GraphDriver.Data.MergedDir}}', 'stale')).trim();
  assert.equal((await ok('inspect', '--format', '{{.State.Status}}', 'stale')).trim(), 'exited');
  assert.ok(layer.startsWith(path.join(b.dataRoot, 'overlay2')) && layer.endsWith('/merged'), layer);
  assert.equal(mountCount(layer), 0, 'the stopped container has no root mounted');
  await ok('start', 'stale');
  assert.equal(mountCount(layer), 1, 'one overlay, not two stacked');
  await ok('rm', '-f', 'stale');
  assert.equal(mountCount(layer), 0);
});
