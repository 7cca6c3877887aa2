// Networking figures, against a berthd this script starts on temporary roots and, when a second
// DOCKER_HOST is given (BENCH_DOCKER_HOST=… or an argument such as unix:///var/run/docker.sock), against that
// daemon too, side by side in the same run:
//   (a) `docker network create` + `connect` + `disconnect` + `rm` of a running container: the four CLI
//       commands' wall time together, median of BENCH_NET_RUNS;
//   (b) TCP throughput, container to container over a user bridge, and from the host into a container
//       through a port published on 127.0.0.1: BENCH_MB MiB of zeros sent by bench/tcp-pump.c (built
//       static, copied into busybox containers; busybox nc moves 1 KiB per call and measures only
//       itself), counted at the receiving end, median of BENCH_TCP_RUNS;
//   (c) `docker run --rm busybox true` on the default bridge, and with --network none (what networking adds),
//       median of BENCH_RUNS;
//   (d) the daemon's own part of (a): the four API requests sent straight to the socket (no CLI), each
//       timed from request to end of response, median of BENCH_NET_RUNS.
//   node dist/bench/network.js [unix:///var/run/docker.sock]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchBerthd, otherHost, timeDocker, timedApi, loadFixturesInto, median, summary, intEnv, DOCKER } from './lib';
import { runCmd, REPO } from '../test/helpers/berthd';

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

/** (d) The four requests of (a) without the CLI: ms per request. */
async function lifecycleApi(host: string, target: string, i: number): Promise<Record<'create' | 'connect' | 'disconnect' | 'rm', number>> {
  const c = await timedApi(host, 'POST', '/v1.41/networks/create', { Name: `${PREFIX}-api${i}`, Driver: 'bridge', Labels: { [PREFIX]: '' } });
  const id = (JSON.parse(c.text) as { Id: string }).Id;
  const a = await timedApi(host, 'POST', `/v1.41/networks/${id}/connect`, { Container: target, EndpointConfig: {} });
  const d = await timedApi(host, 'POST', `/v1.41/networks/${id}/disconnect`, { Container: target, Force: false });
  const r = await timedApi(host, 'DELETE', `/v1.41/networks/${id}`);
  return { create: c.ms, connect: a.ms, disconnect: d.ms, rm: r.ms };
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

/** bench/tcp-pump.c built static into a temporary directory; `docker cp` puts it into containers. */
function buildPump(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-pump-'));
  execFileSync('gcc', ['-O2', '-static', '-o', path.join(dir, 'tcp-pump'), path.join(REPO, 'bench', 'tcp-pump.c')]);
  return dir;
}

/** Creates a busybox container running `tcp-pump args…` with the pump copied in. */
async function withPump(host: string, pump: string, name: string, opts: string[], args: string[]): Promise<void> {
  await docker(host, ['create', '--label', PREFIX, '--name', name, ...opts, 'busybox', '/tcp-pump', ...args]);
  await docker(host, ['cp', path.join(pump, 'tcp-pump'), `${name}:/tcp-pump`]);
}

/** Starts a receiver (`tcp-pump recv 5001`) and waits until it listens. */
async function receiver(host: string, pump: string, name: string, args: string[]): Promise<void> {
  await withPump(host, pump, name, args, ['recv', '5001']);
  await docker(host, ['start', name]);
  for (let i = 0; i < 100; i++) {
    const st = await docker(host, ['exec', name, 'sh', '-c', 'netstat -ltn 2>/dev/null | grep -c ":5001 " || true']).catch(() => '0');
    if (Number(st.trim()) > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} does not listen`);
}

function check(bytes: number, mib: number, where: string): void {
  if (bytes !== mib * 1024 * 1024) throw new Error(`received ${bytes} bytes of ${mib} MiB ${where}`);
}

/** (b1) MiB/s from a sender container to a receiver container on one user bridge network. */
async function bridgeThroughput(host: string, pump: string, netName: string, mib: number, i: number): Promise<number> {
  const rx = `${PREFIX}-rx${i}`;
  await receiver(host, pump, rx, ['--network', netName]);
  const ip = (await docker(host, ['inspect', '-f', `{{(index .NetworkSettings.Networks "${netName}").IPAddress}}`, rx])).trim();
  const tx = `${PREFIX}-tx${i}`;
  await withPump(host, pump, tx, ['--network', netName], ['send', ip, '5001', String(mib)]);
  const out = await docker(host, ['start', '-a', tx], 600_000);
  await docker(host, ['rm', '-f', tx]);
  const ns = Number(out.trim());
  const bytes = await received(host, rx);
  await docker(host, ['rm', '-f', rx]);
  check(bytes, mib, `from a container to ${ip}`);
  return bytes / 1048576 / (ns / 1e9);
}

/** (b2) MiB/s from the host into a container through a port published on 127.0.0.1. */
async function publishedThroughput(host: string, pump: string, mib: number, i: number): Promise<number> {
  const rx = `${PREFIX}-px${i}`;
  await receiver(host, pump, rx, ['-p', '127.0.0.1::5001']);
  const port = Number(/:(\d+)\s*$/.exec((await docker(host, ['port', rx, '5001/tcp'])).trim().split('\n')[0])![1]);
  const ns = Number(execFileSync(path.join(pump, 'tcp-pump'), ['send', '127.0.0.1', String(port), String(mib)], { encoding: 'utf8' }).trim());
  const bytes = await received(host, rx);
  await docker(host, ['rm', '-f', rx]);
  check(bytes, mib, `through 127.0.0.1:${port}`);
  return bytes / 1048576 / (ns / 1e9);
}

interface Target {
  name: string;
  host: string;
  lifecycle: number[];
  own: Record<'create' | 'connect' | 'disconnect' | 'rm' | 'total', number[]>;
  bridge: number[];
  published: number[];
  runTrue: number[];
  runNone: number[];
}

async function main(): Promise<void> {
  const netRuns = intEnv('BENCH_NET_RUNS', 10);
  const tcpRuns = intEnv('BENCH_TCP_RUNS', 3);
  const runs = intEnv('BENCH_RUNS', 20);
  const mib = intEnv('BENCH_MB', 1024);
  const other = otherHost();
  const pump = buildPump();
  const b = await benchBerthd();
  const targets: Target[] = [{ name: 'berthd', host: b.host, lifecycle: [], own: { create: [], connect: [], disconnect: [], rm: [], total: [] }, bridge: [], published: [], runTrue: [], runNone: [] }];
  try {
    if (other) {
      await loadFixturesInto(other, ['busybox']);
      targets.push({ name: 'other', host: other, lifecycle: [], own: { create: [], connect: [], disconnect: [], rm: [], total: [] }, bridge: [], published: [], runTrue: [], runNone: [] });
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
    for (let i = 0; i < netRuns; i++) {
      for (const t of alternate(i)) {
        // A pause as the CLI's own start-up would leave between two requests.
        await new Promise((r) => setTimeout(r, 30));
        const r = await lifecycleApi(t.host, `${PREFIX}-target`, i);
        for (const k of ['create', 'connect', 'disconnect', 'rm'] as const) t.own[k].push(r[k]);
        t.own.total.push(r.create + r.connect + r.disconnect + r.rm);
      }
    }
    for (let i = 0; i < tcpRuns; i++) {
      for (const t of alternate(i)) {
        t.bridge.push(await bridgeThroughput(t.host, pump, `${PREFIX}-tcp`, mib, i));
        t.published.push(await publishedThroughput(t.host, pump, mib, i));
      }
    }
    for (let i = 0; i < runs; i++) {
      for (const t of alternate(i)) {
        t.runTrue.push(await timeDocker(t.host, ['run', '--rm', 'busybox', 'true']));
        t.runNone.push(await timeDocker(t.host, ['run', '--rm', '--network', 'none', 'busybox', 'true']));
      }
    }

    console.log(`berthd = ${b.host} (started by this script)${other ? `\nother  = ${other}` : ''}`);
    console.log(`(a) network create + connect + disconnect + rm (4 CLI commands), ${netRuns} rounds:`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.lifecycle)}`);
    console.log(`(d) the same four requests sent to the API directly (the daemon's own part), ${netRuns} rounds:`);
    for (const t of targets) {
      console.log(`  ${t.name.padEnd(7)} total ${summary(t.own.total)}`);
      console.log(`          ${(['create', 'connect', 'disconnect', 'rm'] as const).map((k) => `${k} ${median(t.own[k]).toFixed(1)} ms`).join(', ')}`);
    }
    console.log(`(b1) TCP container to container over a user bridge, ${mib} MiB, ${tcpRuns} runs:`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.bridge, 'MiB/s')}`);
    console.log(`(b2) TCP host to container through 127.0.0.1:<published>, ${mib} MiB, ${tcpRuns} runs:`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.published, 'MiB/s')}`);
    console.log(`(c) docker run --rm busybox true (default bridge), ${runs} runs:`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.runTrue)}`);
    console.log(`    (the same with --network none, for what networking adds:)`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.runNone)}`);
    if (targets.length > 1) {
      const [m, o] = targets;
      console.log(`ratios berthd / other: lifecycle ${(median(m.lifecycle) / median(o.lifecycle)).toFixed(2)}x (goal ≤ 0.5), ` +
        `bridge ${(median(m.bridge) / median(o.bridge)).toFixed(2)}x (goal ≥ 0.9), published ${(median(m.published) / median(o.published)).toFixed(2)}x (goal ≥ 1), ` +
        `run --rm ${(median(m.runTrue) / median(o.runTrue)).toFixed(2)}x`);
    }
  } finally {
    for (const t of targets.slice(1)) await cleanup(t.host).catch(() => {});
    await b.destroy();
    rmSync(pump, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
