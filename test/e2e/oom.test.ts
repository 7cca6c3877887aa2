// OOM kills as Docker reports them: a container whose process the kernel kills for going over its memory
// limit exits 137 with State.OOMKilled true and an `oom` event before its `die`; a container killed with
// SIGKILL by other means, or that ends on its own, is not OOM-killed. The shim reads the kernel's
// oom_kill counter of the container's memory cgroup (v1 memory.oom_control, v2 memory.events) before the
// start and at the exit, and reports the difference; berthd records it, also when the exit happened
// while it was down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { spawnDocker, waitFor, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok } = dockerCli(() => b);

// tail keeps the last lines of its input in memory, and /dev/zero has no newline: 100 MiB of anonymous
// memory charged to the container, over its 32 MiB limit (and over memory+swap, twice the limit).
const ALLOCATE = ['sh', '-c', 'head -c 100m /dev/zero | tail; echo survived'];

interface State { Status: string; ExitCode: number; OOMKilled: boolean }
const state = async (name: string): Promise<State> => JSON.parse(await ok('inspect', '--format', '{{json .State}}', name));

test('docker run -m 32m of a process that allocates 100 MiB: exit 137, OOMKilled, an oom event before die', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const events = spawnDocker(b, ['events', '--since', String(since), '--filter', 'type=container', '--filter', 'container=oom-a', '--format', '{{.Action}}']);
  try {
    const r = await b.docker(['run', '--name', 'oom-a', '-m', '32m', 'busybox', ...ALLOCATE], { timeoutMs: 60000 });
    // The shell's child was killed; the shell reports it as 128+9 and carries on.
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'survived');
    const s = await state('oom-a');
    assert.equal(s.OOMKilled, true, JSON.stringify(s));
    assert.equal(s.ExitCode, 0);

    // The kill of the container's own init: exit 137, as Docker shows it.
    const r2 = await b.docker(['run', '--name', 'oom-b', '-m', '32m', 'busybox', 'sh', '-c', 'exec tail /dev/zero'], { timeoutMs: 60000 });
    assert.equal(r2.code, 137, r2.stderr);
    const s2 = await state('oom-b');
    assert.equal(s2.OOMKilled, true);
    assert.equal(s2.ExitCode, 137);

    const actions = await waitFor('oom and die events of oom-a', () => {
      const lines = events.stdout().split('\n').filter(Boolean);
      return lines.includes('die') ? lines : undefined;
    });
    assert.ok(actions.includes('oom'), actions.join(','));
    assert.ok(actions.indexOf('oom') < actions.indexOf('die'), `oom before die: ${actions.join(',')}`);
  } finally {
    events.kill();
  }
});

/** A file of the container's memory cgroup (v1 or v2), or undefined when the kernel has no such file. */
function memoryFile(id: string, file: string): string | undefined {
  for (const dir of [path.join('/sys/fs/cgroup/memory', b.cgroupParent, id), path.join('/sys/fs/cgroup', b.cgroupParent, id)]) {
    if (existsSync(path.join(dir, file))) return readFileSync(path.join(dir, file), 'utf8').trim();
  }
  return undefined;
}

test('a container killed otherwise, or under its limit, is not OOM-killed', async () => {
  const id = (await ok('run', '-d', '--name', 'oom-c', '-m', '32m', 'busybox', 'sleep', '1000')).trim();
  // As Docker: -m alone allows as much swap again (so a host with swap OOM-kills at 64 MiB, not never).
  const memsw = memoryFile(id, 'memory.memsw.limit_in_bytes');
  const swap = memoryFile(id, 'memory.swap.max');
  assert.ok(memsw !== undefined || swap !== undefined, 'this host accounts swap (memsw or memory.swap.max)');
  if (memsw !== undefined) assert.equal(memsw, String(64 << 20));
  if (swap !== undefined) assert.equal(swap, String(32 << 20));
  await ok('kill', 'oom-c');
  const s = await waitFor('oom-c exited', async () => { const x = await state('oom-c'); return x.Status === 'exited' ? x : undefined; });
  assert.equal(s.ExitCode, 137);
  assert.equal(s.OOMKilled, false);

  // 8 MiB under a 32 MiB limit.
  assert.equal(await ok('run', '--name', 'oom-d', '-m', '32m', 'busybox', 'sh', '-c', 'head -c 8m /dev/zero | tail | wc -c').then((x) => x.trim()), '8388608');
  assert.equal((await state('oom-d')).OOMKilled, false);
});

test('an OOM kill while berthd is down is recorded from the exit file at its next start', async () => {
  await ok('run', '-d', '--name', 'oom-e', '-m', '32m', 'busybox', 'sh', '-c', 'sleep 2; exec tail /dev/zero');
  await b.stop();
  // The container is killed while no berthd listens; the shim writes exit.json.
  await new Promise((r) => setTimeout(r, 4000));
  await b.restart();
  const s = await waitFor('oom-e exited', async () => { const x = await state('oom-e'); return x.Status === 'exited' ? x : undefined; });
  assert.equal(s.ExitCode, 137);
  assert.equal(s.OOMKilled, true);
});
