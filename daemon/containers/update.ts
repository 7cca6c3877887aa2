// docker update: POST /containers/{id}/update. The resources given replace the stored ones (a zero or
// absent field leaves the old value, as Docker's update does), are written to the running container's
// cgroup, and the new HostConfig is stored in one statement. The restart policy can be changed too.
import { invalid, conflict } from '../errors/errors';
import { checkResources, checkRestartPolicy } from './validate';
import type { CgroupResources } from '../runtime/types';
import type { ContainerService } from './service';

export interface UpdateBody {
  Memory?: number; MemorySwap?: number; MemoryReservation?: number; NanoCpus?: number; CpuShares?: number;
  CpuQuota?: number; CpuPeriod?: number; CpusetCpus?: string; CpusetMems?: string; PidsLimit?: number | null;
  BlkioWeight?: number; RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
  [k: string]: unknown;
}

export async function updateContainer(svc: ContainerService, ref: string, body: UpdateBody): Promise<{ Warnings: string[] | null }> {
  const live = svc.lookup(ref);
  if (!body || typeof body !== 'object') throw invalid('invalid update body');
  svc.validateBody('ContainerUpdate', body);
  // The body on its own first, as Docker checks it: a bad value is a 400 whatever the container has.
  checkResources(body, true);
  checkRestartPolicy(body.RestartPolicy);
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
    // --cpus and --cpu-quota/--cpu-period are two ways of saying one thing: one cannot be changed while
    // the container has the other (Docker's 409).
    const cannot = (why: string) => conflict(`Cannot update container ${live.rec.id}: ${why}`);
    if (num('NanoCpus') && old.CpuPeriod > 0) throw cannot('Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set');
    if (num('NanoCpus') && old.CpuQuota > 0) throw cannot('Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set');
    if ((num('CpuPeriod') ?? 0) > 0 && old.NanoCpus > 0) throw cannot('Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set');
    if ((num('CpuQuota') ?? 0) > 0 && old.NanoCpus > 0) throw cannot('Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set');
    if (num('Memory') && !swap && old.MemorySwap > 0 && hc.Memory > old.MemorySwap) {
      throw cannot('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
    }
    // The limits as they will be, checked together (a new reservation against the old limit, …).
    if (hc.Memory && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory) {
      throw invalid('Minimum memoryswap limit should be larger than memory limit, see usage');
    }
    if (hc.MemoryReservation && hc.Memory && hc.MemoryReservation > hc.Memory) {
      throw invalid('Minimum memory limit can not be less than memory reservation limit, see usage');
    }

    const rp = body.RestartPolicy;
    if (rp && typeof rp === 'object' && rp.Name) {
      if (hc.AutoRemove && rp.Name !== 'no') throw cannot('Restart policy cannot be updated because AutoRemove is enabled for the container');
      hc.RestartPolicy = { Name: rp.Name, MaximumRetryCount: rp.MaximumRetryCount ?? 0 };
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
