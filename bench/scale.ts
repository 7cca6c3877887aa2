// berth at scale (issue 17): grows a daemon to BENCH_SIZES running containers (10,100,500,1000), half on the
// default bridge and half on a user network, every other pair with a port published on 127.0.0.1, and at
// each size measures what a user of a busy host feels:
//   run --rm     `docker run --rm busybox true` (CLI, median)
//   start/s      create+start rate of BENCH_CLIENTS (8) API clients while growing to this size
//   ps, ps -a    `docker ps` and `docker ps -a` (CLI, p50 and p99)
//   inspect      `docker inspect C` (CLI, median)
//   rm           `docker rm` of an exited container (API DELETE and CLI, median)
//   events       delay from an event's own time to its delivery on a /events stream (median)
//   stats        `docker stats --no-stream` of every container (CLI, one or more runs)
//   net          `docker network create`, `connect` of a running container (CLI, median)
//   api          16 keep-alive connections on /_ping, /containers/json?limit=… and /containers/{id}/json for
//                BENCH_API_SECS each: requests/s and p99
//   idle         the daemon's RSS and its CPU over BENCH_IDLE_SECS of nothing asked
//   restore      kill -9 and restart: time to /_ping, to a /containers/json listing all N (berthd only)
// With BENCH_DOCKER_HOST (and BENCH_DOCKER_PID for its RSS/CPU) the same is done against that daemon
// afterwards. Results go to bench/scale-results.json (BENCH_RESULTS; kept per daemon, so runs can be done
// separately) and the plot beside it (bench/scale.svg); `node dist/bench/scale.js --plot` redraws it.
//   node dist/bench/scale.js
// The test daemon's default bridge is a /24: this one gets a /16 (bip) and the user network another.
import http from 'node:http';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, type Berthd } from '../test/helpers/berthd';
import { loadFixturesInto, timeDocker, quantile, median, intEnv, DOCKER, agentRequest as req, growContainers } from './lib';
import { runCmd } from '../test/helpers/berthd';

const LABEL = 'org.berth.bench-scale';
const NET = 'benchscale';
const REPO = path.resolve(__dirname, '..', '..');
const RESULTS = process.env.BENCH_RESULTS ?? path.join(REPO, 'bench', 'scale-results.json');
const SVG = RESULTS.replace(/-results\.json$|\.json$/, '') + '.svg';

type Figures = Record<string, number | null>;
interface Series { daemon: string; when: string; sizes: Record<string, Figures> }

const sockOf = (host: string) => host.replace(/^unix:\/\//, '');

async function api(sock: string, method: string, p: string, body?: object): Promise<string> {
  const r = await req(undefined, sock, method, p, body);
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.text}`);
  return r.text;
}

async function cli(host: string, args: string[], runs: number): Promise<number[]> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await timeDocker(host, args));
  return xs;
}

/** Delay from each event's timeNano to its arrival here, for `n` creates. */
async function eventDelays(sock: string, n: number): Promise<number[]> {
  const delays: number[] = [];
  const made: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const r = http.request({ socketPath: sock, path: `/events?filters=${encodeURIComponent(JSON.stringify({ type: ['container'], event: ['create'], label: [`${LABEL}-ev=1`] }))}` }, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        const now = Date.now() * 1e6 + Number(process.hrtime.bigint() % 1000000n);
        buf += c.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          const ev = JSON.parse(line);
          delays.push((now - Number(ev.timeNano)) / 1e6);
          if (delays.length >= n) { r.destroy(); resolve(); }
        }
      });
      (async () => {
        await new Promise((t) => setTimeout(t, 200)); // the subscription is in place
        for (let i = 0; i < n; i++) {
          made.push(JSON.parse(await api(sock, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['true'], Labels: { [LABEL]: '1', [`${LABEL}-ev`]: '1' } })).Id);
          await new Promise((t) => setTimeout(t, 50));
        }
      })().catch(reject);
    });
    r.on('error', (e) => { if (delays.length < n) reject(e); });
    r.setTimeout(60000, () => r.destroy(new Error('events: timeout')));
    r.end();
  });
  for (const id of made) await api(sock, 'DELETE', `/containers/${id}`);
  return delays;
}

/** `conns` keep-alive connections asking `paths` in turn for `secs` (bench/http-load.c, a C client: one in
 *  node saturated a core itself): requests/s and p50/p99 latency. */
async function load(sock: string, paths: string[], conns: number, secs: number): Promise<{ rps: number; p50: number; p99: number }> {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(loadTool(), [sock, String(conns), String(secs), ...paths], { timeout: (secs + 300) * 1000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`http-load: ${stderr || err.message}`)) : resolve(stdout)));
  });
  const [n, s, p50, p99, errors] = out.trim().split(' ').map(Number);
  if (errors) throw new Error(`http-load: ${errors} of ${n} requests failed on ${paths[0]}`);
  return { rps: n / s, p50, p99 };
}

let loadBin = '';
function loadTool(): string {
  if (!loadBin) {
    loadBin = path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-bench-')), 'http-load');
    execFileSync('gcc', ['-O2', '-o', loadBin, path.join(REPO, 'bench', 'http-load.c')]);
  }
  return loadBin;
}

function procStat(pid: number): { cpuTicks: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuTicks: Number(f[11]) + Number(f[12]), rssMiB: rss / 1024 };
}

async function idle(pid: number, secs: number): Promise<{ cpuPct: number; rssMiB: number }> {
  const a = procStat(pid);
  await new Promise((r) => setTimeout(r, secs * 1000));
  const b = procStat(pid);
  return { cpuPct: ((b.cpuTicks - a.cpuTicks) / 100 / secs) * 100, rssMiB: b.rssMiB };
}

function ping(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const r = http.request({ socketPath: sock, path: '/_ping', timeout: 200 }, (res) => { res.resume(); resolve(res.statusCode === 200); });
    r.on('error', () => resolve(false));
    r.on('timeout', () => { r.destroy(); resolve(false); });
    r.end();
  });
}

async function restore(b: Berthd, n: number): Promise<{ pingMs: number; psMs: number }> {
  await b.kill9();
  const t1 = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - t1) / 1e6;
  const restarted = b.restart();
  let pingMs = -1;
  for (let i = 0; i < 12000 && pingMs < 0; i++) {
    if (await ping(b.sock)) pingMs = ms();
    else await new Promise((r) => setTimeout(r, 5));
  }
  let psMs = -1;
  for (let i = 0; i < 12000 && psMs < 0; i++) {
    const r = await req(undefined, b.sock, 'GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ label: [`${LABEL}=1`] }))}`).catch(() => undefined);
    if (r?.status === 200 && (JSON.parse(r.text) as unknown[]).length >= n) psMs = ms();
    else await new Promise((t) => setTimeout(t, 5));
  }
  await restarted;
  return { pingMs, psMs };
}

async function measure(name: string, host: string, pid: number | undefined, sizes: number[], keep: (s: Series) => void, b?: Berthd): Promise<Series> {
  const sock = sockOf(host);
  const runs = intEnv('BENCH_RUNS', 10);
  const clients = intEnv('BENCH_CLIENTS', 8);
  const series: Series = { daemon: name, when: new Date().toISOString(), sizes: {} };
  await loadFixturesInto(host, ['busybox']);
  const netCreate = await runCmd(DOCKER, ['network', 'create', '--subnet', '10.218.0.0/16', '--label', `${LABEL}=1`, NET], { env: { DOCKER_HOST: host } });
  if (netCreate.code !== 0) throw new Error(`network create on ${host}: ${netCreate.stderr}`);
  const ids: string[] = [];
  let have = 0;
  for (const n of sizes) {
    const f: Figures = {};
    const log = (k: string, v: number | null, unit: string) => {
      f[k] = v === null ? null : Math.round(v * 100) / 100;
      console.log(`  ${name} N=${n} ${k.padEnd(16)} ${v === null ? '—' : v.toFixed(v < 10 ? 2 : 1)} ${unit}`);
    };
    // berthd's RSS after each step, printed only: which load leaves memory behind (issue 17's RSS goal).
    const rss = (after: string) => {
      if (pid) console.log(`  ${name} N=${n} rss after ${after}: ${procStat(pid).rssMiB.toFixed(0)} MiB`);
    };
    log('start_per_s', await growContainers(sock, have, n, clients, { network: NET, labels: { [LABEL]: '1' }, ids }), 'containers/s');
    rss('growing');
    have = n;
    log('run_rm_ms', median(await cli(host, ['run', '--rm', 'busybox', 'true'], Math.max(3, runs / 2))), 'ms');
    const ps = await cli(host, ['ps'], runs * 2);
    log('ps_p50_ms', quantile(ps, 0.5), 'ms');
    log('ps_p99_ms', quantile(ps, 0.99), 'ms');
    const psa = await cli(host, ['ps', '-a'], runs * 2);
    log('ps_a_p50_ms', quantile(psa, 0.5), 'ms');
    log('ps_a_p99_ms', quantile(psa, 0.99), 'ms');
    log('inspect_ms', median(await cli(host, ['inspect', ids[Math.floor(n / 2)]], runs)), 'ms');
    rss('run, ps, inspect');
    // rm of an exited container: made and run to its end first, then removed (API, then CLI).
    const rmApi: number[] = [];
    const rmCli: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (const sink of [rmApi, rmCli]) {
        const id = JSON.parse(await api(sock, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['true'], Labels: { [LABEL]: '1' } })).Id;
        await api(sock, 'POST', `/containers/${id}/start`);
        await api(sock, 'POST', `/containers/${id}/wait`);
        if (sink === rmApi) {
          const r = await req(undefined, sock, 'DELETE', `/containers/${id}`);
          if (r.status !== 204) throw new Error(`rm: ${r.status} ${r.text}`);
          sink.push(r.ms);
        } else sink.push(await timeDocker(host, ['rm', id]));
      }
    }
    log('rm_api_ms', median(rmApi), 'ms');
    log('rm_cli_ms', median(rmCli), 'ms');
    log('events_delay_ms', median(await eventDelays(sock, Math.max(5, runs))), 'ms');
    log('stats_all_ms', median(await cli(host, ['stats', '--no-stream'], n >= 500 ? 1 : 3)), 'ms');
    rss('rm, events, stats');
    const nc: number[] = [];
    const conn: number[] = [];
    for (let i = 0; i < Math.max(3, runs / 3); i++) {
      nc.push(await timeDocker(host, ['network', 'create', '--label', `${LABEL}=1`, `${NET}-x`]));
      conn.push(await timeDocker(host, ['network', 'connect', `${NET}-x`, ids[0]]));
      await timeDocker(host, ['network', 'disconnect', `${NET}-x`, ids[0]]);
      await timeDocker(host, ['network', 'rm', `${NET}-x`]);
    }
    log('net_create_ms', median(nc), 'ms');
    log('net_connect_ms', median(conn), 'ms');
    rss('network create/connect');
    const secs = intEnv('BENCH_API_SECS', 3);
    for (const [k, paths] of [['ping', ['/_ping']], ['list', ['/containers/json']], ['inspect', ids.slice(0, n).filter((_, i) => i % Math.max(1, Math.floor(n / 50)) === 0).map((id) => `/containers/${id}/json`)]] as const) {
      // A daemon that fails requests under this load (berthd before issue 17 answered 408 to lists of 1000
      // that waited behind each other past the header timeout) gets no figure, and the failure is printed.
      const r = await load(sock, [...paths], 16, secs).catch((e: Error) => { console.log(`  ${name} N=${n} api_${k}: ${e.message}`); return undefined; });
      log(`api_${k}_rps`, r ? r.rps : null, 'req/s');
      log(`api_${k}_p99_ms`, r ? r.p99 : null, 'ms');
      rss(`16 connections on ${k}`);
    }
    if (pid) {
      await new Promise((r) => setTimeout(r, 3000)); // what the figures above left running settles
      const i = await idle(pid, intEnv('BENCH_IDLE_SECS', 10));
      log('idle_cpu_pct', i.cpuPct, '%');
      log('idle_rss_mib', i.rssMiB, 'MiB');
    }
    if (b) {
      const r = await restore(b, n);
      log('restore_ping_ms', r.pingMs, 'ms');
      log('restore_ps_ms', r.psMs, 'ms');
      pid = b.proc.pid;
    }
    series.sizes[String(n)] = f;
    keep(series); // saved (and plotted) after every size
  }
  return series;
}

async function cleanupOther(host: string): Promise<void> {
  const env = { DOCKER_HOST: host };
  const ids = (await runCmd(DOCKER, ['ps', '-aq', '--filter', `label=${LABEL}=1`], { env })).stdout.split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 100) await runCmd(DOCKER, ['rm', '-f', ...ids.slice(i, i + 100)], { env, timeoutMs: 600000 });
  await runCmd(DOCKER, ['network', 'rm', NET], { env });
}

// ---- the plot ----------------------------------------------------------------------------------------

const PANELS: Array<[string, string, string[]]> = [
  ['docker run --rm true', 'ms', ['run_rm_ms']],
  ['start rate, 8 clients', 'containers/s', ['start_per_s']],
  ['docker ps (p50, p99)', 'ms', ['ps_p50_ms', 'ps_p99_ms']],
  ['docker ps -a (p50, p99)', 'ms', ['ps_a_p50_ms', 'ps_a_p99_ms']],
  ['docker inspect', 'ms', ['inspect_ms']],
  ['docker rm (API, CLI)', 'ms', ['rm_api_ms', 'rm_cli_ms']],
  ['events delivery delay', 'ms', ['events_delay_ms']],
  ['docker stats --no-stream', 'ms', ['stats_all_ms']],
  ['network create, connect', 'ms', ['net_create_ms', 'net_connect_ms']],
  ['API, 16 conns: req/s', 'req/s', ['api_ping_rps', 'api_list_rps', 'api_inspect_rps']],
  ['daemon RSS at idle', 'MiB', ['idle_rss_mib']],
  ['daemon CPU at idle', '%', ['idle_cpu_pct']],
  ['after kill -9: /_ping, full ps', 'ms', ['restore_ping_ms', 'restore_ps_ms']],
];

function svg(all: Series[]): string {
  const W = 300; const H = 190; const cols = 4;
  const colors: Record<string, string> = { berthd: '#1f77b4', docker: '#d62728', 'berthd-before': '#999' };
  const dashes = ['', '5,3', '2,2'];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out: string[] = [];
  const rows = Math.ceil(PANELS.length / cols);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${cols * W}" height="${rows * H + 30}" font-family="sans-serif" font-size="10">`);
  out.push('<rect width="100%" height="100%" fill="white"/>');
  out.push('<text x="8" y="18" font-size="13">berth at scale: each figure against the number of running containers</text>');
  all.forEach((s, i) => {
    const x = 330 + i * 150;
    out.push(`<line x1="${x}" y1="14" x2="${x + 24}" y2="14" stroke="${colors[s.daemon] ?? '#999'}" stroke-width="2"/><text x="${x + 28}" y="18">${esc(s.daemon)}</text>`);
  });
  out.push(`<text x="${cols * W - 8}" y="18" text-anchor="end" fill="#666">a panel's 2nd and 3rd figure dashed (names under each panel)</text>`);
  PANELS.forEach(([title, unit, keys], p) => {
    const ox = (p % cols) * W; const oy = 30 + Math.floor(p / cols) * H;
    const px = ox + 45; const py = oy + 20; const pw = W - 60; const ph = H - 55;
    const pts: Array<{ s: Series; k: number; xy: Array<[number, number]> }> = [];
    const sizes = [...new Set(all.flatMap((s) => Object.keys(s.sizes).map(Number)))].sort((a, b) => a - b);
    let max = 0;
    for (const s of all) keys.forEach((key, k) => {
      const xy = sizes.filter((n) => typeof s.sizes[n]?.[key] === 'number').map((n) => [n, s.sizes[n][key] as number] as [number, number]);
      for (const [, v] of xy) max = Math.max(max, v);
      pts.push({ s, k, xy });
    });
    max = max > 0 ? max * 1.1 : 1;
    const xmax = Math.max(...sizes, 1);
    const X = (n: number) => px + (n / xmax) * pw;
    const Y = (v: number) => py + ph - (v / max) * ph;
    out.push(`<text x="${ox + 8}" y="${oy + 12}" font-size="11" font-weight="bold">${esc(title)} (${esc(unit)})</text>`);
    out.push(`<line x1="${px}" y1="${py + ph}" x2="${px + pw}" y2="${py + ph}" stroke="#888"/><line x1="${px}" y1="${py}" x2="${px}" y2="${py + ph}" stroke="#888"/>`);
    for (const t of [0, 0.5, 1]) out.push(`<text x="${px - 4}" y="${Y(max * t) + 3}" text-anchor="end">${+(max * t).toPrecision(3)}</text>`);
    for (const n of sizes) out.push(`<text x="${X(n)}" y="${py + ph + 12}" text-anchor="middle">${n}</text>`);
    for (const { s, k, xy } of pts) {
      if (!xy.length) continue;
      const c = colors[s.daemon] ?? '#999';
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" stroke-dasharray="${dashes[k] ?? ''}" points="${xy.map(([n, v]) => `${X(n).toFixed(1)},${Y(v).toFixed(1)}`).join(' ')}"/>`);
      for (const [n, v] of xy) out.push(`<circle cx="${X(n).toFixed(1)}" cy="${Y(v).toFixed(1)}" r="2" fill="${c}"/>`);
    }
    out.push(`<text x="${px + pw}" y="${py + ph + 24}" text-anchor="end" fill="#666">${esc(keys.join(', '))}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

async function main(): Promise<void> {
  // Output piped into head(1) that closes early must not kill this process before its daemon is destroyed
  // (an EPIPE on stdout would, leaving containers, bridges and mounts behind).
  process.stdout.on('error', () => undefined);
  if (process.argv[2] === '--plot') {
    writeFileSync(SVG, svg(JSON.parse(readFileSync(RESULTS, 'utf8'))));
    return;
  }
  const sizes = (process.env.BENCH_SIZES ?? '10,100,500,1000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
  const other = process.env.BENCH_DOCKER_HOST || undefined;
  const only = process.env.BENCH_ONLY; // 'berthd' or 'docker': measure one of the two
  const saved: Series[] = existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, 'utf8')) : [];
  const keep = (s: Series) => {
    const i = saved.findIndex((x) => x.daemon === s.daemon);
    if (i >= 0) saved[i] = s; else saved.push(s);
    writeFileSync(RESULTS, JSON.stringify(saved, null, 1) + '\n');
    writeFileSync(SVG, svg(saved));
  };
  if (only !== 'docker') {
    const b = await startBerthd({ daemonJson: { bip: '10.216.0.1/16', 'default-address-pools': [{ base: '10.217.0.0/16', size: 24 }] } });
    const bye = () => { void b.destroy().finally(() => process.exit(130)); };
    process.once('SIGINT', bye);
    process.once('SIGTERM', bye);
    try {
      keep(await measure('berthd', b.host, b.proc.pid, sizes, keep, b));
    } finally {
      await b.destroy();
      // The bench's user network lives in the daemon's database; its bridge is removed by destroy() only
      // when named there, which it is.
    }
  }
  if (other && only !== 'berthd') {
    const pid = Number(process.env.BENCH_DOCKER_PID) || undefined;
    try {
      keep(await measure('docker', other, pid, sizes, keep));
    } finally {
      await cleanupOther(other);
    }
  }
  if (loadBin) rmSync(path.dirname(loadBin), { recursive: true, force: true });
  console.log(`results: ${RESULTS}\nplot: ${SVG}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
