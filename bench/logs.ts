// A container writing BENCH_MIB (256) MiB of lines to stdout: wall time from `docker run -d` until `docker wait`
// returns (the json-file writer has to keep up), then wall time of `docker logs C > /dev/null` through the CLI
// (reading the log back). Against a berthd this script starts and, with BENCH_DOCKER_HOST=… or an argument,
// another daemon, interleaved run by run.
//   node dist/bench/logs.js [unix:///var/run/docker.sock]      (BENCH_RUNS=3, BENCH_MIB=256)
import { benchBerthd, otherHost, timeDocker, loadFixturesInto, median, summary, intEnv } from './lib';
import { runCmd, DOCKER } from '../test/helpers/berthd';

// 99 characters and a newline per line; `head -c` cuts the last line short.
const LINE = 'the quick brown fox jumps over the lazy dog, 0123456789 "quoted" <tag> & tab\there is some more text';

async function main(): Promise<void> {
  const runs = intEnv('BENCH_RUNS', 3);
  const mib = intEnv('BENCH_MIB', 256);
  const other = otherHost();
  const b = await benchBerthd();
  const targets: Array<{ name: string; host: string; write: number[]; read: number[]; tail: number[] }> = [
    { name: 'berthd', host: b.host, write: [], read: [], tail: [] },
  ];
  if (other) {
    await loadFixturesInto(other, ['busybox']);
    targets.push({ name: 'other', host: other, write: [], read: [], tail: [] });
  }
  const name = `bench-logs-${process.pid}`;
  const rm = (host: string) => runCmd(DOCKER, ['rm', '-f', name], { env: { DOCKER_HOST: host } });
  try {
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        await rm(t.host);
        const script = `yes '${LINE}' | head -c ${mib * 1024 * 1024}`;
        const t0 = process.hrtime.bigint();
        await timeDocker(t.host, ['run', '-d', '--name', name, 'busybox', 'sh', '-c', script]);
        await timeDocker(t.host, ['wait', name]);
        t.write.push(Number(process.hrtime.bigint() - t0) / 1e6);
        t.read.push(await timeDocker(t.host, ['logs', name]));
        t.tail.push(await timeDocker(t.host, ['logs', '--tail', '10', name]));
        await rm(t.host);
      }
    }
    console.log(`${mib} MiB of 100-byte lines to stdout, ${runs} runs each, interleaved`);
    console.log(`  berthd = ${b.host} (started by this script)${other ? `\n  other  = ${other}` : ''}`);
    for (const t of targets) {
      console.log(`  ${t.name.padEnd(7)} write (run -d .. wait): ${summary(t.write)}`);
      console.log(`  ${t.name.padEnd(7)} docker logs > /dev/null: ${summary(t.read)}`);
      console.log(`  ${t.name.padEnd(7)} docker logs --tail 10: ${summary(t.tail)}`);
    }
    if (targets.length > 1) {
      const [m, o] = targets;
      console.log(`ratio other / berthd: write ${(median(o.write) / median(m.write)).toFixed(2)}x (goal >= 1), ` +
        `logs ${(median(o.read) / median(m.read)).toFixed(2)}x (goal >= 2), tail ${(median(o.tail) / median(m.tail)).toFixed(2)}x`);
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
