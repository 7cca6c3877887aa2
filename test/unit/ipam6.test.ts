// IPv6 address management (daemon/network/ipam/ipam6.ts): text ⇄ 128-bit numbers in RFC 5952's form,
// prefixes, the first free address, and the engine's ULA pool that networks without an IPv6 subnet take a
// /64 of.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bigToIp6, cidr6String, contains6, firstFree6, ip6ToBig, parseCidr6, subnet6FromPool, ulaPool } from '../../daemon/network/ipam/ipam6';

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

test('prefixes: host bits dropped, containment, the first free address skips the subnet-router anycast one', () => {
  const s = parseCidr6('2001:389::1/64');
  assert.equal(cidr6String(s), '2001:389::/64');
  assert.ok(contains6(s, ip6ToBig('2001:389::ffff:1')));
  assert.ok(!contains6(s, ip6ToBig('2001:389:0:1::1')));
  const taken = new Set([ip6ToBig('2001:389::1'), ip6ToBig('2001:389::2')]);
  assert.equal(bigToIp6(firstFree6(s, undefined, taken)!), '2001:389::3');
  const range = parseCidr6('2001:389::100/120');
  assert.equal(bigToIp6(firstFree6(s, range, taken)!), '2001:389::100');
  const tiny = parseCidr6('2001:389::/127');
  assert.equal(firstFree6(tiny, undefined, new Set([ip6ToBig('2001:389::1')])), undefined);
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
