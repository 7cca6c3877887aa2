// What an idle running container costs outside its own processes: starts N `sleep 1000` containers on a
// berthd of its own and sums the resident memory of their shims (VmRSS from /proc/<pid>/status, and Pss
// from /proc/<pid>/smaps_rollup, which splits shared pages fairly). The shim pid is in
// <execRoot>/containers/<id>/shim.pid. Goal: at most 1 MiB per container.
//   node dist/bench/idle-memory.js                                  (BENCH_N=10)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { benchBerthd, intEnv } from './lib';
import { sleep } from '../test/helpers/clients';

function kb(file: string, key: string): number | undefined {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const n = intEnv('BENCH_N', 10);
  const b = await benchBerthd();
  try {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await b.docker(['run', '-d', 'busybox', 'sleep', '1000']);
      if (r.code !== 0) throw new Error(`docker run -d: ${r.stderr}`);
      ids.push(r.stdout.trim());
    }
    await sleep(1000); // let the shims settle into their idle loop
    const rows: Array<{ id: string; shim: number; rss: number; pss: number }> = [];
    for (const id of ids) {
      const shim = Number(readFileSync(path.join(b.execRoot, 'containers', id, 'shim.pid'), 'utf8').trim());
      const rss = kb(`/proc/${shim}/status`, 'VmRSS');
      const pss = kb(`/proc/${shim}/smaps_rollup`, 'Pss');
      if (rss === undefined) throw new Error(`shim ${shim} of ${id.slice(0, 12)} is not running`);
      rows.push({ id, shim, rss, pss: pss ?? rss });
    }
    const sum = (k: 'rss' | 'pss') => rows.reduce((a, r) => a + r[k], 0);
    console.log(`${n} idle containers (busybox sleep 1000), one berth-shim each:`);
    for (const r of rows) console.log(`  ${r.id.slice(0, 12)}  shim pid ${String(r.shim).padEnd(8)} VmRSS ${String(r.rss).padStart(6)} kB  Pss ${String(r.pss).padStart(6)} kB`);
    console.log(`total shim VmRSS ${sum('rss')} kB, Pss ${sum('pss')} kB`);
    console.log(`per container: VmRSS ${(sum('rss') / n).toFixed(0)} kB, Pss ${(sum('pss') / n).toFixed(0)} kB (goal: at most 1024 kB)`);
    const daemonRss = kb(`/proc/${b.proc.pid}/status`, 'VmRSS');
    if (daemonRss !== undefined) console.log(`berthd itself (shared by all containers): VmRSS ${daemonRss} kB`);
  } finally {
    await b.destroy();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
