// The firewall's incremental path (daemon/network/firewall/nft.ts): the rules renderNetworkAdd adds for a
// new network to a table rendered for the others are the rules renderTable gives for all of them, in an
// order with the same effect (an internal network's drops before the other forward rules).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderNetworkAdd, renderTable, type FwNetwork } from '../../daemon/network/firewall/nft';

const T = 'berth_t';

/** Rules per chain of a rendered table (ip family only). */
function chains(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let cur = '';
  const ip = text.slice(text.indexOf(`table ip ${T} {`), text.indexOf(`table bridge ${T}`));
  for (const raw of ip.split('\n')) {
    const line = raw.trim();
    const m = /^chain (\w+) \{$/.exec(line);
    if (m) {
      cur = m[1];
      out.set(cur, []);
    } else if (cur && line && line !== '}' && !line.startsWith('type ')) {
      out.get(cur)!.push(line);
    }
  }
  return out;
}

/** The table for `before` with the add statements applied (insert = at the head, add = at the end). */
function applyAdd(before: string, add: string): Map<string, string[]> {
  const c = chains(before);
  for (const line of add.split('\n').filter(Boolean)) {
    const m = new RegExp(`^(add|insert) rule ip ${T} (\\w+) (.*)$`).exec(line);
    assert.ok(m, line);
    const list = c.get(m[2])!;
    if (m[1] === 'insert') list.unshift(m[3]);
    else list.push(m[3]);
  }
  return c;
}

const net = (i: number, o: Partial<FwNetwork> = {}): FwNetwork => ({
  bridge: `br-${i}`, subnet: `10.9.${i}.0/24`, internal: false, icc: true, masquerade: true, ports: [], ...o,
});

const sorted = (m: Map<string, string[]>) => new Map([...m].map(([k, v]) => [k, [...v].sort()]));

for (const [name, others, added] of [
  ['a plain network next to the default one', [net(0)], net(1)],
  ['a network next to several, one internal', [net(0), net(1, { internal: true }), net(2, { masquerade: false })], net(3)],
  ['an internal network', [net(0), net(1)], net(2, { internal: true })],
  ['a network without masquerade', [net(0)], net(1, { masquerade: false })],
] as Array<[string, FwNetwork[], FwNetwork]>) {
  test(`renderNetworkAdd: ${name}`, () => {
    const got = applyAdd(renderTable(T, others, []), renderNetworkAdd(T, added, others));
    const want = chains(renderTable(T, [...others, added], []));
    // The same rules in every chain …
    assert.deepEqual(sorted(got), sorted(want));
    // … and in forward the internal networks' drops (the only rules whose place matters: they come before
    // everything else) still come first.
    const isSealed = (r: string) => r.includes('oifname !=') || r.includes('iifname !=');
    const fwd = got.get('forward')!;
    const firstOther = fwd.findIndex((r) => !isSealed(r));
    assert.ok(firstOther === -1 || fwd.slice(firstOther).every((r) => !isSealed(r)), fwd.join('\n'));
  });
}
