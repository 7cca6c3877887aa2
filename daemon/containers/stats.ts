// docker stats: GET /containers/{id}/stats. The numbers come from the container's cgroup files through the
// runtime; this file shapes them as Docker's StatsJSON (samples/stats-stream0.json). In stream mode one
// object goes out per second, the first with a zero precpu_stats and preread; stream=0 waits a second so
// that precpu_stats is filled (the CLI computes CPU % from the difference), unless one-shot is asked.
import { readKernelFile } from '../lib/kernfs';
import { totalmem } from 'node:os';
import type { CgroupStats } from '../runtime/runtime';
import { nowNs, rfc3339Nano, ZERO_TIME } from '../lib/time';
import type { ContainerService, Live } from './service';

type Json = Record<string, unknown>;

const ZERO_CPU = () => ({
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
});

const EMPTY_BLKIO = () => ({
  io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null,
  io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
});

/** What Docker sends for a container that is not running. */
export function emptyStats(live: Live): Json {
  return {
    read: ZERO_TIME, preread: ZERO_TIME, pids_stats: {}, blkio_stats: EMPTY_BLKIO(), num_procs: 0, storage_stats: {},
    cpu_stats: ZERO_CPU(), precpu_stats: ZERO_CPU(), memory_stats: {}, name: live.rec.name, id: live.rec.id,
  };
}

function cpuJson(s: CgroupStats): Json {
  const usage: Json = { total_usage: s.cpu.totalUsage };
  if (s.cpu.percpu) usage.percpu_usage = s.cpu.percpu;
  usage.usage_in_kernelmode = s.cpu.kernel;
  usage.usage_in_usermode = s.cpu.user;
  return {
    cpu_usage: usage,
    system_cpu_usage: s.systemUsage,
    online_cpus: s.onlineCpus,
    throttling_data: { periods: s.cpu.throttling.periods, throttled_periods: s.cpu.throttling.throttledPeriods, throttled_time: s.cpu.throttling.throttledTime },
  };
}

function memJson(s: CgroupStats): Json {
  const m: Json = {};
  if (s.memory.usage !== undefined) m.usage = s.memory.usage;
  if (s.memory.maxUsage !== undefined) m.max_usage = s.memory.maxUsage;
  m.stats = s.memory.stats;
  // An unlimited cgroup reports a huge number; Docker shows the host's memory instead.
  const host = totalmem();
  m.limit = s.memory.limit !== undefined && s.memory.limit < host ? s.memory.limit : host;
  return m;
}

function blkioJson(s: CgroupStats): Json {
  const conv = (a: CgroupStats['blkio']['serviceBytes']) => a.map((e: CgroupStats['blkio']['serviceBytes'][number]) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value }));
  // cgroup v1 (where per-cpu figures exist): Docker reads a file per list and sends [] for an empty one
  // (docs/samples/stats-stream0.json); v2 has io.stat alone, and the six other lists stay null.
  const rest = s.cpu.percpu ? Object.fromEntries(Object.keys(EMPTY_BLKIO()).map((k) => [k, []])) : EMPTY_BLKIO();
  return { ...rest, io_service_bytes_recursive: conv(s.blkio.serviceBytes), io_serviced_recursive: conv(s.blkio.serviced) };
}

/** /proc/<pid>/net/dev of the container's init: its interfaces other than loopback. */
async function networks(pid: number): Promise<Json | undefined> {
  if (!pid) return undefined;
  let text: string;
  try {
    text = readKernelFile(`/proc/${pid}/net/dev`);
  } catch {
    return undefined;
  }
  const out: Json = {};
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    out[m[1]] = {
      rx_bytes: f[0], rx_packets: f[1], rx_errors: f[2], rx_dropped: f[3],
      tx_bytes: f[8], tx_packets: f[9], tx_errors: f[10], tx_dropped: f[11],
    };
  }
  return Object.keys(out).length ? out : undefined;
}

interface Sample { at: bigint; stats: CgroupStats }

async function sample(svc: ContainerService, live: Live): Promise<Sample> {
  return { at: nowNs(), stats: await svc.runtime.cgroupStats(svc.cgroupPath(live.rec.id)) };
}

async function render(live: Live, cur: Sample, prev: Sample | undefined): Promise<Json> {
  const s = cur.stats;
  const pids: Json = {};
  if (s.pids.current !== undefined) pids.current = s.pids.current;
  if (s.pids.limit !== undefined && s.pids.limit > 0 && s.pids.limit < 2 ** 53) pids.limit = s.pids.limit;
  const out: Json = {
    read: rfc3339Nano(cur.at),
    preread: prev ? rfc3339Nano(prev.at) : ZERO_TIME,
    pids_stats: pids,
    blkio_stats: blkioJson(s),
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuJson(s),
    precpu_stats: prev ? cpuJson(prev.stats) : ZERO_CPU(),
    memory_stats: memJson(s),
    name: live.rec.name,
    id: live.rec.id,
  };
  const net = await networks(live.rec.state.pid);
  if (net) out.networks = net;
  return out;
}

function running(live: Live): boolean {
  return !live.removed && (live.rec.state.status === 'running' || live.rec.state.status === 'paused') && !!live.conn;
}

/** Writes stats objects through `write` (one JSON document each) until done, the client goes away, or the
 *  container stops. */
export async function streamStats(
  svc: ContainerService, live: Live, o: { stream: boolean; oneShot: boolean },
  write: (doc: string) => void | Promise<void>, closed: () => boolean,
): Promise<void> {
  if (!running(live)) {
    await write(JSON.stringify(emptyStats(live)) + '\n');
    return;
  }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  if (!o.stream) {
    let prev: Sample | undefined;
    if (!o.oneShot) {
      prev = await sample(svc, live);
      await sleep(1000);
      if (!running(live)) {
        await write(JSON.stringify(emptyStats(live)) + '\n');
        return;
      }
    }
    await write(JSON.stringify(await render(live, await sample(svc, live), prev)) + '\n');
    return;
  }
  let prev: Sample | undefined;
  while (!closed() && running(live)) {
    const cur = await sample(svc, live);
    await write(JSON.stringify(await render(live, cur, prev)) + '\n');
    prev = cur;
    for (let i = 0; i < 10 && !closed() && running(live); i++) await sleep(100);
  }
}
