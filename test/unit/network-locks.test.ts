// The network service's locks (daemon/network/locks.ts): a container's own lock is exclusive, a network's
// is shared by the containers on it and exclusive for its removal, and locks are taken in one order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Locks } from '../../daemon/network/locks';

const tick = () => new Promise((r) => setImmediate(r));

/** A task that records when it runs and finishes when released. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => { open = r; });
  return { open, opened };
}

test('shared holders run together; an exclusive one waits for them and holds back later readers', async () => {
  const l = new Locks();
  const log: string[] = [];
  const g1 = gate();
  const g2 = gate();
  const r1 = l.with([{ key: 'net:a', exclusive: false }], async () => { log.push('r1'); await g1.opened; log.push('r1 end'); });
  const r2 = l.with([{ key: 'net:a', exclusive: false }], async () => { log.push('r2'); await g2.opened; log.push('r2 end'); });
  const w = l.with([{ key: 'net:a', exclusive: true }], async () => { log.push('w'); });
  const r3 = l.with([{ key: 'net:a', exclusive: false }], async () => { log.push('r3'); });
  await tick();
  assert.deepEqual(log, ['r1', 'r2']);
  g1.open();
  await tick();
  assert.deepEqual(log, ['r1', 'r2', 'r1 end']);
  g2.open();
  await Promise.all([r1, r2, w, r3]);
  assert.deepEqual(log, ['r1', 'r2', 'r1 end', 'r2 end', 'w', 'r3']);
});

test('one container at a time; different containers side by side; a throw releases the lock', async () => {
  const l = new Locks();
  let inside = 0;
  let most = 0;
  const run = (ctr: string) => l.with([{ key: `ctr:${ctr}`, exclusive: true }, { key: 'net:bridge', exclusive: false }], async () => {
    inside++;
    most = Math.max(most, inside);
    await tick();
    inside--;
  });
  await Promise.all([run('a'), run('b'), run('c')]);
  assert.equal(most, 3);
  most = 0;
  await Promise.all([run('a'), run('a'), run('a')]);
  assert.equal(most, 1);
  await assert.rejects(l.with([{ key: 'ctr:a', exclusive: true }], async () => { throw new Error('boom'); }), /boom/);
  await run('a');
});

test('two callers asking for the same keys in different orders do not deadlock', async () => {
  const l = new Locks();
  const done: string[] = [];
  await Promise.all([
    l.with([{ key: 'ctr:x', exclusive: true }, { key: 'net:n', exclusive: true }], async () => { await tick(); done.push('1'); }),
    l.with([{ key: 'net:n', exclusive: true }, { key: 'ctr:x', exclusive: true }], async () => { await tick(); done.push('2'); }),
  ]);
  assert.deepEqual(done.sort(), ['1', '2']);
});
