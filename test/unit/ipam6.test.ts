// IPv6 address management (daemon/network/ipam/ipam6.ts): text ⇄ 128-bit numbers in RFC 5952's form,
// prefixes, the address pool of a network, and the engine's ULA pool that networks without an IPv6 subnet take a
// /64 of.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressPool6, bigToIp6, cidr6String, contains6, ip6ToBig, parseCidr6, subnet6FromPool, ulaPool } from '../../daemon/network/ipam/ipam6';

test('addresses round-trip in canonical form; bad ones are 400s', () => {
  for (const [given, canonical] of [['2001:DB8:0:0:0:0:0:1', '2001:db8::1'], ['fd00::', 'fd00::'], ['::1', '::1'], ['::', '::'],
    ['2001:db8:0:1:0:0:0:0', '2001:db8:0:1::'], ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8']]) {
    assert.equal(bigToIp6(ip6ToBig(given)), canonical, given);
  }
  assert.throws(() => ip6ToBig('fd00::zz'), { kind: 'invalid' });
  assert.throws(() => parseCidr6('fd00::/129'), { kind: 'invalid' });
  assert.throws(() => parseCidr6('10.0.0.0/8'), { kind: 'invalid' });
});

test('prefixes: host bits dropped, containment', () => {
  const s = parseCidr6('2001:389::1/64');
  assert.equal(cidr6String(s), '2001:389::/64');
  assert.ok(contains6(s, ip6ToBig('2001:389::ffff:1')));
  assert.ok(!contains6(s, ip6ToBig('2001:389:0:1::1')));
});

test('the address pool: the lowest free address, never the subnet-router anycast one nor a reserved one; freed ones are given again; counted holders; the asker\'s own address', () => {
  const s = parseCidr6('2001:389::/64');
  const a = (t: string) => ip6ToBig(t);
  const p = new AddressPool6(s, undefined, [a('2001:389::1')]);
  assert.equal(bigToIp6(p.lowestFree()!), '2001:389::2');
  p.take(a('2001:389::2'));
  p.take(a('2001:389::3'));
  assert.equal(bigToIp6(p.lowestFree()!), '2001:389::4');
  p.free(a('2001:389::2'));
  assert.equal(bigToIp6(p.lowestFree()!), '2001:389::2', 'a freed address below the cursor comes first');
  // Two stopped containers created with one --ip6: the address stays taken until both let it go.
  p.take(a('2001:389::2'));
  p.take(a('2001:389::2'));
  assert.equal(p.holders(a('2001:389::2')), 2);
  p.free(a('2001:389::2'));
  assert.equal(bigToIp6(p.lowestFree()!), '2001:389::4');
  p.free(a('2001:389::2'));
  // The asker's own address counts as free to it (it holds it alone), when it is lower than the next free.
  p.take(a('2001:389::4'));
  assert.equal(bigToIp6(p.lowestFree(a('2001:389::3'))!), '2001:389::2');
  p.take(a('2001:389::2'));
  assert.equal(bigToIp6(p.lowestFree(a('2001:389::3'))!), '2001:389::3');
  // A range, and a range wholly taken.
  const r = new AddressPool6(s, parseCidr6('2001:389::100/127'), []);
  assert.equal(bigToIp6(r.lowestFree()!), '2001:389::100');
  r.take(a('2001:389::100'));
  r.take(a('2001:389::101'));
  assert.equal(r.lowestFree(), undefined);
  const tiny = new AddressPool6(parseCidr6('2001:389::/127'), undefined, [a('2001:389::1')]);
  assert.equal(tiny.lowestFree(), undefined);
});

test('the ULA pool: fdXX:XXXX:XXXX::/48 from the engine ID, the same for the same ID; /64s in order around used ones', () => {
  const p = ulaPool('engine-a');
  assert.equal(p.prefix, 48);
  assert.match(cidr6String(p), /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/48$/);
  assert.equal(cidr6String(ulaPool('engine-a')), cidr6String(p));
  assert.notEqual(cidr6String(ulaPool('engine-b')), cidr6String(p));
  const first = subnet6FromPool(p, 64, [])!;
  assert.equal(first.base, p.base);
  const second = subnet6FromPool(p, 64, [first])!;
  assert.equal(second.base, p.base + (1n << 64n));
  assert.equal(subnet6FromPool(p, 64, [p]), undefined, 'a pool wholly used gives nothing');
  // A user network's /56 inside the pool is stepped over whole.
  const big = { base: p.base, prefix: 56 };
  assert.equal(subnet6FromPool(p, 64, [big])!.base, p.base + (256n << 64n));
});
