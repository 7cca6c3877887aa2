// Not a bench: a CPU profile of berthd (node --cpu-prof) through growing to BENCH_N containers, listing
// them, a restart (restore) and listing again; prints the functions with the most self time per phase.
//   BENCH_N=300 node dist/bench/profile-scale.js
import http from 'node:http';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { startBerthd, runCmd } from '../test/helpers/berthd';
import { loadFixturesInto, intEnv, DOCKER } from './lib';

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

function top(dir: string, label: string): void {
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const prof = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
    const self = new Map<number, number>();
    const dt = prof.timeDeltas as number[];
    (prof.samples as number[]).forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0)));
    const byFn = new Map<string, number>();
    let total = 0;
    for (const n of prof.nodes) {
      const t = self.get(n.id) ?? 0;
      total += t;
      const cf = n.callFrame;
      if (cf.functionName === '(idle)' || cf.functionName === '(program)') continue;
      const k = `${cf.functionName || '(anon)'} ${path.basename(cf.url)}:${cf.lineNumber + 1}`;
      byFn.set(k, (byFn.get(k) ?? 0) + t);
    }
    console.log(`== ${label} ${f}: ${(total / 1000).toFixed(0)} ms sampled`);
    for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${(t / 1000).toFixed(1).padStart(8)} ms  ${k}`);
    rmSync(path.join(dir, f));
  }
}

async function main(): Promise<void> {
  // Output piped into head(1) that closes early must not kill this process before its daemon is destroyed
  // (an EPIPE on stdout would, leaving containers, bridges and mounts behind).
  process.stdout.on('error', () => undefined);
  const n = intEnv('BENCH_N', 300);
  const dir = path.join(os.tmpdir(), `berth-prof-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const opts = { daemonJson: { bip: '10.216.0.1/16' }, launcher: ['sh', '-c', `exec "$0" --cpu-prof --cpu-prof-dir=${dir} "$@"`] };
  const b = await startBerthd(opts);
  try {
    await loadFixturesInto(b.host, ['busybox']);
    await runCmd(DOCKER, ['network', 'create', '--subnet', '10.218.0.0/16', 'pnet'], { env: { DOCKER_HOST: b.host } });
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < n) {
        const i = next++;
        const pub = i % 4 < 2;
        const c = await req(b.sock, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['sleep', '100000'], ExposedPorts: pub ? { '80/tcp': {} } : undefined,
          HostConfig: { NetworkMode: i % 2 ? 'pnet' : 'bridge', PortBindings: pub ? { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } : undefined } });
        await req(b.sock, 'POST', `/containers/${JSON.parse(c.text).Id}/start`);
      }
    }));
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) await req(b.sock, 'GET', '/containers/json');
    console.log(`20 lists of ${n}: ${Date.now() - t0} ms`);
    await b.stop();
    top(dir, 'grow+list');
    const t1 = Date.now();
    await b.restart();
    console.log(`restart to ready: ${Date.now() - t1} ms`);
    await b.stop();
    top(dir, 'restore');
  } finally {
    await b.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
