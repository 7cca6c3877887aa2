// Clients that go away: for every streaming route, a raw client breaks off at several points (right after
// sending the request, after the response headers, in the middle of the body, in the middle of its own
// upload) or never reads; then berthd must still answer /_ping, its open fds and the mounts under its roots
// must come back to what they were, and the same request must then succeed. Also: slow headers
// (slowloris), a body that stops coming, a JSON body far over the bound, and the connection bound; and at
// the end, that none of it reached the process-level handlers (main.ts): each stream handled its own end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync, readFileSync, readlinkSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar-stream';
import { berthdForFile } from '../helpers/file';
import { api, sleep, waitFor } from '../helpers/clients';
import { startRegistry, type Registry } from '../helpers/registry';
import { FIXTURES } from '../helpers/berthd';

// Short deadlines, so that the slow-client cases finish in seconds.
const HEADER_TIMEOUT_S = 2;
const BODY_TIMEOUT_S = 2;
const WRITE_TIMEOUT_S = 2;
const MAX_CONNECTIONS = 100;

let work: string;
let registry: Registry | undefined;
const b = berthdForFile({
  fixtures: ['busybox'],
  start: {
    daemonJson: {
      'api-header-timeout': HEADER_TIMEOUT_S, 'api-body-timeout': BODY_TIMEOUT_S, 'api-write-timeout': WRITE_TIMEOUT_S,
      'api-max-json-body': '2m', 'api-max-connections': MAX_CONNECTIONS,
    },
  },
  setup: async (d) => {
    work = mkdtempSync(path.join(os.tmpdir(), 'berth-disconnect-'));
    registry = await startRegistry(work, 'registry');
    const run = async (args: string[]) => {
      const r = await d.docker(args);
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    };
    // A running container with a big file and about a megabyte of log, still writing; a stopped one with a
    // big file (cp and export of it mount its root for the request).
    await run(['run', '-d', '--name', 'dc-run', 'busybox', 'sh', '-c',
      'dd if=/dev/urandom of=/big bs=1M count=8 2>/dev/null; i=0; while [ $i -lt 12000 ]; do echo "line $i of the log, padded out to be long enough"; i=$((i+1)); done; while true; do echo tick; sleep 0.1; done']);
    await run(['run', '--name', 'dc-stop', 'busybox', 'sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=8 2>/dev/null']);
    await run(['tag', 'busybox', `127.0.0.1:${registry.port}/dc/busybox:1`]);
    await waitFor('the log of dc-run', async () => (await api(d, 'GET', '/containers/dc-run/logs?stdout=1&tail=1')).body.includes('tick'), 30000, 200);
  },
  teardown: () => registry?.stop(),
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---- measuring berthd --------------------------------------------------------------------------------

const fds = (): string[] => {
  const dir = `/proc/${b.proc.pid}/fd`;
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    try {
      out.push(readlinkSync(path.join(dir, n)));
    } catch { /* closed meanwhile */ }
  }
  return out;
};
const mounts = (): string[] => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(b.root)).map((l) => l.split(' ')[4]).sort();
const rssKiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${b.proc.pid}/status`, 'utf8'))![1]);

/** Waits until the fd count stops moving; returns it. */
async function settledFds(): Promise<number> {
  let last = -1;
  let same = 0;
  for (let i = 0; i < 60 && same < 3; i++) {
    const n = fds().length;
    same = n === last ? same + 1 : 0;
    last = n;
    await sleep(100);
  }
  return last;
}

/** Waits (bounded) until berthd holds no more fds than `base` and the same mounts. */
async function backTo(what: string, base: { fds: string[]; mounts: string[] }, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const now = fds();
    const m = mounts();
    if (now.length <= base.fds.length && JSON.stringify(m) === JSON.stringify(base.mounts)) return;
    if (Date.now() > until) {
      const extra = now.filter((f) => !base.fds.includes(f));
      assert.fail(`${what}: berthd holds ${now.length} fds (was ${base.fds.length}; new: ${extra.slice(0, 10).join(', ')}) and mounts ${JSON.stringify(m.filter((x) => !base.mounts.includes(x)))} more`);
    }
    await sleep(100);
  }
}

// Requests of the test's own go out with Connection: close: a keep-alive socket of node's agent would be an
// fd of berthd's for the agent's idle timeout, and count against the baseline.
const once = { Connection: 'close' };

async function ping(): Promise<void> {
  const r = await api(b, 'GET', '/_ping', { timeoutMs: 5000, headers: once });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'OK');
}

// ---- a raw client ---------------------------------------------------------------------------------------

interface Req {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

type Cut = 'sent' | 'headers' | 'body' | 'upload' | 'never-reads';

function head(r: Req): string {
  const h: Record<string, string> = { Host: 'berth', ...(r.headers ?? {}) };
  if (r.body) h['Content-Length'] = String(r.body.length);
  return `${r.method} ${r.path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

/** Clients that never read, kept open until berthd has let go of their requests. */
const lingering: net.Socket[] = [];

/** Sends `r` and breaks off at `cut`. Resolves once the client's side is closed (or, never reading,
 *  once the request is sent). */
function breakOff(r: Req, cut: Cut): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(b.sock);
    lingering.push(s);
    let got = Buffer.alloc(0);
    let bodyAt = -1;
    const finish = () => {
      s.destroy();
      resolve();
    };
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    s.on('connect', () => {
      if (cut === 'upload') {
        s.write(head(r));
        s.write(r.body!.subarray(0, Math.floor(r.body!.length / 2)), () => setTimeout(finish, 50));
        return;
      }
      if (cut === 'never-reads') {
        // Never read: berthd must give up on us (api-write-timeout) and let go of what the request held.
        s.pause();
        s.write(head(r));
        if (r.body) s.write(r.body, () => resolve());
        else s.write('', () => resolve());
        return;
      }
      s.write(head(r));
      if (r.body) s.write(r.body);
      if (cut === 'sent') {
        setImmediate(finish);
        return;
      }
      s.on('data', (c: Buffer) => {
        got = Buffer.concat([got, c]);
        if (bodyAt < 0) {
          const i = got.indexOf('\r\n\r\n');
          if (i < 0) return;
          bodyAt = i + 4;
          if (cut === 'headers') return finish();
        }
        if (got.length - bodyAt >= 1024) finish();
      });
      s.on('end', finish);
    });
  });
}

interface Full { status: number; head: string; body: Buffer }

/** Sends `r` and reads the answer until the server ends it or `enough` says so. */
function complete(r: Req, enough: (body: Buffer) => boolean = () => false, ms = 60000): Promise<Full> {
  return new Promise((resolve, reject) => {
    const s = net.connect(b.sock);
    let got = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => settle(new Error(`${r.method} ${r.path}: no complete answer in ${ms} ms; got ${got.subarray(0, 300).toString()}`)), ms);
    const settle = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const i = got.indexOf('\r\n\r\n');
      if (err) return reject(err);
      if (i < 0) return reject(new Error(`${r.method} ${r.path}: no response (${got.length} bytes)`));
      const h = got.subarray(0, i).toString();
      resolve({ status: Number(h.split(' ')[1]), head: h, body: got.subarray(i + 4) });
    };
    s.on('error', (e) => settle(e));
    s.on('connect', () => {
      // Connection: close, so that the end of the answer is the end of the connection.
      s.write(head({ ...r, headers: { Connection: 'close', ...r.headers } }));
      if (r.body) s.write(r.body);
    });
    s.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      const i = got.indexOf('\r\n\r\n');
      if (i >= 0 && enough(got.subarray(i + 4))) settle();
    });
    s.on('end', () => settle());
  });
}

// ---- archives to upload -------------------------------------------------------------------------------------

function makeTar(files: Array<{ name: string; data: Buffer | string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const f of files) pack.entry({ name: f.name, mode: 0o644, mtime: new Date(0) }, typeof f.data === 'string' ? Buffer.from(f.data) : f.data);
  pack.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
}

// ---- the routes -----------------------------------------------------------------------------------------

interface Route {
  name: string;
  /** A fresh request (an exec instance can start once, a pull wants the image gone first). */
  req: () => Promise<Req> | Req;
  cuts: Cut[];
  /** Reads the successful answer far enough and checks it. */
  check: (r: Req) => Promise<void>;
}

const tarBody = (min: number, status = 200) => async (r: Req) => {
  const a = await complete(r);
  assert.equal(a.status, status, a.head);
  assert.ok(a.body.length >= min, `${r.path}: ${a.body.length} bytes`);
};
const streams = (status: number, min = 1) => async (r: Req) => {
  const a = await complete(r, (body) => body.length >= min, 20000);
  assert.equal(a.status, status, a.head + a.body.subarray(0, 200).toString());
  assert.ok(a.body.length >= min);
};
const says = (re: RegExp) => async (r: Req) => {
  const a = await complete(r, undefined, 90000);
  assert.equal(a.status, 200, a.head);
  assert.match(a.body.toString(), re);
  assert.doesNotMatch(a.body.toString(), /errorDetail/);
};
const upgrade = { Connection: 'Upgrade', Upgrade: 'tcp' };
const ws = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };
const json = (v: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify(v)) });

async function execReq(cmd: string[], hijack: boolean): Promise<Req> {
  const r = await api(b, 'POST', '/containers/dc-run/exec', { body: { Cmd: cmd, AttachStdout: true, AttachStderr: true }, headers: once });
  assert.equal(r.status, 201, r.body);
  const j = json({ Detach: false, Tty: false });
  return { method: 'POST', path: `/exec/${r.json().Id}/start`, headers: { ...j.headers, ...(hijack ? upgrade : {}) }, body: j.body };
}

let bigTar: Buffer;
let buildTar: Buffer;
before(async () => {
  bigTar = await makeTar([{ name: 'upload.bin', data: Buffer.alloc(4 << 20, 7) }]);
  buildTar = await makeTar([{ name: 'Dockerfile', data: 'FROM busybox\nRUN sleep 1\nCOPY file /file\n' }, { name: 'file', data: Buffer.alloc(1 << 20, 1) }]);
});

const routes: Route[] = [
  { name: 'cp out of a running container (GET archive)', req: () => ({ method: 'GET', path: '/containers/dc-run/archive?path=/big' }), cuts: ['sent', 'headers', 'body', 'never-reads'], check: tarBody(8 << 20) },
  { name: 'cp out of a stopped container (GET archive, mounted for the request)', req: () => ({ method: 'GET', path: '/containers/dc-stop/archive?path=/big' }), cuts: ['sent', 'headers', 'body', 'never-reads'], check: tarBody(8 << 20) },
  { name: 'cp stat (HEAD archive)', req: () => ({ method: 'HEAD', path: '/containers/dc-stop/archive?path=/big' }), cuts: ['sent'], check: async (r) => assert.equal((await complete(r, () => true)).status, 200) },
  { name: 'cp into a stopped container (PUT archive)', req: () => ({ method: 'PUT', path: '/containers/dc-stop/archive?path=/tmp', headers: { 'Content-Type': 'application/x-tar' }, body: bigTar }), cuts: ['upload', 'sent'], check: async (r) => assert.equal((await complete(r)).status, 200) },
  { name: 'export of a stopped container', req: () => ({ method: 'GET', path: '/containers/dc-stop/export' }), cuts: ['sent', 'headers', 'body', 'never-reads'], check: tarBody(8 << 20) },
  { name: 'export of a running container', req: () => ({ method: 'GET', path: '/containers/dc-run/export' }), cuts: ['headers', 'body'], check: tarBody(8 << 20) },
  { name: 'save (GET /images/{name}/get)', req: () => ({ method: 'GET', path: '/images/busybox/get' }), cuts: ['sent', 'headers', 'body', 'never-reads'], check: tarBody(1 << 20) },
  { name: 'save (GET /images/get)', req: () => ({ method: 'GET', path: '/images/get?names=busybox' }), cuts: ['headers', 'body'], check: tarBody(1 << 20) },
  { name: 'logs', req: () => ({ method: 'GET', path: '/containers/dc-run/logs?stdout=1&stderr=1' }), cuts: ['sent', 'headers', 'body', 'never-reads'], check: tarBody(500_000) },
  { name: 'logs -f', req: () => ({ method: 'GET', path: '/containers/dc-run/logs?stdout=1&stderr=1&follow=1&tail=100' }), cuts: ['sent', 'headers', 'body'], check: streams(200, 2000) },
  { name: 'attach (hijacked)', req: () => ({ method: 'POST', path: '/containers/dc-run/attach?stream=1&stdout=1&stderr=1', headers: upgrade }), cuts: ['sent', 'headers'], check: streams(101, 10) },
  { name: 'attach with logs (hijacked)', req: () => ({ method: 'POST', path: '/containers/dc-run/attach?logs=1&stream=1&stdout=1', headers: upgrade }), cuts: ['headers', 'body', 'never-reads'], check: streams(101, 500_000) },
  { name: 'attach (plain HTTP)', req: () => ({ method: 'POST', path: '/containers/dc-run/attach?stream=1&stdout=1' }), cuts: ['sent', 'headers'], check: streams(200, 10) },
  { name: 'attach over a websocket', req: () => ({ method: 'GET', path: '/containers/dc-run/attach/ws?stream=1&stdout=1', headers: ws }), cuts: ['sent', 'headers'], check: streams(101, 10) },
  { name: 'events', req: () => ({ method: 'GET', path: '/events?since=0' }), cuts: ['sent', 'headers', 'body'], check: streams(200, 1500) },
  { name: 'stats (stream)', req: () => ({ method: 'GET', path: '/containers/dc-run/stats' }), cuts: ['sent', 'headers'], check: streams(200, 100) },
  { name: 'exec start (hijacked)', req: () => execReq(['head', '-c', '4000000', '/big'], true), cuts: ['sent', 'headers', 'body', 'never-reads'], check: tarBody(4_000_000, 101) },
  { name: 'exec start (plain HTTP)', req: () => execReq(['head', '-c', '4000000', '/big'], false), cuts: ['headers', 'body'], check: tarBody(4_000_000) },
  { name: 'load', req: () => ({ method: 'POST', path: '/images/load', headers: { 'Content-Type': 'application/x-tar' }, body: readFileSync(path.join(FIXTURES, 'busybox.tar')) }), cuts: ['upload', 'sent', 'headers'], check: says(/Loaded image/) },
  { name: 'import', req: () => ({ method: 'POST', path: '/images/create?fromSrc=-&repo=dc-imported&tag=1', headers: { 'Content-Type': 'application/x-tar' }, body: bigTar }), cuts: ['upload', 'sent'], check: says(/sha256:/) },
  { name: 'build', req: () => ({ method: 'POST', path: '/build?t=dc-built:1&rm=1', headers: { 'Content-Type': 'application/x-tar' }, body: buildTar }), cuts: ['upload', 'sent', 'headers'], check: says(/Successfully built/) },
  {
    name: 'push',
    req: () => ({ method: 'POST', path: `/images/127.0.0.1:${registry!.port}/dc/busybox/push?tag=1`, headers: { 'X-Registry-Auth': 'e30=' } }),
    cuts: ['sent', 'headers'], check: says(/digest: sha256:/),
  },
  {
    name: 'pull',
    req: async () => {
      await b.docker(['rmi', `127.0.0.1:${registry!.port}/dc/busybox:1`]);
      return { method: 'POST', path: `/images/create?fromImage=127.0.0.1:${registry!.port}/dc/busybox&tag=1`, headers: { 'X-Registry-Auth': 'e30=' } };
    },
    cuts: ['sent', 'headers'], check: says(/Status: (Downloaded newer image|Image is up to date)/),
  },
];

for (const route of routes) {
  test(`${route.name}: a client that breaks off (${route.cuts.join(', ')}) takes nothing down and leaves nothing held`, { timeout: 120_000 }, async () => {
    // Once through first, so that what the route keeps for good (a database page, a layer file cache) is
    // in the baseline.
    await route.check(await route.req());
    await settledFds();
    const base = { fds: fds(), mounts: mounts() };
    for (const cut of route.cuts) {
      await breakOff(await route.req(), cut);
      await ping();
      // A client that never reads holds only the socket it never reads: berthd's side must be closed.
      await backTo(`${route.name}, cut at ${cut}`, base, cut === 'never-reads' ? (WRITE_TIMEOUT_S + 15) * 1000 : 15000);
      for (const s of lingering.splice(0)) s.destroy();
    }
    assert.equal(b.proc.exitCode, null, 'berthd is running');
    await route.check(await route.req());
    await backTo(`${route.name}, after a whole request`, base);
  });
}

test('slow headers: 48 connections sending a byte at a time are closed after api-header-timeout; others are served meanwhile', async () => {
  const socks: net.Socket[] = [];
  const closedAt: number[] = [];
  const t0 = Date.now();
  const text = 'GET /_ping HTTP/1.1\r\nHost: berth\r\nX-Slow: ' + 'a'.repeat(200);
  const drips: NodeJS.Timeout[] = [];
  try {
    for (let i = 0; i < 48; i++) {
      const s = net.connect(b.sock);
      s.on('error', () => undefined);
      s.on('close', () => closedAt.push(Date.now() - t0));
      let k = 0;
      drips.push(setInterval(() => {
        if (!s.destroyed && k < text.length) s.write(text[k++]);
      }, 200));
      socks.push(s);
    }
    // Served while they drip.
    await sleep(500);
    const t = Date.now();
    await ping();
    assert.ok(Date.now() - t < 2000, 'ping answered promptly during the attack');
    await waitFor('every slow connection closed', () => closedAt.length === 48, (HEADER_TIMEOUT_S + 6) * 1000, 100);
    assert.ok(Math.max(...closedAt) < 15000, `closed within 15 s (${Math.max(...closedAt)} ms)`);
  } finally {
    for (const d of drips) clearInterval(d);
    for (const s of socks) s.destroy();
  }
  await ping();
});

test('silent connections: 48 that never send a byte are closed after api-header-timeout', async () => {
  // node's header deadline only runs once a request has begun; the front door (api/front-door.ts)
  // closes a connection that sends nothing for api-header-timeout.
  const closedAt: number[] = [];
  const t0 = Date.now();
  const socks = Array.from({ length: 48 }, () => {
    const s = net.connect(b.sock);
    s.on('error', () => undefined);
    s.on('close', () => closedAt.push(Date.now() - t0));
    return s;
  });
  try {
    await sleep(300);
    await ping();
    await waitFor('every silent connection closed', () => closedAt.length === 48, (3 * HEADER_TIMEOUT_S + 5) * 1000, 100);
    assert.ok(Math.max(...closedAt) < (2 * HEADER_TIMEOUT_S + 3) * 1000, `closed within ${2 * HEADER_TIMEOUT_S + 3} s (${Math.max(...closedAt)} ms)`);
  } finally {
    for (const s of socks) s.destroy();
  }
});

test('a request body that stops coming is answered 408 after api-body-timeout', async () => {
  const s = net.connect(b.sock);
  const got: Buffer[] = [];
  s.on('data', (c: Buffer) => got.push(c));
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.on('error', () => undefined);
  s.write('POST /containers/create HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"Image":');
  const t = Date.now();
  await Promise.race([closed, sleep((BODY_TIMEOUT_S + 6) * 1000)]);
  s.destroy();
  const answer = Buffer.concat(got).toString();
  assert.match(answer, /^HTTP\/1.1 408 /, answer);
  assert.match(answer, /\{"message":"[^"]+"\}/);
  assert.ok(Date.now() - t < (BODY_TIMEOUT_S + 5) * 1000);
  await ping();
});

test('a JSON body over api-max-json-body is refused 413 with a Docker error, nothing is created, and RSS stays down', async () => {
  const before = (await api(b, 'GET', '/containers/json?all=1')).json().length;
  const rss0 = rssKiB();
  const huge = Buffer.from(JSON.stringify({ Image: 'busybox', Labels: { big: 'x'.repeat(50 << 20) } }));
  for (const chunked of [false, true]) {
    const a = await new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
      const s = net.connect(b.sock);
      const got: Buffer[] = [];
      s.on('data', (c: Buffer) => got.push(c));
      s.on('error', () => undefined);
      s.on('close', () => {
        const text = Buffer.concat(got).toString();
        const i = text.indexOf('\r\n\r\n');
        if (i < 0) return reject(new Error(`no answer (chunked ${chunked})`));
        resolve({ status: Number(text.split(' ')[1]), body: text.slice(i + 4), type: /content-type: ([^\r]+)/i.exec(text)?.[1] ?? '' });
      });
      const h = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${huge.length}`;
      s.write(`POST /containers/create?name=dc-huge HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n${h}\r\nConnection: close\r\n\r\n`);
      // Written piece by piece, stopping once the answer has come, as a client that reads while it sends:
      // berthd answers without reading the rest, and closes.
      const step = 512 << 10;
      let off = 0;
      const more = () => {
        if (got.length || s.destroyed) return;
        if (off >= huge.length) {
          if (chunked) s.write('0\r\n\r\n');
          return;
        }
        const part = huge.subarray(off, off + step);
        off += part.length;
        s.write(chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part, () => setTimeout(more, 50));
      };
      // The headers alone say the length: the answer may come before any of the body.
      setTimeout(more, 100);
    });
    assert.equal(a.status, 413, a.body);
    assert.equal(a.type, 'application/json');
    assert.ok(typeof JSON.parse(a.body).message === 'string', a.body);
  }
  assert.equal((await api(b, 'GET', '/containers/json?all=1')).json().length, before, 'nothing was created');
  const grew = (rssKiB() - rss0) / 1024;
  assert.ok(grew < 64, `RSS grew by ${grew.toFixed(1)} MiB`);
  // Within the size bound but nested a million deep: refused before it is built.
  const deep = await api(b, 'POST', '/networks/create', { body: '['.repeat(1 << 20), headers: { 'Content-Type': 'application/json' } });
  assert.equal(deep.status, 400, deep.body);
  assert.match(deep.json().message, /invalid JSON/);
  const grewDeep = (rssKiB() - rss0) / 1024;
  assert.ok(grewDeep < 64, `RSS grew by ${grewDeep.toFixed(1)} MiB`);
  // A normal create still works.
  const ok = await api(b, 'POST', '/containers/create?name=dc-small', { body: { Image: 'busybox', Labels: { small: 'y'.repeat(100_000) } } });
  assert.equal(ok.status, 201, ok.body);
  await api(b, 'DELETE', '/containers/dc-small');
});

test('connections over api-max-connections are answered 503; those under it are served', async () => {
  const socks: net.Socket[] = [];
  try {
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const s = net.connect(b.sock);
      s.on('error', () => undefined);
      socks.push(s);
      await new Promise<void>((r) => s.once('connect', () => r()));
    }
    // Give berthd the moment to accept them all (well within api-header-timeout, which would close them).
    await sleep(300);
    const a = await complete({ method: 'GET', path: '/_ping' }, undefined, 5000);
    assert.equal(a.status, 503, a.head);
    assert.match(a.body.toString(), /"message":"too many connections/);
  } finally {
    for (const s of socks) s.destroy();
  }
  await waitFor('ping once they are gone', async () => (await api(b, 'GET', '/_ping')).status === 200, 5000, 100);
});

test('nothing above was caught by the last line of defence: every stream handled its own end', () => {
  const log = readFileSync(path.join(b.root, 'berthd.log'), 'utf8');
  const escaped = log.split('\n').filter((l) => /error escaped a request|error outside any request|uncaught error/.test(l));
  assert.deepEqual(escaped.map((l) => l.slice(0, 600)), []);
  assert.equal(b.proc.exitCode, null);
});
