// Docker's reading of query parameters: any boolean is true except "", 0, no, false and none (moby
// httputils.BoolValue); filters are URL-encoded JSON in either the CLI's map form or docker-py's list form.
import { invalid } from '../errors/errors';

export type Query = Record<string, string | string[] | undefined>;

/** A parameter given more than once is read as its first value, as Go's url.Values.Get does: docker-py
 *  7.1 sends `dockerfile` twice for a Dockerfile from outside the context (its name, then its text). */
export function qstr(q: Query, key: string): string | undefined {
  const v = q[key];
  return Array.isArray(v) ? v[0] : v;
}

export function qlist(q: Query, key: string): string[] {
  const v = q[key];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

export function qbool(q: Query, key: string, dflt = false): boolean {
  const v = qstr(q, key);
  if (v === undefined) return dflt;
  return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
}

export function qint(q: Query, key: string): number | undefined {
  const v = qstr(q, key);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw invalid(`invalid value for ${key}: ${v}`);
  return n;
}

/** Parsed `filters`: key → list of values. */
export type Filters = Map<string, string[]>;

export function parseFilters(q: Query): Filters {
  const raw = qstr(q, 'filters');
  const out: Filters = new Map();
  if (!raw) return out;
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
  } catch (e) {
    throw invalid(`invalid filter: ${(e as Error).message}`);
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw invalid('invalid filter: expected an object');
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (Array.isArray(v)) out.set(k, v.map(String));
    else if (v && typeof v === 'object') out.set(k, Object.keys(v as object).filter((x) => (v as Record<string, unknown>)[x]));
    else throw invalid(`invalid filter '${k}'`);
  }
  return out;
}

export function checkFilterKeys(f: Filters, allowed: string[]): void {
  for (const k of f.keys()) if (!allowed.includes(k)) throw invalid(`invalid filter '${k}'`);
}

/** A `label` filter value against labels: `k` (present) or `k=v` (equal). */
export function labelMatch(labels: Record<string, string>, v: string): boolean {
  const i = v.indexOf('=');
  return i < 0 ? v in labels : labels[v.slice(0, i)] === v.slice(i + 1);
}
