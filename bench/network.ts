// Networking figures, against a berthd this script starts on temporary roots and, when a second
// DOCKER_HOST is given (BENCH_DOCKER_HOST=… or an argument such as unix:///var/run/docker.sock), against that
// daemon too, side by side in the same run:
//   (a) `docker network create` + `connect` + `disconnect` + `rm` of a running container: the four CLI
//       commands' wall time together, median of BENCH_NET_RUNS;
//   (b) TCP throughput, container to container over a user bridge, and from the host into a container
//       through a port published on 127.0.0.1: BENCH_MB MiB of zeros (dd from /dev/zero into busybox nc),
//       counted by `wc -c` at the receiving end, median of BENCH_TCP_RUNS;
//   (c) `docker run --rm busybox true` on the default bridge, median of BENCH_RUNS.
//   node dist/bench/network.js [unix:///var/run/docker.sock]
import net from 'node:net';
import { benchBerthd, otherHost, timeDocker, loadFixturesInto, median, summary, intEnv, DOCKER } from './lib';
import { runCmd } from '../test/helpers/berthd';

const PREFIX = 'berth-bench-net';

async function docker(host: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await runCmd(DOCKER, args, { env: { DOCKER_HOST: host }, timeoutMs });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} on ${host}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function cleanup(host: string): Promise<void> {
  const ids = (await docker(host, ['ps', '-aq', '--filter', `label=${PREFIX}`]).catch(() => '')).split('\n').filter(Boolean);
  if (ids.length) await docker(host, ['rm', '-f', ...ids]).catch(() => '');
  const nets = (await docker(host, ['network', 'ls', '-q', '--filter', `label=${PREFIX}`]).catch(() => '')).split('\n').filter(Boolean);
  for (const n of nets) await docker(host, ['network', 'rm', n]).catch(() => '');
}

/** (a) One round: create, connect, disconnect, rm. */
async function lifecycle(host: string, target: string, i: number): Promise<number> {
  const name = `${PREFIX}-lc${i}`;
  let ms = await timeDocker(host, ['network', 'create', '--label', PREFIX, name]);
  ms += await timeDocker(host, ['network', 'connect', name, target]);
  ms += await timeDocker(host, ['network', 'disconnect', name, target]);
  ms += await timeDocker(host, ['network', 'rm', name]);
  return ms;
}

/** Waits until the receiver's output shows a byte count; returns it. */
async function received(host: string, ctr: string): Promise<number> {
  for (let i = 0; i < 600; i++) {
    const out = (await docker(host, ['logs', ctr])).trim();
    if (/^\d+$/.test(out)) return Number(out);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no byte count from ${ctr}`);
}

/** Starts a receiver (`nc -l | wc -c`) and waits until it listens. */
async function receiver(host: string, name: string, args: string[]): Promise<void> {
  await docker(host, ['run', '-d', '--label', PREFIX, '--name', name, ...args, 'busybox', 'sh', '-c', 'nc -l -p 5001 | wc -c']);
  for (let i = 0; i < 100; i++) {
    const st = await docker(host, ['exec', name, 'sh', '-c', 'netstat -ltn 2>/dev/null | grep -c ":5001 " || true']).catch(() => '0');
    if (Number(st.trim()) > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} does not listen`);
}

/** (b1) MiB/s from a sender container to a receiver container on one user bridge network. */
async function bridgeThroughput(host: string, netName: string, mib: number, i: number): Promise<number> {
  const rx = `${PREFIX}-rx${i}`;
  await receiver(host, rx, ['--network', netName]);
  // The sender times its own transfer (dd, then nc until the receiver has closed), in ns.
  const script = `t0=$(date +%s%N); dd if=/dev/zero bs=65536 count=${mib * 16} 2>/dev/null | nc ${rx} 5001; t1=$(date +%s%N); echo $((t1 - t0))`;
  const out = await docker(host, ['run', '--rm', '--label', PREFIX, '--network', netName, 'busybox', 'sh', '-c', script]);
  const ns = Number(out.trim().split('\n').pop());
  const bytes = await received(host, rx);
  await docker(host, ['rm', '-f', rx]);
  if (bytes !== mib * 1024 * 1024) throw new Error(`received ${bytes} bytes of ${mib} MiB`);
  return bytes / 1048576 / (ns / 1e9);
}

/** (b2) MiB/s from the host into a container through a port published on 127.0.0.1. */
async function publishedThroughput(host: string, mib: number, i: number): Promise<number> {
  const rx = `${PREFIX}-px${i}`;
  await receiver(host, rx, ['-p', '127.0.0.1::5001']);
  const port = Number(/:(\d+)\s*$/.exec((await docker(host, ['port', rx, '5001/tcp'])).trim().split('\n')[0])![1]);
  const chunk = Buffer.alloc(1024 * 1024);
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      let left = mib;
      const pump = () => {
        while (left > 0) {
          left--;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    s.on('error', reject);
    s.resume();
    s.on('close', () => resolve());
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = await received(host, rx);
  await docker(host, ['rm', '-f', rx]);
  if (bytes !== mib * 1024 * 1024) throw new Error(`received ${bytes} bytes of ${mib} MiB through 127.0.0.1:${port}`);
  return bytes / 1048576 / secs;
}

interface Target {
  name: string;
  host: string;
  lifecycle: number[];
  bridge: number[];
  published: number[];
  runTrue: number[];
}

async function main(): Promise<void> {
  const netRuns = intEnv('BENCH_NET_RUNS', 10);
  const tcpRuns = intEnv('BENCH_TCP_RUNS', 3);
  const runs = intEnv('BENCH_RUNS', 20);
  const mib = intEnv('BENCH_MB', 1024);
  const other = otherHost();
  const b = await benchBerthd();
  const targets: Target[] = [{ name: 'berthd', host: b.host, lifecycle: [], bridge: [], published: [], runTrue: [] }];
  try {
    if (other) {
      await loadFixturesInto(other, ['busybox']);
      targets.push({ name: 'other', host: other, lifecycle: [], bridge: [], published: [], runTrue: [] });
    }
    for (const t of targets) {
      await cleanup(t.host);
      await docker(t.host, ['run', '-d', '--label', PREFIX, '--name', `${PREFIX}-target`, 'busybox', 'sleep', '1000']);
      await docker(t.host, ['network', 'create', '--label', PREFIX, `${PREFIX}-tcp`]);
      await lifecycle(t.host, `${PREFIX}-target`, -1); // warm-up
      await timeDocker(t.host, ['run', '--rm', 'busybox', 'true']);
    }
    const alternate = (i: number) => (i % 2 === 0 ? targets : [...targets].reverse());
    for (let i = 0; i < netRuns; i++) for (const t of alternate(i)) t.lifecycle.push(await lifecycle(t.host, `${PREFIX}-target`, i));
    for (let i = 0; i < tcpRuns; i++) {
      for (const t of alternate(i)) {
        t.bridge.push(await bridgeThroughput(t.host, `${PREFIX}-tcp`, mib, i));
        t.published.push(await publishedThroughput(t.host, mib, i));
      }
    }
    for (let i = 0; i < runs; i++) for (const t of alternate(i)) t.runTrue.push(await timeDocker(t.host, ['run', '--rm', 'busybox', 'true']));

    console.log(`berthd = ${b.host} (started by this script)${other ? `\nother  = ${other}` : ''}`);
    console.log(`(a) network create + connect + disconnect + rm (4 CLI commands), ${netRuns} rounds:`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.lifecycle)}`);
    console.log(`(b1) TCP container to container over a user bridge, ${mib} MiB, ${tcpRuns} runs:`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.bridge, 'MiB/s')}`);
    console.log(`(b2) TCP host to container through 127.0.0.1:<published>, ${mib} MiB, ${tcpRuns} runs:`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.published, 'MiB/s')}`);
    console.log(`(c) docker run --rm busybox true (default bridge), ${runs} runs:`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.runTrue)}`);
    if (targets.length > 1) {
      const [m, o] = targets;
      console.log(`ratios berthd / other: lifecycle ${(median(m.lifecycle) / median(o.lifecycle)).toFixed(2)}x (goal ≤ 0.5), ` +
        `bridge ${(median(m.bridge) / median(o.bridge)).toFixed(2)}x (goal ≥ 0.9), published ${(median(m.published) / median(o.published)).toFixed(2)}x (goal ≥ 1), ` +
        `run --rm ${(median(m.runTrue) / median(o.runTrue)).toFixed(2)}x`);
    }
  } finally {
    for (const t of targets.slice(1)) await cleanup(t.host).catch(() => {});
    await b.destroy();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
