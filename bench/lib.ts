// Shared by the bench scripts: a berthd of their own (the test harness's, so everything it made is removed
// at the end, also on Ctrl-C), timing of whole commands, and order statistics.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startBerthd, runCmd, DOCKER, FIXTURES, type Berthd } from '../test/helpers/berthd';

export { DOCKER, type Berthd };

/** Loads build/fixtures/<name>.tar into the daemon at `host` unless it already has <name>:latest. */
export async function loadFixturesInto(host: string, names: string[]): Promise<void> {
  for (const n of names) {
    const env = { DOCKER_HOST: host };
    const has = await runCmd(DOCKER, ['image', 'inspect', `${n}:latest`], { env });
    if (has.code === 0) continue;
    const r = await runCmd(DOCKER, ['load', '-i', path.join(FIXTURES, `${n}.tar`)], { env, timeoutMs: 120000 });
    if (r.code !== 0) throw new Error(`docker load ${n}.tar into ${host}: ${r.stdout}${r.stderr} (run make fixtures first)`);
  }
}

/** Starts a berthd on temporary roots with busybox loaded; destroys it on exit or Ctrl-C. */
export async function benchBerthd(): Promise<Berthd> {
  const b = await startBerthd();
  const bye = () => {
    void b.destroy().finally(() => process.exit(130));
  };
  process.once('SIGINT', bye);
  process.once('SIGTERM', bye);
  try {
    await loadFixturesInto(b.host, ['busybox']);
  } catch (e) {
    await b.destroy();
    throw e;
  }
  return b;
}

/** The second daemon to compare with: BENCH_DOCKER_HOST, or the first argument that looks like a host. */
export function otherHost(argv = process.argv.slice(2)): string | undefined {
  const arg = argv.find((a) => /^(unix|tcp|ssh):\/\//.test(a));
  return arg ?? (process.env.BENCH_DOCKER_HOST || undefined);
}

/** Runs the docker CLI against `host`; resolves with the wall time in ms; rejects on a non-zero exit. */
export function timeDocker(host: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(DOCKER, args, { env: { ...process.env, DOCKER_HOST: host }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    p.on('error', reject);
    p.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code === 0) resolve(ms);
      else reject(new Error(`docker ${args.join(' ')} on ${host}: exit ${code}: ${err.trim()}`));
    });
  });
}

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export const median = (xs: number[]) => quantile(xs, 0.5);

export function summary(xs: number[], unit = 'ms'): string {
  const f = (v: number) => `${v.toFixed(1)} ${unit}`;
  return `median ${f(median(xs))}  p10 ${f(quantile(xs, 0.1))}  p90 ${f(quantile(xs, 0.9))}  min ${f(Math.min(...xs))}  max ${f(Math.max(...xs))}  (n=${xs.length})`;
}

export function intEnv(name: string, dflt: number): number {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : dflt;
}

/** One API request straight to a daemon's unix socket (no CLI): its wall time in ms and the body's text;
 *  rejects on a status of 300 or more. */
export function timedApi(host: string, method: string, p: string, body?: object): Promise<{ ms: number; text: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath: host.replace(/^unix:\/\//, ''), method, path: p,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const text = Buffer.concat(chunks).toString();
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${p}: ${res.statusCode} ${text}`));
        else resolve({ ms, text });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** One request on a keep-alive agent: status, body and wall time. */
export function agentRequest(agent: http.Agent | undefined, sock: string, method: string, p: string, body?: object): Promise<{ status: number; text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const r = http.request({ socketPath: sock, method, path: p, agent,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    r.on('error', reject);
    r.setTimeout(120000, () => r.destroy(new Error(`${method} ${p}: timeout`)));
    r.end(data);
  });
}

/** Creates and starts containers `from`..`to`-1 with `clients` API clients, as scale.js grows a host: `sleep`
 *  containers, even ones on the default bridge and odd ones on `network`, two of every four with port 80
 *  published on 127.0.0.1; their ids go into `ids` when given. Returns containers/s. */
export async function growContainers(sock: string, from: number, to: number, clients: number, o: { network: string; labels?: Record<string, string>; ids?: string[] }): Promise<number> {
  let next = from;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: clients }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (next < to) {
        const i = next++;
        const published = i % 4 < 2;
        const body = {
          Image: 'busybox', Cmd: ['sleep', '1000000'], Labels: o.labels,
          ExposedPorts: published ? { '80/tcp': {} } : undefined,
          HostConfig: { NetworkMode: i % 2 === 0 ? 'bridge' : o.network,
            PortBindings: published ? { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } : undefined },
        };
        const c = await agentRequest(agent, sock, 'POST', '/containers/create', body);
        if (c.status !== 201) throw new Error(`create #${i}: ${c.status} ${c.text}`);
        const id = JSON.parse(c.text).Id as string;
        const s = await agentRequest(agent, sock, 'POST', `/containers/${id}/start`);
        if (s.status !== 204) throw new Error(`start #${i}: ${s.status} ${s.text}`);
        if (o.ids) o.ids[i] = id;
      }
    } finally {
      agent.destroy();
    }
  }));
  return (to - from) / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** Self time by function in each CPU profile (`node --cpu-prof`) of `dir`, printed as the `rows` largest,
 *  then the profile deleted. `minTotalUs`: profiles sampling less are named only (worker threads');
 *  `skip`: pseudo-functions left out of the rows, as well as '(idle)'. */
export function printCpuProfiles(dir: string, o: { label?: string; rows: number; minTotalUs?: number; skip?: string[] }): void {
  const skip = new Set(['(idle)', ...(o.skip ?? [])]);
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
      if (skip.has(cf.functionName)) continue;
      const k = `${cf.functionName || '(anon)'} ${path.basename(cf.url)}:${cf.lineNumber + 1}`;
      byFn.set(k, (byFn.get(k) ?? 0) + t);
    }
    console.log(`== ${o.label ? `${o.label} ` : ''}${f}: ${(total / 1000).toFixed(0)} ms sampled`);
    if (total < (o.minTotalUs ?? 0)) continue;
    for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, o.rows)) console.log(`  ${(t / 1000).toFixed(1).padStart(8)} ms  ${k}`);
    rmSync(path.join(dir, f));
  }
}
