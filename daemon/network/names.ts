// What names mean in a container: its /etc/hosts and resolv.conf, links, and the embedded DNS server's
// answers.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ContainerRecord } from '../containers/model';
import { conflict } from '../errors/errors';
import { shortId } from '../lib/ids';
import type { EndpointRow, NetworkRow } from './store';
import { writeFile } from 'node:fs/promises';
import { hostResolvConf } from './dns/upstream';
import { hostsLine, linkEnv, linksOf, parseLink, type LinkPeer } from './links';
import type { NetworkService } from './service';

/** The answer of the embedded DNS server of network `networkId` to a container at `from`: the addresses a
 *  name has on every network that container is connected to (its own network's first), by container
 *  name, alias, id or short id of a running endpoint, or a legacy link's alias; IPv4 and IPv6 ones (the
 *  server answers A questions with the first, AAAA with the second). null: `from` is no
 *  running container of the network, so the server does not answer it. */
export function resolveName(svc: NetworkService, networkId: string, name: string, from: string): string[] | undefined | null {
  const asker = svc.endpointsOf(networkId).find((e) => (e.ip === from || (!!e.ip6 && e.ip6 === from)) && e.hostIf);
  if (!asker) return null;
  const mine = svc.endpointsOfContainer(asker.containerId).filter((e) => e.hostIf);
  const order = [networkId, ...mine.map((e) => e.networkId).filter((id) => id !== networkId)];
  // A legacy link on a user network: its alias is a name for the linking container only.
  const ips: string[] = [];
  let links: ReturnType<typeof linksOf> = (asker.links ?? []).map(parseLink);
  try { links = [...links, ...linksOf(svc.d.containers.lookup(asker.containerId).rec)]; } catch { /* gone */ }
  for (const l of links.filter((x) => x.alias.toLowerCase() === name)) {
    let target: string | undefined;
    try { target = svc.d.containers.lookup(l.target).rec.id; } catch { continue; }
    const ep = order.map((id) => svc.endpointsOf(id).find((e) => e.containerId === target && (e.ip || e.ip6) && e.hostIf)).find(Boolean);
    if (ep) for (const ip of [ep.ip, ep.ip6 ?? '']) if (ip && !ips.includes(ip)) ips.push(ip);
  }
  if (ips.length) return ips;
  for (const id of order) {
    const n = svc.nets.get(id);
    if (!n || n.name === 'bridge') continue; // the default bridge has no names (as Docker's)
    for (const e of svc.endpointsOf(id)) {
      if ((!e.ip && !e.ip6) || !e.hostIf) continue; // (an IPv6-only network's endpoints have no IPv4 address)
      let cname = '';
      try { cname = svc.d.containers.lookup(e.containerId).rec.name.slice(1).toLowerCase(); } catch { continue; }
      if (name === cname || e.aliases.some((a) => a.toLowerCase() === name) || name === shortId(e.containerId) || name === e.containerId) {
        ips.push(...[e.ip, e.ip6 ?? ''].filter(Boolean));
      }
    }
    // The first network (in the asker's order) that knows the name answers, as Docker's resolver does.
    if (ips.length) return ips;
  }
  return undefined;
}

export async function rewriteHosts(svc: NetworkService, rec: ContainerRecord): Promise<void> {
  await writeFile(path.join(svc.d.containers.containerDir(rec.id), 'hosts'), svc.hosts(rec, svc.endpointsOfContainer(rec.id))).catch(() => {});
}

/** After a connect or disconnect of a running container: its nameservers are the embedded DNS server of a
 *  user network it is on (a container that joins its first one starts using it; one that leaves the
 *  network whose server it used moves to another), or the host's resolvers when it is on none. */
export async function rewriteResolvConf(svc: NetworkService, rec: ContainerRecord): Promise<void> {
  const file = path.join(svc.d.containers.containerDir(rec.id), 'resolv.conf');
  const mine = svc.endpointsOfContainer(rec.id).filter((e) => e.hostIf);
  const user = mine.map((e) => svc.nets.get(e.networkId)).filter((n): n is NetworkRow => !!n && n.name !== 'bridge');
  let current = '';
  try { current = readFileSync(file, 'utf8'); } catch { return; }
  const ns = /^nameserver\s+(\S+)/m.exec(current)?.[1];
  if (ns && user.some((n) => embeddedServers(n).includes(ns))) return;
  const embedded = user[0];
  // A container on the default bridge only, whose resolv.conf names the host's servers, keeps it.
  if (!embedded && !svc.all().some((n) => n.name !== 'bridge' && !!ns && embeddedServers(n).includes(ns))) return;
  await writeFile(file, svc.resolvConf(rec, embedded)).catch((err) => svc.d.log.warn({ err, id: rec.id }, 'resolv.conf after a network change'));
}

/** The nameservers a container on user network `n` is given: the embedded DNS server on the network's
 *  IPv4 gateway, then on its IPv6 one (a resolver that asks over IPv6, or tries the next server when one
 *  does not answer, reaches the same server's answers). */
export function embeddedServers(n: NetworkRow): string[] {
  return [n.gateway, n.ipv6 ? n.gateway6 : ''].filter(Boolean);
}

export function hosts(svc: NetworkService, rec: ContainerRecord, eps: EndpointRow[]): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::\tip6-localnet',
    'ff00::\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  const bridge = svc.byName('bridge');
  for (const h of rec.hostConfig.ExtraHosts ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) continue;
    let ip = h.slice(i + 1);
    if (ip === 'host-gateway') ip = bridge?.gateway ?? '';
    if (ip) lines.push(`${ip}\t${h.slice(0, i)}`);
  }
  for (const p of linkPeers(svc, rec, eps)) lines.push(hostsLine(p));
  const host = rec.config.Domainname ? `${rec.config.Hostname}.${rec.config.Domainname} ${rec.config.Hostname}` : rec.config.Hostname;
  for (const e of eps) if (e.ip) lines.push(`${e.ip}\t${host}`);
  for (const e of eps) if (e.ip6) lines.push(`${e.ip6}\t${host}`);
  return lines.join('\n') + '\n';
}

/** The running targets of the container's legacy links on the default bridge (`eps`: the container's endpoints). */
export function linkPeers(svc: NetworkService, rec: ContainerRecord, eps: EndpointRow[]): LinkPeer[] {
  const bridge = svc.byName('bridge');
  if (!bridge || !eps.some((e) => e.networkId === bridge.id)) return [];
  const out: LinkPeer[] = [];
  for (const l of linksOf(rec)) {
    let t: ContainerRecord;
    try { t = svc.d.containers.lookup(l.target).rec; } catch { continue; }
    const ep = svc.endpointsOf(bridge.id).find((e) => e.containerId === t.id && e.ip && e.hostIf);
    if (!ep) continue;
    out.push({ alias: l.alias, name: t.name.slice(1), hostname: t.config.Hostname, ip: ep.ip, env: t.config.Env ?? [], exposed: Object.keys(t.config.ExposedPorts ?? {}) });
  }
  return out;
}

/** At start: every link's target must be running; on the default bridge the links add environment. */
export function linkEnvironment(svc: NetworkService, rec: ContainerRecord): string[] {
  for (const l of linksOf(rec)) {
    let running = false;
    try { running = svc.d.containers.isRunningId(svc.d.containers.lookup(l.target).rec.id); } catch { /* gone */ }
    if (!running) throw conflict(`Cannot link to a non running container: /${l.target} AS /${rec.name.slice(1)}/${l.alias}`);
  }
  return linkPeers(svc, rec, svc.endpointsOfContainer(rec.id)).flatMap((p) => linkEnv(rec.name.slice(1), p));
}

/** `embedded`: the user network whose embedded DNS server (on its gateways) is then the only nameserver. */
export function resolvConf(svc: NetworkService, rec: ContainerRecord, embedded?: NetworkRow): string {
  const hc = rec.hostConfig;
  const host = hostResolvConf();
  const lines = host.split('\n');
  // As Docker 28 does for a network without its embedded server (the default bridge): the host's servers less
  // loopback ones, and less IPv6 ones unless the container's network has IPv6; Google's when none remain.
  // With the host's network (and its loopback) they are all kept, as they are.
  const hostNet = hc.NetworkMode === 'host';
  const ipv6 = svc.endpointsOfContainer(rec.id).some((e) => !!svc.nets.get(e.networkId)?.ipv6);
  let ns = lines.filter((l) => /^\s*nameserver\s+/.test(l)).map((l) => l.trim().split(/\s+/)[1])
    .filter((a) => hostNet || (!/^(127\.|::1$)/.test(a) && (ipv6 || !a.includes(':'))));
  let search = lines.filter((l) => /^\s*(search|domain)\s+/.test(l)).flatMap((l) => l.trim().split(/\s+/).slice(1));
  let options = lines.filter((l) => /^\s*options\s+/.test(l)).flatMap((l) => l.trim().split(/\s+/).slice(1));
  if ((hc.Dns ?? []).length) ns = hc.Dns;
  if ((hc.DnsSearch ?? []).length) search = hc.DnsSearch.filter((s: string) => s !== '.');
  if ((hc.DnsOptions ?? []).length) options = hc.DnsOptions;
  if (ns.length === 0 && !hostNet) ns = ['8.8.8.8', '8.8.4.4', ...(ipv6 ? ['2001:4860:4860::8888', '2001:4860:4860::8844'] : [])];
  if (embedded) {
    ns = embeddedServers(embedded);
    if (!(hc.DnsOptions ?? []).length) options = ['ndots:0'];
  }
  const out = [...ns.map((a) => `nameserver ${a}`)];
  if (search.length) out.push(`search ${search.join(' ')}`);
  if (options.length) out.push(`options ${options.join(' ')}`);
  return out.join('\n') + '\n';
}

export function hostHosts(): string {
  try {
    return readFileSync('/etc/hosts', 'utf8');
  } catch {
    return '127.0.0.1\tlocalhost\n';
  }
}
