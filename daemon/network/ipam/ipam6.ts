// IPv6 address management, as ipam.ts is for IPv4: prefixes as (base, prefix) in 128-bit BigInts, a network's
// address pool, and the ULA pool networks take a /64 from when no IPv6 subnet is given (Docker
// 27+: a /48 whose global ID is derived from the engine's ID, so it stays the same across restarts).
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { invalid } from '../../errors/errors';
import { CountedAddresses } from './ipam';

export interface Cidr6 {
  base: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;

export function ip6ToBig(ip: string): bigint {
  if (!net.isIPv6(ip) || ip.includes('%')) throw invalid(`invalid IP address: ${ip}`);
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) as two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The canonical text (RFC 5952: lower case, the longest run of zero groups as ::). */
export function bigToIp6(n: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export const isV6 = (s: string) => s.includes(':');

export function parseCidr6(s: string): Cidr6 {
  const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(s);
  if (!m || Number(m[2]) > 128 || !net.isIPv6(m[1])) throw invalid(`invalid CIDR address: ${s}`);
  const prefix = Number(m[2]);
  const mask = prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
  return { base: ip6ToBig(m[1]) & mask, prefix };
}

export const cidr6String = (c: Cidr6) => `${bigToIp6(c.base)}/${c.prefix}`;
const size6 = (c: Cidr6) => 1n << BigInt(128 - c.prefix);
export const contains6 = (c: Cidr6, ip: bigint) => ip >= c.base && ip < c.base + size6(c);
export const overlaps6 = (a: Cidr6, b: Cidr6) => a.base < b.base + size6(b) && b.base < a.base + size6(a);

/** One network's IPv6 addresses in use, as ipam.ts's AddressPool is for IPv4: counted per address (two
 *  stopped containers may have been created with the same --ip6; only one of them can start), with a
 *  cursor below which every address of the range is taken, so that an allocation gives the lowest free
 *  address without collecting every endpoint's address first. Made from the endpoint rows when first
 *  needed and kept in step with them (service.ts); never written to disk, so a restart (a kill -9
 *  included) rebuilds it from the database. */
export class AddressPool6 extends CountedAddresses<bigint> {
  /** `reserved`: the gateway and auxiliary addresses; the subnet's own address (the subnet-router anycast
   *  address) is never given either. */
  constructor(subnet: Cidr6, range: Cidr6 | undefined, reserved: bigint[]) {
    const r = range ?? subnet;
    super(r.base, r.base + size6(r), [...reserved, subnet.base], (ip) => ip + 1n);
  }
}

/** The ULA /48 of this engine (fdXX:XXXX:XXXX::/48, RFC 4193's layout, its 40-bit global ID taken from a
 *  hash of the engine ID rather than a random number so that it is the same at every start). */
export function ulaPool(engineId: string): Cidr6 {
  const h = createHash('sha256').update(engineId).digest();
  let base = 0xfdn;
  for (let i = 0; i < 5; i++) base = (base << 8n) | BigInt(h[i]);
  return { base: base << 80n, prefix: 48 };
}

/** The first subnet of `size` bits in `pool` that overlaps none of `used`. */
export function subnet6FromPool(pool: Cidr6, size: number, used: Cidr6[]): Cidr6 | undefined {
  const step = 1n << BigInt(128 - size);
  const end = pool.base + size6(pool);
  let s = pool.base;
  // Each turn moves past one used prefix whole (to the next aligned subnet after it), so the loop ends
  // after at most used.length + 1 turns.
  for (let n = 0; n <= used.length && s + step <= end; n++) {
    const c = { base: s, prefix: size };
    const hit = used.find((u) => overlaps6(u, c));
    if (!hit) return c;
    const after = hit.base + size6(hit);
    s = ((after + step - 1n) / step) * step;
  }
  return undefined;
}

/** A random, locally administered unicast MAC (an endpoint on an IPv6-only network has no IPv4 address
 *  to make Docker's 02:42:<IPv4> one from). */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
