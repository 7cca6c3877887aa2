// Times `docker exec C true` (the whole CLI command) in a running busybox container, against a berthd this
// script starts and, with BENCH_DOCKER_HOST=… or an argument, another daemon, interleaved run by run.
//   node dist/bench/exec.js [unix:///var/run/docker.sock]      (BENCH_RUNS=30, BENCH_WARMUP=3)
import { benchBerthd, otherHost, timeDocker, loadFixturesInto, median, summary, intEnv } from './lib';
import { runCmd, DOCKER } from '../test/helpers/berthd';

async function main(): Promise<void> {
  const runs = intEnv('BENCH_RUNS', 30);
  const warmup = intEnv('BENCH_WARMUP', 3);
  const other = otherHost();
  const b = await benchBerthd();
  const name = `bench-exec-${process.pid}`;
  const targets: Array<{ name: string; host: string; times: number[] }> = [{ name: 'berthd', host: b.host, times: [] }];
  if (other) {
    await loadFixturesInto(other, ['busybox']);
    targets.push({ name: 'other', host: other, times: [] });
  }
  const rm = (host: string) => runCmd(DOCKER, ['rm', '-f', name], { env: { DOCKER_HOST: host } });
  try {
    for (const t of targets) {
      await rm(t.host);
      await timeDocker(t.host, ['run', '-d', '--name', name, 'busybox', 'sleep', '100000']);
      for (let i = 0; i < warmup; i++) await timeDocker(t.host, ['exec', name, 'true']);
    }
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) t.times.push(await timeDocker(t.host, ['exec', name, 'true']));
    }
    console.log(`docker exec C true: ${runs} runs each after ${warmup} warm-ups, interleaved`);
    console.log(`  berthd = ${b.host} (started by this script)${other ? `\n  other  = ${other}` : ''}`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.times)}`);
    if (targets.length > 1) {
      const ratio = median(targets[0].times) / median(targets[1].times);
      console.log(`ratio berthd / other: ${ratio.toFixed(2)}x (goal: at most 0.30x)`);
    }
  } finally {
    for (const t of targets) await rm(t.host);
    await b.destroy();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
