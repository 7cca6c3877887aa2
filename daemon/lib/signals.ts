// Signal names and numbers as `docker kill -s` and STOPSIGNAL accept them (Linux x86-64 numbering).
import { constants } from 'node:os';
import { invalid } from '../errors/errors';

const SIGNALS = constants.signals as Record<string, number>;

export function parseSignal(s: string | number | undefined, dflt = 'SIGKILL'): number {
  const v = s === undefined || s === '' ? dflt : String(s);
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n <= 0 || n > 64) throw invalid(`Invalid signal: ${v}`);
    return n;
  }
  let name = v.toUpperCase();
  if (!name.startsWith('SIG')) name = `SIG${name}`;
  const m = /^SIGRTMIN\+(\d+)$/.exec(name);
  if (m) return 34 + Number(m[1]);
  const n = SIGNALS[name];
  if (n === undefined) throw invalid(`Invalid signal: ${v}`);
  return n;
}
