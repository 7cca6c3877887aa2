// Throughput of `docker pull` and `docker load` for a ~300 MiB image of 3 layers of incompressible (random)
// data, against a berthd this script starts and, with BENCH_DOCKER_HOST (or an argument), another daemon in
// the same run, interleaved run by run. The image is made here: three layer tars of random files, written
// into a `docker save` archive (the load input), loaded into berthd and pushed from there to a Debian
// docker-registry this script starts on a loopback port (the pull source; the push is timed too).
//
// When the other daemon lives in a network namespace of its own (bench/README.md), give a pid inside that
// namespace as BENCH_DOCKER_NETNS_PID (e.g. the dockerd's): a second registry process is started there on
// the same port and the same storage directory, so both daemons pull the same blobs from 127.0.0.1.
//   node dist/bench/pull-load.js [unix:///run/docker-peer.sock]
//   BENCH_RUNS (3), BENCH_LAYER_MIB (100), BENCH_FILES_PER_LAYER (4), BENCH_CONTENT (random; binaries: /usr/bin's programs)
// Also printed: the CPU seconds each daemon used per pull, and its peak memory during each pull and load
// (VmHWM after a reset through clear_refs, and VmRSS/RssAnon sampled every 20 ms), when its pid is known;
// the image is pushed from a berthd of its own, so the measured one starts fresh. For looking into a pull:
//   BENCH_LOAD=0 (pulls only), BENCH_THREADS=1 (berthd's CPU by thread), BENCH_PERF=file (perf record -g of
//   berthd over the runs), BENCH_AB="VAR=value ..." (the other daemon is a second berthd with those
//   variables in its environment).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar-stream';
import { runCmd } from '../test/helpers/berthd';
import { benchBerthd, otherHost, timeDocker, DOCKER, median, summary, intEnv } from './lib';
import { freePort } from '../test/helpers/registry';

const MiB = 1024 * 1024;


/** Writes a tar stream to `file`; resolves with its sha256 and size. */
async function writeTar(file: string, fill: (p: tar.Pack) => Promise<void>): Promise<{ digest: string; size: number }> {
  const p = tar.pack();
  const h = createHash('sha256');
  let size = 0;
  const ws = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    p.on('data', (d: unknown) => {
      const c = d as Buffer;
      h.update(c);
      size += c.length;
      if (!ws.write(c)) {
        p.pause();
        ws.once('drain', () => p.resume());
      }
    });
    p.on('end', () => ws.end(resolve));
    p.on('error', reject);
    ws.on('error', reject);
  });
  await fill(p);
  p.finalize();
  await done;
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** Adds a member whose body is streamed from `body`. */
function addStream(p: tar.Pack, header: Partial<tar.Header> & { name: string }, body: AsyncIterable<Buffer>): Promise<void> {
  return new Promise((resolve, reject) => {
    const e = p.entry(header, (err) => (err ? reject(err) : resolve()));
    (async () => {
      for await (const c of body) if (!e.write(c)) await new Promise<void>((r) => e.once('drain', r));
      (e as unknown as { end(): void }).end();
    })().catch(reject);
  });
}

/** BENCH_CONTENT=binaries: the files are the host's /usr/bin programs one after another (compressible about
 *  3:1, as real layers are) instead of random bytes (which deflate cannot shrink). */
let programs: { files: string[]; at: number } | undefined;
async function* programBytes(n: number): AsyncGenerator<Buffer> {
  programs ??= { files: readdirSync('/usr/bin').map((f) => path.join('/usr/bin', f)).filter((f) => { try { return statSync(f).isFile(); } catch { return false; } }).sort(), at: 0 };
  for (let left = n; left > 0;) {
    const f = programs.files[programs.at++ % programs.files.length];
    const b = readFileSync(f).subarray(0, left);
    left -= b.length;
    if (b.length) yield b;
  }
}

async function* randomBytesStream(n: number): AsyncGenerator<Buffer> {
  if (process.env.BENCH_CONTENT === 'binaries') {
    yield* programBytes(n);
    return;
  }
  for (let left = n; left > 0; left -= MiB) {
    const b = Buffer.allocUnsafe(Math.min(MiB, left));
    randomFillSync(b);
    yield b;
  }
}

export interface Made { archive: string; layerBytes: number; diffIds: string[] }

/** Three (BENCH_LAYERS) layer tars of random files, and the `docker save` archive holding them. */
export async function makeImage(dir: string, ref: string): Promise<Made> {
  const layerMiB = intEnv('BENCH_LAYER_MIB', 100);
  const files = intEnv('BENCH_FILES_PER_LAYER', 4);
  const layers: { file: string; digest: string; size: number }[] = [];
  for (let i = 0; i < intEnv('BENCH_LAYERS', 3); i++) {
    const file = path.join(dir, `layer${i}.tar`);
    const r = await writeTar(file, async (p) => {
      await new Promise<void>((res, rej) => p.entry({ name: `data${i}/`, type: 'directory', mode: 0o755, mtime: new Date(0) }, (e) => (e ? rej(e) : res())));
      const per = Math.floor((layerMiB * MiB) / files);
      for (let f = 0; f < files; f++) {
        await addStream(p, { name: `data${i}/f${f}.bin`, size: per, mode: 0o644, mtime: new Date(0) }, randomBytesStream(per));
      }
    });
    layers.push({ file, ...r });
  }
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `bench layer ${i}` })),
  }));
  const cfgHex = createHash('sha256').update(config).digest('hex');
  const archive = path.join(dir, 'image.tar');
  await writeTar(archive, async (p) => {
    for (const l of layers) {
      await addStream(p, { name: `blobs/sha256/${l.digest.slice(7)}`, size: l.size, mode: 0o644, mtime: new Date(0) }, createReadStream(l.file, { highWaterMark: MiB }) as AsyncIterable<Buffer>);
    }
    await new Promise<void>((res, rej) => p.entry({ name: `blobs/sha256/${cfgHex}`, mode: 0o644, mtime: new Date(0) }, config, (e) => (e ? rej(e) : res())));
    const manifest = JSON.stringify([{ Config: `blobs/sha256/${cfgHex}`, RepoTags: [ref], Layers: layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) }]);
    await new Promise<void>((res, rej) => p.entry({ name: 'manifest.json', mode: 0o644, mtime: new Date(0) }, manifest, (e) => (e ? rej(e) : res())));
  });
  for (const l of layers) rmSync(l.file, { force: true });
  return { archive, layerBytes: layers.reduce((n, l) => n + l.size, 0), diffIds: layers.map((l) => l.digest) };
}

export async function waitRegistry(base: string, netnsPid?: string): Promise<void> {
  const until = Date.now() + 15000;
  for (;;) {
    const r = netnsPid
      ? await runCmd('nsenter', [`--net=/proc/${netnsPid}/ns/net`, 'curl', '-fsS', `${base}/v2/`])
      : await fetch(`${base}/v2/`).then((x) => ({ code: x.ok ? 0 : 1 }), () => ({ code: 1 }));
    if (r.code === 0) return;
    if (Date.now() > until) throw new Error(`the registry at ${base}${netnsPid ? ` (netns of ${netnsPid})` : ''} did not answer`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

export async function docker(host: string, args: string[], allowFail = false): Promise<string> {
  const r = await runCmd(DOCKER, args, { env: { DOCKER_HOST: host }, timeoutMs: 600000 });
  if (r.code !== 0 && !allowFail) throw new Error(`docker ${args.join(' ')} on ${host}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Removes the image (all its names) so that the next pull or load starts from nothing. */
async function clean(host: string, names: string[]): Promise<void> {
  for (const n of names) await docker(host, ['rmi', '-f', n], true);
}

/** CPU seconds (user + system, all threads, waited-for children) a process has used, or NaN. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // Fields 14-17 (utime, stime, cutime, cstime), counted from after the command name.
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds of each thread of `pid`, summed by thread name (BENCH_THREADS=1). */
function threadCpu(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (!pid) return out;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const raw = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = raw.slice(raw.indexOf('(') + 1, raw.lastIndexOf(')'));
      const f = raw.slice(raw.lastIndexOf(') ') + 2).split(' ');
      const key = tid === String(pid) ? 'main' : `${name}:${tid}`;
      out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    } catch { /* gone */ }
  }
  return out;
}

const mibs = (bytes: number, ms: number) => (bytes / MiB) / (ms / 1000);

/** A field of /proc/<pid>/status in kB (VmRSS, RssAnon, VmHWM, …), or NaN. */
function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

interface MemPeak { base: number; hwm: number; rss: number; anon: number }

/**
 * The peak memory of process `pid` while `fn` runs (MiB): VmHWM after resetting it (writing 5 to
 * /proc/<pid>/clear_refs) and the largest VmRSS and RssAnon seen by sampling every 20 ms; `base` is VmRSS
 * just before. Undefined figures (no pid, another user's process) are NaN.
 */
async function peakDuring<T>(pid: number | undefined, fn: () => Promise<T>): Promise<{ value: T; mem: MemPeak }> {
  const mem: MemPeak = { base: NaN, hwm: NaN, rss: NaN, anon: NaN };
  if (!pid) return { value: await fn(), mem };
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch { /* not allowed: VmHWM is then the peak since the start */ }
  mem.base = statusKb(pid, 'VmRSS') / 1024;
  let rss = 0;
  let anon = 0;
  const sample = () => {
    rss = Math.max(rss, statusKb(pid, 'VmRSS') || 0);
    anon = Math.max(anon, statusKb(pid, 'RssAnon') || 0);
  };
  const timer = setInterval(sample, 20);
  try {
    const value = await fn();
    sample();
    mem.hwm = statusKb(pid, 'VmHWM') / 1024;
    mem.rss = rss / 1024;
    mem.anon = anon / 1024;
    return { value, mem };
  } finally {
    clearInterval(timer);
  }
}

const memSummary = (ms: MemPeak[]) => {
  const f = (k: keyof MemPeak) => median(ms.map((m) => m[k])).toFixed(0);
  const max = (k: keyof MemPeak) => Math.max(...ms.map((m) => m[k])).toFixed(0);
  const each = ms.map((m) => `${m.base.toFixed(0)}→${m.hwm.toFixed(0)}`).join(' ');
  return `peak RSS (VmHWM) median ${f('hwm')} MiB, max ${max('hwm')}; sampled max RssAnon ${f('anon')} MiB; per run RSS before→peak: ${each}`;
};

async function main(): Promise<void> {
  const runs = intEnv('BENCH_RUNS', 3);
  // BENCH_LOAD=0: pulls only (to profile a pull alone).
  const doLoad = process.env.BENCH_LOAD !== '0';
  let other = otherHost();
  const netnsPid = process.env.BENCH_DOCKER_NETNS_PID || undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-pull-'));
  const procs: ChildProcess[] = [];
  const b = await benchBerthd();
  // BENCH_AB="NAME=value ...": the other daemon is a second berthd started with those variables in its
  // environment (A/B of a change that reads them), interleaved with the first as Docker Engine would be.
  let ab: Awaited<ReturnType<typeof benchBerthd>> | undefined;
  try {
    if (process.env.BENCH_AB) {
      const vars = process.env.BENCH_AB.split(/\s+/).filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]);
      for (const [k, v] of vars) process.env[k] = v;
      try {
        ab = await benchBerthd();
      } finally {
        for (const [k] of vars) delete process.env[k];
      }
    }
    if (ab) other = ab.host;
    const port = await freePort();
    const reg = `127.0.0.1:${port}`;
    const cfg = path.join(dir, 'registry.yml');
    writeFileSync(cfg, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'registry-data')}\nhttp:\n  addr: ${reg}\n`);
    procs.push(spawn('docker-registry', ['serve', cfg], { stdio: 'ignore' }));
    await waitRegistry(`http://${reg}`);
    if (other && netnsPid) {
      await runCmd('nsenter', [`--net=/proc/${netnsPid}/ns/net`, 'ip', 'link', 'set', 'lo', 'up']);
      procs.push(spawn('nsenter', [`--net=/proc/${netnsPid}/ns/net`, 'docker-registry', 'serve', cfg], { stdio: 'ignore' }));
      await waitRegistry(`http://${reg}`, netnsPid);
    }

    const local = 'bench-pull-load:1';
    const remote = `${reg}/bench/pull-load:1`;
    process.stdout.write('making the image… ');
    const made = await makeImage(dir, local);
    const total = made.layerBytes;
    console.log(`${(total / MiB).toFixed(0)} MiB in ${made.diffIds.length} layers; archive ${(statSync(made.archive).size / MiB).toFixed(0)} MiB`);

    // The image is pushed from a berthd of its own, so that the measured one starts the runs with the
    // memory of a fresh daemon (a process keeps much of what it once used: malloc's arenas, V8's heap).
    const pusher = await benchBerthd();
    try {
      await docker(pusher.host, ['load', '-q', '-i', made.archive]);
      await docker(pusher.host, ['tag', local, remote]);
      const tPush = await timeDocker(pusher.host, ['push', remote]);
      console.log(`push from berthd to the loopback registry: ${(tPush / 1000).toFixed(2)} s, ${mibs(total, tPush).toFixed(0)} MiB/s (gzip of random data)`);
    } finally {
      await pusher.destroy();
    }
    console.log(`berthd's memory before the runs: VmRSS ${(statusKb(b.proc.pid!, 'VmRSS') / 1024).toFixed(0)} MiB, RssAnon ${(statusKb(b.proc.pid!, 'RssAnon') / 1024).toFixed(0)} MiB`);

    // The daemon's CPU time per pull is shown when its pid is known (berthd's; the other's from
    // BENCH_DOCKER_NETNS_PID, which is dockerd's own pid when given as the README says).
    const targets = [{ name: 'berthd', host: b.host, pid: b.proc.pid, pull: [] as number[], cpu: [] as number[], load: [] as number[], pullMem: [] as MemPeak[], loadMem: [] as MemPeak[] }];
    if (other) targets.push({ name: 'other', host: other, pid: ab ? ab.proc.pid : netnsPid ? Number(netnsPid) : undefined, pull: [], cpu: [], load: [], pullMem: [], loadMem: [] });
    for (const t of targets) await clean(t.host, [local, remote]);
    // BENCH_PERF=file: `perf record` of berthd over the runs (perf report -i file).
    const perf = process.env.BENCH_PERF ? spawn('perf', ['record', '-F', '1999', '-g', '-p', String(b.proc.pid), '-o', process.env.BENCH_PERF], { stdio: 'ignore' }) : undefined;
    if (perf) await new Promise((r) => setTimeout(r, 1000));
    const th0 = targets.map((t) => threadCpu(process.env.BENCH_THREADS === '1' ? t.pid : undefined));
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const c0 = cpuSeconds(t.pid);
        const p = await peakDuring(t.pid, () => timeDocker(t.host, ['pull', '-q', remote]));
        t.pull.push(p.value);
        t.pullMem.push(p.mem);
        t.cpu.push(cpuSeconds(t.pid) - c0);
        await clean(t.host, [remote]);
        if (!doLoad) continue;
        const l = await peakDuring(t.pid, () => timeDocker(t.host, ['load', '-q', '-i', made.archive]));
        t.load.push(l.value);
        t.loadMem.push(l.mem);
        await clean(t.host, [local]);
      }
    }
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((r) => perf.once('exit', r));
    }
    targets.forEach((t, i) => {
      const th1 = threadCpu(process.env.BENCH_THREADS === '1' ? t.pid : undefined);
      const parts = [...th1].map(([k, v]) => [k, v - (th0[i].get(k) ?? 0)] as const).filter(([, v]) => v > 0.05).sort((x, y) => y[1] - x[1]);
      if (parts.length) console.log(`  ${t.name} CPU by thread over all runs: ${parts.map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ')}`);
    });
    console.log(`docker pull and docker load of a ${(total / MiB).toFixed(0)} MiB image (3 layers of random data), ${runs} runs each, interleaved`);
    console.log(`  berthd = ${b.host} (started by this script)${other ? `\n  other  = ${other}` : ''}`);
    for (const t of targets) {
      const cpu = Number.isNaN(median(t.cpu)) ? '' : `, daemon CPU ${median(t.cpu).toFixed(2)} s`;
      console.log(`  ${t.name.padEnd(7)} pull ${summary(t.pull)}  → ${mibs(total, median(t.pull)).toFixed(0)} MiB/s${cpu}`);
      if (t.pid) console.log(`  ${' '.repeat(7)}      ${memSummary(t.pullMem)}`);
      if (doLoad) console.log(`  ${t.name.padEnd(7)} load ${summary(t.load)}  → ${mibs(total, median(t.load)).toFixed(0)} MiB/s`);
      if (doLoad && t.pid) console.log(`  ${' '.repeat(7)}      ${memSummary(t.loadMem)}`);
    }
    if (targets.length > 1) {
      const [me, them] = targets;
      const load = doLoad ? `, load ${(median(them.load) / median(me.load)).toFixed(2)}x` : '';
      console.log(`ratio berthd / other throughput: pull ${(median(them.pull) / median(me.pull)).toFixed(2)}x${load} (goal: at least 1.5x)`);
    }
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await b.destroy();
    await ab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

// bench/push.js imports the image maker and registry helpers; only running this file runs the bench.
if (require.main === module) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
