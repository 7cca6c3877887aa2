// IPv4 address management: subnets as (base, prefix), the first free address of a range, pools carved into
// subnets. Addresses in use are the endpoints' rows in SQLite (network/store.ts); this file is pure.
import { invalid } from '../../errors/errors';

export const ipToInt = (ip: string): number => {
  const p = ip.split('.');
  if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) throw invalid(`invalid IP address: ${ip}`);
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
};
export const intToIp = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export interface Cidr {
  base: number;   // network address
  prefix: number;
  size: number;   // number of addresses
}

export function parseCidr(s: string, what = 'subnet'): Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  if (!m || Number(m[2]) > 32) throw invalid(`invalid CIDR address: ${s}`);
  const prefix = Number(m[2]);
  const ip = ipToInt(m[1]);
  const size = 2 ** (32 - prefix);
  const base = prefix === 0 ? 0 : (ip - (ip % size)) >>> 0;
  void what;
  return { base, prefix, size };
}

export const cidrString = (c: Cidr) => `${intToIp(c.base)}/${c.prefix}`;
export const contains = (c: Cidr, ip: number) => ip >= c.base && ip < c.base + c.size;
export const overlaps = (a: Cidr, b: Cidr) => a.base < b.base + b.size && b.base < a.base + a.size;

/** The lowest address of `range` (default: the subnet) that is not taken, the network or the broadcast address. */
export function firstFree(subnet: Cidr, range: Cidr | undefined, taken: Set<number>): number | undefined {
  const r = range ?? subnet;
  for (let ip = r.base; ip < r.base + r.size; ip++) {
    if (subnet.size > 2 && (ip === subnet.base || ip === subnet.base + subnet.size - 1)) continue;
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}

/** Docker's MAC for an address: 02:42 and the four bytes of the IPv4 address. */
export function macFor(ip: string): string {
  return ['02', '42', ...ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}

export interface Pool {
  base: string;
  size: number;
}

/** Docker's default pools: 172.17–172.31 as /16s, then 192.168.0.0/16 as /20s. */
export const DEFAULT_POOLS: Pool[] = [{ base: '172.17.0.0/16', size: 16 }, { base: '172.18.0.0/15', size: 16 }, { base: '172.20.0.0/14', size: 16 },
  { base: '172.24.0.0/14', size: 16 }, { base: '172.28.0.0/14', size: 16 }, { base: '192.168.0.0/16', size: 20 }];

/** The first subnet of the pools that overlaps none of `used`. */
export function subnetFromPools(pools: Pool[], used: Cidr[]): Cidr | undefined {
  for (const p of pools) {
    const b = parseCidr(p.base);
    const step = 2 ** (32 - p.size);
    for (let s = b.base; s + step <= b.base + b.size; s += step) {
      const c = { base: s, prefix: p.size, size: step };
      if (!used.some((u) => overlaps(u, c))) return c;
    }
  }
  return undefined;
}
