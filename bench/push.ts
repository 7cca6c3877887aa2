// docker push throughput (issue 17): the image of pull-load.js (three layers of 100 MiB of random files,
// BENCH_LAYER_MIB / BENCH_FILES_PER_LAYER / BENCH_LAYERS) loaded into a berthd of this script's own and, with
// BENCH_DOCKER_HOST, into another daemon, then pushed BENCH_RUNS (3) times each, interleaved, alternating
// which goes first. Every push goes to a fresh Debian docker-registry (new port, new storage), so that no
// blob is already there or mountable and every layer is compressed and uploaded. A Docker Engine in a
// network namespace of its own gets its registry started in that namespace (BENCH_DOCKER_NETNS_PID, e.g.
// dockerd's pid, as in pull-load.js). Prints the median wall time, MiB/s of layer tar bytes, and CPU seconds
// per push of each daemon (berthd's own; the other's when BENCH_DOCKER_NETNS_PID is its pid), and the bytes
// of the layer blobs each pushed (the compression ratio each reached). With another
// daemon, berthd's push (a gzip member per 1 MiB block, pgzip.ts) is then pulled by that daemon and its layers
// compared, so a Docker Engine is seen to read what berthd writes (BENCH_CROSS_PULL=0 leaves that out).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCmd } from '../test/helpers/berthd';
import { benchBerthd, otherHost, timeDocker, median, summary, intEnv } from './lib';
import { freePort } from '../test/helpers/registry';
import { makeImage, waitRegistry, docker, cpuSeconds } from './pull-load';

const MiB = 1024 * 1024;

interface Target { name: string; host: string; pid?: number; netnsPid?: string; times: number[]; cpu: number[]; bytes: number[] }

/** A registry on a free loopback port with empty storage, or the storage `data` of another registry (in
 *  `netnsPid`'s network namespace if given). */
async function freshRegistry(dir: string, netnsPid?: string, data?: string): Promise<{ addr: string; data: string; stop(): void }> {
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const root = mkdtempSync(path.join(dir, 'reg-'));
  const cfg = path.join(root, 'registry.yml');
  data ??= path.join(root, 'data');
  writeFileSync(cfg, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${data}\nhttp:\n  addr: ${addr}\n`);
  const proc: ChildProcess = netnsPid
    ? spawn('nsenter', [`--net=/proc/${netnsPid}/ns/net`, 'docker-registry', 'serve', cfg], { stdio: 'ignore' })
    : spawn('docker-registry', ['serve', cfg], { stdio: 'ignore' });
  const stop = () => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await waitRegistry(`http://${addr}`, netnsPid);
  } catch (e) {
    stop();
    throw e;
  }
  return { addr, data, stop };
}

/** The bytes of the layer blobs the manifest of `repo:tag` names (what the registry stores and a pull fetches). */
async function layerBytes(addr: string, repo: string, tag: string, netnsPid?: string): Promise<number> {
  const url = `http://${addr}/v2/${repo}/manifests/${tag}`;
  const accept = 'application/vnd.docker.distribution.manifest.v2+json';
  const text = netnsPid
    ? (await runCmd('nsenter', [`--net=/proc/${netnsPid}/ns/net`, 'curl', '-fsS', '-H', `Accept: ${accept}`, url])).stdout
    : await (await fetch(url, { headers: { Accept: accept } })).text();
  return (JSON.parse(text) as { layers: { size: number }[] }).layers.reduce((n, l) => n + l.size, 0);
}

/** berthd pushes `local`; the other daemon pulls it (from a registry on the same storage in its namespace)
 *  and must end with the same layers (diff ids), i.e. it read every gzip member of every blob. */
async function crossPull(dir: string, berthHost: string, other: string, local: string, netnsPid?: string): Promise<void> {
  const mine = await freshRegistry(dir);
  const theirs = netnsPid ? await freshRegistry(dir, netnsPid, mine.data) : mine;
  const pushed = `${mine.addr}/bench/cross:1`;
  const pulled = `${theirs.addr}/bench/cross:1`;
  try {
    await docker(berthHost, ['tag', local, pushed]);
    await docker(berthHost, ['push', pushed]);
    await docker(other, ['pull', pulled]);
    const layers = async (host: string, ref: string) => (await docker(host, ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref])).trim();
    const [a, b] = [await layers(berthHost, local), await layers(other, pulled)];
    if (a !== b) throw new Error(`the other daemon pulled berthd's push with other layers: ${b} against ${a}`);
    console.log(`cross-check: the other daemon pulled berthd's push, same ${JSON.parse(a).length} layers`);
  } finally {
    await docker(berthHost, ['rmi', pushed], true);
    await docker(other, ['rmi', pulled], true);
    if (theirs !== mine) theirs.stop();
    mine.stop();
  }
}

async function main(): Promise<void> {
  const runs = intEnv('BENCH_RUNS', 3);
  const other = otherHost();
  const netnsPid = process.env.BENCH_DOCKER_NETNS_PID || undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-push-'));
  const b = await benchBerthd();
  try {
    if (netnsPid) await runCmd('nsenter', [`--net=/proc/${netnsPid}/ns/net`, 'ip', 'link', 'set', 'lo', 'up']);
    const local = 'bench-push:1';
    process.stdout.write('making the image… ');
    const made = await makeImage(dir, local);
    const total = made.layerBytes;
    console.log(`${(total / MiB).toFixed(0)} MiB in ${made.diffIds.length} layers`);
    const targets: Target[] = [{ name: 'berthd', host: b.host, pid: b.proc.pid, times: [], cpu: [], bytes: [] }];
    if (other) targets.push({ name: 'other', host: other, pid: netnsPid ? Number(netnsPid) : undefined, netnsPid, times: [], cpu: [], bytes: [] });
    for (const t of targets) await docker(t.host, ['load', '-q', '-i', made.archive]);
    rmSync(made.archive, { force: true });
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const reg = await freshRegistry(dir, t.netnsPid);
        const remote = `${reg.addr}/bench/push:${i}`;
        try {
          await docker(t.host, ['tag', local, remote]);
          const c0 = cpuSeconds(t.pid);
          const ms = await timeDocker(t.host, ['push', remote]);
          t.cpu.push(cpuSeconds(t.pid) - c0);
          t.times.push(ms);
          t.bytes.push(await layerBytes(reg.addr, 'bench/push', String(i), t.netnsPid));
          console.log(`  run ${i + 1} ${t.name.padEnd(7)} ${(ms / 1000).toFixed(2)} s, ${((total / MiB) / (ms / 1000)).toFixed(0)} MiB/s, CPU ${t.cpu[t.cpu.length - 1].toFixed(2)} s, blobs ${t.bytes[t.bytes.length - 1]} bytes`);
        } finally {
          await docker(t.host, ['rmi', remote], true);
          reg.stop();
        }
      }
    }
    if (other && process.env.BENCH_CROSS_PULL !== '0') await crossPull(dir, b.host, other, local, netnsPid);
    console.log(`docker push of ${(total / MiB).toFixed(0)} MiB (layer tar bytes), median of ${runs}:`);
    for (const t of targets) {
      const cpu = t.cpu.filter((x) => !Number.isNaN(x));
      console.log(`  ${t.name.padEnd(7)} ${summary(t.times)}  → ${((total / MiB) / (median(t.times) / 1000)).toFixed(0)} MiB/s${cpu.length ? `, CPU ${median(cpu).toFixed(2)} s per push` : ''}, blobs ${median(t.bytes)} bytes`);
    }
    if (targets.length > 1) console.log(`ratio berthd / other throughput: ${(median(targets[1].times) / median(targets[0].times)).toFixed(2)}x (goal: at least 1.5x)`);
  } finally {
    await b.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
