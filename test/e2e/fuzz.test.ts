// A fuzz of the API surface: random and mutated JSON bodies, query strings and paths against every route
// berthd serves, bounded in count and in time. It asserts what a user relies on whatever a client sends:
// no 5xx except where Docker answers one too, berthd still up, and nothing half-made (every object listed
// afterwards can be inspected, and everything the run made can be removed cleanly).
//
// The seed is printed; `BERTH_FUZZ_SEED=<n>` replays a run (with the same count). What the generator may
// send is limited to what is harmless to this machine: no bind mounts of host paths, no devices, no host
// UTS/network namespaces, no sysctls, no cgroup parents, no explicit subnets or bridge names, no volume
// driver options, and URLs (import, build, login) only to a closed port on loopback.
import { test, type TestContext } from 'node:test';
import path from 'node:path';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readFileSync, appendFileSync } from 'node:fs';
import { berthdForFile } from '../helpers/file';
import { api, type HttpResult } from '../helpers/clients';
import { packTar } from '../fixtures/tar';

const b = berthdForFile({ fixtures: ['busybox'] });

/* eslint-disable @typescript-eslint/no-explicit-any */

const SEED = process.env.BERTH_FUZZ_SEED ? Number(process.env.BERTH_FUZZ_SEED) : randomInt(2 ** 31);
const COUNT = Number(process.env.BERTH_FUZZ_COUNT ?? 4000);
const DEADLINE_MS = 90_000;
const PREFIX = 'fz';
const CLOSED = 'http://127.0.0.1:9/x';

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number { return Math.floor(this.r() * n); }
  chance(p: number): boolean { return this.r() < p; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  word(): string {
    const alpha = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = '';
    for (let i = 0, n = 1 + this.int(10); i < n; i++) s += alpha[this.int(alpha.length)];
    return s;
  }
  /** A string meant to break parsers: empty, huge, unicode, separators, escapes, numbers as text. */
  nasty(): string {
    return this.pick([
      '', ' ', '-', '..', '../..', '/', '//', '%', '%00', '\u0000', 'é', '💥', 'a'.repeat(5000), '[', '{', '}', '"', '\\', ':', ':::',
      '-1', '0', '1e309', '99999999999999999999', 'NaN', 'null', 'true', 'sha256:', `sha256:${'f'.repeat(64)}`, 'busybox:latest@sha256:abc',
      'a/b/c', 'UPPER', 'name with spaces', this.word(), `${PREFIX}-${this.word()}`,
    ]);
  }
  /** Any JSON value, nested a little. */
  value(depth = 0): unknown {
    switch (this.int(depth > 2 ? 6 : 9)) {
      case 0: return null;
      case 1: return this.chance(0.5);
      case 2: return this.pick([0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 63), 1.5, 1e308, 65536, 6 * 1024 * 1024]);
      case 3: return this.nasty();
      case 4: return this.word();
      case 5: return this.int(1000);
      case 6: return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
      case 7: { const o: Record<string, unknown> = {}; for (let i = 0, n = this.int(4); i < n; i++) o[this.pick([this.word(), this.nasty()])] = this.value(depth + 1); return o; }
      default: return this.pick([[], {}, '', [null], { '': '' }]);
    }
  }
  /** `v` with a random change: a different type, removed, or kept. */
  mutate(v: unknown): unknown {
    if (!this.chance(0.25)) return v;
    return this.chance(0.3) ? undefined : this.value(1);
  }
}

/** A plausible create body made of fields that cannot reach outside the test's own objects; each field
 *  has a fair chance of a wrong type or an out-of-range value. */
function createBody(g: Gen, names: Names): Record<string, unknown> {
  const hc: Record<string, unknown> = {};
  const maybe = (k: string, f: () => unknown) => { if (g.chance(0.12)) hc[k] = g.mutate(f()); };
  maybe('Memory', () => g.pick([0, 1024, 6 * 1024 * 1024, 64 * 1024 * 1024, -1]));
  maybe('MemorySwap', () => g.pick([0, -1, 1024, 128 * 1024 * 1024]));
  maybe('MemoryReservation', () => g.pick([0, 1024, 32 * 1024 * 1024]));
  maybe('NanoCpus', () => g.pick([0, 1e7, 5e8, 1e9, 1e12, -5]));
  maybe('CpuPeriod', () => g.pick([0, 999, 100000, 2000000]));
  maybe('CpuQuota', () => g.pick([0, -1, 500, 50000]));
  maybe('CpuShares', () => g.pick([0, 2, 1024, -3]));
  maybe('CpusetCpus', () => g.pick(['0', '0-1', '1-0', '9999', 'x', '0,,1']));
  maybe('CpusetMems', () => g.pick(['0', '5', '']));
  maybe('PidsLimit', () => g.pick([0, -1, 10, 100]));
  maybe('BlkioWeight', () => g.pick([0, 5, 500, 1001]));
  maybe('OomScoreAdj', () => g.pick([0, 500, -1000, 1001]));
  maybe('ShmSize', () => g.pick([0, -1, 1024 * 1024]));
  maybe('CapAdd', () => [g.pick(['NET_ADMIN', 'sys_ptrace', 'CAP_FOO', 'ALL', 'cap_all', ''])]);
  maybe('CapDrop', () => [g.pick(['ALL', 'mknod', 'bogus'])]);
  maybe('Ulimits', () => [{ Name: g.pick(['nofile', 'nproc', 'bogus', 'as']), Soft: g.pick([0, 10, 2048, -1]), Hard: g.pick([0, 1024, -1]) }]);
  maybe('RestartPolicy', () => ({ Name: g.pick(['', 'no', 'always', 'on-failure', 'unless-stopped', 'bogus']), MaximumRetryCount: g.pick([0, 1, -1]) }));
  maybe('AutoRemove', () => g.chance(0.5));
  maybe('PortBindings', () => ({ [g.pick(['80/tcp', '53/udp', '9/sctp', '0/tcp', '99999/tcp', '80/icmp', 'x'])]: [{ HostIp: g.pick(['', '127.0.0.1', 'nope']), HostPort: g.pick(['', '0', '70000', '9000-8000', 'abc']) }] }));
  maybe('PublishAllPorts', () => g.chance(0.5));
  maybe('ReadonlyRootfs', () => g.chance(0.5));
  maybe('Privileged', () => g.chance(0.2));
  maybe('Init', () => g.chance(0.5));
  maybe('IpcMode', () => g.pick(['', 'private', 'shareable', 'none', 'bogus', `container:${names.base}`]));
  maybe('PidMode', () => g.pick(['', 'bogus', `container:${names.base}`, 'container:nope']));
  maybe('NetworkMode', () => g.pick(['', 'default', 'bridge', 'none', 'bogus', `container:${names.base}`, ...names.networks]));
  maybe('CgroupnsMode', () => g.pick(['', 'private', 'host', 'bogus']));
  maybe('Dns', () => [g.pick(['127.0.0.1', 'not-an-ip'])]);
  maybe('ExtraHosts', () => [g.pick(['a:127.0.0.1', 'bad', 'h:host-gateway'])]);
  maybe('Tmpfs', () => ({ [g.pick(['/run', 'rel', '/'])]: g.pick(['', 'size=1m', 'bogus=1']) }));
  maybe('Binds', () => [g.pick([`${PREFIX}-vol:/data`, `${PREFIX}-vol:/data:ro`, 'rel:rel', ':/x', `${PREFIX}-${g.word()}:/v:bogus`])]);
  maybe('Mounts', () => [g.pick([
    { Type: 'volume', Source: `${PREFIX}-mvol`, Target: '/m' }, { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: g.pick([1024 * 1024, -1]) } },
    { Type: 'bogus', Target: '/x' }, { Type: 'volume', Target: '/' }, { Type: 'tmpfs', Source: 'x', Target: '/t' }, { Type: 'image', Source: 'busybox', Target: '/img' },
  ])]);
  maybe('VolumesFrom', () => [g.pick([names.base, 'nope', `${names.base}:ro`, `${names.base}:bogus`])]);
  maybe('Links', () => [g.pick([`${names.base}:alias`, 'nope:x', ''])]);
  maybe('LogConfig', () => ({ Type: g.pick(['json-file', 'none', 'bogus', '']), Config: g.chance(0.5) ? { 'max-size': g.pick(['1m', 'x']) } : {} }));
  maybe('Isolation', () => g.pick(['', 'default', 'hyperv']));
  maybe('Annotations', () => ({ [g.pick(['a', ''])]: 'b' }));
  maybe('ConsoleSize', () => [g.int(100), g.int(100)]);
  const body: Record<string, unknown> = {
    Image: g.mutate(g.pick(['busybox', 'busybox:latest', 'nope:1', '', 'BUSYBOX', `sha256:${'0'.repeat(64)}`])),
    Cmd: g.mutate(g.pick([['true'], ['sleep', '2'], ['sh', '-c', 'exit 3'], [], 'true', ['/nonexistent']])),
    HostConfig: g.chance(0.05) ? g.value() : hc,
  };
  const extra = (k: string, f: () => unknown) => { if (g.chance(0.2)) body[k] = g.mutate(f()); };
  extra('Env', () => [g.pick(['A=1', '=x', '', 'B'])]);
  extra('Entrypoint', () => g.pick([[''], ['sh'], 'sh', null]));
  extra('WorkingDir', () => g.pick(['/tmp', 'rel', '']));
  extra('User', () => g.pick(['', 'nobody', '65534:65534', 'nosuchuser', 'a:b:c']));
  extra('ExposedPorts', () => ({ [g.pick(['80/tcp', '70000/tcp', '1-2/udp', 'x/y'])]: {} }));
  extra('Labels', () => ({ [g.word()]: g.pick(['v', 1, null]) }));
  extra('Healthcheck', () => ({ Test: g.pick([['CMD', 'true'], ['NONE'], 'x']), Interval: g.pick([0, 1, 1e9]), Retries: g.pick([0, -1, 3]) }));
  extra('StopSignal', () => g.pick(['SIGTERM', 'BOGUS', '99', '']));
  extra('StopTimeout', () => g.pick([1, -1, 'x']));
  extra('Tty', () => g.chance(0.5));
  extra('OpenStdin', () => g.chance(0.5));
  extra('Volumes', () => ({ [g.pick(['/v', 'rel', '/'])]: {} }));
  extra('NetworkingConfig', () => ({ EndpointsConfig: { [g.pick(['bridge', 'nope', ...names.networks])]: { Aliases: [g.word()], IPAMConfig: g.chance(0.2) ? { IPv4Address: g.pick(['1.2.3.4', 'x']) } : undefined } } }));
  if (g.chance(0.1)) body[g.word()] = g.value();
  return body;
}

interface Names { base: string; networks: string[]; containers: string[]; images: string[]; volumes: string[]; execs: string[] }

/** Fills a route's parameters: a name the run knows, a fixed one, or junk. */
function fill(g: Gen, tpl: string, names: Names): string {
  return tpl.replace(/:(\w+)|\*/g, (_m, p: string | undefined) => {
    const pool = p === 'name' ? names.volumes : p === undefined ? [...names.images, 'busybox', 'busybox:latest', 'busybox/json', 'busybox/history', 'busybox/tag', 'busybox/push']
      : tpl.startsWith('/networks') ? [...names.networks, 'bridge', 'none'] : tpl.startsWith('/exec') ? names.execs : [...names.containers, names.base];
    const v = g.chance(0.7) && pool.length ? g.pick(pool) : g.nasty();
    // An image name may run over several segments (busybox/json); no value in the pools or in nasty() has
    // a registry host part, so a push or pull goes to the closed proxy.
    return p === undefined ? v.split('/').map(encodeURIComponent).join('/') : encodeURIComponent(v);
  });
}

/** Query parameters each route reads, with values that are valid, wrong or odd. */
const QUERY: Record<string, string[]> = {
  all: ['1', '0', 'true', 'x'], force: ['1', '0', 'yes'], v: ['1', '0'], t: ['0', '-1', '1', 'x', '99999999999999999999'], timeout: ['0', 'x'],
  signal: ['SIGKILL', 'SIGUSR1', 'BOGUS', '0', '65'], filters: ['{"label":["a"]}', '{"status":["running"]}', '{"bogus":["x"]}', '{', '[]', '{"dangling":["true"]}', '{"until":["1h"]}'],
  name: ['', `${PREFIX}-n`, 'bad name', '/x'], path: ['/', '/etc', '/etc/passwd', 'rel', '/../../', '/nonexistent'], stdout: ['1'], stderr: ['1'],
  follow: ['0'], stream: ['0', 'false'], tail: ['1', 'all', '-5', 'x'], since: ['0', 'x', '1h'], until: ['1', 'x'], h: ['10', '-1', 'x'], w: ['10', '99999999999'],
  condition: ['not-running', 'next-exit', 'removed', 'bogus'], ps_args: ['-ef', 'aux', '--bogus'], size: ['1'], digests: ['1'], term: ['busybox', ''], limit: ['1', '-1', 'x'],
  repo: [`${PREFIX}-img`, 'BAD', '', 'a@b'], tag: ['1', 'bad tag', ''], fromSrc: ['-', CLOSED], fromImage: [`${PREFIX}-nope`, 'busybox', ''], quiet: ['1'],
  names: ['busybox', 'nope', ''], noprune: ['1'], changes: ['CMD ["x"]', 'BOGUS x', 'ENV'], container: ['nope', ''], comment: ['c'], pause: ['0', '1'],
  dockerfile: ['Dockerfile', '../x'], remote: [CLOSED], detachKeys: ['ctrl-p,ctrl-q', 'bogus'], logs: ['0'], noOverwriteDirNonDir: ['1'], copyUIDGID: ['1'],
  platform: ['linux/amd64', 'windows/amd64', 'bogus', '{"os":"linux"}'], 'keep-storage': ['1'], serveraddress: ['127.0.0.1:9'],
};

/** Routes that answer only when something happens (a container exits, a stream ends). */
const STREAMING = ['/containers/:id/attach', '/exec/:id/start', '/containers/:id/logs', '/containers/:id/wait', '/build', '/containers/:id/export', '/images/get'];

const ROUTES: Array<[string, string]> = [
  ['GET', '/_ping'], ['HEAD', '/_ping'], ['GET', '/version'], ['GET', '/info'], ['GET', '/system/df'], ['GET', '/events'], ['GET', '/plugins'], ['GET', '/plugins/privileges'],
  ['POST', '/auth'], ['POST', '/swarm/init'], ['POST', '/swarm/join'], ['POST', '/swarm/leave'],
  ['GET', '/containers/json'], ['POST', '/containers/create'], ['POST', '/containers/prune'], ['GET', '/containers/:id/json'], ['DELETE', '/containers/:id'],
  ['POST', '/containers/:id/start'], ['POST', '/containers/:id/stop'], ['POST', '/containers/:id/restart'], ['POST', '/containers/:id/kill'], ['POST', '/containers/:id/wait'],
  ['POST', '/containers/:id/pause'], ['POST', '/containers/:id/unpause'], ['POST', '/containers/:id/rename'], ['POST', '/containers/:id/resize'], ['POST', '/containers/:id/update'],
  ['GET', '/containers/:id/top'], ['GET', '/containers/:id/logs'], ['GET', '/containers/:id/stats'], ['GET', '/containers/:id/changes'], ['GET', '/containers/:id/export'],
  ['GET', '/containers/:id/archive'], ['HEAD', '/containers/:id/archive'], ['PUT', '/containers/:id/archive'], ['POST', '/containers/:id/attach'], ['POST', '/containers/:id/exec'],
  ['GET', '/exec/:id/json'], ['POST', '/exec/:id/start'], ['POST', '/exec/:id/resize'],
  ['GET', '/images/json'], ['POST', '/images/create'], ['POST', '/images/load'], ['GET', '/images/get'], ['GET', '/images/search'], ['POST', '/images/prune'], ['POST', '/commit'],
  ['GET', '/images/*'], ['POST', '/images/*'], ['DELETE', '/images/*'], ['POST', '/build'], ['POST', '/build/prune'],
  ['GET', '/networks'], ['POST', '/networks/create'], ['GET', '/networks/:id'], ['DELETE', '/networks/:id'], ['POST', '/networks/:id/connect'], ['POST', '/networks/:id/disconnect'], ['POST', '/networks/prune'],
  ['GET', '/volumes'], ['POST', '/volumes/create'], ['GET', '/volumes/:name'], ['DELETE', '/volumes/:name'], ['POST', '/volumes/prune'],
];

/** Routes where Docker itself answers 5xx for some requests: a pull or push or search that cannot reach a
 *  registry, a process that cannot start, a build step that fails, swarm and plugin endpoints. */
function fiveHundredOk(method: string, tpl: string, status: number, message: string): boolean {
  if (tpl.startsWith('/swarm') || tpl === '/plugins/privileges') return status === 503 || status === 501;
  if (tpl === '/containers/:id/unpause') return status === 500 && /^Container [0-9a-f]{64} is not paused$/.test(message);
  return ['/images/create', '/images/search', '/images/*', '/auth', '/build', '/containers/:id/start', '/containers/:id/restart',
    '/exec/:id/start', '/containers/:id/attach'].includes(tpl) && method === 'POST' || (tpl === '/images/search' && method === 'GET');
}

function bodyFor(g: Gen, method: string, tpl: string, names: Names, tars: Buffer[]): { body?: Buffer | string | object; type?: string } {
  if (method === 'GET' || method === 'HEAD' || method === 'DELETE') return g.chance(0.05) ? { body: g.value() as object } : {};
  if (['/images/load', '/build', '/containers/:id/archive'].includes(tpl) || (tpl === '/images/create' && g.chance(0.5))) {
    const buf = g.pick(tars);
    // A tar cut short, with a flipped byte, or whole.
    const t = g.chance(0.3) ? buf.subarray(0, g.int(buf.length)) : g.chance(0.3) ? Buffer.from(buf.map((x, i) => (i === g.int(buf.length) ? x ^ 0xff : x))) : buf;
    return { body: t, type: 'application/x-tar' };
  }
  // Some plain, valid creates, so that later requests have containers to start, stop, exec in and remove.
  if (tpl === '/containers/create') return { body: g.chance(0.3) ? { Image: 'busybox', Cmd: g.pick([['sleep', '3'], ['true'], ['sh', '-c', 'echo hi; exit 3']]), Tty: g.chance(0.3), OpenStdin: g.chance(0.3) } : createBody(g, names) };
  if (tpl === '/containers/:id/update') return { body: { Memory: g.pick([0, 1024, 64 * 1024 * 1024]), NanoCpus: g.pick([0, 5e8, 1e15]), CpuQuota: g.pick([0, 500, 50000]), RestartPolicy: g.mutate({ Name: g.pick(['no', 'always', 'bogus']) }), PidsLimit: g.mutate(10) } };
  if (tpl === '/containers/:id/exec') return { body: { Cmd: g.mutate(g.pick([['true'], ['sh', '-c', 'exit 2'], [], 'x'])), AttachStdout: g.chance(0.5), Tty: g.chance(0.3), User: g.mutate(g.pick(['', 'nobody', 'nosuch'])), Env: g.mutate(['A=1']), WorkingDir: g.mutate(g.pick(['', '/tmp', 'rel'])) } };
  if (tpl === '/exec/:id/start') return { body: { Detach: g.chance(0.7), Tty: g.chance(0.3) } };
  if (tpl === '/networks/create') return { body: { Name: g.mutate(`${PREFIX}-net-${g.word()}`), Driver: g.mutate(g.pick(['bridge', 'bogus', 'null', ''])), Internal: g.mutate(g.chance(0.5)), Attachable: g.mutate(true), Labels: g.mutate({ a: 'b' }), CheckDuplicate: g.mutate(true) } };
  if (tpl === '/networks/:id/connect' || tpl === '/networks/:id/disconnect') return { body: { Container: g.mutate(g.pick([...names.containers, names.base, 'nope'])), Force: g.mutate(g.chance(0.5)), EndpointConfig: g.mutate({ Aliases: [g.word()] }) } };
  if (tpl === '/volumes/create') return { body: { Name: g.mutate(g.pick([`${PREFIX}-v-${g.word()}`, '', 'bad name', '/abs'])), Driver: g.mutate(g.pick(['local', 'bogus', ''])), Labels: g.mutate({ a: 'b' }) } };
  if (tpl === '/auth') return { body: { username: g.mutate('u'), password: g.mutate('p'), serveraddress: '127.0.0.1:9' } };
  if (tpl === '/commit') return { body: g.mutate({ Cmd: ['true'], Labels: { a: 'b' } }) as object };
  return g.chance(0.5) ? { body: g.value() as object } : {};
}

function query(g: Gen, tpl: string): string {
  const parts: string[] = [];
  for (let i = 0, n = g.int(4); i < n; i++) {
    const k = g.chance(0.85) ? g.pick(Object.keys(QUERY)) : g.word();
    let v = QUERY[k] ? g.pick(QUERY[k]) : g.nasty();
    if (k === 'follow' || k === 'stream') v = '0';
    if (k === 'fromSrc' || k === 'remote') v = g.pick(QUERY[k]);
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  // Streaming routes that wait for ever without these.
  if (tpl === '/events') parts.push(`until=${Math.floor(Date.now() / 1000)}`);
  if (tpl === '/containers/:id/stats') parts.push('stream=0');
  if (tpl === '/containers/:id/wait') parts.push('condition=not-running');
  if (tpl === '/containers/:id/attach') parts.push('stream=0');
  // The archive routes answer 400 at once without a path: most requests carry one, to reach the body.
  if (tpl.endsWith('/archive') && !parts.some((p) => p.startsWith('path=')) && g.chance(0.8)) parts.push(`path=${encodeURIComponent(g.pick(QUERY.path))}`);
  if (tpl === '/images/create' && !parts.some((p) => p.startsWith('fromSrc=') || p.startsWith('fromImage='))) parts.push(g.chance(0.5) ? 'fromSrc=-' : `fromImage=${PREFIX}-nope`);
  // The client never sends these to a non-loopback place: the values above are the only ones allowed.
  return parts.length ? `?${parts.join('&')}` : '';
}

test('what earlier runs found stays fixed: rm -f of a paused container, a number as a network\'s Container, a cut tar for docker cp, a huge resize, network labels that are no map', async () => {
  const mk = await api(b, 'POST', '/containers/create?name=fz-paused', { body: { Image: 'busybox', Cmd: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] } });
  assert.equal(mk.status, 201, mk.body);
  assert.equal((await api(b, 'POST', '/containers/fz-paused/start')).status, 204);
  // A cut archive: the extractor fails inside a member that its handler has not begun to read.
  const whole = await packTar([{ name: 'a', content: 'a'.repeat(3000) }, { name: 'b', content: 'b' }]);
  for (const cut of [100, 700, 1500, whole.length - 600]) {
    const r = await api(b, 'PUT', '/containers/fz-paused/archive?path=/tmp', { body: whole.subarray(0, cut), headers: { 'Content-Type': 'application/x-tar' } });
    assert.equal(r.status, 400, r.body);
    assert.equal(message(r), 'unexpected EOF: the archive is truncated');
  }
  for (const body of [{ Container: 357 }, { Container: ['x'] }, { Container: 'fz-paused', EndpointConfig: { Aliases: 'a' } }]) {
    const r = await api(b, 'POST', '/networks/bridge/connect', { body });
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.body}`);
  }
  for (const q of ['h=99999999999&w=10', 'h=10&w=65536', 'h=-1&w=1']) {
    const r = await api(b, 'POST', `/containers/fz-paused/resize?${q}`);
    assert.equal(r.status, 400, `${q}: ${r.body}`);
    assert.match(message(r), /^invalid resize (height|width) "-?\d+": value out of range$/);
  }
  // Labels that are no map were stored, and a label filter on the list then failed (500).
  for (const body of [{ Name: 'fz-n1', Labels: true }, { Name: 'fz-n2', Options: { a: 1 } }, { Name: 'fz-n3', IPAM: { Config: 'x' } }, { Name: 7 }]) {
    const r = await api(b, 'POST', '/networks/create', { body });
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.body}`);
  }
  assert.equal((await api(b, 'GET', `/networks?filters=${encodeURIComponent('{"label":["a"]}')}`)).status, 200);
  assert.equal((await api(b, 'POST', '/containers/fz-paused/pause')).status, 204);
  const t0 = Date.now();
  const rm = await api(b, 'DELETE', '/containers/fz-paused?force=1', { timeoutMs: 10000 });
  assert.equal(rm.status, 204, rm.body);
  assert.ok(Date.now() - t0 < 5000, 'a paused container is removed at once');
  assert.equal((await api(b, 'GET', '/containers/fz-paused/json')).status, 404);
});

test(`fuzz the API (seed ${SEED}, ${COUNT} requests; BERTH_FUZZ_SEED=${SEED} replays it)`, { timeout: 150_000 }, async (t) => {
  try {
    await run(t);
  } catch (e) {
    // berthd's own words about what went wrong, before its root is removed.
    const log = readFileSync(path.join(b.root, 'berthd.log'), 'utf8').split('\n').slice(-60).join('\n');
    t.diagnostic(`seed ${SEED}; the last requests:\n${recent.join('\n')}\nthe end of berthd's log:\n${log}`);
    throw e;
  }
});

/** The last requests sent, shown when the run fails. */
const recent: string[] = [];

async function run(t: TestContext): Promise<void> {
  t.diagnostic(`fuzz seed ${SEED}`);
  console.log(`# fuzz seed ${SEED} (BERTH_FUZZ_SEED=${SEED} BERTH_FUZZ_COUNT=${COUNT} replays this run)`);
  const g = new Gen(rng(SEED));
  const base = `${PREFIX}-base`;
  const mk = await api(b, 'POST', `/containers/create?name=${base}`, { body: { Image: 'busybox', Cmd: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'], HostConfig: { IpcMode: 'shareable' } } });
  assert.equal(mk.status, 201, mk.body);
  assert.equal((await api(b, 'POST', `/containers/${base}/start`)).status, 204);
  const baseline = await listAll();
  const rssBefore = rss(b.proc.pid!);

  const names: Names = { base, networks: [], containers: [], images: [], volumes: [], execs: [] };
  const tars = [
    await packTar([{ name: 'a', content: 'a' }, { name: 'd/', type: 'directory' }, { name: 'd/b', content: 'b' }]),
    await packTar([{ name: 'Dockerfile', content: 'FROM busybox\nRUN true\nCMD ["true"]\n' }]),
    await packTar([{ name: 'Dockerfile', content: 'FROM nope\n' }]),
    await packTar([{ name: 'l', type: 'link', linkname: '../../etc/passwd' }]),
    await packTar([{ name: 'manifest.json', content: '[{"Config":"c.json","Layers":["x"]}]' }, { name: 'c.json', content: '{}' }]),
    Buffer.from('not a tar'),
  ];
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const allowed = new Set<string>();
  const started = Date.now();
  let sent = 0;

  const one = async (): Promise<void> => {
    const [method, tpl] = g.chance(0.03) ? ['GET', `/${g.word()}/${encodeURIComponent(g.nasty())}`] as [string, string] : g.pick(ROUTES);
    let p = fill(g, tpl, names);
    if (g.chance(0.3)) p = `/v${g.pick(['1.24', '1.41', '1.47', '1.52', '1.99', '0.1', 'x'])}${p}`;
    const url = p + query(g, tpl);
    const { body, type } = bodyFor(g, method, tpl, names, tars);
    recent.push(`${method} ${url} ${Buffer.isBuffer(body) ? `<${body.length} bytes ${type}>` : JSON.stringify(body)?.slice(0, 300) ?? ''}`);
    if (recent.length > 8) recent.shift();
    if (process.env.BERTH_FUZZ_LOG) appendFileSync(process.env.BERTH_FUZZ_LOG, `${recent[recent.length - 1]}\n`);
    let r: HttpResult;
    try {
      r = await api(b, method, url, { body: body === undefined ? undefined : (Buffer.isBuffer(body) ? body : typeof body === 'string' ? body : JSON.stringify(body) ?? 'null'),
        headers: body === undefined ? {} : { 'Content-Type': type ?? 'application/json' }, timeoutMs: STREAMING.includes(tpl) ? 3000 : 15000 });
    } catch (e) {
      // A route that streams until something happens may run past the bound; that is not an answer to judge.
      if (/timed out/.test((e as Error).message) && STREAMING.includes(tpl)) return;
      failures.push(`${method} ${url}: ${(e as Error).message}`);
      return;
    }
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    if (r.status >= 500) allowed.add(`${method} ${tpl} ${r.status} ${message(r).replace(/[0-9a-f]{64}/g, '<id>').slice(0, 160)}`);
    if (r.status >= 500 && !fiveHundredOk(method, tpl, r.status, message(r))) failures.push(`${method} ${url} ${body && !Buffer.isBuffer(body) ? JSON.stringify(body).slice(0, 400) : ''} -> ${r.status} ${r.body.slice(0, 300)}`);
    // What the run made becomes a target for later requests.
    if (r.status === 201 && tpl === '/containers/create') names.containers.push(r.json().Id.slice(0, 12));
    if (r.status === 201 && tpl === '/networks/create') names.networks.push(r.json().Id.slice(0, 12));
    if (r.status === 201 && tpl === '/volumes/create') names.volumes.push(r.json().Name);
    if (r.status === 201 && tpl === '/containers/:id/exec') names.execs.push(r.json().Id);
  };

  // One request at a time: the same seed then makes the same requests against the same state.
  while (sent < COUNT && Date.now() - started < DEADLINE_MS) {
    sent++;
    await one();
    if (sent % 100 === 0) assert.equal((await api(b, 'GET', '/_ping')).status, 200, 'berthd answers during the run');
  }
  t.diagnostic(`sent ${sent} requests in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);

  // Measured, not asserted (bench/ owns the figure): berthd's memory after the run against before it.
  t.diagnostic(`berthd RSS ${rssBefore} kB before, ${rss(b.proc.pid!)} kB after`);
  t.diagnostic(`5xx answers (Docker's too): ${[...allowed].slice(0, 30).join(' | ')}`);
  assert.equal(b.proc.exitCode, null, 'berthd is still running');
  assert.equal(b.proc.signalCode, null, 'berthd is still running');
  assert.equal((await api(b, 'GET', '/_ping')).status, 200);
  assert.deepEqual(failures, [], `seed ${SEED}: unexpected answers`);

  // Nothing half-made: everything listed can be inspected, and everything the run made can be removed.
  const after = await listAll();
  for (const id of after.containers) assert.equal((await api(b, 'GET', `/containers/${id}/json`)).status, 200, `inspect container ${id}`);
  for (const id of after.images) assert.equal((await api(b, 'GET', `/images/${id}/json`)).status, 200, `inspect image ${id}`);
  for (const id of after.networks) assert.equal((await api(b, 'GET', `/networks/${id}`)).status, 200, `inspect network ${id}`);
  for (const n of after.volumes) assert.equal((await api(b, 'GET', `/volumes/${encodeURIComponent(n)}`)).status, 200, `inspect volume ${n}`);
  for (const id of after.containers) {
    const r = await api(b, 'DELETE', `/containers/${id}?force=1&v=1`);
    assert.ok(r.status === 204 || r.status === 404, `remove container ${id}: ${r.status} ${r.body}`);
  }
  for (const id of after.networks.filter((n) => !baseline.networks.includes(n))) {
    const r = await api(b, 'DELETE', `/networks/${id}`);
    assert.equal(r.status, 204, `remove network ${id}: ${r.body}`);
  }
  for (const n of after.volumes.filter((v) => !baseline.volumes.includes(v))) {
    const r = await api(b, 'DELETE', `/volumes/${encodeURIComponent(n)}?force=1`);
    assert.ok(r.status === 204 || r.status === 404, `remove volume ${n}: ${r.status} ${r.body}`);
  }
  // Images: children before parents (a parent with a child answers 409 until the child is gone).
  for (let pass = 0; pass < 5; pass++) {
    const left = (await listAll()).images.filter((i) => !baseline.images.includes(i));
    if (left.length === 0) break;
    for (const id of left) {
      const r = await api(b, 'DELETE', `/images/${id}?force=1`);
      assert.ok(r.status === 200 || r.status === 404 || r.status === 409, `remove image ${id}: ${r.status} ${r.body}`);
    }
  }
  // The run may have removed some of what was there before (an rmi -f of busybox once its container went).
  const end = await listAll();
  assert.deepEqual(end.containers, []);
  assert.deepEqual(end.networks, baseline.networks);
  assert.ok(end.volumes.every((v) => baseline.volumes.includes(v)), `volumes left: ${end.volumes}`);
  assert.ok(end.images.every((i) => baseline.images.includes(i)), `images left: ${end.images}`);
}

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

function message(r: HttpResult): string {
  try {
    return String(r.json().message ?? '');
  } catch {
    return '';
  }
}

async function listAll(): Promise<{ containers: string[]; images: string[]; networks: string[]; volumes: string[] }> {
  const j = async (p: string) => {
    const r = await api(b, 'GET', p);
    assert.equal(r.status, 200, `${p}: ${r.body}`);
    return r.json();
  };
  return {
    containers: (await j('/containers/json?all=1')).map((c: any) => c.Id).sort(),
    images: (await j('/images/json?all=1')).map((i: any) => i.Id).sort(),
    networks: (await j('/networks')).map((n: any) => n.Id).sort(),
    volumes: ((await j('/volumes')).Volumes ?? []).map((v: any) => v.Name).sort(),
  };
}
