// The host's resolvers as containers can use them. A nameserver on 127.0.0.0/8 or ::1 answers the host's
// own namespace only; on a host with systemd-resolved, /etc/resolv.conf names only its local stub
// (127.0.0.53) and the real upstreams are listed in /run/systemd/resolve/resolv.conf, which is then read
// instead (Docker does the same).
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';

/** The host's resolv.conf; tests point BERTH_RESOLV_CONF at a file of their own (a host with IPv6 servers, say),
 *  so the machine's is never changed. */
export const ETC_RESOLV_CONF = process.env.BERTH_RESOLV_CONF || '/etc/resolv.conf';
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

/** The host's resolvers the embedded DNS server relays to, IPv4 and IPv6 (the relay is sent from the host's
 *  namespace, so any family the host reaches will do); loopback ones left out, as above. */
export function upstreams(etc = ETC_RESOLV_CONF, systemd = SYSTEMD_RESOLV_CONF): string[] {
  // A link-local server without its %interface cannot be sent to from the host.
  const usable = (a: string) => /^\d+\.\d+\.\d+\.\d+$/.test(a) || (isIPv6(a) && (!/^fe[89ab]/i.test(a) || a.includes('%')));
  return nameservers(hostResolvConf(etc, systemd)).filter((a) => usable(a) && !isLoopback(a));
}
