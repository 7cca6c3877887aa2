// The API under 16 keep-alive connections, on its own (the "At scale" rows of bench/README.md without
// growing through every size): a berthd with BENCH_N (300) running `sleep` containers (as scale.js makes
// them: half on a user network, two of every four with a published port), then bench/http-load.c on
// /_ping, /containers/json and /containers/{id}/json for BENCH_API_SECS (3) each, and berthd's RSS after.
// BENCH_PROF=1 runs berthd under node --cpu-prof and prints the functions with the most self time. Its
// networks are 10.236.0.1/16 and 10.238.0.0/16 (BENCH_BIP, BENCH_SUBNET), apart from scale.js's, so the
// two can run at once. BENCH_LIST_ROUNDS (1) runs the list load that many times (RSS after each);
// BENCH_AGE_SECS waits that long after growing, so that the containers' Status texts count minutes, as they
// do when scale.js reaches its list step; BENCH_NODE_FLAGS (e.g. --trace-gc) are given to berthd's node.
// Each RSS is followed by its anonymous part and the part of that in malloc's main heap ([heap]), which
// tells V8's pages from malloc's (Buffers, addon allocations).
//   BENCH_N=300 node dist/bench/api-load.js
import http from 'node:http';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, runCmd, REPO } from '../test/helpers/berthd';
import { loadFixturesInto, intEnv, DOCKER, printCpuProfiles } from './lib';

function req(sock: string, method: string, p: string, body?: object): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const r = http.request({ socketPath: sock, method, path: p, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    r.on('error', reject);
    r.end(data);
  });
}

let loadBin = '';
function load(sock: string, paths: string[], secs: number): Promise<string> {
  if (!loadBin) {
    loadBin = path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-bench-')), 'http-load');
    execFileSync('gcc', ['-O2', '-o', loadBin, path.join(REPO, 'bench', 'http-load.c')]);
  }
  return new Promise((resolve, reject) => {
    execFile(loadBin, [sock, '16', String(secs), ...paths], { timeout: (secs + 120) * 1000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)));
  });
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

/** `RSS 180 MiB (anon 120, [heap] 30)`. */
function memLine(pid: number): string {
  const anon = Number(/^Anonymous:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) / 1024;
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const i = smaps.indexOf('[heap]');
  const heap = i < 0 ? 0 : Number(/Rss:\s+(\d+)/.exec(smaps.slice(i))?.[1] ?? 0) / 1024;
  return `RSS ${rssMiB(pid).toFixed(0)} MiB (anon ${anon.toFixed(0)}, [heap] ${heap.toFixed(0)})`;
}

async function main(): Promise<void> {
  process.stdout.on('error', () => undefined);
  const n = intEnv('BENCH_N', 300);
  const secs = intEnv('BENCH_API_SECS', 3);
  const prof = process.env.BENCH_PROF === '1';
  const dir = path.join(os.tmpdir(), `berth-prof-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const rounds = intEnv('BENCH_LIST_ROUNDS', 1);
  const age = intEnv('BENCH_AGE_SECS', 0);
  // BENCH_SNAPSHOT=FILE: a heap snapshot of berthd once grown (and aged), for its retained sizes.
  const snapshot = process.env.BENCH_SNAPSHOT;
  const flags = [...(prof ? [`--cpu-prof`, `--cpu-prof-dir=${dir}`] : []), ...(snapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] : []),
    ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean)];
  const b = await startBerthd({
    daemonJson: { bip: process.env.BENCH_BIP ?? '10.236.0.1/16' },
    ...(flags.length ? { launcher: ['sh', '-c', `exec "$0" ${flags.join(' ')} "$@"`] } : {}),
  });
  try {
    await loadFixturesInto(b.host, ['busybox']);
    await runCmd(DOCKER, ['network', 'create', '--subnet', process.env.BENCH_SUBNET ?? '10.238.0.0/16', 'pnet'], { env: { DOCKER_HOST: b.host } });
    let next = 0;
    let first = '';
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < n) {
        const i = next++;
        const pub = i % 4 < 2;
        const c = await req(b.sock, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['sleep', '100000'], ExposedPorts: pub ? { '80/tcp': {} } : undefined,
          HostConfig: { NetworkMode: i % 2 ? 'pnet' : 'bridge', PortBindings: pub ? { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } : undefined } });
        const id = JSON.parse(c.text).Id as string;
        first ||= id;
        await req(b.sock, 'POST', `/containers/${id}/start`);
      }
    }));
    if (prof) {
      // The profile of the growing is dropped: berthd starts again (adopting the containers) for the load.
      await b.stop();
      for (const f of readdirSync(dir)) rmSync(path.join(dir, f));
      await b.restart();
    }
    const pid = b.proc.pid!;
    if (age) await new Promise((r) => setTimeout(r, age * 1000));
    console.log(`${n} containers; ${memLine(pid)}`);
    if (snapshot) {
      process.kill(pid, 'SIGUSR2');
      // Written synchronously by berthd's main thread: it answers /_ping again once the file is complete.
      await new Promise((r) => setTimeout(r, 500));
      await req(b.sock, 'GET', '/_ping');
      const f = readdirSync(dir).find((x) => x.endsWith('.heapsnapshot'));
      if (!f) throw new Error('no heap snapshot written');
      copyFileSync(path.join(dir, f), snapshot);
      rmSync(path.join(dir, f));
      console.log(`heap snapshot in ${snapshot}`);
    }
    const lists = Array.from({ length: rounds }, () => '/v1.50/containers/json');
    for (const p of ['/_ping', ...lists, `/v1.50/containers/${first}/json`]) {
      const [reqs, s, p50, p99, errors] = (await load(b.sock, [p], secs)).trim().split(' ').map(Number);
      console.log(`${p.replace(first, '{id}').padEnd(32)} ${(reqs / s).toFixed(0).padStart(7)} req/s  p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  errors ${errors}; ${memLine(pid)}`);
    }
    const idleSecs = intEnv('BENCH_IDLE_SECS', 10);
    await new Promise((r) => setTimeout(r, idleSecs * 1000));
    console.log(`after ${idleSecs} s idle: ${memLine(pid)}`);
    if (prof) {
      await b.stop();
      printCpuProfiles(dir, { rows: 45, minTotalUs: 1e6 });
    }
  } finally {
    // BENCH_LOG: where to keep berthd's log (and what BENCH_NODE_FLAGS such as --trace-gc wrote there).
    if (process.env.BENCH_LOG) copyFileSync(path.join(b.root, 'berthd.log'), process.env.BENCH_LOG);
    await b.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (loadBin) rmSync(path.dirname(loadBin), { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
