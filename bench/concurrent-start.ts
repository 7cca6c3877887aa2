// Eight API clients (dockerode) create and start 50 containers together against a berthd of its own and,
// when a second DOCKER_HOST is given (BENCH_DOCKER_HOST=unix:///… or an argument), against that daemon too.
// Prints containers per second (from the first create to the last start). Goal: at least 5x Docker Engine
// (3.5–4 containers/s on these machines). Containers made on the second daemon are labelled and removed.
//   node dist/bench/concurrent-start.js [unix:///var/run/docker.sock]   (BENCH_CLIENTS=8, BENCH_TOTAL=50)
import Docker from 'dockerode';
import { benchBerthd, otherHost, loadFixturesInto, intEnv } from './lib';

const LABEL = 'org.berth.bench';

function client(host: string): Docker {
  if (!host.startsWith('unix://')) throw new Error(`only unix:// hosts are supported here: ${host}`);
  return new Docker({ socketPath: host.slice('unix://'.length) });
}

async function round(host: string, clients: number, total: number): Promise<number> {
  const dockers = Array.from({ length: clients }, () => client(host));
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(dockers.map(async (d) => {
    while (next < total) {
      next++;
      const c = await d.createContainer({ Image: 'busybox', Cmd: ['sleep', '1000'], Labels: { [LABEL]: '1' } });
      await c.start();
    }
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return total / secs;
}

async function cleanup(host: string): Promise<void> {
  const d = client(host);
  const list = await d.listContainers({ all: true, filters: { label: [`${LABEL}=1`] } });
  await Promise.all(list.map((c) => d.getContainer(c.Id).remove({ force: true }).catch(() => {})));
}

async function main(): Promise<void> {
  const clients = intEnv('BENCH_CLIENTS', 8);
  const total = intEnv('BENCH_TOTAL', 50);
  const other = otherHost();
  const b = await benchBerthd();
  try {
    const results: Array<[string, number]> = [];
    results.push(['berthd', await round(b.host, clients, total)]);
    await cleanup(b.host);
    if (other) {
      await loadFixturesInto(other, ['busybox']);
      try {
        results.push(['other', await round(other, clients, total)]);
      } finally {
        await cleanup(other);
      }
    }
    console.log(`${clients} dockerode clients creating and starting ${total} containers together:`);
    console.log(`  berthd = ${b.host} (started by this script)${other ? `\n  other  = ${other}` : ''}`);
    for (const [name, rate] of results) console.log(`  ${name.padEnd(7)} ${rate.toFixed(2)} containers/s`);
    if (results.length > 1) console.log(`ratio berthd / other: ${(results[0][1] / results[1][1]).toFixed(2)}x (goal: at least 5x)`);
  } finally {
    await b.destroy();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
