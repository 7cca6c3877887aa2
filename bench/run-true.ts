// Times `docker run --rm busybox true` (the whole CLI command, as a user waits for it) against a berthd this
// script starts on temporary roots, and, when a second DOCKER_HOST is given (BENCH_DOCKER_HOST=… or an
// argument such as unix:///var/run/docker.sock), against that daemon too, interleaved in the same run so
// that both see the same machine noise. Prints both medians and their ratio.
//   node dist/bench/run-true.js [unix:///var/run/docker.sock]      (BENCH_RUNS=20, BENCH_WARMUP=2)
import { benchBerthd, otherHost, timeDocker, loadFixturesInto, median, summary, intEnv } from './lib';

const CMD = ['run', '--rm', 'busybox', 'true'];

async function main(): Promise<void> {
  const runs = intEnv('BENCH_RUNS', 20);
  const warmup = intEnv('BENCH_WARMUP', 2);
  const other = otherHost();
  const b = await benchBerthd();
  try {
    const targets: Array<{ name: string; host: string; times: number[] }> = [{ name: 'berthd', host: b.host, times: [] }];
    if (other) {
      await loadFixturesInto(other, ['busybox']);
      targets.push({ name: 'other', host: other, times: [] });
    }
    for (const t of targets) for (let i = 0; i < warmup; i++) await timeDocker(t.host, CMD);
    for (let i = 0; i < runs; i++) {
      // Alternate which daemon goes first, so neither always follows the other's work.
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) t.times.push(await timeDocker(t.host, CMD));
    }
    console.log(`docker ${CMD.join(' ')}: ${runs} runs each after ${warmup} warm-ups, interleaved`);
    console.log(`  berthd = ${b.host} (started by this script)${other ? `\n  other  = ${other}` : ''}`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.times)}`);
    const mine = median(targets[0].times);
    console.log(`berthd median: ${(mine / 1000).toFixed(3)} s (goal: under 0.100 s)`);
    if (targets.length > 1) {
      const theirs = median(targets[1].times);
      console.log(`other median: ${(theirs / 1000).toFixed(3)} s`);
      console.log(`ratio other / berthd: ${(theirs / mine).toFixed(2)}x (berthd is that many times faster)`);
    }
  } finally {
    await b.destroy();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
