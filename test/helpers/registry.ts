// Debian's docker-registry on a free loopback port, for tests and benches: a config of its own under the
// given directory, started and waited for; stop() kills it by its pid (and so does a signal that ends the
// test process first, reaper.ts). Also the small things every such test needs: a port for a server of its
// own, listening on one, and waiting for an HTTP server to answer.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { childGone, killChild, reapChild } from './reaper';

/**
 * Ports for servers of the tests' own (registries, proxies, a berthd's TCP and metrics listeners) are taken
 * below the kernel's ephemeral range, not from it (listen on port 0). Test daemons publish random host ports
 * from the ephemeral range (they ask the kernel, as Docker does), and berthd's DNAT rules for a published
 * port (on 127.0.0.1 too, in the output hook) stay in the host's nftables as long as the container runs:
 * also once that berthd is stopped or killed and no longer holds the port (live-restore), or when the test
 * process that ran it was ended before its clean-up. A server that the kernel then gave that port listens,
 * yet every connection to it from the host goes to the container and is refused at once: registry.test.ts's
 * stalling proxy met that under load. Ports tests publish by number are below this range.
 */
const OWN_PORTS_FROM = 20000;

function ownPortRange(): [number, number] | undefined {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch { /* the kernel's default */ }
  return ephemeralLow - OWN_PORTS_FROM >= 1000 ? [OWN_PORTS_FROM, ephemeralLow - 1] : undefined;
}

/** Listens on 127.0.0.1:`port` (0: a port the kernel picks); rejects with the listen error. */
function listenOn(server: net.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => reject(e);
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', fail);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Makes `server` (an http.Server, a net.Server) listen on a loopback port for a server of the test's
 *  own (see OWN_PORTS_FROM), trying other ports while the one drawn is taken; returns the port. */
export async function listenOwnPort(server: net.Server): Promise<number> {
  const range = ownPortRange();
  if (!range) return listenOn(server, 0);
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      return await listenOn(server, randomInt(range[0], range[1] + 1));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      last = e;
    }
  }
  throw last;
}

/** A loopback port for a server of the test's own that another program (docker-registry, berthd's
 *  listener) will listen on: one nobody listens on now, let go again. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listenOwnPort(s);
  await new Promise((r) => s.close(r));
  return port;
}

/** Waits (bounded) until `url` answers anything at all; gives up early once `dead()` says the server
 *  that should answer has ended. */
export async function waitHttp(url: string, ms = 15000, dead: () => boolean = () => false): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (dead()) return;
    try {
      await (await fetch(url)).arrayBuffer();
      return;
    } catch {
      if (Date.now() > end) throw new Error(`${url} did not answer`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface Registry {
  port: number;
  /** Its storage directory. */
  root: string;
  /** The config file (another registry process can serve the same storage with it). */
  config: string;
  proc: ChildProcess;
  /** http://127.0.0.1:port */
  base: string;
  stop(): void;
}

/** Config `<dir>/<name>.yml`, storage `<dir>/<name>-data`; with `htpasswd`, basic auth against that file. */
export function registryConfig(dir: string, name: string, port: number, htpasswd?: string): { config: string; root: string } {
  const root = path.join(dir, `${name}-data`);
  const config = path.join(dir, `${name}.yml`);
  let yml = `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`;
  if (htpasswd) yml += `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${htpasswd}\n`;
  writeFileSync(config, yml);
  return { config, root };
}

export async function startRegistry(dir: string, name = 'registry', htpasswd?: string): Promise<Registry> {
  let last: unknown;
  // A port drawn by freePort may be taken by another program before the registry listens on it: the
  // registry then exits, and whatever holds the port must not pass for it.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const { config, root } = registryConfig(dir, name, port, htpasswd);
    const proc = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
    reapChild('docker-registry', proc);
    const stop = () => killChild(proc);
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitHttp(`${base}/v2/`, 15000, () => childGone(proc));
      if (!childGone(proc)) return { port, root, config, proc, base, stop };
      last = new Error(`docker-registry on ${port} exited (exit ${proc.exitCode ?? proc.signalCode})`);
    } catch (e) {
      stop();
      if (!childGone(proc)) throw e;
      last = e;
    }
  }
  throw last;
}

/** Passes a request on to the registry listening on 127.0.0.1:`upstream` and its answer back, with the
 *  Location of redirects (uploads) pointed at the proxy on `port`; `dropAuth`: the registry is not told
 *  the client's credentials (the proxy checked them itself). */
export function forwardToRegistry(req: http.IncomingMessage, res: http.ServerResponse, upstream: number, port: number, dropAuth = false): void {
  const headers = { ...req.headers, host: `127.0.0.1:${upstream}` };
  if (dropAuth) delete headers.authorization;
  const up = http.request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers }, (ur) => {
    const h = { ...ur.headers };
    if (h.location) h.location = h.location.replace(`127.0.0.1:${upstream}`, `127.0.0.1:${port}`);
    res.writeHead(ur.statusCode ?? 502, h);
    ur.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}
