// docker exec's rules against the fakes (test/fakes/): which container states refuse an exec (Docker's
// 409s and words), a bad body, an exec started twice, a command that does not exist, exit codes and
// events, and the exec going with its container. The exec's process runs in the fake runtime.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { BerthError } from '../../daemon/errors/errors';
import { execService, type ExecService } from '../../daemon/exec/service';
import { pauseContainer } from '../../daemon/containers/pause';
import { fakeEngine, type FakeEngine } from '../fakes/containers';

let e: FakeEngine;
let ex: ExecService;
beforeEach(() => {
  e = fakeEngine();
  ex = execService({
    config: e.config, db: e.db, log: pino({ level: 'silent' }), events: e.events, containers: e.svc, networks: e.net, hostTools: e.rt.host,
  });
});
afterEach(async () => {
  await e.close();
});

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<BerthError> {
  try {
    await (typeof p === 'function' ? Promise.resolve().then(p) : p);
  } catch (err) {
    assert.ok(err instanceof BerthError, `a BerthError, not ${String(err)}`);
    return err;
  }
  assert.fail('the request was not refused');
}

async function running(name: string): Promise<string> {
  const { Id } = await e.svc.create(name, { Image: 'busybox', Cmd: ['sleep', '1000'] });
  await e.svc.start(Id);
  return Id;
}

/** Starts an exec detached and resolves with its exit code once it has ended. */
async function execToEnd(id: string, cmd: string[]): Promise<{ Id: string; code: number | null }> {
  const { Id } = ex.create(id, { Cmd: cmd });
  let ended!: () => void;
  const done = new Promise<void>((r) => (ended = r));
  await ex.start(Id, { write() {}, end: () => ended() });
  await done;
  return { Id, code: ex.get(Id).exitCode };
}

test('exec in a container that is not running, is paused or does not exist is refused in Docker\'s words', async () => {
  const { Id: created } = await e.svc.create('made', { Image: 'busybox', Cmd: ['sleep', '1'] });
  let err = await refusal(() => ex.create(created, { Cmd: ['true'] }));
  assert.equal(err.status, 409);
  assert.equal(err.message, `Container ${created} is not running`);

  const id = await running('paused');
  await pauseContainer(e.svc, id);
  err = await refusal(() => ex.create(id, { Cmd: ['true'] }));
  assert.equal(err.status, 409);
  assert.equal(err.message, `Container ${id} is paused, unpause the container before exec`);

  err = await refusal(() => ex.create('nosuch', { Cmd: ['true'] }));
  assert.equal(err.status, 404);
  assert.equal(err.message, 'No such container: nosuch');
  assert.equal(e.rt.execs.size, 0, 'no process was started');
});

test('an exec without a command is 400', async () => {
  const id = await running('nocmd');
  const err = await refusal(() => ex.create(id, { Cmd: [] }));
  assert.equal(err.status, 400);
  assert.equal(err.message, 'No exec command specified');
});

test('an exec runs in the container: its exit code, events and inspect', async () => {
  const id = await running('ok');
  const { Id, code } = await execToEnd(id, ['exit', '7']);
  assert.equal(code, 7);
  const v = ex.inspect(Id) as { Running: boolean; ExitCode: number; ContainerID: string };
  assert.equal(v.Running, false);
  assert.equal(v.ExitCode, 7);
  assert.equal(v.ContainerID, id);
  const execProc = e.rt.execs.get(Id)!;
  assert.deepEqual(e.rt.cgroupDirsOf(e.rt.proc(id).pid), execProc.cgroupDirs, 'in the container\'s cgroup');
  assert.deepEqual(e.events.actions(id).filter((a) => a.startsWith('exec_')), ['exec_create: exit 7', 'exec_start: exit 7', 'exec_die']);
});

test('an exec is started once: a second start is 409', async () => {
  const id = await running('twice');
  const { Id } = await execToEnd(id, ['true']);
  const err = await refusal(ex.start(Id, null));
  assert.equal(err.status, 409);
  assert.equal(err.message, `Error: Exec command ${Id} has already run`);
  const { Id: long } = ex.create(id, { Cmd: ['sleep', '100'] });
  await ex.start(long, null);
  const again = await refusal(ex.start(long, null));
  assert.equal(again.message, `Error: Exec command ${long} is already running`);
});

test('a command that does not exist: detached, 400 with runc\'s words; attached, the message on the stream; exit code 127', async () => {
  const id = await running('missing');
  const { Id } = ex.create(id, { Cmd: ['/missing/tool'] });
  const err = await refusal(ex.start(Id, null));
  assert.equal(err.status, 400);
  assert.match(err.message, /^OCI runtime exec failed: exec failed: unable to start container process: .*\/missing\/tool.*no such file or directory/);
  assert.equal(ex.get(Id).exitCode, 127);

  const { Id: attached } = ex.create(id, { Cmd: ['/missing/tool'], AttachStdout: true });
  const out: Buffer[] = [];
  let ended = false;
  await ex.start(attached, { write: (_s, b) => out.push(b), end: () => (ended = true) });
  assert.ok(ended);
  assert.match(Buffer.concat(out).toString(), /^OCI runtime exec failed/);
});

test('the container\'s removal takes its execs along', async () => {
  const id = await running('gone');
  const { Id } = ex.create(id, { Cmd: ['sleep', '100'] });
  await ex.start(Id, null);
  await e.svc.remove(id, { force: true });
  const err = await refusal(() => ex.get(Id));
  assert.equal(err.status, 404);
  assert.equal(err.message, `No such exec instance: ${Id}`);
});
