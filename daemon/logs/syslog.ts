// syslog: every line goes to a syslog receiver (log-opt syslog-address: unix:// or unixgram:// a socket
// path, udp:// or tcp:// host[:port], port 514 by default; empty = the host's /dev/log), with
// syslog-facility (default daemon), tag (default the short container ID) and syslog-format (Docker's
// default unix form, rfc3164, rfc5424, rfc5424micro). stdout lines have severity info, stderr err.
//
// As Docker's "dual logging", a local-format cache (`<container dir>/container-cached.log`, the local
// driver's rotation, tuned with cache-max-size/cache-max-file/cache-compress) is written beside it, so
// `docker logs` still reads; with cache-disabled=true there is none and `docker logs` answers 501.
import { lookup } from 'node:dns/promises';
import { statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { invalid } from '../errors/errors';
import type { LogDriver } from './driver';
import { localRotation } from './local';
import { checkKeys, checkRegexes, logTag, parseBool, rotationArgs, type LogContext, type LogOpts } from './options';

const KEYS = new Set(['env', 'env-regex', 'labels', 'syslog-address', 'syslog-facility', 'syslog-tls-ca-cert', 'syslog-tls-cert',
  'syslog-tls-key', 'syslog-tls-skip-verify', 'tag', 'syslog-format']);

const FACILITIES: Record<string, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

const FORMATS = new Set(['', 'rfc3164', 'rfc5424', 'rfc5424micro']);

function facility(s: string | undefined): number {
  if (!s) return FACILITIES.daemon;
  if (s in FACILITIES) return FACILITIES[s];
  if (/^\d+$/.test(s) && Number(s) <= 23) return Number(s);
  throw invalid('invalid syslog facility');
}

/** [proto, address]: a path for unix/unixgram, host:port for udp/tcp. Docker checks a socket path exists. */
function parseAddress(a: string | undefined): [string, string] | null {
  if (!a) return null;
  const m = /^(tcp|udp|unix|unixgram|tcp\+tls):\/\/(.*)$/.exec(a);
  if (!m) throw invalid(`syslog-address should be in form proto://address, got ${a}`);
  const [, proto, rest] = m;
  if (proto === 'tcp+tls') throw invalid('syslog-address: tcp+tls is not supported by berth (use tcp, udp, unix or unixgram)');
  if (proto === 'unix' || proto === 'unixgram') {
    const p = rest.replace(/[?#].*$/, '');
    try {
      statSync(p);
    } catch (e) {
      throw invalid(`stat ${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
    return [proto, p];
  }
  const host = rest.replace(/\/.*$/, '');
  if (/^\[.*\]:\d+$/.test(host) || /^[^:]+:\d+$/.test(host)) return [proto, host];
  if (/^\[.*\]$/.test(host) || !host.includes(':')) return [proto, `${host}:514`];
  throw invalid(`address ${host}: too many colons in address`);
}

function cacheEnabled(o: LogOpts): boolean {
  return !o['cache-disabled'] || parseBool(o['cache-disabled']) === false;
}

export function cachePath(ctx: LogContext): string {
  return path.join(ctx.dir, 'container-cached.log');
}

export const syslog: LogDriver = {
  name: 'syslog',
  validate(o) {
    checkKeys(o, KEYS, (k) => `unknown log opt '${k}' for syslog log driver`);
    parseAddress(o['syslog-address']);
    facility(o['syslog-facility']);
    if (!FORMATS.has(o['syslog-format'] ?? '')) throw invalid('Invalid syslog format');
    checkRegexes(o);
    localRotation(o, 'cache-');
  },
  async shimArgs(ctx, o) {
    const a = ['--log-driver', 'syslog'];
    const addr = parseAddress(o['syslog-address']);
    if (addr) {
      let [proto, where] = addr;
      if (proto === 'udp' || proto === 'tcp') {
        // The shim is static and does no name lookups: it is given an address.
        const i = where.lastIndexOf(':');
        let host = where.slice(0, i).replace(/^\[|\]$/g, '');
        const port = where.slice(i + 1);
        if (!net.isIP(host)) host = (await lookup(host)).address;
        where = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
      }
      a.push('--syslog-address', `${proto}://${where}`);
    }
    a.push('--syslog-facility', String(facility(o['syslog-facility'])), '--syslog-tag', logTag(ctx, o, '{{.ID}}'));
    if (o['syslog-format']) a.push('--syslog-format', o['syslog-format']);
    if (o.mode === 'non-blocking') a.push('--log-nonblock');
    if (cacheEnabled(o)) a.push('--log', cachePath(ctx), ...rotationArgs(localRotation(o, 'cache-')));
    return a;
  },
  readPath(ctx, o) {
    return cacheEnabled(o) ? cachePath(ctx) : null;
  },
  inspectPath() {
    return '';
  },
};
