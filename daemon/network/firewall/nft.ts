// The firewall as data: one nftables table per berthd (named after its default bridge, so that several
// daemons on one host keep apart), rendered whole from the networks and published ports at start and when
// networks go, and loaded with one `nft -f` (a single transaction: the old table goes and the new one comes
// atomically). Published ports and the veths of icc=false networks are elements of named maps and sets
// that fixed rules look up, so publishing or unpublishing one container's ports is `add element` /
// `delete element` of its own elements (renderElements): replacing the table on every start cost the kernel
// more with every port it held (the start rate fell from 57/s at 100 containers to 20/s at 1,000). Why the
// `nft` tool and not libnftables through the addon: the same text is what `nft list ruleset` shows, so a
// test and a person read what berth wrote; and the tool has no ABI to keep in step with.
import { tools } from '../../lib/tools';

export interface FwNetwork {
  bridge: string;
  subnet: string;
  /** The IPv6 subnet of a network with IPv6 ('' or absent otherwise). */
  subnet6?: string;
  internal: boolean;
  icc: boolean;
  masquerade: boolean;
  /** Host ends of the network's veths (for icc=false). */
  ports: string[];
  /** The embedded DNS server's address (user networks), answering on the bridge only; its IPv6 one. */
  dns?: string;
  dns6?: string;
}

export interface FwPort {
  proto: 'tcp' | 'udp';
  hostIp: string;      // '' = any
  hostPort: number;
  ctrIp: string;
  ctrPort: number;
}

/** The maps and sets the rules look up. DNAT: `any` holds ports published on every address of the host
 *  (key proto . port), `addr` those on one address (address . proto . port), `lo` (IPv4) those on a
 *  loopback address, looked up in output only; each maps to the container's address . port. `dst` holds
 *  each published destination (container address . proto . port) for the masquerade rules. A binding's
 *  host port is unique per family and address (ports.ts refuses a second one, a wildcard clashing with
 *  any address), so no two elements of one map have the same key; `dst` elements may be shared by two
 *  bindings (two host ports to one container port) and are counted by the caller. */
export const PORT_MAPS = { any: 'pub_any', addr: 'pub_addr', lo: 'pub_lo', dst: 'pub_dst' } as const;

/** Where one binding's elements go: its family's table, its DNAT map, the map element, and its `dst` element. */
export interface PortElements {
  family: 'ip' | 'ip6';
  map: string;
  /** `key : value` of the DNAT map. */
  key: string;
  value: string;
  dst: string;
}

const isV6Addr = (ip: string) => ip.includes(':');

export function portElements(p: FwPort): PortElements {
  const v6 = isV6Addr(p.ctrIp);
  const any = v6 ? !p.hostIp || p.hostIp === '::' : !p.hostIp || p.hostIp === '0.0.0.0';
  const map = any ? PORT_MAPS.any : !v6 && isLoopback(p.hostIp) ? PORT_MAPS.lo : PORT_MAPS.addr;
  return { family: v6 ? 'ip6' : 'ip', map, key: any ? `${p.proto} . ${p.hostPort}` : `${p.hostIp} . ${p.proto} . ${p.hostPort}`,
    value: `${p.ctrIp} . ${p.ctrPort}`, dst: `${p.ctrIp} . ${p.proto} . ${p.ctrPort}` };
}

/** The name of the bridge-family set of an icc=false network's veths: the bridge's name with anything
 *  but letters and digits written as _XX (hex), so that two bridge names never give one set name. */
export function iccSet(bridge: string): string {
  return `icc_${bridge.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`;
}

const q = (s: string) => `"${s}"`;
const elements = (list: string[]) => (list.length ? `    elements = { ${list.join(', ')} }\n` : '');

function portMaps(family: 'ip' | 'ip6', ports: FwPort[]): string {
  const addr = family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const els = ports.map(portElements);
  const of = (m: string) => els.filter((e) => e.map === m).map((e) => `${e.key} : ${e.value}`);
  const maps: Array<[string, string]> = [[PORT_MAPS.any, 'inet_proto . inet_service'], [PORT_MAPS.addr, `${addr} . inet_proto . inet_service`]];
  if (family === 'ip') maps.push([PORT_MAPS.lo, `${addr} . inet_proto . inet_service`]);
  return maps.map(([name, key]) => `  map ${name} {\n    type ${key} : ${addr} . inet_service\n${elements(of(name))}  }\n`).join('') +
    `  set ${PORT_MAPS.dst} {\n    type ${addr} . inet_proto . inet_service\n${elements([...new Set(els.map((e) => e.dst))])}  }\n`;
}

export function renderTable(table: string, nets: FwNetwork[], ports: FwPort[]): string {
  const post: string[] = [];
  const fwd: string[] = [];
  const brSets: string[] = [];
  const brFwd: string[] = [];
  const sealed: string[] = []; // internal networks: before everything else in forward
  const exposed: string[] = []; // what reaches a bridge from elsewhere: last in forward
  const input: string[] = [];
  const raw: string[] = [LOCALNET_DROP];
  for (const n of nets) {
    exposed.push(...exposure(n));
    input.push(...dnsInput(n));
    if (n.internal) {
      sealed.push(`iifname ${q(n.bridge)} oifname != ${q(n.bridge)} drop`);
      sealed.push(`oifname ${q(n.bridge)} iifname != ${q(n.bridge)} drop`);
    } else if (n.masquerade && n.subnet) {
      post.push(`ip saddr ${n.subnet} oifname != ${q(n.bridge)} masquerade`);
    }
    // icc=false: frames between two ports of one bridge never reach the ip family's hooks (they are
    // switched, not routed), so that rule lives in a bridge-family table of the same name, on the ports
    // (`meta ibrname` would name the bridge, but needs a module this kernel may not have). The ports are
    // a set of the network's own, changed as containers come and go.
    if (!n.icc) {
      const set = iccSet(n.bridge);
      brSets.push(`  set ${set} {\n    type ifname\n${elements(n.ports.map(q))}  }\n`);
      brFwd.push(`iifname @${set} oifname @${set} drop`);
    }
    for (const o of nets) {
      if (o !== n) fwd.push(`iifname ${q(n.bridge)} oifname ${q(o.bridge)} drop`);
    }
  }
  // Published ports (elements of the maps, see PORT_MAPS). A port published on a loopback address is for
  // the host's own processes (output) only: a packet from elsewhere that says 127.0.0.1 (another host on a
  // link with route_localnet, a container through its gateway) never reaches prerouting's DNAT
  // (CVE-2020-8558).
  const dnatAny = `fib daddr type local dnat ip to meta l4proto . th dport map @${PORT_MAPS.any}`;
  const dnatAddr = `dnat ip to ip daddr . meta l4proto . th dport map @${PORT_MAPS.addr}`;
  const pre = [dnatAny, dnatAddr];
  const out = [dnatAny, dnatAddr, `dnat ip to ip daddr . meta l4proto . th dport map @${PORT_MAPS.lo}`];
  const dst = `ip daddr . meta l4proto . th dport @${PORT_MAPS.dst}`;
  // Traffic from 127.0.0.1 to a container must leave with an address the container can answer.
  post.push(`ip saddr 127.0.0.0/8 ${dst} masquerade`);
  // A container that reaches a published port through a host address: the answer must come back through
  // the host too (the container it reached may be on the same bridge and would answer it directly).
  for (const n of nets) if (n.subnet) post.push(portHairpin(n, dst));
  // Published ports are reachable from every network that is not internal, across the isolation below
  // (whether or not a port is published at the moment: only berth's own DNAT sends packets to a bridge).
  sealed.push('ct status dnat accept');
  fwd.unshift(...sealed);
  fwd.push(...exposed);
  return `table ip ${table}\ndelete table ip ${table}\ntable ip ${table} {\n` +
    portMaps('ip', ports.filter((p) => !isV6Addr(p.ctrIp))) +
    chain('prerouting', 'nat hook prerouting', 'dstnat', pre) +
    chain('output', 'nat hook output', '-100', out) +
    chain('postrouting', 'nat hook postrouting', 'srcnat', post) +
    chain('forward', 'filter hook forward', 'filter', fwd) +
    chain('input', 'filter hook input', 'filter', input) +
    chain('rawprerouting', 'filter hook prerouting', 'raw', raw) +
    '}\n' +
    `table bridge ${table}\ndelete table bridge ${table}\n` +
    (brFwd.length ? `table bridge ${table} {\n${brSets.join('')}${chain('forward', 'filter hook forward', 'filter', brFwd)}}\n` : '') +
    renderTable6(table, nets, ports.filter((p) => isV6Addr(p.ctrIp)));
}

/** The masquerade of published ports reached from a network's own subnet (see renderTable). */
const portHairpin = (n: FwNetwork, dst: string) => `ct status dnat ip saddr ${n.subnet} ${dst} masquerade`;

const chain = (name: string, hook: string, prio: string, rules: string[]) =>
  `  chain ${name} {\n    type ${hook} priority ${prio}; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n`;

/** The IPv6 side, in an `ip6` table of the same name: present only while some network has IPv6, so a host
 *  without IPv6 networks gets exactly the rules it had before. The forward rules are the IPv4 table's
 *  (isolation, internal networks, what may reach a bridge from outside: they name devices and conntrack
 *  states, not addresses); NAT is for the IPv6 subnets and the ports published to IPv6 addresses. Ports
 *  published on [::1] are not here: IPv6 has no route_localnet, so a packet from ::1 cannot be sent to a
 *  container; berthd's port holder relays them (ports.ts), as Docker's userland proxy does (nothing does
 *  with "userland-proxy": false, as in Docker). */
function renderTable6(table: string, nets: FwNetwork[], ports: FwPort[]): string {
  const gone = `table ip6 ${table}\ndelete table ip6 ${table}\n`;
  if (!nets.some((n) => n.subnet6)) return gone;
  const post: string[] = [];
  const fwd: string[] = [];
  const sealed: string[] = [];
  const exposed: string[] = [];
  const input: string[] = [];
  for (const n of nets) {
    exposed.push(...exposure(n));
    if (n.dns6) input.push(...dnsInput({ ...n, dns: n.dns6 }).map((r) => r.replace(' ip daddr ', ' ip6 daddr ')));
    if (n.internal) {
      sealed.push(`iifname ${q(n.bridge)} oifname != ${q(n.bridge)} drop`);
      sealed.push(`oifname ${q(n.bridge)} iifname != ${q(n.bridge)} drop`);
    } else if (n.masquerade && n.subnet6) {
      post.push(`ip6 saddr ${n.subnet6} oifname != ${q(n.bridge)} masquerade`);
    }
    for (const o of nets) {
      if (o !== n) fwd.push(`iifname ${q(n.bridge)} oifname ${q(o.bridge)} drop`);
    }
  }
  const dnat = [`fib daddr type local ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @${PORT_MAPS.any}`,
    `dnat ip6 to ip6 daddr . meta l4proto . th dport map @${PORT_MAPS.addr}`];
  for (const n of nets) if (n.subnet6) post.push(`ct status dnat ip6 saddr ${n.subnet6} ip6 daddr . meta l4proto . th dport @${PORT_MAPS.dst} masquerade`);
  sealed.push('ct status dnat accept');
  return gone + `table ip6 ${table} {\n` +
    portMaps('ip6', ports) +
    chain('prerouting', 'nat hook prerouting', 'dstnat', dnat) +
    chain('output', 'nat hook output', '-100', dnat) +
    chain('postrouting', 'nat hook postrouting', 'srcnat', post) +
    chain('forward', 'filter hook forward', 'filter', [...sealed, ...fwd, ...exposed]) +
    chain('input', 'filter hook input', 'filter', input) +
    '}\n';
}

/** Statements that add and delete elements of the port maps and icc sets of a table renderTable made: one
 *  transaction (`nft -f`), which fails whole when an element to delete is missing or one to add clashes. */
export function renderElements(table: string, ch: ElementChange): string {
  const lines: string[] = [];
  for (const e of ch.delPorts) lines.push(`delete element ${e.family} ${table} ${e.map} { ${e.key} }`);
  for (const [family, d] of ch.delDst) lines.push(`delete element ${family} ${table} ${PORT_MAPS.dst} { ${d} }`);
  for (const [bridge, ifname] of ch.delIcc) lines.push(`delete element bridge ${table} ${iccSet(bridge)} { ${q(ifname)} }`);
  for (const e of ch.addPorts) lines.push(`add element ${e.family} ${table} ${e.map} { ${e.key} : ${e.value} }`);
  for (const [family, d] of ch.addDst) lines.push(`add element ${family} ${table} ${PORT_MAPS.dst} { ${d} }`);
  for (const [bridge, ifname] of ch.addIcc) lines.push(`add element bridge ${table} ${iccSet(bridge)} { ${q(ifname)} }`);
  return lines.length ? lines.join('\n') + '\n' : '';
}

export interface ElementChange {
  addPorts: PortElements[];
  delPorts: PortElements[];
  addDst: Array<['ip' | 'ip6', string]>;
  delDst: Array<['ip' | 'ip6', string]>;
  /** (bridge, veth) of icc=false networks. */
  addIcc: Array<[string, string]>;
  delIcc: Array<[string, string]>;
}

/** The rules a new IPv4-only network with icc on adds to a table that `renderTable` made for `others`, as
 *  `add`/`insert rule` statements: the same rules in an order with the same effect (an internal network's
 *  drops first in forward, the isolation drops last; the published ports' elements stay as they are).
 *  Adding rules is cheap for the kernel; rewriting the table deletes every rule, and a transaction that
 *  deletes rules costs this machine 10–20 ms. */
export function renderNetworkAdd(table: string, n: FwNetwork, others: FwNetwork[]): string {
  const lines: string[] = [];
  if (n.internal) {
    lines.push(`insert rule ip ${table} forward oifname ${q(n.bridge)} iifname != ${q(n.bridge)} drop`);
    lines.push(`insert rule ip ${table} forward iifname ${q(n.bridge)} oifname != ${q(n.bridge)} drop`);
  } else if (n.masquerade) {
    lines.push(`add rule ip ${table} postrouting ip saddr ${n.subnet} oifname != ${q(n.bridge)} masquerade`);
  }
  if (n.subnet) lines.push(`add rule ip ${table} postrouting ${portHairpin(n, `ip daddr . meta l4proto . th dport @${PORT_MAPS.dst}`)}`);
  for (const o of others) {
    lines.push(`add rule ip ${table} forward iifname ${q(n.bridge)} oifname ${q(o.bridge)} drop`);
    lines.push(`add rule ip ${table} forward iifname ${q(o.bridge)} oifname ${q(n.bridge)} drop`);
  }
  // After the isolation drops, as renderTable has them: these only match packets to the new bridge, which
  // the others' rules before them never accept.
  for (const r of exposure(n)) lines.push(`add rule ip ${table} forward ${r}`);
  for (const r of dnsInput(n)) lines.push(`add rule ip ${table} input ${r}`);
  return lines.join('\n') + '\n';
}

const isLoopback = (ip: string) => /^127\./.test(ip);

/** What may reach a container from outside its bridge: answers to its own connections and published ports
 *  (DNAT). The rest (another host routing to a container's address, the host's other interfaces) is
 *  dropped, so an unpublished port is reachable from its own network only. Traffic between other bridges
 *  and this one is dropped by the isolation rules before these. */
function exposure(n: FwNetwork): string[] {
  if (n.internal) return [];
  const b = `"${n.bridge}"`;
  return [`oifname ${b} ct state established,related accept`, `oifname ${b} ct status dnat accept`, `oifname ${b} iifname ${b} accept`, `oifname ${b} drop`];
}

/** The embedded DNS server answers its own network's containers: queries to it from anywhere else (the host
 *  routes a packet for the gateway address in from any interface) are dropped. */
function dnsInput(n: FwNetwork): string[] {
  if (!n.dns) return [];
  const b = `"${n.bridge}"`;
  return [`iifname != ${b} ip daddr ${n.dns} udp dport 53 drop`, `iifname != ${b} ip daddr ${n.dns} tcp dport 53 drop`];
}

/** berth's bridges have route_localnet (so that the host's own 127.0.0.1 reaches published ports), and a
 *  host may have it on other interfaces: a packet that comes in on any of them addressed to 127.0.0.0/8
 *  would reach the host's loopback services (CVE-2020-8558). Dropped before conntrack and NAT see it,
 *  as the fix of that CVE does; without route_localnet the kernel drops such packets anyway, so the rule
 *  changes nothing else. Answers to the host's own connections to published ports are not affected: at
 *  this point they are still addressed to the bridge's gateway (the masquerade is undone later). */
const LOCALNET_DROP = 'iifname != "lo" ip daddr 127.0.0.0/8 drop';

export async function applyTable(text: string): Promise<void> {
  await tools.nft(['-f', '-'], text);
}

export async function deleteTable(table: string): Promise<void> {
  await tools.nft(['-f', '-'], `table ip ${table}\ndelete table ip ${table}\ntable bridge ${table}\ndelete table bridge ${table}\ntable ip6 ${table}\ndelete table ip6 ${table}\n`).catch(() => {});
}
