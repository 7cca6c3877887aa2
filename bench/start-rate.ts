// The start path at growing numbers of running containers, with berthd's children started by node's
// child_process (fork) and by the addon's posix_spawn, side by side in one run (issue 17). Shorter than
// scale.js: only its two start figures, the same way (containers created and started by BENCH_CLIENTS
// API clients, half on the default bridge and half on a user network, two of every four with a port
// published on 127.0.0.1; the rate is that of growing from the previous size), and `docker run --rm
// busybox true`. BENCH_STRACE=1 also traces the clone(2) calls of berthd's main thread during a few more
// runs at each size (strace -T) and prints the median time spent in a process-creating clone and its flags.
//   BENCH_SIZES=100,1000 node dist/bench/start-rate.js
// BENCH_PAIRED=1: both daemons at once (own subnets each), grown to each size one after the other, then
// measured in alternation (BENCH_ROUNDS rounds of: a batch of BENCH_BATCH starts by the 8 clients and one
// `docker run --rm`, on one daemon then the other), so that the machine's load falls on both alike.
//   BENCH_PAIRED=1 BENCH_SIZES=1000 node dist/bench/start-rate.js
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, runCmd, type Berthd } from '../test/helpers/berthd';
import { loadFixturesInto, timeDocker, median, intEnv, DOCKER, growContainers } from './lib';

/** Median ms of the process-creating clones of berthd's main thread (where node and the addon start
 *  children; not threads, not the shims' own clones) during `runs` `docker run --rm`, and their flags. */
async function traceClones(b: Berthd, runs: number): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-strace-'));
  const out = path.join(dir, 'trace');
  const st = execFile('strace', ['-T', '-e', 'trace=clone,clone3,vfork', '-o', out, '-p', String(b.proc.pid)]);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < runs; i++) await timeDocker(b.host, ['run', '--rm', 'busybox', 'true']);
  } finally {
    st.kill('SIGINT');
    await new Promise((r) => st.once('exit', r));
  }
  const ms: number[] = [];
  const flags = new Set<string>();
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    if (/CLONE_THREAD/.test(line) || !/clone3?\(/.test(line)) continue;
    const t = /<([\d.]+)>\s*$/.exec(line);
    const f = /flags=([A-Z_|]+)/.exec(line);
    if (f) flags.add(f[1]);
    if (t) ms.push(Number(t[1]) * 1000);
  }
  rmSync(dir, { recursive: true, force: true });
  return `${ms.length} clones, median ${median(ms).toFixed(2)} ms (${[...flags].join(', ')})`;
}

// Subnets of this script's own (scale.js and profile-scale.js use 10.216 and 10.218, and may run meanwhile).
const SUBNETS = { fork: { bip: '10.226.0.1/16', net: '10.228.0.0/16' }, posix_spawn: { bip: '10.230.0.1/16', net: '10.232.0.0/16' } };

async function daemon(mode: 'fork' | 'posix_spawn'): Promise<Berthd> {
  const b = await startBerthd({ daemonJson: { bip: SUBNETS[mode].bip }, env: mode === 'fork' ? { BERTH_NODE_SPAWN: '1' } : {} });
  try {
    await loadFixturesInto(b.host, ['busybox']);
    const net = await runCmd(DOCKER, ['network', 'create', '--subnet', SUBNETS[mode].net, 'srnet'], { env: { DOCKER_HOST: b.host } });
    if (net.code !== 0) throw new Error(`network create: ${net.stderr}`);
  } catch (e) {
    await b.destroy();
    throw e;
  }
  return b;
}

async function paired(sizes: number[]): Promise<void> {
  const modes = ['fork', 'posix_spawn'] as const;
  const ds: Berthd[] = [];
  try {
    for (const m of modes) ds.push(await daemon(m));
    const have = [0, 0];
    const rounds = intEnv('BENCH_ROUNDS', 6);
    const batch = intEnv('BENCH_BATCH', 24);
    for (const n of sizes) {
      for (let d = 0; d < 2; d++) {
        if (have[d] < n) await growContainers(ds[d].sock, have[d], n, 8, { network: 'srnet' });
        have[d] = Math.max(have[d], n);
      }
      const rate: number[][] = [[], []];
      const run: number[][] = [[], []];
      for (let r = 0; r < rounds; r++) {
        for (let d = 0; d < 2; d++) {
          rate[d].push(await growContainers(ds[d].sock, have[d], have[d] + batch, intEnv('BENCH_CLIENTS', 8), { network: 'srnet' }));
          have[d] += batch;
          run[d].push(await timeDocker(ds[d].host, ['run', '--rm', 'busybox', 'true']));
        }
      }
      for (let d = 0; d < 2; d++) {
        console.log(`${modes[d].padEnd(11)} N=${String(n).padEnd(5)} start ${median(rate[d]).toFixed(1)}/s (${rate[d].map((x) => x.toFixed(0)).join(' ')})  run --rm ${median(run[d]).toFixed(0)} ms (${run[d].map((x) => x.toFixed(0)).join(' ')})  load ${os.loadavg()[0].toFixed(1)}`);
      }
    }
  } finally {
    for (const b of ds) await b.destroy();
  }
}

async function measure(mode: 'fork' | 'posix_spawn', sizes: number[]): Promise<void> {
  const b = await daemon(mode);
  try {
    let have = 0;
    for (const n of sizes) {
      const rate = await growContainers(b.sock, have, n, intEnv('BENCH_CLIENTS', 8), { network: 'srnet' });
      have = n;
      const runs: number[] = [];
      for (let i = 0; i < intEnv('BENCH_RUNS', 7); i++) runs.push(await timeDocker(b.host, ['run', '--rm', 'busybox', 'true']));
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${b.proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      console.log(`${mode.padEnd(11)} N=${String(n).padEnd(5)} start ${rate.toFixed(1)}/s  run --rm ${median(runs).toFixed(0)} ms  berthd RSS ${rss.toFixed(0)} MiB  load ${os.loadavg()[0].toFixed(1)}`);
      if (process.env.BENCH_STRACE === '1') console.log(`${mode.padEnd(11)} N=${String(n).padEnd(5)} strace: ${await traceClones(b, 3)}`);
    }
  } finally {
    await b.destroy();
  }
}

async function main(): Promise<void> {
  process.stdout.on('error', () => undefined);
  const sizes = (process.env.BENCH_SIZES ?? '100,1000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
  if (process.env.BENCH_PAIRED === '1') return paired(sizes);
  const modes = (process.env.BENCH_MODES ?? 'fork,posix_spawn').split(',') as Array<'fork' | 'posix_spawn'>;
  for (const m of modes) await measure(m, sizes);
}

main().catch((e) => { console.error(e); process.exit(1); });
