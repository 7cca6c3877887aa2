// The runtime seam's contract: what the container rules rely on the runtime for, checked the same way
// against the fake (test/unit/runtime-contract.test.ts, in memory) and against the real runtime with the
// real berth-shim, overlay mounts and cgroups (test/e2e/runtime-contract.test.ts). The unit tests of the
// container rules are only as good as the fake; this is what keeps the fake honest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BerthError } from '../../daemon/errors/errors';
import { pauseContainer } from '../../daemon/containers/pause';
import type { ContainerService } from '../../daemon/containers/service';

/** Programs a container can run, named by behaviour; each engine says which command line does that. */
export type Program =
  | { kind: 'sleeper' }                    // runs until SIGKILL (pid 1 without signal handlers)
  | { kind: 'handlesTerm' }                // exits 143 on SIGTERM
  | { kind: 'exit'; code: number }         // exits at once
  | { kind: 'exitAfter'; ms: number; code: number }
  | { kind: 'missing' };                   // a command that does not exist

export interface ContractEngine {
  readonly svc: ContainerService;
  program(p: Program): string[];
  /** Whether something is mounted at `p` (the mount table). */
  mounted(p: string): boolean;
  /** Whether the container's cgroup exists. */
  cgroupExists(id: string): boolean;
  /** berthd goes away (live-restore): the shims and their containers stay. */
  detach(): Promise<void>;
  /** A new berthd on the same state; detaches the old one first if still attached. */
  restart(o?: { liveRestore?: boolean }): Promise<ContainerService>;
  close(): Promise<void>;
  /** Waits until a started `handlesTerm` program has set its handler (a real shell needs a moment). */
  ready?(merged: string): Promise<void>;
}

export function runtimeContract(label: string, make: () => Promise<ContractEngine>): void {
  const it = (name: string, fn: (e: ContractEngine) => Promise<void>) => test(`${label}: ${name}`, async () => {
    const e = await make();
    try {
      await fn(e);
    } finally {
      await e.close();
    }
  });

  async function create(e: ContractEngine, name: string, p: Program): Promise<string> {
    const { Id } = await e.svc.create(name, { Image: 'busybox', Cmd: e.program(p), HostConfig: { NetworkMode: 'none' } });
    return Id;
  }
  const merged = (e: ContractEngine, id: string) => path.join(e.svc.layerDir(e.svc.lookup(id).rec), 'merged');
  const state = (e: ContractEngine, id: string) => e.svc.lookup(id).rec.state;

  it('a start runs the container in its cgroup on its mounted root; a second start is 304', async (e) => {
    const id = await create(e, 'runs', { kind: 'sleeper' });
    await e.svc.start(id);
    assert.equal(state(e, id).status, 'running');
    assert.ok(state(e, id).pid > 0);
    assert.ok(e.mounted(merged(e, id)));
    assert.ok(e.cgroupExists(id));
    const err = await e.svc.start(id).then(() => undefined, (x) => x);
    assert.ok(err instanceof BerthError && err.status === 304);
  });

  it('an exit is seen with its code, and the cgroup and the mount are gone after it', async (e) => {
    const id = await create(e, 'exits', { kind: 'exit', code: 3 });
    await e.svc.start(id);
    assert.equal(await e.svc.wait(id, 'not-running', () => false), 3);
    await e.svc.lookup(id).settling;
    assert.equal(state(e, id).status, 'exited');
    assert.equal(state(e, id).exitCode, 3);
    assert.equal(e.mounted(merged(e, id)), false);
    assert.equal(e.cgroupExists(id), false);
  });

  it('stop: pid 1 without a handler ignores SIGTERM and is killed after the timeout (137)', async (e) => {
    const id = await create(e, 'ignores-term', { kind: 'sleeper' });
    await e.svc.start(id);
    const t0 = Date.now();
    await e.svc.stop(id, 0.3);
    assert.ok(Date.now() - t0 >= 280, `waited the timeout (${Date.now() - t0} ms)`);
    assert.equal(state(e, id).exitCode, 137);
  });

  it('stop: a program that handles SIGTERM ends with it at once (143)', async (e) => {
    const id = await create(e, 'polite', { kind: 'handlesTerm' });
    await e.svc.start(id);
    await e.ready?.(merged(e, id));
    const t0 = Date.now();
    await e.svc.stop(id, 10);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(state(e, id).exitCode, 143);
  });

  it('a paused container is frozen; stop thaws it so that its signal is acted on', async (e) => {
    const id = await create(e, 'frozen', { kind: 'handlesTerm' });
    await e.svc.start(id);
    await e.ready?.(merged(e, id));
    await pauseContainer(e.svc, id);
    assert.equal(state(e, id).status, 'paused');
    await e.svc.stop(id, 10);
    assert.equal(state(e, id).status, 'exited');
    assert.equal(state(e, id).exitCode, 143);
  });

  it('rm -f of a running container leaves no process, cgroup or mount', async (e) => {
    const id = await create(e, 'forced', { kind: 'sleeper' });
    await e.svc.start(id);
    const m = merged(e, id);
    await e.svc.remove(id, { force: true });
    assert.equal(e.mounted(m), false);
    assert.equal(e.cgroupExists(id), false);
    assert.equal(e.svc.all().length, 0);
  });

  it('a command that does not exist: 400, exit code 127, nothing left behind', async (e) => {
    const id = await create(e, 'missing', { kind: 'missing' });
    const err = await e.svc.start(id).then(() => undefined, (x) => x);
    assert.ok(err instanceof BerthError, String(err));
    assert.equal(err.status, 400);
    assert.match(err.message, /^failed to create task for container: .*no such file or directory/);
    assert.equal(state(e, id).exitCode, 127);
    assert.equal(e.mounted(merged(e, id)), false);
    assert.equal(e.cgroupExists(id), false);
  });

  it('a restarted berthd adopts a running container (same pid) and still sees its exit', async (e) => {
    const id = await create(e, 'adopted', { kind: 'exitAfter', ms: 1500, code: 5 });
    await e.svc.start(id);
    const pid = state(e, id).pid;
    const svc = await e.restart();
    assert.equal(svc.lookup(id).rec.state.status, 'running');
    assert.equal(svc.lookup(id).rec.state.pid, pid);
    assert.equal(await svc.wait(id, 'not-running', () => false), 5);
  });

  it('a container that exits while berthd is down: the next berthd reads its exit code', async (e) => {
    const id = await create(e, 'while-down', { kind: 'exitAfter', ms: 200, code: 4 });
    await e.svc.start(id);
    await e.detach();
    await new Promise((r) => setTimeout(r, 800));
    const svc = await e.restart();
    await svc.lookup(id).settling;
    assert.equal(svc.lookup(id).rec.state.status, 'exited');
    assert.equal(svc.lookup(id).rec.state.exitCode, 4);
    assert.equal(e.cgroupExists(id), false);
  });
}
