// A network's address pool (daemon/network/ipam/ipam.ts AddressPool) gives what the scan over every
// endpoint gave (firstFree over the taken addresses, the asker's own address counted as free to it), after
// any sequence of takes and frees: checked against that scan on a seeded random sequence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressPool, firstFree, ipToInt, parseCidr } from '../../daemon/network/ipam/ipam';

/** A small deterministic generator (mulberry32), so a failure repeats. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const [name, subnet, range] of [['a /26', '10.9.0.0/26', undefined], ['a /24 with an ip-range', '10.9.0.0/24', '10.9.0.64/27']] as const) {
  test(`AddressPool matches firstFree over every holder: ${name}`, () => {
    const sub = parseCidr(subnet);
    const r = range ? parseCidr(range) : undefined;
    const gateway = sub.base + 1;
    const aux = sub.base + 7;
    const pool = new AddressPool(sub, r, [gateway, aux]);
    // owner → address, as the endpoint rows hold them (two owners may hold one address: a duplicate --ip).
    const held = new Map<number, number>();
    const rand = rng(42);
    for (let step = 0; step < 3000; step++) {
      const owner = Math.floor(rand() * 80);
      const own = held.get(owner);
      const others = new Set<number>([gateway, aux, ...[...held].filter(([o]) => o !== owner).map(([, ip]) => ip)]);
      const want = firstFree(sub, r, others);
      assert.equal(pool.lowestFree(own), want, `step ${step}: owner ${owner} (holds ${own})`);
      if (own !== undefined && rand() < 0.5) {
        pool.free(own);
        held.delete(owner);
      } else if (want !== undefined) {
        if (own !== undefined) pool.free(own);
        pool.take(want);
        held.set(owner, want);
      }
      // Now and then a static address, possibly one already held.
      if (rand() < 0.05) {
        const o = 100 + Math.floor(rand() * 5);
        const ip = (r ?? sub).base + Math.floor(rand() * (r ?? sub).size);
        if (held.has(o)) pool.free(held.get(o)!);
        pool.take(ip);
        held.set(o, ip);
      }
    }
  });
}

test('AddressPool: holders counts a duplicate static address; the range full gives undefined', () => {
  const pool = new AddressPool(parseCidr('10.9.1.0/30'), undefined, [ipToInt('10.9.1.1')]);
  assert.equal(pool.lowestFree(), ipToInt('10.9.1.2'));
  pool.take(ipToInt('10.9.1.2'));
  pool.take(ipToInt('10.9.1.2'));
  assert.equal(pool.holders(ipToInt('10.9.1.2')), 2);
  assert.equal(pool.lowestFree(ipToInt('10.9.1.2')), undefined, 'not free to one of two holders');
  pool.free(ipToInt('10.9.1.2'));
  assert.equal(pool.lowestFree(ipToInt('10.9.1.2')), ipToInt('10.9.1.2'), 'free to its only holder');
  pool.free(ipToInt('10.9.1.2'));
  assert.equal(pool.lowestFree(), ipToInt('10.9.1.2'));
});
