// docker update: POST /containers/{id}/update. The resources given replace the stored ones (a zero or
// absent field leaves the old value, as Docker's update does), are written to the running container's
// cgroup, and the new HostConfig is stored in one statement. The restart policy can be changed too.
import { invalid, conflict } from '../errors/errors';
import { validateBody } from '../api/validate';
import type { CgroupResources } from '../runtime/runtime';
import type { ContainerService } from './service';

export interface UpdateBody {
  Memory?: number; MemorySwap?: number; MemoryReservation?: number; NanoCpus?: number; CpuShares?: number;
  CpuQuota?: number; CpuPeriod?: number; CpusetCpus?: string; CpusetMems?: string; PidsLimit?: number | null;
  BlkioWeight?: number; RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
  [k: string]: unknown;
}

const MIN_MEMORY = 6 * 1024 * 1024;
const POLICIES = ['', 'no', 'always', 'on-failure', 'unless-stopped'];

export async function updateContainer(svc: ContainerService, ref: string, body: UpdateBody): Promise<{ Warnings: string[] | null }> {
  const live = svc.lookup(ref);
  if (!body || typeof body !== 'object') throw invalid('invalid update body');
  validateBody('ContainerUpdate', body);
  return svc.serial(live, async () => {
    const old = live.rec.hostConfig;
    const hc = { ...old };
    const num = (k: keyof UpdateBody) => {
      const v = body[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`invalid value for ${String(k)}: ${JSON.stringify(v)}`);
      return v;
    };
    for (const k of ['Memory', 'MemoryReservation', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'BlkioWeight', 'NanoCpus'] as const) {
      const v = num(k);
      if (v) hc[k] = v;
    }
    const swap = num('MemorySwap');
    if (swap) hc.MemorySwap = swap;
    const pids = num('PidsLimit');
    if (pids !== undefined && pids !== 0) hc.PidsLimit = pids;
    for (const k of ['CpusetCpus', 'CpusetMems'] as const) {
      const v = body[k];
      if (typeof v === 'string' && v !== '') hc[k] = v;
    }
    // --cpus and --cpu-quota/--cpu-period are two ways of saying one thing: setting one clears the other.
    if (num('NanoCpus')) {
      if (num('CpuQuota') || num('CpuPeriod')) throw invalid('Conflicting options: Nano CPUs and CPU Period cannot both be set');
      hc.CpuQuota = 0;
      hc.CpuPeriod = 0;
    } else if (num('CpuQuota') || num('CpuPeriod')) {
      hc.NanoCpus = 0;
    }
    if (hc.NanoCpus && (hc.NanoCpus < 0.01e9 || hc.NanoCpus > 1e9 * 1024)) throw invalid(`Range of CPUs is from 0.01 to 1024.00, as there are only ${1024} CPUs available`);
    if (hc.Memory && hc.Memory < MIN_MEMORY) throw invalid('Minimum memory limit allowed is 6MB');
    if (hc.Memory && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory) {
      throw invalid('Minimum memoryswap limit should be larger than memory limit, see usage');
    }
    if (num('Memory') && !swap && old.MemorySwap > 0 && hc.Memory > old.MemorySwap) {
      throw invalid('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
    }
    if (hc.MemoryReservation && hc.Memory && hc.MemoryReservation > hc.Memory) {
      throw invalid('Minimum memory limit can not be less than memory reservation limit, see usage');
    }
    if (hc.BlkioWeight && (hc.BlkioWeight < 10 || hc.BlkioWeight > 1000)) throw invalid('Range of blkio weight is from 10 to 1000');
    if (hc.CpuPeriod && (hc.CpuPeriod < 1000 || hc.CpuPeriod > 1_000_000)) throw invalid('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
    if (hc.CpuQuota && hc.CpuQuota > 0 && hc.CpuQuota < 1000) throw invalid('CPU cfs quota can not be less than 1ms (i.e. 1000)');

    const rp = body.RestartPolicy;
    if (rp && typeof rp === 'object' && rp.Name !== undefined && rp.Name !== '') {
      if (!POLICIES.includes(rp.Name)) throw invalid(`invalid restart policy '${rp.Name}'`);
      const max = rp.MaximumRetryCount ?? 0;
      if (rp.Name !== 'on-failure' && max !== 0) throw invalid(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
      if (max < 0) throw invalid('invalid restart policy: maximum retry count cannot be negative');
      if (hc.AutoRemove && rp.Name !== 'no') throw invalid('Restart policy cannot be updated because AutoRemove is enabled for the container');
      hc.RestartPolicy = { Name: rp.Name, MaximumRetryCount: max };
    }

    const st = live.rec.state.status;
    if (st === 'removing' || st === 'dead' || live.removed) throw conflict(`Cannot update container ${live.rec.id}: container is marked for removal`);
    if ((st === 'running' || st === 'paused') && live.conn) {
      const changed = changedResources(svc.resources(old), svc.resources(hc));
      if (Object.keys(changed).length) {
        try {
          await svc.runtime.updateCgroup(svc.cgroupPath(live.rec.id), changed);
        } catch (e) {
          throw invalid(`Cannot update container ${live.rec.id}: ${(e as Error).message}`);
        }
      }
    }
    svc.saveHostConfig(live, hc);
    svc.emit(live, 'update');
    return { Warnings: null };
  });
}

/** Only the fields that differ go to the cgroup (the addon leaves absent ones alone); memory and swap
 *  travel together, since the kernel checks one against the other. */
function changedResources(a: CgroupResources, b: CgroupResources): CgroupResources {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(b) as Array<keyof CgroupResources>) if (a[k] !== b[k]) out[k] = b[k];
  if ('memory' in out || 'memorySwap' in out) {
    out.memory = b.memory;
    out.memorySwap = b.memorySwap;
  }
  if ('cpuQuota' in out || 'cpuPeriod' in out) {
    out.cpuQuota = b.cpuQuota || -1;
    out.cpuPeriod = b.cpuPeriod || 100000;
  }
  return out as CgroupResources;
}
