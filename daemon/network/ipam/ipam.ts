// IPv4 address management: subnets as (base, prefix), the first free address of a range, pools carved into
// subnets, and the addresses in use of one network. Addresses in use are the endpoints' rows in SQLite
// (network/store.ts), mirrored in an AddressPool per network; this file does no I/O.
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

/** Addresses of a range [base, end) counted per address, with a cursor below which every one is taken or
 *  reserved: the IPv4 pool (numbers) and the IPv6 one (bigints, ipam6.ts) alike. */
export class CountedAddresses<T extends number | bigint> {
  private readonly used = new Map<T, number>();
  private readonly reserved: Set<T>;
  private cursor: T;

  constructor(private readonly base: T, private readonly end: T, reserved: T[], private readonly next: (ip: T) => T) {
    this.cursor = base;
    this.reserved = new Set(reserved);
  }

  /** How many endpoints hold `ip`. */
  holders(ip: T): number {
    return this.used.get(ip) ?? 0;
  }

  take(ip: T): void {
    this.used.set(ip, this.holders(ip) + 1);
  }

  free(ip: T): void {
    const n = this.holders(ip);
    if (n > 1) {
      this.used.set(ip, n - 1);
      return;
    }
    this.used.delete(ip);
    if (ip < this.cursor && ip >= this.base) this.cursor = ip;
  }

  /** The lowest address of the range that nobody holds, or `own` (the asker's current address, held by it
   *  alone) when that is lower: the asker's own address counts as free to it. Bounded: each step passes an
   *  address that is reserved or held, so a walk takes at most as many steps as there are of those. */
  lowestFree(own?: T): T | undefined {
    let ip = this.cursor;
    while (ip < this.end && (this.reserved.has(ip) || this.used.has(ip))) ip = this.next(ip);
    this.cursor = ip;
    if (own !== undefined && own >= this.base && own < ip && !this.reserved.has(own) && this.holders(own) === 1) return own;
    return ip < this.end ? ip : undefined;
  }
}

/** The addresses of one network's range in use, counted (two stopped containers may have been created
 *  with the same --ip; only one of them can start), with a cursor below which every address of the range
 *  is taken: an allocation gives the lowest free address, as `firstFree` over every endpoint did, without
 *  collecting every endpoint's address first (a start was linear in the network's endpoints). Made from
 *  the endpoint rows when first needed and kept in step with them (service.ts); never written to disk,
 *  so a restart rebuilds it from the database. */
export class AddressPool extends CountedAddresses<number> {
  /** `reserved`: the gateway and auxiliary addresses; the subnet's network and broadcast addresses are
   *  never given either (except in a /31 or /32). */
  constructor(subnet: Cidr, range: Cidr | undefined, reserved: number[]) {
    const r = range ?? subnet;
    super(r.base, r.base + r.size, subnet.size > 2 ? [...reserved, subnet.base, subnet.base + subnet.size - 1] : reserved, (ip) => ip + 1);
  }
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
