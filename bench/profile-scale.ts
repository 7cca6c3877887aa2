// Not a bench: a CPU profile of berthd (node --cpu-prof) through growing to BENCH_N containers, listing
// them, a restart (restore) and listing again; prints the functions with the most self time per phase.
//   BENCH_N=300 node dist/bench/profile-scale.js
import http from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { startBerthd, runCmd } from '../test/helpers/berthd';
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
    printCpuProfiles(dir, { label: 'grow+list', rows: 25, skip: ['(program)'] });
    const t1 = Date.now();
    await b.restart();
    console.log(`restart to ready: ${Date.now() - t1} ms`);
    await b.stop();
    printCpuProfiles(dir, { label: 'restore', rows: 25, skip: ['(program)'] });
  } finally {
    await b.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
