// docker container prune: POST /containers/prune. Removes every container that is not running (created,
// exited, dead) and matches the filters (until=<time or duration>, label=k[=v], label!=k[=v]); answers
// with the ids removed and the bytes their writable layers held.
import { readdir, lstat } from 'node:fs/promises';
import path from 'node:path';
import { invalid } from '../errors/errors';
import { parseRfc3339Ns } from '../lib/time';
import type { ContainerService, Live } from './service';

/** until: a Unix time (seconds, optional fraction), an RFC3339 time, or a Go duration before now ("24h"). */
export function parseUntil(v: string, nowMs = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const dur = /^(\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(v) ? goDurationMs(v) : undefined;
  if (dur !== undefined) return nowMs - dur;
  try {
    return Number(parseRfc3339Ns(v) / 1_000_000n);
  } catch {
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw invalid(`invalid filter 'until=${v}'`);
    return t;
  }
}

function goDurationMs(v: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]];
  return ms;
}

function labelMatch(labels: Record<string, string>, f: string): boolean {
  const i = f.indexOf('=');
  return i < 0 ? f in labels : labels[f.slice(0, i)] === f.slice(i + 1);
}

async function du(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const p = path.join(dir, n);
    try {
      const st = await lstat(p);
      total += st.isDirectory() ? await du(p) : st.size;
    } catch {
      /* gone */
    }
  }
  return total;
}

export async function pruneContainers(svc: ContainerService, filters: Map<string, string[]>): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }> {
  for (const k of filters.keys()) {
    if (!['until', 'label', 'label!'].includes(k)) throw invalid(`Invalid filter '${k}'`);
  }
  const untils = (filters.get('until') ?? []).map((v) => parseUntil(v));
  if (untils.length > 1) throw invalid('more than one until filter specified');
  const matches = (l: Live): boolean => {
    const st = l.rec.state.status;
    if (st === 'running' || st === 'paused' || st === 'restarting' || st === 'removing' || l.removed) return false;
    if (untils.length && Date.parse(l.rec.created) >= untils[0]) return false;
    const labels = l.rec.config.Labels ?? {};
    for (const f of filters.get('label') ?? []) if (!labelMatch(labels, f)) return false;
    for (const f of filters.get('label!') ?? []) if (labelMatch(labels, f)) return false;
    return true;
  };
  const deleted: string[] = [];
  let reclaimed = 0;
  for (const l of svc.all().filter(matches)) {
    const size = await du(path.join(svc.layerDir(l.rec), 'diff'));
    try {
      await svc.remove(l.rec.id, {});
      deleted.push(l.rec.id);
      reclaimed += size;
    } catch {
      // started or removed meanwhile: not pruned
    }
  }
  return { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
}
