// Times `docker exec C true` (the whole CLI command) in a running busybox container, against a berthd this
// script starts and, with BENCH_DOCKER_HOST=… or an argument, another daemon, interleaved run by run.
// Then the daemon's own part: exec create, start (attached, plain HTTP, until the stream ends with the
// process) and inspect sent straight to the socket, with a 30 ms pause before each round as the CLI's
// start-up leaves, median per request.
//   node dist/bench/exec.js [unix:///var/run/docker.sock]      (BENCH_RUNS=30, BENCH_WARMUP=3)
import { benchBerthd, otherHost, timeDocker, loadFixturesInto, median, summary, intEnv } from './lib';
import { runCmd, DOCKER } from '../test/helpers/berthd';
import http from 'node:http';

/** One API request over the daemon's unix socket: its wall time in ms and the body. */
function api(host: string, method: string, p: string, body?: object): Promise<{ ms: number; body: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath: host.replace(/^unix:\/\//, ''), method, path: p,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${p}: ${res.statusCode} ${text}`));
        else resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, body: text });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

type Own = Record<'create' | 'start' | 'inspect' | 'total', number[]>;

async function execApi(host: string, name: string, own: Own): Promise<void> {
  await new Promise((r) => setTimeout(r, 30));
  const c = await api(host, 'POST', `/v1.41/containers/${name}/exec`, { AttachStdout: true, AttachStderr: true, Cmd: ['true'] });
  const id = (JSON.parse(c.body) as { Id: string }).Id;
  const s = await api(host, 'POST', `/v1.41/exec/${id}/start`, { Detach: false, Tty: false });
  const q = await api(host, 'GET', `/v1.41/exec/${id}/json`);
  if ((JSON.parse(q.body) as { ExitCode: number }).ExitCode !== 0) throw new Error(`exec in ${host} exited ${q.body}`);
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
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) await execApi(t.host, name, t.own);
    }
    console.log(`docker exec C true: ${runs} runs each after ${warmup} warm-ups, interleaved`);
    console.log(`  berthd = ${b.host} (started by this script)${other ? `\n  other  = ${other}` : ''}`);
    for (const t of targets) console.log(`  ${t.name.padEnd(7)} ${summary(t.times)}`);
    if (targets.length > 1) {
      const ratio = median(targets[0].times) / median(targets[1].times);
      console.log(`ratio berthd / other: ${ratio.toFixed(2)}x (goal: at most 0.30x)`);
    }
    console.log(`the daemon's own part (create + start until the end + inspect, straight to the API), ${runs} runs:`);
    for (const t of targets) {
      console.log(`  ${t.name.padEnd(7)} total ${summary(t.own.total)}`);
      console.log(`          create ${median(t.own.create).toFixed(1)} ms, start ${median(t.own.start).toFixed(1)} ms, inspect ${median(t.own.inspect).toFixed(1)} ms`);
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
