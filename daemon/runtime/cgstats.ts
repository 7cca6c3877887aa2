// Reading a container's cgroup counters (docker stats, docker top). These are small text files that the
// kernel fills on read, so they are read here with plain fs calls rather than through the addon: the
// runtime boundary still holds (only daemon/runtime/ knows where cgroup files live and what they mean).
// Missing files read as absent fields: a controller may not be mounted, and a container that has just
// exited has no cgroup left.
import { readKernelFile } from '../lib/kernfs';
import { cpus } from 'node:os';
import path from 'node:path';
import type { CgroupLayout } from '../../addon/index';

export interface BlkioEntry { major: number; minor: number; op: string; value: number }

export interface CgroupStats {
  cpu: {
    totalUsage: number;       // ns
    percpu?: number[];        // ns per cpu (v1 only, as Docker reports it)
    kernel: number;           // ns
    user: number;             // ns
    throttling: { periods: number; throttledPeriods: number; throttledTime: number };
  };
  systemUsage: number;        // ns of host cpu time, all cpus (from /proc/stat)
  onlineCpus: number;
  memory: { usage?: number; maxUsage?: number; limit?: number; stats: Record<string, number> };
  pids: { current?: number; limit?: number };
  blkio: { serviceBytes: BlkioEntry[]; serviced: BlkioEntry[] };
}

const USER_HZ = 100; // clock ticks of cpuacct.stat and /proc/stat on Linux (sysconf(_SC_CLK_TCK))
const TICK_NS = 1e9 / USER_HZ;

async function text(file: string): Promise<string | undefined> {
  try {
    return readKernelFile(file);
  } catch {
    return undefined;
  }
}

async function num(file: string): Promise<number | undefined> {
  const t = (await text(file))?.trim();
  if (t === undefined || t === '' || t === 'max') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** "key value" lines → object. */
function kv(t: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (t ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

function v1Dir(layout: CgroupLayout, controller: string, rel: string): string | undefined {
  const mp = layout.controllers[controller];
  return mp ? path.join(mp, rel) : undefined;
}

/** Total host cpu time in ns, as Docker computes system_cpu_usage (sum of the "cpu" line of /proc/stat). */
async function systemUsage(): Promise<number> {
  const t = await text('/proc/stat');
  const line = t?.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  const ticks = line.trim().split(/\s+/).slice(1, 8).reduce((a, v) => a + Number(v), 0);
  return ticks * TICK_NS;
}

function onlineCpus(): number {
  return cpus().length || 1;
}

function parseBlkioV1(t: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (t ?? '').split('\n')) {
    const m = /^(\d+):(\d+)\s+(\w+)\s+(\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3], value: Number(m[4]) });
  }
  return out;
}

/** v2 io.stat: "8:0 rbytes=… wbytes=… rios=… wios=…" → Docker's v1-shaped entries. */
function parseIoStatV2(t: string | undefined): { serviceBytes: BlkioEntry[]; serviced: BlkioEntry[] } {
  const serviceBytes: BlkioEntry[] = [];
  const serviced: BlkioEntry[] = [];
  for (const line of (t ?? '').split('\n')) {
    const parts = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(parts[0] ?? '');
    if (!dev) continue;
    const f = Object.fromEntries(parts.slice(1).map((p) => p.split('=')).map(([k, v]) => [k, Number(v)]));
    const major = Number(dev[1]), minor = Number(dev[2]);
    serviceBytes.push({ major, minor, op: 'read', value: f.rbytes ?? 0 }, { major, minor, op: 'write', value: f.wbytes ?? 0 });
    serviced.push({ major, minor, op: 'read', value: f.rios ?? 0 }, { major, minor, op: 'write', value: f.wios ?? 0 });
  }
  return { serviceBytes, serviced };
}

async function statsV1(layout: CgroupLayout, rel: string): Promise<CgroupStats> {
  const cpuacct = v1Dir(layout, 'cpuacct', rel);
  const cpu = v1Dir(layout, 'cpu', rel);
  const mem = v1Dir(layout, 'memory', rel);
  const pids = v1Dir(layout, 'pids', rel);
  const blkio = v1Dir(layout, 'blkio', rel);
  const [total, percpuT, acctStat, throttle, usage, maxUsage, limit, memStat, pidsCur, pidsMax, bytesT, ioT, sys] = await Promise.all([
    cpuacct ? num(path.join(cpuacct, 'cpuacct.usage')) : undefined,
    cpuacct ? text(path.join(cpuacct, 'cpuacct.usage_percpu')) : undefined,
    cpuacct ? text(path.join(cpuacct, 'cpuacct.stat')) : undefined,
    cpu ? text(path.join(cpu, 'cpu.stat')) : undefined,
    mem ? num(path.join(mem, 'memory.usage_in_bytes')) : undefined,
    mem ? num(path.join(mem, 'memory.max_usage_in_bytes')) : undefined,
    mem ? num(path.join(mem, 'memory.limit_in_bytes')) : undefined,
    mem ? text(path.join(mem, 'memory.stat')) : undefined,
    pids ? num(path.join(pids, 'pids.current')) : undefined,
    pids ? num(path.join(pids, 'pids.max')) : undefined,
    blkio ? text(path.join(blkio, 'blkio.throttle.io_service_bytes_recursive')) : undefined,
    blkio ? text(path.join(blkio, 'blkio.throttle.io_serviced_recursive')) : undefined,
    systemUsage(),
  ]);
  const acct = kv(acctStat);
  const thr = kv(throttle);
  const percpu = (percpuT ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  const stats = kv(memStat);
  return {
    cpu: {
      totalUsage: total ?? 0,
      percpu: percpu.length ? percpu : undefined,
      kernel: (acct.system ?? 0) * TICK_NS,
      user: (acct.user ?? 0) * TICK_NS,
      throttling: { periods: thr.nr_periods ?? 0, throttledPeriods: thr.nr_throttled ?? 0, throttledTime: thr.throttled_time ?? 0 },
    },
    systemUsage: sys,
    onlineCpus: onlineCpus(),
    memory: { usage, maxUsage, limit, stats },
    pids: { current: pidsCur, limit: pidsMax },
    blkio: { serviceBytes: parseBlkioV1(bytesT), serviced: parseBlkioV1(ioT) },
  };
}

async function statsV2(layout: CgroupLayout, rel: string): Promise<CgroupStats> {
  const dir = path.join(layout.unified, rel);
  const [cpuStat, usage, limit, memStat, pidsCur, pidsMax, ioStat, sys] = await Promise.all([
    text(path.join(dir, 'cpu.stat')),
    num(path.join(dir, 'memory.current')),
    num(path.join(dir, 'memory.max')),
    text(path.join(dir, 'memory.stat')),
    num(path.join(dir, 'pids.current')),
    num(path.join(dir, 'pids.max')),
    text(path.join(dir, 'io.stat')),
    systemUsage(),
  ]);
  const c = kv(cpuStat);
  return {
    cpu: {
      totalUsage: (c.usage_usec ?? 0) * 1000,
      kernel: (c.system_usec ?? 0) * 1000,
      user: (c.user_usec ?? 0) * 1000,
      throttling: { periods: c.nr_periods ?? 0, throttledPeriods: c.nr_throttled ?? 0, throttledTime: (c.throttled_usec ?? 0) * 1000 },
    },
    systemUsage: sys,
    onlineCpus: onlineCpus(),
    memory: { usage, limit, stats: kv(memStat) },
    pids: { current: pidsCur, limit: pidsMax },
    blkio: parseIoStatV2(ioStat),
  };
}

export function readCgroupStats(layout: CgroupLayout, rel: string): Promise<CgroupStats> {
  return layout.version === 2 ? statsV2(layout, rel) : statsV1(layout, rel);
}

/** The processes of the cgroup. On v1 every hierarchy holds the same tasks; the first mounted one of
 *  pids, memory, cpu, freezer is read. */
export async function readCgroupPids(layout: CgroupLayout, rel: string): Promise<number[]> {
  let dir: string | undefined;
  if (layout.version === 2) dir = path.join(layout.unified, rel);
  else for (const c of ['pids', 'memory', 'cpu', 'freezer']) if (!dir) dir = v1Dir(layout, c, rel);
  if (!dir) return [];
  const t = await text(path.join(dir, 'cgroup.procs'));
  return (t ?? '').split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
}
