// A container's gateway endpoints (daemon/network/endpoints.ts gateways) in Docker 28's order: GwPriority,
// then networks that are not internal, then dual-stack before single-stack, then by network name; the first
// dual-stack endpoint gives both default routes, else each family's first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gateways } from '../../daemon/network/endpoints';
import type { NetworkService } from '../../daemon/network/service';
import type { EndpointRow, NetworkRow } from '../../daemon/network/store';

type Kind = 'v4' | 'v6' | 'dual' | 'internal';
function setup(nets: Array<[string, Kind]>) {
  const rows = new Map<string, NetworkRow>();
  for (const [name, kind] of nets) {
    rows.set(name, { id: name, name, driver: 'bridge', internal: kind === 'internal', ipv6: kind !== 'v4',
      gateway: kind === 'v6' ? '' : '10.0.0.1', gateway6: kind === 'v4' ? '' : 'fd00::1' } as unknown as NetworkRow);
  }
  const svc = { nets: rows } as unknown as NetworkService;
  const ep = (name: string, gwPriority = 0) => ({ networkId: name, containerId: 'c', gwPriority } as EndpointRow);
  const names = (g: { v4?: EndpointRow; v6?: EndpointRow }) => `${g.v4?.networkId ?? '-'} ${g.v6?.networkId ?? '-'}`;
  return { svc, ep, names };
}

test('an IPv4 network and an IPv6-only one each give their family\'s route; alone, each gives its own', () => {
  const { svc, ep, names } = setup([['a4', 'v4'], ['b6', 'v6']]);
  assert.equal(names(gateways(svc, [ep('b6'), ep('a4')])), 'a4 b6');
  assert.equal(names(gateways(svc, [ep('b6')])), '- b6');
  assert.equal(names(gateways(svc, [ep('a4')])), 'a4 -');
});

test('a dual-stack network gives both routes before single-stack ones of the same priority, whatever the names or the order connected', () => {
  const { svc, ep, names } = setup([['a4', 'v4'], ['z46', 'dual'], ['b6', 'v6']]);
  assert.equal(names(gateways(svc, [ep('a4'), ep('b6'), ep('z46')])), 'z46 z46');
  // Docker's own order: the first dual-stack endpoint wins even over a higher priority single-stack one.
  assert.equal(names(gateways(svc, [ep('a4', 10), ep('z46')])), 'z46 z46');
});

test('GwPriority first, then by name; internal networks never give a route', () => {
  const { svc, ep, names } = setup([['n1', 'v4'], ['n2', 'v4'], ['in', 'internal']]);
  assert.equal(names(gateways(svc, [ep('n2'), ep('n1')])), 'n1 -', 'the name decides a tie, not the order connected');
  assert.equal(names(gateways(svc, [ep('n1'), ep('n2', 5)])), 'n2 -');
  assert.equal(names(gateways(svc, [ep('in', 100)])), '- -');
  assert.equal(names(gateways(svc, [ep('in', 100), ep('n2', -1)])), 'n2 -');
});
