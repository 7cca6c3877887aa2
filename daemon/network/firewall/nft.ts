// The firewall as data: one nftables table per berthd (named after its default bridge, so that several
// daemons on one host keep apart), regenerated whole from the networks and published ports and loaded with
// one `nft -f` (a single transaction: the old table goes and the new one comes atomically). Why the `nft`
// tool and not libnftables through the addon: the same text is what `nft list ruleset` shows, so a test
// and a person read what berth wrote; and the tool has no ABI to keep in step with.
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

export function renderTable(table: string, nets: FwNetwork[], ports: FwPort[]): string {
  const q = (s: string) => `"${s}"`;
  const post: string[] = [];
  const fwd: string[] = [];
  const pre: string[] = [];
  const out: string[] = [];
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
    // (`meta ibrname` would name the bridge, but needs a module this kernel may not have).
    if (!n.icc && n.ports.length) {
      const set = `{ ${n.ports.map(q).join(', ')} }`;
      brFwd.push(`iifname ${set} oifname ${set} drop`);
    }
    for (const o of nets) {
      if (o !== n) fwd.push(`iifname ${q(n.bridge)} oifname ${q(o.bridge)} drop`);
    }
  }
  const subnets = nets.map((n) => n.subnet).filter(Boolean);
  const v6 = ports.filter((p) => p.ctrIp.includes(':'));
  for (const p of ports.filter((x) => !x.ctrIp.includes(':'))) {
    const daddr = p.hostIp && p.hostIp !== '0.0.0.0' ? `ip daddr ${p.hostIp} ` : 'fib daddr type local ';
    const rule = `${daddr}${p.proto} dport ${p.hostPort} dnat to ${p.ctrIp}:${p.ctrPort}`;
    // A port published on a loopback address is for the host's own processes (output) only: a packet
    // from elsewhere that says 127.0.0.1 (another host on a link with route_localnet, a container through
    // its gateway) never reaches prerouting's DNAT (CVE-2020-8558).
    if (!isLoopback(p.hostIp)) pre.push(rule);
    out.push(rule);
    // Traffic from 127.0.0.1 to a container must leave with an address the container can answer.
    post.push(`ip saddr 127.0.0.0/8 ip daddr ${p.ctrIp} ${p.proto} dport ${p.ctrPort} masquerade`);
    // A container that reaches a published port through a host address: the answer must come back through
    // the host too (the container it reached may be on the same bridge and would answer it directly).
    if (subnets.length) post.push(`ct status dnat ip saddr { ${subnets.join(', ')} } ip daddr ${p.ctrIp} ${p.proto} dport ${p.ctrPort} masquerade`);
  }
  // Published ports are reachable from every network that is not internal, across the isolation below.
  if (ports.length) sealed.push('ct status dnat accept');
  fwd.unshift(...sealed);
  fwd.push(...exposed);
  return `table ip ${table}\ndelete table ip ${table}\ntable ip ${table} {\n` +
    chain('prerouting', 'nat hook prerouting', 'dstnat', pre) +
    chain('output', 'nat hook output', '-100', out) +
    chain('postrouting', 'nat hook postrouting', 'srcnat', post) +
    chain('forward', 'filter hook forward', 'filter', fwd) +
    chain('input', 'filter hook input', 'filter', input) +
    chain('rawprerouting', 'filter hook prerouting', 'raw', raw) +
    '}\n' +
    `table bridge ${table}\ndelete table bridge ${table}\n` +
    (brFwd.length ? `table bridge ${table} {\n${chain('forward', 'filter hook forward', 'filter', brFwd)}}\n` : '') +
    renderTable6(table, nets, v6);
}

const chain = (name: string, hook: string, prio: string, rules: string[]) =>
  `  chain ${name} {\n    type ${hook} priority ${prio}; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n`;

/** The IPv6 side, in an `ip6` table of the same name: present only while some network has IPv6, so a host
 *  without IPv6 networks gets exactly the rules it had before. The forward rules are the IPv4 table's
 *  (isolation, internal networks, what may reach a bridge from outside: they name devices and conntrack
 *  states, not addresses); NAT is for the IPv6 subnets and the ports published to IPv6 addresses. Ports
 *  published on [::1] are not here: IPv6 has no route_localnet, so a packet from ::1 cannot be sent to a
 *  container; berthd's port holder relays them (ports.ts), as Docker's userland proxy does. */
function renderTable6(table: string, nets: FwNetwork[], ports: FwPort[]): string {
  const gone = `table ip6 ${table}\ndelete table ip6 ${table}\n`;
  if (!nets.some((n) => n.subnet6)) return gone;
  const q = (s: string) => `"${s}"`;
  const post: string[] = [];
  const fwd: string[] = [];
  const sealed: string[] = [];
  const exposed: string[] = [];
  const pre: string[] = [];
  const out: string[] = [];
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
  const subnets = nets.map((n) => n.subnet6).filter(Boolean);
  for (const p of ports) {
    const daddr = p.hostIp && p.hostIp !== '::' ? `ip6 daddr ${p.hostIp} ` : 'fib daddr type local ip6 daddr != ::1 ';
    const rule = `${daddr}${p.proto} dport ${p.hostPort} dnat to [${p.ctrIp}]:${p.ctrPort}`;
    pre.push(rule);
    out.push(rule);
    if (subnets.length) post.push(`ct status dnat ip6 saddr { ${subnets.join(', ')} } ip6 daddr ${p.ctrIp} ${p.proto} dport ${p.ctrPort} masquerade`);
  }
  if (ports.length) sealed.push('ct status dnat accept');
  return gone + `table ip6 ${table} {\n` +
    chain('prerouting', 'nat hook prerouting', 'dstnat', pre) +
    chain('output', 'nat hook output', '-100', out) +
    chain('postrouting', 'nat hook postrouting', 'srcnat', post) +
    chain('forward', 'filter hook forward', 'filter', [...sealed, ...fwd, ...exposed]) +
    chain('input', 'filter hook input', 'filter', input) +
    '}\n';
}

/** The rules a new network adds to a table that `renderTable` made for `others` with no published ports, as
 *  `add`/`insert rule` statements: the same rules in an order with the same effect (an internal network's
 *  drops first in forward, the isolation drops last). Adding rules is cheap for the kernel; rewriting the
 *  table deletes every rule, and a transaction that deletes rules costs this machine 10–20 ms. */
export function renderNetworkAdd(table: string, n: FwNetwork, others: FwNetwork[]): string {
  const q = (s: string) => `"${s}"`;
  const lines: string[] = [];
  if (n.internal) {
    lines.push(`insert rule ip ${table} forward oifname ${q(n.bridge)} iifname != ${q(n.bridge)} drop`);
    lines.push(`insert rule ip ${table} forward iifname ${q(n.bridge)} oifname != ${q(n.bridge)} drop`);
  } else if (n.masquerade) {
    lines.push(`add rule ip ${table} postrouting ip saddr ${n.subnet} oifname != ${q(n.bridge)} masquerade`);
  }
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
