// The host's own iptables firewall. A packet is forwarded only when every base chain on the forward hook
// accepts it: berth's nftables table cannot overrule an iptables `filter FORWARD` chain whose policy is
// DROP (what Docker, ufw and many hardening guides leave behind) or a rule in it that drops. So when the
// filter table exists, berth keeps a chain of its own there, jumped to from FORWARD right after Docker's
// DOCKER-USER chain when there is one (a user's own rules there still decide first), that accepts:
//   - everything coming from one of its bridges (isolation between networks and icc=false stay in berth's
//     nftables table, which drops what it must on the same hook);
//   - answers to containers' connections and published ports (DNAT) going to a bridge.
// A second chain, jumped to from INPUT, accepts the embedded DNS server's queries from the bridges (a
// host with INPUT policy DROP would drop them). Both are rewritten whole whenever the bridges change, and
// removed when none is left. iptables-nft and iptables-legacy are separate tables in the kernel, each
// with its own hooks: each one whose filter table can drop (a policy other than ACCEPT on FORWARD or
// INPUT, or any rule there) gets the chains. A table that accepts everything gets nothing: there is
// nothing to overrule, and the host's firewall stays as its owner left it. The same goes for ip6tables
// (Docker 28 leaves its FORWARD policy DROP too, and br_netfilter sends bridged IPv6 through it): its
// chains accept the bridges' traffic for IPv6 networks, and DNS queries to the IPv6 gateways, where the
// embedded DNS server listens too.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tools } from '../../lib/tools';

export interface Backend {
  name: 'nft' | 'legacy';
  /** iptables (4) or ip6tables (6). */
  family: 4 | 6;
  tool: string; // iptables-nft, iptables-legacy, ip6tables-nft, … (or iptables when it is the one)
  /** The filter table may drop forwarded or input traffic (berth's chains are needed). */
  drops: boolean;
  /** The chains of this berthd exist there. */
  ours: boolean;
}

function which(names: string[]): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const n of names) for (const d of dirs) if (d && existsSync(path.join(d, n))) return path.join(d, n);
  return undefined;
}

/** The iptables backends whose filter table exists in this network namespace, and what it holds. Looking
 *  does not create one: nft lists the chain, and the legacy tables in use are named in
 *  /proc/net/ip_tables_names; only then is the table read (`-S`). */
export async function backends(chains: { forward: string; input: string }): Promise<Backend[]> {
  const found: Array<Pick<Backend, 'name' | 'tool' | 'family'>> = [];
  for (const [family, nftFamily, cmd, names] of [[4, 'ip', 'iptables', 'ip_tables_names'], [6, 'ip6', 'ip6tables', 'ip6_tables_names']] as const) {
    const nftHas = await tools.nft(['list', 'chain', nftFamily, 'filter', 'FORWARD']).then(() => true, () => false);
    if (nftHas) {
      const tool = which([`${cmd}-nft`]) ?? which([cmd]);
      if (tool) found.push({ name: 'nft', family, tool });
    }
    let legacy = false;
    try {
      legacy = readFileSync(`/proc/net/${names}`, 'utf8').split('\n').includes('filter');
    } catch { /* no legacy iptables of this family in this kernel */ }
    if (legacy) {
      const tool = which([`${cmd}-legacy`]);
      if (tool) found.push({ name: 'legacy', family, tool });
    }
  }
  const out: Backend[] = [];
  for (const f of found) {
    const lines = (await tools.iptables(f.tool, ['-w', '10', '-t', 'filter', '-S'])).split('\n');
    const mine = new Set([chains.forward, chains.input]);
    const drops = lines.some((l) => /^-P (FORWARD|INPUT) (?!ACCEPT)/.test(l)
      || (/^-A (FORWARD|INPUT) /.test(l) && !/ -j BERTH-(FWD|IN)-\S+$/.test(l)));
    const ours = lines.some((l) => l.startsWith('-N ') && mine.has(l.slice(3).trim()));
    out.push({ ...f, drops, ours });
  }
  return out;
}

/** Chain names: one pair per berthd (named after its default bridge, as its nftables table is). */
export function chainNames(defaultBridge: string): { forward: string; input: string } {
  return { forward: `BERTH-FWD-${defaultBridge}`.slice(0, 28), input: `BERTH-IN-${defaultBridge}`.slice(0, 28) };
}

export interface HostBridge {
  bridge: string;
  dns?: string; // embedded DNS address on it
  dns6?: string; // and its IPv6 one (networks with IPv6)
}

/** The restore text of the two chains (flushed and refilled, without touching the rest of the table). */
export function renderChains(chains: { forward: string; input: string }, bridges: HostBridge[]): string {
  // Bridge names are [A-Za-z0-9_.-] (config and network create check): no quoting needed.
  const q = (s: string) => s;
  const lines = ['*filter', `:${chains.forward} - [0:0]`, `:${chains.input} - [0:0]`];
  for (const b of bridges) {
    lines.push(`-A ${chains.forward} -i ${q(b.bridge)} -j ACCEPT`);
    lines.push(`-A ${chains.forward} -o ${q(b.bridge)} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`);
    if (b.dns) {
      lines.push(`-A ${chains.input} -i ${q(b.bridge)} -d ${b.dns} -p udp --dport 53 -j ACCEPT`);
      lines.push(`-A ${chains.input} -i ${q(b.bridge)} -d ${b.dns} -p tcp --dport 53 -j ACCEPT`);
    }
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The rules of a built-in chain, as `-A` lines (`iptables -S`). */
async function rulesOf(be: Backend, chain: string): Promise<string[]> {
  return (await tools.iptables(be.tool, ['-w', '10', '-t', 'filter', '-S', chain])).split('\n').filter((l) => l.startsWith('-A '));
}

/** Makes `chain` be jumped to from `builtin`, right after the DOCKER-USER jump when there is one, else first. */
async function ensureJump(be: Backend, builtin: string, chain: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const rules = await rulesOf(be, builtin);
    const ours = rules.findIndex((r) => r === `-A ${builtin} -j ${chain}`);
    const user = rules.findIndex((r) => r === `-A ${builtin} -j DOCKER-USER`);
    const want = user >= 0 ? user + 1 : 0;
    if (ours === want) return;
    if (ours >= 0) {
      await tools.iptables(be.tool, ['-w', '10', '-t', 'filter', '-D', builtin, '-j', chain]);
      continue;
    }
    await tools.iptables(be.tool, ['-w', '10', '-t', 'filter', '-I', builtin, String(want + 1), '-j', chain]);
    return;
  }
}

/** The chains hold exactly the rules for `bridges`, and FORWARD and INPUT jump to them. */
export async function syncChains(be: Backend, chains: { forward: string; input: string }, bridges: HostBridge[]): Promise<void> {
  const forFamily = be.family === 6 ? bridges.map((b) => ({ bridge: b.bridge, dns: b.dns6 })) : bridges;
  await tools.iptables(`${be.tool}-restore`, ['-w', '10', '--noflush'], renderChains(chains, forFamily));
  await ensureJump(be, 'FORWARD', chains.forward);
  await ensureJump(be, 'INPUT', chains.input);
}

/** The jumps and the chains go (nothing is left when they were not there). */
export async function removeChains(be: Backend, chains: { forward: string; input: string }): Promise<void> {
  for (const [builtin, chain] of [['FORWARD', chains.forward], ['INPUT', chains.input]]) {
    let rules: string[] = [];
    try { rules = await rulesOf(be, builtin); } catch { continue; }
    const n = rules.filter((r) => r === `-A ${builtin} -j ${chain}`).length;
    for (let i = 0; i < n; i++) await tools.iptables(be.tool, ['-w', '10', '-t', 'filter', '-D', builtin, '-j', chain]).catch(() => {});
    await tools.iptables(be.tool, ['-w', '10', '-t', 'filter', '-F', chain]).catch(() => {});
    await tools.iptables(be.tool, ['-w', '10', '-t', 'filter', '-X', chain]).catch(() => {});
  }
}
