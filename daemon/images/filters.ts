// The filter values `docker images` and `docker image prune` take, read as Docker reads them.
import { invalid } from '../errors/errors';

/** `label=key`, `label=key=value`, `label=key!=value`: all must hold. */
export function matchLabels(labels: Record<string, string>, filters: string[]): boolean {
  return filters.every((f) => {
    const ne = f.indexOf('!=');
    if (ne > 0) return labels[f.slice(0, ne)] !== f.slice(ne + 2);
    const eq = f.indexOf('=');
    if (eq < 0) return f in labels;
    return labels[f.slice(0, eq)] === f.slice(eq + 1);
  });
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** `until`: Unix seconds, RFC3339, or a Go duration before now (`10m`, `1h30m`); returns Unix seconds. */
export function parseUntil(v: string, now = Date.now() / 1000): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  if (/^\d{4}-\d\d-\d\d/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return t / 1000;
  }
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    let secs = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) secs += Number(m[1]) * DURATION_UNITS[m[2]];
    return now - secs;
  }
  throw invalid(`invalid filter 'until=${v}'`);
}

/** `dangling=true|false` (Docker also takes 1 and 0 in prune); undefined when not given. */
export function danglingFilter(values: string[] | undefined, acceptDigits: boolean): boolean | undefined {
  if (!values || values.length === 0) return undefined;
  const v = values.length === 1 ? values[0].toLowerCase() : '';
  if (v === 'true' || (acceptDigits && v === '1')) return true;
  if (v === 'false' || (acceptDigits && v === '0')) return false;
  throw invalid(`invalid filter 'dangling=${values.join(',')}'`);
}
