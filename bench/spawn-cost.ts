// What starting one child costs berthd's event loop, against the size of the process that starts it: the
// synchronous part of node's child_process.spawn (fork, then wait for the exec) and of the addon's
// posix_spawn (runtime/spawn.ts), interleaved, at growing resident sizes (a V8 heap of small objects, as
// berthd's is, plus Buffers). No daemon: this process is the one that grows. Issue 17.
//   BENCH_RSS=150,300,600 BENCH_RUNS=40 node dist/bench/spawn-cost.js
import { spawn as nodeSpawn } from 'node:child_process';
import os from 'node:os';
import { startProcess } from '../daemon/runtime/spawn';
import { median, quantile, intEnv } from './lib';

const keep: unknown[] = [];

/** Grows this process to about `mib` MiB resident: half small objects on the V8 heap, half Buffers. */
function growTo(mib: number): void {
  while (process.memoryUsage().rss < mib * 1048576) {
    const objs = Array.from({ length: 20_000 }, (_, i) => ({ id: `c${i}-${keep.length}`, n: i, tags: [i, i + 1] }));
    keep.push(objs, Buffer.alloc(1 << 20, 1));
  }
}

async function once(mode: 'fork' | 'posix_spawn'): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = mode === 'fork'
    ? nodeSpawn('/bin/true', [], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'], detached: true })
    : startProcess('/bin/true', [], ['ignore', 'ignore', 'ignore', 'pipe'], { detached: true });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await new Promise((r) => child.once('exit', r));
  (child.stdio[3] as { destroy(): void } | null)?.destroy();
  return ms;
}

async function main(): Promise<void> {
  const sizes = (process.env.BENCH_RSS ?? '150,300,600').split(',').map(Number);
  const runs = intEnv('BENCH_RUNS', 40);
  for (const mib of sizes) {
    growTo(mib);
    const t: Record<string, number[]> = { fork: [], posix_spawn: [] };
    for (let i = 0; i < runs; i++) for (const m of ['fork', 'posix_spawn'] as const) t[m].push(await once(m));
    const rss = process.memoryUsage().rss / 1048576;
    const f = (xs: number[]) => `${median(xs).toFixed(2)} ms (p90 ${quantile(xs, 0.9).toFixed(2)})`;
    console.log(`RSS ${rss.toFixed(0)} MiB: event loop held per spawn: fork ${f(t.fork)}, posix_spawn ${f(t.posix_spawn)}  load ${os.loadavg()[0].toFixed(1)}`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
