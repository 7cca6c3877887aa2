// The HostConfig resources that are not plain numbers for the cgroup manager: OOM-kill disable, swappiness,
// per-device block I/O weights and limits, real-time CPU budgets and device requests. Each is applied where this host's cgroups can hold it, or answered as Docker answers on such a
// host: discarded with Docker's warning (what Docker does for a knob the kernel lacks), or refused with its
// error. Never stored and silently ignored.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CgroupLayout } from '../../addon/index';
import { invalid } from '../errors/errors';

type HostConfig = Record<string, any>;
export interface FileWrite { controller: string; file: string; value: string }

interface ThrottleDevice { Path?: string; Rate?: number }
interface WeightDevice { Path?: string; Weight?: number }

/** major:minor of a block device path, as the kernel's per-device cgroup files take it. */
function blockDevice(p: string | undefined, what: string): string {
  if (!p) throw invalid(`invalid ${what}: a device path is required`);
  let st;
  try {
    st = statSync(p);
  } catch {
    throw invalid(`invalid ${what}: ${p}: no such device`);
  }
  if (!st.isBlockDevice()) throw invalid(`invalid ${what}: ${p} is not a block device`);
  // dev_t as glibc encodes it: major in bits 8–19 and 32–43, minor in bits 0–7 and 20–31.
  const dev = st.rdev;
  const major = (Math.floor(dev / 256) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff);
  return `${major}:${minor}`;
}

/** The cgroup file of controller `ctl` exists for a container of this host (v1: at its hierarchy's root;
 *  v2: in a cgroup below the root with the controller enabled, probed at the mount's own children). */
export type HasFile = (ctl: string, file: string) => boolean;

export function hostHasFile(layout: CgroupLayout): HasFile {
  return (ctl, file) => {
    if (layout.version === 1) {
      const mnt = layout.controllers[ctl];
      return mnt !== undefined && existsSync(path.join(mnt, file));
    }
    try {
      // A v2 root with no child cgroup yet (a host without systemd, before the first container) shows no
      // controller's files anywhere; io.max is in every non-root cgroup once io is available.
      if (file === 'io.max' && readFileSync(path.join(layout.unified, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('io')) return true;
      return readdirSync(layout.unified, { withFileTypes: true }).some((e) => e.isDirectory() && existsSync(path.join(layout.unified, e.name, file)));
    } catch {
      return false;
    }
  };
}

/** What this host's cgroups can hold, checked at create after validate.ts has checked the values' ranges:
 *  unsupported knobs are discarded from `hc` with Docker's warning (returned), impossible ones refused. */
export function checkResources(hc: HostConfig, version: 1 | 2, has: HasFile): string[] {
  const warnings: string[] = [];
  for (const req of (hc.DeviceRequests ?? []) as Array<{ Driver?: string; Capabilities?: string[][] }>) {
    // No device driver (nvidia, CDI) is registered with berth: Docker answers the same without one.
    const caps = (req.Capabilities ?? []).map((c) => `[${c.join(' ')}]`).join(' ');
    throw invalid(`could not select device driver "${req.Driver ?? ''}" with capabilities: [${caps}]`);
  }
  if (hc.MemorySwappiness !== undefined && hc.MemorySwappiness !== null && hc.MemorySwappiness !== -1) {
    if (version === 2 || !has('memory', 'memory.swappiness')) {
      warnings.push('Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.');
      hc.MemorySwappiness = null;
    }
  }
  if (hc.OomKillDisable) {
    if (version === 2 || !has('memory', 'memory.oom_control')) {
      warnings.push('Your kernel does not support OomKillDisable. OomKillDisable discarded.');
      hc.OomKillDisable = false;
    } else if (!hc.Memory) {
      warnings.push('OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.');
    }
  }
  const weights = (hc.BlkioWeightDevice ?? []) as WeightDevice[];
  for (const w of weights) {
    blockDevice(w.Path, 'weight device');
    if (!Number.isInteger(w.Weight) || (w.Weight! !== 0 && (w.Weight! < 10 || w.Weight! > 1000))) throw invalid(`invalid weight for device: ${w.Path}: Range of blkio weight is from 10 to 1000`);
  }
  if (weights.length && !weightDeviceFile(version, has)) {
    warnings.push('Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.');
    hc.BlkioWeightDevice = [];
  }
  const throttles: Array<[string, string, string]> = [
    ['BlkioDeviceReadBps', 'blkio.throttle.read_bps_device', 'BPS Block I/O read limit'],
    ['BlkioDeviceWriteBps', 'blkio.throttle.write_bps_device', 'BPS Block I/O write limit'],
    ['BlkioDeviceReadIOps', 'blkio.throttle.read_iops_device', 'IOPS Block read limit'],
    ['BlkioDeviceWriteIOps', 'blkio.throttle.write_iops_device', 'IOPS Block write limit'],
  ];
  for (const [field, v1file, words] of throttles) {
    const list = (hc[field] ?? []) as ThrottleDevice[];
    for (const t of list) {
      blockDevice(t.Path, 'device');
      if (!Number.isInteger(t.Rate) || t.Rate! < 0) throw invalid(`invalid rate for device: ${t.Path}. The correct format is <device-path>:<number>`);
    }
    const supported = version === 2 ? has('io', 'io.max') : has('blkio', v1file);
    if (list.length && !supported) {
      warnings.push(`Your kernel does not support ${words} or the cgroup is not mounted. Block I/O ${words.startsWith('BPS') ? 'BPS' : 'IOPS'} ${/read/.test(words) ? 'read' : 'write'} limit discarded.`);
      hc[field] = [];
    }
  }
  const rtPeriod = hc.CpuRealtimePeriod ?? 0;
  const rtRuntime = hc.CpuRealtimeRuntime ?? 0;
  if (rtPeriod > 0 || rtRuntime > 0) {
    // cgroup v2 has no real-time group scheduling; on v1 it needs CONFIG_RT_GROUP_SCHED.
    if (version === 2 || !has('cpu', 'cpu.rt_runtime_us')) throw invalid('Your kernel does not support CPU real-time scheduler');
    if (rtPeriod > 0 && rtRuntime > rtPeriod) throw invalid('cpu-rt-runtime cannot be higher than cpu-rt-period');
  }
  return warnings;
}

function weightDeviceFile(version: 1 | 2, has: HasFile): { ctl: string; file: string; scale: (w: number) => number } | undefined {
  if (version === 1) {
    if (has('blkio', 'blkio.weight_device')) return { ctl: 'blkio', file: 'blkio.weight_device', scale: (w) => w };
    if (has('blkio', 'blkio.bfq.weight_device')) return { ctl: 'blkio', file: 'blkio.bfq.weight_device', scale: (w) => w };
    return undefined;
  }
  if (has('io', 'io.bfq.weight')) return { ctl: 'io', file: 'io.bfq.weight', scale: (w) => w };
  // io.weight (iocost) is on a 1..10000 scale.
  if (has('io', 'io.weight')) return { ctl: 'io', file: 'io.weight', scale: (w) => 1 + Math.floor(((Math.min(Math.max(w, 10), 1000) - 10) * 9999) / 990) };
  return undefined;
}

/** The cgroup files that carry what checkResources kept, for the cgroup manager to write after its own. */
export function resourceFiles(hc: HostConfig, version: 1 | 2, has: HasFile): FileWrite[] {
  const out: FileWrite[] = [];
  if (version === 1) {
    if (hc.MemorySwappiness !== undefined && hc.MemorySwappiness !== null && hc.MemorySwappiness >= 0) {
      out.push({ controller: 'memory', file: 'memory.swappiness', value: String(hc.MemorySwappiness) });
    }
    if (hc.OomKillDisable) out.push({ controller: 'memory', file: 'memory.oom_control', value: '1' });
    if (hc.CpuRealtimePeriod > 0) out.push({ controller: 'cpu', file: 'cpu.rt_period_us', value: String(hc.CpuRealtimePeriod) });
    if (hc.CpuRealtimeRuntime > 0) out.push({ controller: 'cpu', file: 'cpu.rt_runtime_us', value: String(hc.CpuRealtimeRuntime) });
  }
  const wf = weightDeviceFile(version, has);
  for (const w of (hc.BlkioWeightDevice ?? []) as WeightDevice[]) {
    if (wf) out.push({ controller: wf.ctl, file: wf.file, value: `${blockDevice(w.Path, 'weight device')} ${wf.scale(w.Weight ?? 0)}` });
  }
  const fields: Array<[string, string, string]> = [
    ['BlkioDeviceReadBps', 'blkio.throttle.read_bps_device', 'rbps'],
    ['BlkioDeviceWriteBps', 'blkio.throttle.write_bps_device', 'wbps'],
    ['BlkioDeviceReadIOps', 'blkio.throttle.read_iops_device', 'riops'],
    ['BlkioDeviceWriteIOps', 'blkio.throttle.write_iops_device', 'wiops'],
  ];
  if (version === 1) {
    for (const [field, file] of fields) {
      for (const t of (hc[field] ?? []) as ThrottleDevice[]) out.push({ controller: 'blkio', file, value: `${blockDevice(t.Path, 'device')} ${t.Rate}` });
    }
  } else {
    // v2: one io.max line per device carrying every limit of that device.
    const perDevice = new Map<string, string[]>();
    for (const [field, , key] of fields) {
      for (const t of (hc[field] ?? []) as ThrottleDevice[]) {
        const dev = blockDevice(t.Path, 'device');
        perDevice.set(dev, [...(perDevice.get(dev) ?? []), `${key}=${t.Rate === 0 ? 'max' : t.Rate}`]);
      }
    }
    for (const [dev, limits] of perDevice) out.push({ controller: 'io', file: 'io.max', value: `${dev} ${limits.join(' ')}` });
  }
  return out;
}
