// Docker's time formats: RFC3339 with nanoseconds in inspect bodies (trailing zeros dropped), Unix seconds
// in lists, and exactly nine fractional digits in log timestamps.

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Nanoseconds since the epoch, from the wall clock with sub-millisecond precision. */
const originNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
export function nowNs(): bigint {
  return originNs + process.hrtime.bigint();
}

/** RFC3339Nano as Go prints it: fractional digits without trailing zeros. */
export function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  let frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return frac ? `${base}.${frac}Z` : `${base}Z`;
}

/** Fixed nine digits, as in `docker logs -t`. */
export function rfc3339Fixed9(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  return `${base}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

/** Parses an RFC3339 timestamp (any number of fractional digits) to nanoseconds. */
export function parseRfc3339Ns(s: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) throw new Error(`bad timestamp ${s}`);
  const secs = BigInt(Date.parse(m[1] + m[3]) / 1000);
  const frac = BigInt((m[2] ?? '').padEnd(9, '0').slice(0, 9) || '0');
  return secs * 1_000_000_000n + frac;
}

/** Docker's humanised duration ("Up 5 minutes", "Exited (0) 2 hours ago"). */
export function humanDuration(seconds: number): string {
  if (seconds < 1) return 'Less than a second';
  if (seconds < 2) return '1 second';
  if (seconds < 60) return `${Math.floor(seconds)} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(seconds / 3600 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  const days = hours / 24;
  if (days < 14) return `${Math.floor(days)} days`;
  if (days < 60) return `${Math.floor(days / 7)} weeks`;
  if (days < 365 * 2) return `${Math.floor(days / 30)} months`;
  return `${Math.floor(days / 365)} years`;
}
