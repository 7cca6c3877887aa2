// The healthcheck state machine against the fakes (test/fakes/): starting → healthy on a success,
// unhealthy after `retries` failures in a row, failures inside the start period not counted, a probe that
// outlives its timeout counted as a failure, five results kept, the status saved with the container and
// probing stopped when it exits. Intervals are milliseconds here so that the rules run in well under a
// second each.
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

const MS = 1e6; // Healthcheck durations are nanoseconds

async function run(name: string, hc: Record<string, unknown>): Promise<string> {
  const { Id } = await e.svc.create(name, { Image: 'busybox', Cmd: ['sleep', '1000'], Healthcheck: { Test: ['CMD', 'check'], ...hc } });
  await e.svc.start(Id);
  return Id;
}

const health = (id: string) => e.svc.health.view(e.svc.lookup(id))!;

async function until(ok: () => boolean, what: string, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

/** The container's health before each probe run (so after the runs before it). */
function recordHealth(): Array<{ Status: string; FailingStreak: number }> {
  const seen: Array<{ Status: string; FailingStreak: number }> = [];
  e.probe.observe = (live) => {
    const v = e.svc.health.view(live)!;
    seen.push({ Status: v.Status, FailingStreak: v.FailingStreak });
  };
  return seen;
}

test('starting, then healthy after a success; a failure streak of `retries` makes it unhealthy, a success heals it', async () => {
  e.probe.set([0, 1, 1, 0]);
  const seen = recordHealth();
  const id = await run('hc', { Interval: 20 * MS, Retries: 2 });
  assert.equal(health(id).Status, 'starting');
  await until(() => seen.length >= 5, 'five probes');
  assert.deepEqual(seen.slice(0, 5), [
    { Status: 'starting', FailingStreak: 0 },
    { Status: 'healthy', FailingStreak: 0 },
    { Status: 'healthy', FailingStreak: 1 }, // one failure of two allowed
    { Status: 'unhealthy', FailingStreak: 2 },
    { Status: 'healthy', FailingStreak: 0 },
  ]);
  assert.deepEqual(health(id).Log.slice(0, 4).map((l) => l.ExitCode), [0, 1, 1, 0]);
  assert.deepEqual(e.events.actions(id).filter((a) => a.startsWith('health_status')).slice(0, 3),
    ['health_status: healthy', 'health_status: unhealthy', 'health_status: healthy']);
});

test('failures within the start period do not count while starting', async () => {
  e.probe.set([1, 1, 1, 1, 1, 0]);
  const seen = recordHealth();
  await run('sp', { Interval: 10 * MS, StartInterval: 10 * MS, StartPeriod: 10_000 * MS, Retries: 1 });
  await until(() => seen.length >= 7, 'seven probes');
  assert.deepEqual(seen.slice(0, 6).map((v) => `${v.Status}/${v.FailingStreak}`), Array(6).fill('starting/0'));
  assert.equal(seen[6].Status, 'healthy');
});

test('a probe that outlives its timeout is a failure with Docker\'s message', async () => {
  e.probe.set(['hang']);
  const id = await run('slow', { Interval: 10 * MS, Timeout: 30 * MS, Retries: 1 });
  await until(() => health(id).Status === 'unhealthy', 'unhealthy');
  const last = health(id).Log.at(-1)!;
  assert.equal(last.ExitCode, -1);
  assert.equal(last.Output, 'Health check exceeded timeout (0.03s)');
});

test('the log keeps the last five results; the status is saved with the container', async () => {
  e.probe.set([0]);
  const id = await run('log', { Interval: 5 * MS });
  await until(() => e.probe.runs >= 7, 'seven probes');
  const v = health(id);
  assert.equal(v.Log.length, 5);
  assert.match(v.Log.at(-1)!.Output, /^probe \d+: exit 0/);
  const saved = JSON.parse(String(e.row('SELECT health FROM container_state WHERE id = ?', id).health));
  assert.equal(saved.view.Status, 'healthy');
});

test('probing stops when the container exits; the last status stays for inspect; a new start begins at starting', async () => {
  e.probe.set([0]);
  const id = await run('stop', { Interval: 10 * MS });
  await until(() => health(id).Status === 'healthy', 'healthy');
  await e.svc.stop(id, 0.05);
  const runs = e.probe.runs;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(e.probe.runs, runs, 'no probe of a stopped container');
  assert.equal(health(id).Status, 'healthy');
  e.probe.set([1]);
  await e.svc.start(id);
  assert.equal(health(id).Status, 'starting');
});

test('a container without a healthcheck, or with NONE, has no health', async () => {
  const { Id } = await e.svc.create('none', { Image: 'busybox', Cmd: ['sleep', '1'], Healthcheck: { Test: ['NONE'] } });
  await e.svc.start(Id);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(e.svc.health.view(e.svc.lookup(Id)), undefined);
  assert.equal(e.probe.runs, 0);
});
