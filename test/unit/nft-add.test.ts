// The firewall's incremental paths (daemon/network/firewall/nft.ts): the rules renderNetworkAdd adds for a
// new network to a table rendered for the others are the rules renderTable gives for all of them, in an
// order with the same effect (an internal network's drops before the other forward rules); the elements
// renderElements adds or deletes for a container are those renderTable gives with or without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { portElements, renderElements, renderNetworkAdd, renderTable, type FwNetwork, type FwPort } from '../../daemon/network/firewall/nft';

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

// Published ports: the elements renderElements adds and deletes for one container, applied to the table
// renderTable made without it, give the maps and sets renderTable makes with it (and back).
/** Elements of each map and set, per family, of a rendered table. */
function mapElements(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let family = '';
  let name = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const t = /^table (\w+) \S+ \{$/.exec(line);
    if (t) family = t[1];
    const m = /^(?:map|set) (\w+) \{$/.exec(line);
    if (m) {
      name = `${family} ${m[1]}`;
      out.set(name, new Set());
    }
    const e = /^elements = \{ (.*) \}$/.exec(line);
    if (e && name) for (const x of e[1].split(', ')) out.get(name)!.add(x);
    if (line.startsWith('chain ')) name = '';
  }
  return out;
}

function applyElements(before: Map<string, Set<string>>, statements: string): Map<string, Set<string>> {
  const out = new Map([...before].map(([k, v]) => [k, new Set(v)]));
  for (const line of statements.split('\n').filter(Boolean)) {
    const m = new RegExp(`^(add|delete) element (\\w+) ${T} (\\w+) \\{ (.*) \\}$`).exec(line);
    assert.ok(m, line);
    const set = out.get(`${m[2]} ${m[3]}`);
    assert.ok(set, `${m[2]} ${m[3]} exists`);
    if (m[1] === 'add') set.add(m[4]);
    else {
      const gone = [...set].find((x) => x === m[4] || x.startsWith(`${m[4]} : `));
      assert.ok(gone, `${m[4]} is there to delete`);
      set.delete(gone);
    }
  }
  return out;
}

test('renderElements: one container\'s ports and icc veth added and deleted match renderTable', () => {
  const nets = [net(0), net(1, { icc: false, ports: ['vetha'], subnet6: 'fd00:9::/64' })];
  const others: FwPort[] = [{ proto: 'tcp', hostIp: '', hostPort: 8080, ctrIp: '10.9.0.2', ctrPort: 80 },
    { proto: 'udp', hostIp: '127.0.0.1', hostPort: 53, ctrIp: '10.9.1.2', ctrPort: 53 }];
  const mine: FwPort[] = [{ proto: 'tcp', hostIp: '', hostPort: 8081, ctrIp: '10.9.1.3', ctrPort: 80 },
    { proto: 'tcp', hostIp: '10.0.0.5', hostPort: 8082, ctrIp: '10.9.1.3', ctrPort: 80 },
    { proto: 'tcp', hostIp: '::', hostPort: 8081, ctrIp: 'fd00:9::3', ctrPort: 80 }];
  const without = renderTable(T, nets, others);
  const withMine = renderTable(T, [nets[0], { ...nets[1], ports: ['vetha', 'vethb'] }], [...others, ...mine]);
  const els = mine.map(portElements);
  // Two of mine share one destination: one `dst` element for both.
  const dst = [...new Map(els.map((e) => [`${e.family} ${e.dst}`, [e.family, e.dst] as ['ip' | 'ip6', string]])).values()];
  const add = renderElements(T, { addPorts: els, delPorts: [], addDst: dst, delDst: [], addIcc: [['br-1', 'vethb']], delIcc: [] });
  assert.deepEqual(applyElements(mapElements(without), add), mapElements(withMine));
  const del = renderElements(T, { addPorts: [], delPorts: els, addDst: [], delDst: dst, addIcc: [], delIcc: [['br-1', 'vethb']] });
  assert.deepEqual(applyElements(mapElements(withMine), del), mapElements(without));
});
