// What outlives a berthd restart (kill -9 and SIGTERM): exec records (inspect of finished and running
// execs, the end of a detached exec that was running while berthd was down) and State.Health; and
// `docker rm` of a container waiting to restart is refused as Docker refuses it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { berthdForFile } from '../helpers/file';
import { api, waitFor, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });

const { ok } = dockerCli(() => b, { trim: true });


interface ExecInspect { ID: string; Running: boolean; ExitCode: number | null; Pid: number; ContainerID: string; ProcessConfig: { entrypoint: string; arguments: string[] } }

async function execDetached(container: string, cmd: string[]): Promise<string> {
  const c = await api(b, 'POST', `/containers/${container}/exec`, { body: { Cmd: cmd } });
  assert.equal(c.status, 201, c.body);
  const id = c.json<{ Id: string }>().Id;
  const s = await api(b, 'POST', `/exec/${id}/start`, { body: { Detach: true } });
  assert.equal(s.status, 200, s.body);
  return id;
}

async function execInspect(id: string): Promise<ExecInspect> {
  const r = await api(b, 'GET', `/exec/${id}/json`);
  assert.equal(r.status, 200, r.body);
  return r.json<ExecInspect>();
}

for (const how of ['kill -9', 'SIGTERM'] as const) {
  test(`exec inspect after a berthd restart (${how}): finished and running execs, and the end of one that ran on meanwhile`, async () => {
    const name = how === 'kill -9' ? 'ep-k' : 'ep-t';
    const cid = await ok('run', '-d', '--name', name, 'busybox', 'sleep', '1000');
    const done = await execDetached(name, ['sh', '-c', 'exit 3']);
    const d0 = await waitFor('the first exec to end', async () => {
      const i = await execInspect(done);
      return i.Running ? null : i;
    });
    assert.equal(d0.ExitCode, 3);
    assert.ok(d0.Pid > 0);
    // Runs past the restart and ends while berthd is (possibly) still down or just back.
    const running = await execDetached(name, ['sh', '-c', 'sleep 3; exit 7']);
    const r0 = await execInspect(running);
    assert.equal(r0.Running, true);
    assert.ok(r0.Pid > 0);
    // Created, never started.
    const created = (await api(b, 'POST', `/containers/${name}/exec`, { body: { Cmd: ['true'] } })).json<{ Id: string }>().Id;

    if (how === 'kill -9') await b.kill9();
    else await b.stop();
    await b.restart();

    const d1 = await execInspect(done);
    assert.deepEqual({ Running: d1.Running, ExitCode: d1.ExitCode, Pid: d1.Pid, ContainerID: d1.ContainerID }, { Running: false, ExitCode: 3, Pid: d0.Pid, ContainerID: cid });
    assert.deepEqual(d1.ProcessConfig.arguments, ['-c', 'exit 3']);
    const c1 = await execInspect(created);
    assert.deepEqual({ Running: c1.Running, ExitCode: c1.ExitCode }, { Running: false, ExitCode: null });

    const r1 = await execInspect(running);
    assert.equal(r1.Pid, r0.Pid);
    if (r1.Running) {
      assert.equal(r1.ExitCode, null);
      const ids = JSON.parse(await ok('inspect', '-f', '{{json .ExecIDs}}', name)) as string[] | null;
      assert.ok(ids?.includes(running), `ExecIDs ${JSON.stringify(ids)} lacks the running exec`);
    }
    // Its exit is picked up from what its supervisor left behind.
    const r2 = await waitFor('the running exec to end after the restart', async () => {
      const i = await execInspect(running);
      return i.Running ? null : i;
    }, 30000, 200);
    assert.equal(r2.ExitCode, 7);
    const ids = JSON.parse(await ok('inspect', '-f', '{{json .ExecIDs}}', name)) as string[] | null;
    assert.ok(!ids?.includes(running));

    // The container's removal takes its exec records along.
    await ok('rm', '-f', name);
    assert.equal((await api(b, 'GET', `/exec/${done}/json`)).status, 404);
  });
}

test('State.Health (status, failing streak, log) survives a berthd restart', async () => {
  await ok('run', '-d', '--name', 'hp-bad', '--health-cmd', 'echo probe-out; exit 1', '--health-interval', '1s', '--health-retries', '2', 'busybox', 'sleep', '1000');
  await ok('run', '-d', '--name', 'hp-good', '--health-cmd', 'true', '--health-interval', '1s', 'busybox', 'sleep', '1000');
  type H = { Status: string; FailingStreak: number; Log: Array<{ ExitCode: number; Output: string }> };
  const health = async (n: string) => JSON.parse(await ok('inspect', '-f', '{{json .State.Health}}', n)) as H;
  const bad0 = await waitFor('hp-bad to be unhealthy', async () => {
    const h = await health('hp-bad');
    return h.Status === 'unhealthy' ? h : null;
  }, 30000, 200);
  await waitFor('hp-good to be healthy', async () => (await health('hp-good')).Status === 'healthy', 30000, 200);

  await b.kill9();
  await b.restart();
  const bad1 = await health('hp-bad');
  assert.equal(bad1.Status, 'unhealthy', 'not reset to starting by the restart');
  assert.ok(bad1.FailingStreak >= bad0.FailingStreak, `streak ${bad1.FailingStreak} < ${bad0.FailingStreak}`);
  assert.ok(bad1.Log.length >= 2);
  assert.equal(bad1.Log[0].ExitCode, 1);
  assert.equal(bad1.Log[0].Output, 'probe-out\n');
  assert.equal((await health('hp-good')).Status, 'healthy');
  assert.match(await ok('ps', '--filter', 'name=hp-good', '--format', '{{.Status}}'), /\(healthy\)$/);
  // Probing goes on: the streak keeps growing.
  await waitFor('probing to go on after the restart', async () => (await health('hp-bad')).FailingStreak > bad1.FailingStreak, 30000, 200);

  // Also after SIGTERM, and for a stopped container (its last state stays in inspect).
  await ok('stop', '-t', '1', 'hp-good');
  await b.stop();
  await b.restart();
  assert.equal((await health('hp-good')).Status, 'healthy');
  await ok('rm', '-f', 'hp-bad', 'hp-good');
});

test('docker rm of a restarting container is refused with 409 (rm -f removes it)', async () => {
  const id = await ok('run', '-d', '--name', 'rr', '--restart', 'always', 'busybox', 'sh', '-c', 'exit 1');
  // The back-off doubles from 100 ms: after a few restarts the container spends seconds in "restarting".
  await waitFor('a long back-off', async () => Number(await ok('inspect', '-f', '{{.RestartCount}}', 'rr')) >= 5, 60000, 100);
  let refused = false;
  for (let i = 0; i < 10 && !refused; i++) {
    await waitFor('status restarting', async () => (await ok('inspect', '-f', '{{.State.Status}}', 'rr')) === 'restarting', 30000, 20);
    const r = await api(b, 'DELETE', '/containers/rr');
    if (r.status === 409 && r.json().message.includes('restarting')) {
      assert.equal(r.json().message, `You cannot remove a restarting container ${id}. Stop the container before attempting removal or force remove`);
      refused = true;
    } else {
      assert.equal(r.status, 409, `rm of a running/restarting container: ${r.status} ${r.body}`);
    }
  }
  assert.ok(refused, 'never caught the container while restarting');
  const cli = await b.docker(['rm', 'rr']);
  if ((await ok('inspect', '-f', '{{.State.Status}}', 'rr')) === 'restarting') {
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /You cannot remove a (restarting|running) container/);
  }
  // Still there, still restarting by its policy.
  assert.match(await ok('inspect', '-f', '{{.State.Status}}', 'rr'), /^(restarting|running|exited)$/);
  await ok('rm', '-f', 'rr');
  assert.equal((await b.docker(['inspect', 'rr'])).code, 1);
});
