// Clients for end-to-end tests, all bound to one berthd's unix socket: raw HTTP (for status codes and
// headers the CLI hides), dockerode, a long-running docker CLI child (logs -f, attach), and polling.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { readFileSync, readlinkSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import Docker from 'dockerode';
import { DOCKER, FIXTURES, type Berthd, type RunResult } from './berthd';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON; throws with the body in the message when it is not JSON. */
  json<T = any>(): T; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One HTTP/1.1 request on the daemon's unix socket. A plain object body is sent as JSON. */
export function api(b: Pick<Berthd, 'sock'>, method: string, urlPath: string,
  opts: { body?: string | Buffer | object; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    let payload: Buffer | undefined;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) {
      if (Buffer.isBuffer(opts.body)) payload = opts.body;
      else if (typeof opts.body === 'string') payload = Buffer.from(opts.body);
      else payload = Buffer.from(JSON.stringify(opts.body));
      headers['Content-Type'] ??= 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const req = http.request({ socketPath: b.sock, method, path: urlPath, headers, timeout: opts.timeoutMs ?? 30000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: () => {
            try {
              return JSON.parse(body);
            } catch {
              throw new Error(`not JSON (${res.statusCode} ${res.headers['content-type']}): ${JSON.stringify(body)}`);
            }
          },
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A dockerode client on this daemon's socket. */
export function dockerode(b: Pick<Berthd, 'sock'>): Docker {
  return new Docker({ socketPath: b.sock });
}

/** Polls `fn` until it returns a truthy value (which is returned) or the time is up (which throws,
 *  naming what was awaited and the last value seen). */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15000, intervalMs = 50): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(intervalMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A GET over TCP (a published port, a metrics endpoint): status, body (UTF-8) and Content-Type. Rejects when
 *  the socket is idle for `timeoutMs`. */
export function httpGet(url: string, timeoutMs = 3000): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type'] ?? '') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

/** `docker load -i build/fixtures/<name>.tar` for each name; throws with the CLI's output on failure. */
export async function loadFixtures(b: Berthd, names: string[] = ['busybox', 'layered']): Promise<void> {
  for (const n of names) {
    const r = await b.docker(['load', '-i', path.join(FIXTURES, `${n}.tar`)], { timeoutMs: 120000 });
    if (r.code !== 0) throw new Error(`docker load ${n}.tar: exit ${r.code}: ${r.stdout}${r.stderr}`);
  }
}

/** A docker CLI that keeps running (logs -f, attach): its output so far, a way to wait for text in it,
 *  and its exit. `kill()` signals only this child, by its pid. */
export interface DockerChild {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches; rejects if the CLI exits first or the time is up. */
  waitForStdout(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(sig?: NodeJS.Signals): void;
}

export function spawnDocker(b: Berthd, args: string[], opts: { stdin?: 'pipe' | 'ignore' } = {}): DockerChild {
  const proc = spawn(DOCKER, args, {
    env: { ...process.env, DOCKER_HOST: b.host, DOCKER_CONFIG: path.join(b.root, 'docker-config') },
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString('utf8'); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('close', (code, signal) => resolve({ code, signal }));
  });
  let done = false;
  void exited.then(() => { done = true; });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill(sig: NodeJS.Signals = 'SIGKILL') {
      if (!done && proc.pid) proc.kill(sig);
    },
    async waitForStdout(re: RegExp, timeoutMs = 15000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        if (re.test(out)) return out;
        if (done) throw new Error(`docker ${args.join(' ')} exited before printing ${re}; stdout ${JSON.stringify(out)} stderr ${JSON.stringify(err)}`);
        if (Date.now() > until) throw new Error(`docker ${args.join(' ')} did not print ${re} in time; stdout ${JSON.stringify(out)}`);
        await sleep(25);
      }
    },
  };
}

/** The namespaces (`pid`, `mnt`, …) of a process as readlink shows them, e.g. `pid:[4026531836]`. */
export function nsOf(pid: number | 'self', kinds: string[]): Record<string, string> {
  return Object.fromEntries(kinds.map((k) => [k, readlinkSync(`/proc/${pid}/ns/${k}`)]));
}

/** Whether a pid names a live (not zombie) process. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** A command's exit code and output, for assertion messages. */
export function show(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

export interface DockerRunOptions {
  timeoutMs?: number;
  /** `ok`: stdout without surrounding whitespace. */
  trim?: boolean;
  /** `fails`: match the pattern against stdout too (some errors go there, e.g. in JSON streams). */
  matchStdout?: boolean;
}

/** Runs the docker CLI against `b`; the command must succeed. Its stdout. */
export async function dockerOk(b: Berthd, args: string[], o: DockerRunOptions = {}): Promise<string> {
  const r = await b.docker(args, o.timeoutMs ? { timeoutMs: o.timeoutMs } : undefined);
  assert.equal(r.code, 0, `docker ${args.join(' ')}\n${show(r)}`);
  return o.trim ? r.stdout.trim() : r.stdout;
}

/** Runs the docker CLI against `b`; the command must fail with stderr matching `re`. */
export async function dockerFails(b: Berthd, re: RegExp, args: string[], o: DockerRunOptions = {}): Promise<RunResult> {
  const r = await b.docker(args, o.timeoutMs ? { timeoutMs: o.timeoutMs } : undefined);
  assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail\n${show(r)}`);
  assert.match(o.matchStdout ? r.stderr + r.stdout : r.stderr, re, show(r));
  return r;
}

/** `ok` and `fails` for the daemon `getB()` returns when called (test files start it in `before`). */
export function dockerCli(getB: () => Berthd, o: DockerRunOptions = {}): {
  ok(...args: string[]): Promise<string>;
  fails(re: RegExp, ...args: string[]): Promise<RunResult>;
} {
  return {
    ok: (...args: string[]) => dockerOk(getB(), args, o),
    fails: (re: RegExp, ...args: string[]) => dockerFails(getB(), re, args, o),
  };
}
