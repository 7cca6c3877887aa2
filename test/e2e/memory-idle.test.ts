// berthd hands memory back to the kernel a few seconds after a burst of work (daemon/runtime/memory.ts):
// V8 and malloc keep what a burst grew them to while nothing runs, so without it a daemon's RSS stayed at
// its peak for as long as it was idle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { berthdForFile } from '../helpers/file';
import { api, sleep } from '../helpers/clients';

const b = berthdForFile();

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

test('after a burst of large requests, berthd\'s RSS comes back down while it is idle, and it still answers', async () => {
  const pid = b.proc.pid!;
  await sleep(4000); // whatever starting left to release
  const before = rssMiB(pid);
  // Many bodies of 100-300 kB that are not JSON (they end inside a string), 64 at a time: each is read
  // whole and refused. What they leave is spread over V8's grown young generation and malloc's heap.
  for (let round = 0; round < 12; round++) {
    const answers = await Promise.all(Array.from({ length: 64 }, (_, i) => {
      const body = Buffer.concat([Buffer.from('{"Image":"busybox","Env":["A='), Buffer.alloc(100_000 + ((round * 64 + i) % 7) * 30_000, 'a')]);
      return api(b, 'POST', '/containers/create', { body, headers: { 'Content-Type': 'application/json' } });
    }));
    for (const r of answers) assert.equal(r.status, 400, r.body.slice(0, 200));
  }
  const peak = rssMiB(pid);
  assert.ok(peak - before > 24, `the burst grew RSS (${before.toFixed(0)} → ${peak.toFixed(0)} MiB)`);
  // Idle: released within a few periods of 3 s.
  let now = peak;
  for (let i = 0; i < 30 && now - before > 16; i++) {
    await sleep(500);
    now = rssMiB(pid);
  }
  console.log(`RSS ${before.toFixed(0)} → ${peak.toFixed(0)} → ${now.toFixed(0)} MiB`);
  assert.ok(now - before <= 16, `RSS ${before.toFixed(0)} → ${peak.toFixed(0)} → ${now.toFixed(0)} MiB after 15 s idle`);
  assert.equal((await api(b, 'GET', '/_ping')).body, 'OK');
  assert.equal((await api(b, 'GET', '/containers/json')).status, 200);
});
