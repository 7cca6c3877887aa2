// Times `docker exec C true` (the whole CLI command) in a running busybox container, against a berthd this
// script starts and, with BENCH_DOCKER_HOST=… or an argument, another daemon, interleaved run by run.
// Then the daemon's own part: exec create, start (attached, plain HTTP, until the stream ends with the
// process) and inspect sent straight to the socket, with a 30 ms pause before each round as the CLI's
// start-up leaves, median per request.
// A third column, "floor", is the docker CLI itself: the same command against a stand-in in this process
// that answers the CLI's five requests (ping, container inspect, exec create, start, exec inspect) at once
// with berthd's own answers and runs nothing. No daemon can be faster than that on this machine.
//   node dist/bench/exec.js [unix:///var/run/docker.sock]      (BENCH_RUNS=30, BENCH_WARMUP=3)
import { benchBerthd, otherHost, timeDocker, timedApi, loadFixturesInto, median, summary, intEnv } from './lib';
import { runCmd, DOCKER } from '../test/helpers/berthd';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The stand-in daemon for the floor column: answers as berthd did (`containerJson` is berthd's inspect
 *  of the container), the exec's stream ends at once with exit code 0. */
async function standIn(containerJson: string): Promise<{ host: string; close(): void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-floor-'));
  const sock = path.join(dir, 'floor.sock');
  const head = { 'Api-Version': '1.52', 'Docker-Experimental': 'false', 'Ostype': 'linux', 'Server': 'Berth/0.1.0 (linux)' };
  const exitInspect = (id: string) => JSON.stringify({ ID: id, Running: false, ExitCode: 0, Pid: 1, ProcessConfig: { tty: false, entrypoint: 'true', arguments: [], privileged: false }, OpenStdin: false, OpenStderr: true, OpenStdout: true, CanRemove: false, ContainerID: 'x', DetachKeys: '' });
  let n = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '';
      const send = (code: number, body: string) => res.writeHead(code, { ...head, 'Content-Type': 'application/json' }).end(body);
      if (url.endsWith('/_ping')) res.writeHead(200, { ...head, 'Content-Type': 'text/plain; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : 'OK');
      else if (/\/containers\/[^/]+\/json$/.test(url)) send(200, containerJson);
      else if (/\/containers\/[^/]+\/exec$/.test(url)) send(201, JSON.stringify({ Id: `floor${++n}`.padEnd(64, '0') }));
      else if (/\/exec\/[^/]+\/json$/.test(url)) send(200, exitInspect(url.split('/')[3]));
      else send(404, '{"message":"not in the stand-in"}');
    });
  });
  // The attached start: 101, then the stream ends as an exec of `true` does.
  server.on('upgrade', (_req, socket) => {
    socket.end(`HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n${Object.entries(head).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  return { host: `unix://${sock}`, close: () => { server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

type Own = Record<'create' | 'start' | 'inspect' | 'total', number[]>;

async function execApi(host: string, name: string, own: Own): Promise<void> {
  await new Promise((r) => setTimeout(r, 30));
  const c = await timedApi(host, 'POST', `/v1.41/containers/${name}/exec`, { AttachStdout: true, AttachStderr: true, Cmd: ['true'] });
  const id = (JSON.parse(c.text) as { Id: string }).Id;
  const s = await timedApi(host, 'POST', `/v1.41/exec/${id}/start`, { Detach: false, Tty: false });
  const q = await timedApi(host, 'GET', `/v1.41/exec/${id}/json`);
  if ((JSON.parse(q.text) as { ExitCode: number }).ExitCode !== 0) throw new Error(`exec in ${host} exited ${q.text}`);
  own.create.push(c.ms);
  own.start.push(s.ms);
  own.inspect.push(q.ms);
  own.total.push(c.ms + s.ms + q.ms);
}

async function main(): Promise<void> {
  const runs = intEnv('BENCH_RUNS', 30);
  const warmup = intEnv('BENCH_WARMUP', 3);
  const other = otherHost();
  const b = await benchBerthd();
  const name = `bench-exec-${process.pid}`;
  const own = (): Own => ({ create: [], start: [], inspect: [], total: [] });
  const targets: Array<{ name: string; host: string; times: number[]; own: Own }> = [{ name: 'berthd', host: b.host, times: [], own: own() }];
  if (other) {
    await loadFixturesInto(other, ['busybox']);
    targets.push({ name: 'other', host: other, times: [], own: own() });
  }
  const rm = (host: string) => runCmd(DOCKER, ['rm', '-f', name], { env: { DOCKER_HOST: host } });
  let floor: Awaited<ReturnType<typeof standIn>> | undefined;
  try {
    for (const t of targets) {
      await rm(t.host);
      await timeDocker(t.host, ['run', '-d', '--name', name, 'busybox', 'sleep', '100000']);
      for (let i = 0; i < warmup; i++) await timeDocker(t.host, ['exec', name, 'true']);
    }
    floor = await standIn((await timedApi(b.host, 'GET', `/v1.50/containers/${name}/json`)).text);
    const floorTimes: number[] = [];
    for (let i = 0; i < warmup; i++) await timeDocker(floor.host, ['exec', name, 'true']);
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) t.times.push(await timeDocker(t.host, ['exec', name, 'true']));
      floorTimes.push(await timeDocker(floor.host, ['exec', name, 'true']));
    }
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) await execApi(t.host, name, t.own);
    }
    console.log(`docker exec C true: ${runs} runs each after ${warmup} warm-ups, interleaved`);
    console.log(`  berthd = ${b.host} (started by this script)${other ? `\n  other  = ${other}` : ''}`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.times)}`);
    console.log(`  ${'floor'.padEnd(7)} ${summary(floorTimes)}  (the CLI alone: a stand-in that answers at once)`);
    if (targets.length > 1) {
      const ratio = median(targets[0].times) / median(targets[1].times);
      console.log(`ratio berthd / other: ${ratio.toFixed(2)}x (goal: at most 0.30x)`);
      console.log(`ratio floor / other:  ${(median(floorTimes) / median(targets[1].times)).toFixed(2)}x (no daemon can go below this here)`);
    }
    console.log(`berthd above the floor: ${(median(targets[0].times) - median(floorTimes)).toFixed(1)} ms`);
    console.log(`the daemon's own part (create + start until the end + inspect, straight to the API), ${runs} runs:`);
    for (const t of targets) {
      console.log(`  ${t.name.padEnd(7)} total ${summary(t.own.total)}`);
      console.log(`          create ${median(t.own.create).toFixed(1)} ms, start ${median(t.own.start).toFixed(1)} ms, inspect ${median(t.own.inspect).toFixed(1)} ms`);
    }
  } finally {
    floor?.close();
    for (const t of targets) await rm(t.host);
    await b.destroy();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
