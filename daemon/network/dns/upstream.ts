// The host's resolvers as containers can use them. A nameserver on 127.0.0.0/8 or ::1 answers the host's
// own namespace only; on a host with systemd-resolved, /etc/resolv.conf names only its local stub
// (127.0.0.53) and the real upstreams are listed in /run/systemd/resolve/resolv.conf, which is then read
// instead (Docker does the same).
import { readFileSync } from 'node:fs';

export const ETC_RESOLV_CONF = '/etc/resolv.conf';
export const SYSTEMD_RESOLV_CONF = '/run/systemd/resolve/resolv.conf';

const isLoopback = (a: string) => /^127\./.test(a) || a === '::1';

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function nameservers(text: string): string[] {
  return text.split('\n').map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((a): a is string => !!a);
}

/** The resolv.conf whose nameservers and search domains containers take: /etc/resolv.conf, or systemd-
 *  resolved's list of upstreams when /etc/resolv.conf names only loopback servers. */
export function hostResolvConf(etc = ETC_RESOLV_CONF, systemd = SYSTEMD_RESOLV_CONF): string {
  const text = read(etc) ?? '';
  const ns = nameservers(text);
  if (ns.length && ns.every(isLoopback)) {
    const real = read(systemd);
    if (real !== undefined) return real;
  }
  return text;
}

/** The host's IPv4 resolvers a relay from a container's network can reach (loopback ones left out). */
export function upstreams(etc = ETC_RESOLV_CONF, systemd = SYSTEMD_RESOLV_CONF): string[] {
  return nameservers(hostResolvConf(etc, systemd)).filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a) && !isLoopback(a));
}
