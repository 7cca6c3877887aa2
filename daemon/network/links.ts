// Legacy links (`--link name[:alias]`). HostConfig.Links holds them as Docker shows them in inspect,
// "/<target>:/<recipient>/<alias>". On the default bridge a link gives the recipient an /etc/hosts line
// for the target (alias, the target's hostname, its name) and environment variables about it
// (ALIAS_NAME, ALIAS_PORT…, ALIAS_ENV_…), fixed when the recipient starts. On a user-defined network the
// alias is a name only the recipient resolves, through the embedded DNS server.
import type { ContainerRecord } from '../containers/model';
import { invalid } from '../errors/errors';

export interface Link {
  target: string;    // the target's name, without the leading '/'
  alias: string;
}

/** `name`, `name:alias` or the stored form `/name:/recipient/alias`. */
export function parseLink(s: string): Link {
  const stored = /^\/([^:]+):\/[^/]+\/(.+)$/.exec(s);
  if (stored) return { target: stored[1], alias: stored[2] };
  const [target, alias, extra] = s.split(':');
  if (!target || extra !== undefined || alias === '') throw invalid(`invalid link format: ${s}`);
  const t = target.replace(/^\//, '');
  return { target: t, alias: (alias ?? t).replace(/^\//, '') };
}

export function storedLink(l: Link, recipient: string): string {
  return `/${l.target}:/${recipient}/${l.alias}`;
}

export function linksOf(rec: ContainerRecord): Link[] {
  return ((rec.hostConfig.Links ?? []) as string[]).map(parseLink);
}

/** What the recipient learns of one target. */
export interface LinkPeer {
  alias: string;
  name: string;       // the target's name, without '/'
  hostname: string;
  ip: string;
  env: string[];      // the target's Config.Env
  exposed: string[];  // the target's ExposedPorts keys ("80/tcp")
}

/** The /etc/hosts line: the alias, the target's hostname, and its name when that differs from the alias. */
export function hostsLine(p: LinkPeer): string {
  const names = [p.alias, p.hostname];
  if (p.name !== p.alias) names.push(p.name);
  return `${p.ip}\t${[...new Set(names)].join(' ')}`;
}

/** The environment a link adds to the recipient's first process. */
export function linkEnv(recipient: string, p: LinkPeer): string[] {
  const prefix = p.alias.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const out = [`${prefix}_NAME=/${recipient}/${p.alias}`];
  const ports = p.exposed.map((k) => {
    const [port, proto = 'tcp'] = k.split('/');
    return { port: Number(port), proto };
  }).filter((x) => Number.isInteger(x.port)).sort((a, b) => a.port - b.port || (a.proto === 'tcp' ? -1 : 1));
  if (ports.length) out.push(`${prefix}_PORT=${ports[0].proto}://${p.ip}:${ports[0].port}`);
  for (const { port, proto } of ports) {
    const v = `${prefix}_PORT_${port}_${proto.toUpperCase()}`;
    out.push(`${v}=${proto}://${p.ip}:${port}`, `${v}_ADDR=${p.ip}`, `${v}_PORT=${port}`, `${v}_PROTO=${proto}`);
  }
  for (const e of p.env) {
    const i = e.indexOf('=');
    if (i <= 0) continue;
    const k = e.slice(0, i);
    if (k === 'HOME' || k === 'PATH') continue; // set for every container; not the target's own
    out.push(`${prefix}_ENV_${k}=${e.slice(i + 1)}`);
  }
  return out;
}
