// The container state machine against the fakes (test/fakes/): what start, stop, kill, pause, rm, rename
// and wait answer in each state, with Docker's status codes and words, and that a refused request
// changes nothing. The runtime, networks and volumes are in memory; the store is real SQLite.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BerthError } from '../../daemon/errors/errors';
import { pauseContainer, unpauseContainer } from '../../daemon/containers/pause';
import { fakeEngine, type FakeEngine } from '../fakes/containers';

let e: FakeEngine;
beforeEach(() => {
  e = fakeEngine();
});
afterEach(async () => {
  await e.close();
});

/** Resolves with the BerthError `p` rejects with (fails when it resolves or throws something else). */
async function refusal(p: Promise<unknown>): Promise<BerthError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof BerthError, `a BerthError, not ${String(err)}`);
    return err;
  }
  assert.fail('the request was not refused');
}

async function run(name: string, cmd: string[] = ['sleep', '1000'], extra: Record<string, unknown> = {}): Promise<string> {
  const { Id } = await e.svc.create(name, { Image: 'busybox', Cmd: cmd, ...extra });
  await e.svc.start(Id);
  return Id;
}

const status = (id: string) => e.svc.lookup(id).rec.state.status;

/** Until the container's exit has been handled (the fake delivers it on a later turn). */
async function exited(id: string): Promise<void> {
  const live = e.svc.lookup(id);
  await e.svc.waitExit(live, 5000);
  await live.settling;
}

test('start of a running container is 304 and starts nothing; start of a created one runs it', async () => {
  const { Id } = await e.svc.create('web', { Image: 'busybox', Cmd: ['sleep', '1000'] });
  assert.equal(status(Id), 'created');
  await e.svc.start(Id);
  assert.equal(status(Id), 'running');
  const spawns = e.journal.filter((j) => j === `spawn ${Id}`).length;
  const err = await refusal(e.svc.start('web'));
  assert.equal(err.status, 304);
  assert.equal(e.journal.filter((j) => j === `spawn ${Id}`).length, spawns, 'no second shim');
  assert.deepEqual(e.events.actions(Id), ['create', 'start']);
});

test('stop of a stopped or never started container is 304; stop of a running one ends it with its stop signal', async () => {
  const { Id: created } = await e.svc.create('c0', { Image: 'busybox', Cmd: ['sleep', '1000'] });
  assert.equal((await refusal(e.svc.stop(created))).status, 304);
  const id = await run('st', ['exits-on-signal'], { StopSignal: 'SIGUSR1' });
  await e.svc.stop(id, 10);
  assert.equal(status(id), 'exited');
  assert.deepEqual(e.rt.proc(id).signals, [10], 'SIGUSR1, the container\'s stop signal');
  assert.equal(e.svc.lookup(id).rec.state.exitCode, 128 + 10);
  assert.equal((await refusal(e.svc.stop(id))).status, 304);
  assert.deepEqual(e.events.actions(id), ['create', 'start', 'kill', 'die', 'stop']);
});

test('stop of a container whose pid 1 has no handler for SIGTERM kills it after the timeout', async () => {
  const id = await run('ignores-term', ['sleep', '1000']);
  const t0 = Date.now();
  await e.svc.stop(id, 0.2);
  assert.ok(Date.now() - t0 >= 190, 'waited the timeout');
  assert.deepEqual(e.rt.proc(id).signals, [15, 9]);
  assert.equal(e.svc.lookup(id).rec.state.exitCode, 137);
});

test('kill of a stopped container is 409 in Docker\'s words', async () => {
  const { Id } = await e.svc.create('k0', { Image: 'busybox', Cmd: ['sleep', '1'] });
  const err = await refusal(e.svc.kill('k0'));
  assert.equal(err.status, 409);
  assert.equal(err.message, `Cannot kill container: k0: Container ${Id} is not running`);
});

test('rm of a running container is 409 without force and leaves it running; rm -f removes it', async () => {
  const id = await run('busy');
  const err = await refusal(e.svc.remove(id));
  assert.equal(err.status, 409);
  assert.equal(err.message, `You cannot remove a running container ${id}. Stop the container before attempting removal or force remove`);
  assert.equal(status(id), 'running');
  assert.ok(e.rt.proc(id).alive);
  await e.svc.remove(id, { force: true });
  assert.equal((await refusal(Promise.resolve().then(() => e.svc.lookup(id)))).status, 404);
  assert.equal(e.rt.proc(id).alive, false);
});

test('rm -f of a running container: killed, cgroup, network and rootfs released, then the row, then the files', async () => {
  const id = await run('order');
  const live = e.svc.lookup(id);
  const dir = path.join(e.config.dataRoot, 'containers', id);
  const layer = path.join(e.config.dataRoot, 'overlay2', live.rec.layerId);
  assert.ok(existsSync(dir) && existsSync(layer));
  const from = e.journal.length;
  await e.svc.remove(id, { force: true });
  const steps = e.journal.slice(from);
  const at = (s: string) => {
    const i = steps.findIndex((x) => x.startsWith(s));
    assert.ok(i >= 0, `${s} in ${steps.join(', ')}`);
    return i;
  };
  assert.ok(at(`exit ${id} 137`) < at(`removeCgroup berth/${id}`), 'the cgroup goes once the process is dead');
  assert.ok(at(`exit ${id}`) < at(`net-teardown ${id}`));
  assert.ok(at(`unmount ${path.join(layer, 'merged')}`) < at(`net-forget ${id}`), 'unmounted while the row still names the container');
  assert.ok(at(`net-forget ${id}`) < at('event container destroy'));
  assert.deepEqual(e.events.actions(id).slice(-3), ['kill', 'die', 'destroy']);
  assert.equal(e.row('SELECT COUNT(*) AS n FROM containers WHERE id = ?', id).n, 0);
  // The files go after the row (at once, or after rm has answered): never before it, and not for long after.
  const filesLeft = () => existsSync(dir) || existsSync(layer) || existsSync(`${layer}-init`);
  for (let i = 0; i < 100 && filesLeft(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(filesLeft(), false, 'files removed');
  assert.equal(e.rt.mounts.size, 0);
  assert.equal(e.rt.cgroupMap.size, 0);
  assert.deepEqual(e.images.released, [live.rec.imageId]);
});

test('rm -v removes the container\'s anonymous volumes and keeps named ones', async () => {
  const { Id } = await e.svc.create('vols', {
    Image: 'busybox', Cmd: ['true'],
    HostConfig: { Mounts: [{ Type: 'volume', Target: '/anon' }, { Type: 'volume', Source: 'named', Target: '/named' }] },
  });
  const anon = e.svc.lookup(Id).rec.mounts!.find((m) => m.Destination === '/anon')!.Name!;
  assert.ok(e.volumes.has(anon) && e.volumes.has('named'));
  await e.svc.remove(Id, { volumes: true });
  assert.equal(e.volumes.has(anon), false);
  assert.ok(e.volumes.has('named'));
});

test('pause and unpause follow Docker\'s rules', async () => {
  const { Id: created } = await e.svc.create('p0', { Image: 'busybox', Cmd: ['sleep', '1'] });
  let err = await refusal(pauseContainer(e.svc, created));
  assert.equal(err.status, 409);
  assert.equal(err.message, `Container ${created} is not running`);

  const id = await run('p1');
  err = await refusal(unpauseContainer(e.svc, id));
  assert.equal(err.status, 500);
  assert.equal(err.message, `Container ${id} is not paused`);
  await pauseContainer(e.svc, id);
  assert.equal(status(id), 'paused');
  assert.ok(e.rt.cgroupMap.get(`berth/${id}`)!.frozen);
  err = await refusal(pauseContainer(e.svc, id));
  assert.equal(err.status, 409);
  assert.equal(err.message, `Container ${id} is already paused`);
  err = await refusal(e.svc.start(id));
  assert.equal(err.status, 409);
  assert.equal(err.message, 'cannot start a paused container, try unpause instead');
  await unpauseContainer(e.svc, id);
  assert.equal(status(id), 'running');
  assert.equal(e.rt.cgroupMap.get(`berth/${id}`)!.frozen, false);
  assert.deepEqual(e.events.actions(id), ['create', 'start', 'pause', 'unpause']);
  // The database says what memory says.
  assert.equal(e.row('SELECT status FROM container_state WHERE id = ?', id).status, 'running');
});

test('stop and rm -f of a paused container thaw it so that the signal is acted on', async () => {
  const a = await run('pa', ['exits-on-signal']);
  await pauseContainer(e.svc, a);
  await e.svc.stop(a, 5);
  assert.equal(status(a), 'exited');
  assert.deepEqual(e.rt.proc(a).signals, [15]);
  const b = await run('pb');
  await pauseContainer(e.svc, b);
  await e.svc.remove(b, { force: true });
  assert.deepEqual(e.rt.proc(b).signals, [9]);
  assert.equal(e.rt.proc(b).alive, false);
});

test('a name in use is 409 at create and at rename; the loser of two concurrent creates leaves nothing', async () => {
  const { Id } = await e.svc.create('taken', { Image: 'busybox', Cmd: ['true'] });
  let err = await refusal(e.svc.create('taken', { Image: 'busybox', Cmd: ['true'] }));
  assert.equal(err.status, 409);
  assert.equal(err.message, `Conflict. The container name "/taken" is already in use by container "${Id}". You have to remove (or rename) that container to be able to reuse that name.`);

  const both = await Promise.allSettled([
    e.svc.create('race', { Image: 'busybox', Cmd: ['true'] }),
    e.svc.create('race', { Image: 'busybox', Cmd: ['true'] }),
  ]);
  assert.equal(both.filter((r) => r.status === 'fulfilled').length, 1);
  assert.equal((both.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.status, 409);
  assert.equal(e.svc.all().length, 2);
  assert.equal(e.row('SELECT COUNT(*) AS n FROM containers').n, 2);

  const { Id: other } = await e.svc.create('other', { Image: 'busybox', Cmd: ['true'] });
  err = await refusal(e.svc.rename(other, 'taken'));
  assert.equal(err.status, 409);
  assert.match(err.message, /^Error when allocating new name: Conflict. The container name "\/taken" is already in use/);
  assert.equal(e.svc.lookup(other).rec.name, '/other');
});

test('rename: bad and unchanged names are 400; a rename frees the old name and is stored', async () => {
  const { Id } = await e.svc.create('before', { Image: 'busybox', Cmd: ['true'] });
  assert.equal((await refusal(e.svc.rename(Id, 'no/slash'))).status, 400);
  assert.equal((await refusal(e.svc.rename(Id, ''))).status, 400);
  const same = await refusal(e.svc.rename(Id, 'before'));
  assert.equal(same.status, 400);
  assert.equal(same.message, 'Renaming a container with the same name as its current name');
  await e.svc.rename('before', 'after');
  assert.equal(e.svc.lookup('after').rec.id, Id);
  assert.equal((await refusal(Promise.resolve().then(() => e.svc.lookup('before')))).status, 404);
  assert.equal(e.row('SELECT name FROM containers WHERE id = ?', Id).name, '/after');
  const ev = e.events.events.find((x) => x.action === 'rename')!;
  assert.equal(ev.attributes.oldName, '/before');
  assert.equal(ev.attributes.name, 'after');
  // The old name can be taken again at once.
  await e.svc.create('before', { Image: 'busybox', Cmd: ['true'] });
});

test('wait: not-running answers at once for a stopped container, next-exit and removed wait for their event', async () => {
  const { Id } = await e.svc.create('w1', { Image: 'busybox', Cmd: ['exit', '3'] });
  assert.equal(await e.svc.wait(Id, 'not-running', () => false), 0, 'created: not running, exit code 0');
  assert.equal((await refusal(e.svc.wait(Id, 'sometime', () => false))).status, 400);

  await e.svc.start(Id);
  assert.equal(await e.svc.wait(Id, undefined, () => false), 3);

  const id = await run('w2');
  let woke = false;
  const next = e.svc.wait(id, 'next-exit', () => false).then((c) => { woke = true; return c; });
  const removed = e.svc.wait(id, 'removed', () => false);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(woke, false);
  e.rt.exit(id, 5);
  assert.equal(await next, 5);
  let gone = false;
  void removed.then(() => (gone = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(gone, false, 'removed waits for the removal, not the exit');
  await e.svc.remove(id);
  assert.equal(await removed, 5);
});

test('a start the runtime refuses is 400, records 127, and leaves no cgroup, mount or network behind', async () => {
  const { Id } = await e.svc.create('bad', { Image: 'busybox', Cmd: ['/missing/cmd'] });
  const err = await refusal(e.svc.start(Id));
  assert.equal(err.status, 400);
  assert.match(err.message, /^failed to create task for container: exec: "\/missing\/cmd"/);
  const st = e.svc.lookup(Id).rec.state;
  assert.equal(st.status, 'created');
  assert.equal(st.exitCode, 127);
  assert.equal(e.rt.cgroupMap.size, 0);
  assert.equal(e.rt.mounts.size, 0);
  assert.equal(e.net.up.size, 0);
  assert.equal(e.row('SELECT exit_code FROM container_state WHERE id = ?', Id).exit_code, 127);
});

test('a start that fails half-way (no cgroup) undoes what it made: network, volumes, root mount', async () => {
  const { Id } = await e.svc.create('half', {
    Image: 'busybox', Cmd: ['sleep', '1'], HostConfig: { Mounts: [{ Type: 'volume', Source: 'data', Target: '/data' }] },
  });
  e.rt.failNextCgroup = new Error('mkdir /sys/fs/cgroup/pids/berth: no space left on device');
  await assert.rejects(e.svc.start(Id), /no space left on device/);
  assert.equal(status(Id), 'created');
  assert.equal(e.rt.mounts.size, 0);
  assert.equal(e.net.up.size, 0);
  assert.equal(e.volumes.volumes.get('data')!.held, 0);
  assert.ok(!e.journal.includes(`spawn ${Id}`));
  // Nothing of the failed start stands in the way of the next one.
  await e.svc.start(Id);
  assert.equal(status(Id), 'running');
  assert.equal(e.volumes.volumes.get('data')!.held, 1);
});

test('--rm: a container that exits is removed, and so is one whose start failed', async () => {
  const { Id: a } = await e.svc.create('rm1', { Image: 'busybox', Cmd: ['true'], HostConfig: { AutoRemove: true } });
  const gone = e.svc.wait(a, 'removed', () => false);
  await e.svc.start(a);
  await gone;
  assert.deepEqual(e.events.actions(a).slice(-2), ['die', 'destroy']);
  const { Id: b } = await e.svc.create('rm2', { Image: 'busybox', Cmd: ['/missing'], HostConfig: { AutoRemove: true } });
  await refusal(e.svc.start(b));
  assert.equal(e.svc.all().length, 0);
});

test('a container exits by itself: exited with its code, resources released, die event', async () => {
  const id = await run('self', ['sleep', '1']);
  e.rt.exit(id, 42);
  await exited(id);
  const st = e.svc.lookup(id).rec.state;
  assert.equal(st.status, 'exited');
  assert.equal(st.exitCode, 42);
  assert.equal(st.pid, 0);
  assert.equal(e.rt.cgroupMap.size, 0);
  assert.equal(e.rt.mounts.size, 0);
  assert.equal(e.net.up.size, 0);
  assert.equal(e.events.events.find((x) => x.action === 'die')!.attributes.exitCode, '42');
  // Started again: a new process, the same container.
  await e.svc.start(id);
  assert.equal(status(id), 'running');
  assert.ok(e.rt.proc(id).alive);
  assert.equal(e.svc.lookup(id).rec.state.restartCount, 0, 'a start by the user is no restart');
});
