// Restart policies and berthd restarts against the fakes (test/fakes/): on-failure:N counting, always,
// an explicit stop or kill staying down, a stop during the back-off, and what a restarted berthd does
// with containers that were stopped, exited or ran on while it was down (live-restore on and off).
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { fakeEngine, type FakeEngine } from '../fakes/containers';

let e: FakeEngine;
beforeEach(() => {
  e = fakeEngine();
});
afterEach(async () => {
  await e.close();
});

async function create(name: string, cmd: string[], policy?: { Name: string; MaximumRetryCount?: number }): Promise<string> {
  const { Id } = await e.svc.create(name, { Image: 'busybox', Cmd: cmd, HostConfig: policy ? { RestartPolicy: policy } : {} });
  return Id;
}

const state = (id: string) => e.svc.lookup(id).rec.state;

/** Polls (bounded) until `ok` holds; fails with `what` after `ms`. */
async function until(ok: () => boolean, what: string, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

/** How many shims the container has had. */
const spawns = (id: string) => e.journal.filter((j) => j === `spawn ${id}`).length;

test('on-failure:2 restarts a failing container twice, then leaves it exited with RestartCount 2', async () => {
  const id = await create('of', ['exit', '3'], { Name: 'on-failure', MaximumRetryCount: 2 });
  await e.svc.start(id);
  await until(() => spawns(id) === 3 && state(id).status === 'exited', 'three runs, then exited');
  // The back-offs are 100 and 200 ms: a fourth run would come within 400 ms.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(spawns(id), 3);
  assert.equal(state(id).restartCount, 2);
  assert.equal(state(id).exitCode, 3);
  assert.equal(e.row('SELECT restart_count FROM container_state WHERE id = ?', id).restart_count, 2);
  assert.deepEqual(e.events.actions(id).filter((a) => a === 'start' || a === 'die'), ['start', 'die', 'start', 'die', 'start', 'die']);
});

test('on-failure does not restart a container that exits 0; no policy never restarts', async () => {
  const ok = await create('ok', ['true'], { Name: 'on-failure' });
  const none = await create('none', ['false']);
  await e.svc.start(ok);
  await e.svc.start(none);
  await until(() => state(ok).status === 'exited' && state(none).status === 'exited', 'both exited');
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(spawns(ok), 1);
  assert.equal(spawns(none), 1);
  assert.equal(state(none).exitCode, 1);
});

test('a user start after on-failure gave up counts the retries from zero again', async () => {
  const id = await create('again', ['exit', '1'], { Name: 'on-failure', MaximumRetryCount: 1 });
  await e.svc.start(id);
  await until(() => spawns(id) === 2 && state(id).status === 'exited', 'gave up after one retry');
  await e.svc.start(id);
  await until(() => spawns(id) === 4 && state(id).status === 'exited', 'one retry again');
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(spawns(id), 4);
});

test('always restarts after exit 0; an explicit stop, or kill with SIGKILL, keeps it down', async () => {
  const id = await create('al', ['exits-on-signal'], { Name: 'always' });
  await e.svc.start(id);
  e.rt.exit(id, 0);
  await until(() => spawns(id) === 2 && state(id).status === 'running', 'restarted after exit 0');
  assert.equal(state(id).restartCount, 1);
  await e.svc.stop(id, 1);
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(state(id).status, 'exited');
  assert.equal(spawns(id), 2);

  await e.svc.start(id);
  await e.svc.kill(id, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(state(id).status, 'exited');
  assert.equal(spawns(id), 3);
  assert.ok(e.svc.lookup(id).rec.manuallyStopped);
});

test('kill: with a StopSignal set, another signal is no stop (the policy restarts); without one, any signal is', async () => {
  const { Id: id } = await e.svc.create('usr', { Image: 'busybox', Cmd: ['exits-on-signal'], StopSignal: 'SIGTERM', HostConfig: { RestartPolicy: { Name: 'always' } } });
  await e.svc.start(id);
  await e.svc.kill(id, 'SIGUSR2');
  await until(() => spawns(id) === 2 && state(id).status === 'running', 'restarted');
  const plain = await create('plain', ['exits-on-signal'], { Name: 'always' });
  await e.svc.start(plain);
  await e.svc.kill(plain, 'SIGUSR2');
  await until(() => state(plain).status === 'exited', 'exited');
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(spawns(plain), 1);
  assert.equal(state(plain).exitCode, 128 + 12);
});

test('docker stop during the back-off cancels the restart; rm of a restarting container needs force', async () => {
  const id = await create('bo', ['exit', '1'], { Name: 'always' });
  await e.svc.start(id);
  await until(() => state(id).status === 'restarting', 'restarting');
  const err = await e.svc.remove(id).then(() => undefined, (x) => x);
  assert.equal(err?.status, 409);
  assert.match(err.message, /^You cannot remove a restarting container/);
  await e.svc.stop(id);
  assert.equal(state(id).status, 'exited');
  const n = spawns(id);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(spawns(id), n, 'no restart after the stop');
  assert.equal(e.events.actions(id).at(-1), 'stop');
});

test('after a berthd restart: always comes back even when stopped by hand, unless-stopped only when it was not', async () => {
  const always = await create('aa', ['exits-on-signal'], { Name: 'always' });
  const unlessStopped = await create('uu', ['exits-on-signal'], { Name: 'unless-stopped' });
  const unlessCrashed = await create('uc', ['sleep', '1000'], { Name: 'unless-stopped' });
  const never = await create('nn', ['exits-on-signal']);
  for (const id of [always, unlessStopped, unlessCrashed, never]) await e.svc.start(id);
  await e.svc.stop(always, 1);
  await e.svc.stop(unlessStopped, 1);
  await e.svc.stop(never, 1);
  // This one exits while berthd is down, after the old berthd detached: the new one learns it from the
  // exit file and its policy applies.
  await e.svc.detachAll();
  e.rt.exit(unlessCrashed, 2);
  await e.restart();
  await until(() => e.svc.lookup(always).rec.state.status === 'running', 'always started by the new berthd');
  await until(() => e.svc.lookup(unlessCrashed).rec.state.status === 'running', 'unless-stopped (crashed) started again');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(e.svc.lookup(unlessStopped).rec.state.status, 'exited');
  assert.equal(e.svc.lookup(never).rec.state.status, 'exited');
});

test('after a berthd restart with live-restore: a running container is adopted, not restarted', async () => {
  const id = await create('live', ['sleep', '1000'], { Name: 'always' });
  await e.svc.start(id);
  const pid = state(id).pid;
  const svc = await e.restart();
  assert.equal(svc.lookup(id).rec.state.status, 'running');
  assert.equal(svc.lookup(id).rec.state.pid, pid);
  assert.equal(spawns(id), 1);
  // Wired to the adopted shim: its exit is seen, and the policy restarts it.
  e.rt.exit(id, 0);
  await until(() => spawns(id) === 2 && svc.lookup(id).rec.state.status === 'running', 'restarted after the exit');
});

test('after a berthd restart with live-restore off: a running container is killed, then its policy starts it', async () => {
  const keep = await create('kk', ['sleep', '1000'], { Name: 'always' });
  const drop = await create('dd', ['sleep', '1000']);
  await e.svc.start(keep);
  await e.svc.start(drop);
  const svc = await e.restart({ liveRestore: false });
  assert.deepEqual(e.rt.proc(drop).signals, [9]);
  assert.equal(svc.lookup(drop).rec.state.status, 'exited');
  assert.equal(svc.lookup(drop).rec.state.exitCode, 137);
  await until(() => spawns(keep) === 2 && svc.lookup(keep).rec.state.status === 'running', 'always: started again');
});

test('a shim that is alive but does not answer keeps its container running, is reported, and blocks rm', async () => {
  const id = await create('mute', ['sleep', '1000']);
  await e.svc.start(id);
  await e.svc.detachAll();
  e.rt.proc(id).unresponsive = true;
  const svc = await e.restart();
  assert.equal(svc.lookup(id).rec.state.status, 'running');
  assert.equal(svc.warnings().length, 1);
  assert.match(svc.warnings()[0], /does not answer; the container is kept running/);
  const err = await svc.remove(id, { force: true }).then(() => undefined, (x) => x);
  assert.equal(err?.status, 409);
  assert.ok(e.rt.proc(id).alive);
  // It answers again: the retry re-attaches and the warning goes.
  e.rt.proc(id).unresponsive = false;
  await until(() => svc.warnings().length === 0, 're-attached', 3000);
  await svc.remove(id, { force: true });
});
