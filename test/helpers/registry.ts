// Debian's docker-registry on a free loopback port, for tests and benches: a config of its own under the
// given directory, started and waited for; stop() kills it by its pid (and so does a signal that ends the
// test process first, reaper.ts). Also the two small things every such
// test needs: a free loopback port and waiting for an HTTP server to answer.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { killChild, reapChild } from './reaper';

/** A loopback port nobody listens on now (asked from the kernel, then let go). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Waits (bounded) until `url` answers anything at all. */
export async function waitHttp(url: string, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
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
  const port = await freePort();
  const { config, root } = registryConfig(dir, name, port, htpasswd);
  const proc = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  reapChild('docker-registry', proc);
  const stop = () => killChild(proc);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${base}/v2/`);
  } catch (e) {
    stop();
    throw e;
  }
  return { port, root, config, proc, base, stop };
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
