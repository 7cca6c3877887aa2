// Times `docker run --rm busybox true` on a berthd started with "userns-remap": "default" (the dockremap
// user made in a private /etc, BERTH_USERNS_ROOT, so the machine's users stay as they are): remapped (a user
// namespace and an overlay over idmapped layers) and with `--userns host` (as without a remap), interleaved
// in one run so that both see the same machine noise.
//   node dist/bench/userns.js      (BENCH_RUNS=20, BENCH_WARMUP=2)
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBerthd } from '../test/helpers/berthd';
import { loadFixturesInto, timeDocker, median, summary, intEnv } from './lib';

async function main(): Promise<void> {
  const runs = intEnv('BENCH_RUNS', 20);
  const warmup = intEnv('BENCH_WARMUP', 2);
  const etc = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-userns-'));
  mkdirSync(path.join(etc, 'etc'));
  for (const f of ['passwd', 'group']) copyFileSync(`/etc/${f}`, path.join(etc, 'etc', f));
  for (const f of ['shadow', 'gshadow', 'subuid', 'subgid']) writeFileSync(path.join(etc, 'etc', f), '', { mode: 0o600 });
  const b = await startBerthd({ daemonJson: { 'userns-remap': 'default' }, env: { BERTH_USERNS_ROOT: etc } });
  const bye = () => void b.destroy().finally(() => process.exit(130));
  process.once('SIGINT', bye);
  process.once('SIGTERM', bye);
  try {
    await loadFixturesInto(b.host, ['busybox']);
    const targets = [
      { name: 'remapped', args: ['run', '--rm', 'busybox', 'true'], times: [] as number[] },
      { name: 'userns host', args: ['run', '--rm', '--userns', 'host', 'busybox', 'true'], times: [] as number[] },
    ];
    for (const t of targets) for (let i = 0; i < warmup; i++) await timeDocker(b.host, t.args);
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) t.times.push(await timeDocker(b.host, t.args));
    }
    console.log(`docker run --rm busybox true on a berthd with userns-remap default: ${runs} runs each after ${warmup} warm-ups, interleaved`);
    for (const t of targets) console.log(`  ${t.name.padEnd(12)} ${summary(t.times)}`);
    const [remapped, host] = targets.map((t) => median(t.times));
    console.log(`remapped median: ${(remapped / 1000).toFixed(3)} s (goal: under 0.100 s); --userns host: ${(host / 1000).toFixed(3)} s`);
  } finally {
    await b.destroy();
    rmSync(etc, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
