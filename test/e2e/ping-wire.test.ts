// /_ping, the container list and inspect are answered before fastify (api/fast-reads.ts): their bytes on
// the wire must be those fastify's routes send (the same header names, values and order), for GET and
// HEAD, with and without a version prefix, a query or a trailing slash; what the fast path does not take
// (a refused version, another method, an unknown container, a bad filter) is fastify's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { berthdForFile } from '../helpers/file';
import { dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });

/** The whole answer to `head` sent on a connection of its own (closed by `Connection: close`). */
function wire(head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(b.sock, () => c.end(head));
    let buf = '';
    c.setEncoding('latin1');
    c.on('data', (d: string) => (buf += d));
    c.on('close', () => resolve(buf));
    c.on('error', reject);
  });
}

const req = (line: string) => wire(`${line} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n`);
const COMMON = 'api-version: 1.52\r\ndocker-experimental: false\r\nostype: linux\r\nserver: Berth/0.1.0 (linux)\r\n';
const PING = `HTTP/1.1 200 OK\r\n${COMMON}cache-control: no-cache, no-store, must-revalidate\r\npragma: no-cache\r\nbuilder-version: 1\r\nswarm: inactive\r\ncontent-type: text/plain; charset=utf-8\r\n`;
const undated = (s: string) => s.replace(/\r\ndate: [^\r]+\r\n/i, '\r\n');

test('GET and HEAD /_ping: the same bytes as the route sent', async () => {
  for (const p of ['/_ping', '/_ping/', '/_ping?x=1', '/v1.24/_ping', '/v1.50/_ping', '/v1.52/_ping?a=b']) {
    assert.equal(undated(await req(`GET ${p}`)), `${PING}content-length: 2\r\nConnection: close\r\n\r\nOK`, p);
    assert.equal(undated(await req(`HEAD ${p}`)), `${PING}content-length: 0\r\nConnection: close\r\n\r\n`, p);
  }
  assert.match(await req('GET /_ping'), /\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
});

test('keep-alive: many pings on one connection, then another route on it', async () => {
  const n = 50;
  const out = await wire('GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n'.repeat(n) + 'GET /v1.41/nothing HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n');
  assert.equal(out.split('HTTP/1.1 200 OK').length - 1, n);
  assert.match(out, /HTTP\/1.1 404 Not Found[^]*\{"message":"page not found"\}\n$/);
});

test('what the fast path leaves to fastify is answered as before', async () => {
  const old = await req('GET /v1.12/_ping');
  assert.match(old, /^HTTP\/1.1 400 Bad Request\r\n/);
  assert.ok(old.endsWith('{"message":"client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"}\n'), old);
  assert.match(await req('GET /v1.99/_ping'), /^HTTP\/1.1 400 [^]*too new/);
  const post = await req('POST /_ping');
  assert.match(post, /^HTTP\/1.1 404 Not Found\r\n/);
  assert.ok(post.includes(COMMON), post);
  assert.match(await req('GET //_ping'), /^HTTP\/1.1 404 /);
});

/** Head and body of an answer, the Date line taken out. */
function parts(answer: string): { head: string; body: string } {
  const i = answer.indexOf('\r\n\r\n');
  return { head: undated(answer.slice(0, i + 2)), body: answer.slice(i + 4) };
}

test('list and inspect: the fast answers are the route\'s, byte for byte', async () => {
  const { ok } = dockerCli(() => b);
  const id = (await ok('run', '-d', '--name', 'wire-a', '--label', 'a=b', 'busybox', 'sleep', '1000')).trim();
  await ok('create', '--name', 'wire-b', 'busybox', 'true');
  for (const v of ['', '/v1.24', '/v1.43', '/v1.50']) {
    for (const ref of [id, 'wire-a', 'wire-b', id.slice(0, 10)]) {
      // `?x=1` is a query the fast path does not take: fastify's route answers it (and ignores x).
      const fast = parts(await req(`GET ${v}/containers/${ref}/json`));
      const route = parts(await req(`GET ${v}/containers/${ref}/json?x=1`));
      assert.equal(fast.head, route.head, `inspect ${v} ${ref}`);
      assert.equal(fast.body, route.body, `inspect ${v} ${ref}`);
      assert.match(fast.head, /^HTTP\/1.1 200 OK\r\napi-version: 1.52\r\ndocker-experimental: false\r\nostype: linux\r\nserver: Berth\/0.1.0 \(linux\)\r\ncontent-type: application\/json; charset=utf-8\r\ncontent-length: \d+\r\nConnection: close\r\n$/);
    }
    for (const q of ['', '?all=1', '?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D', '?limit=1']) {
      const fast = parts(await req(`GET ${v}/containers/json${q}`));
      const route = parts(await req(`GET ${v}/containers/json${q ? `${q}&x=1` : '?x=1'}`));
      assert.equal(fast.head, route.head, `list ${v}${q}`);
      const noStatus = (body: string) => JSON.parse(body).map((c: Record<string, unknown>) => ({ ...c, Status: String(c.Status).replace(/\d+ seconds?|Less than a second/, 'N') }));
      assert.deepEqual(noStatus(fast.body), noStatus(route.body), `list ${v}${q}`);
    }
  }
  // Errors are fastify's, in Docker's words.
  assert.match(await req('GET /containers/nosuch/json'), /^HTTP\/1.1 404 [^]*\{"message":"No such container: nosuch"\}\n$/);
  assert.match(await req('GET /containers/json?filters=%7Bbad'), /^HTTP\/1.1 400 /);
  assert.match(await req('GET /containers/json?filters=%7B%22nokey%22%3A%5B%22x%22%5D%7D'), /^HTTP\/1.1 400 [^]*nokey/);
  assert.match(await req('HEAD /containers/json'), /^HTTP\/1.1 404 /);
  await ok('rm', '-f', 'wire-a', 'wire-b');
});

/** What comes back on one connection for `chunks` written one after another (`gapMs` apart), read until
 *  `until` matches all of it or the connection closes. */
function exchange(chunks: string[], until: RegExp | ((s: string) => boolean), gapMs = 30): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(b.sock);
    let buf = '';
    const done = () => {
      clearTimeout(timer);
      c.destroy();
      resolve(buf);
    };
    const timer = setTimeout(done, 10_000);
    c.setEncoding('latin1');
    c.on('data', (d: string) => {
      buf += d;
      if (typeof until === 'function' ? until(buf) : until.test(buf)) done();
    });
    c.on('close', done);
    c.on('error', reject);
    c.on('connect', async () => {
      for (const ch of chunks) {
        c.write(ch);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

const PING_KA = 'GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n';
/** `n` answers, the last a ping's. */
const answers = (n: number) => (s: string) => s.split('HTTP/1.1 ').length - 1 === n && s.endsWith('\r\n\r\nOK');

test('keep-alive pings answered by the front door: the bytes node\'s server sends for the route', async () => {
  // Content-Length: 0 is a header the front door leaves to the HTTP server: the same request both ways.
  for (const [method, p] of [['GET', '/_ping'], ['HEAD', '/v1.41/_ping?x=1'], ['GET', '/_ping/']]) {
    const front = await exchange([`${method} ${p} HTTP/1.1\r\nHost: berth\r\nConnection: keep-alive\r\n\r\n`], /timeout=\d+\r\n\r\n(OK)?/);
    const route = await exchange([`${method} ${p} HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\n\r\n`], /timeout=\d+\r\n\r\n(OK)?/);
    assert.equal(undated(front), undated(route), `${method} ${p}`);
    assert.match(front, /\r\nDate: [^\r]+ GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\n/);
  }
});

test('a ping split across reads, pipelined pings, and a ping after another route: all answered', async () => {
  const split = await exchange(['GET /_pi', 'ng HTTP/1.1\r\nHo', 'st: berth\r\n\r\n'], /\r\n\r\nOK$/);
  assert.match(split, /^HTTP\/1.1 200 OK\r\n[^]*\r\n\r\nOK$/);
  const mixed = await exchange([PING_KA.repeat(3) + 'GET /version HTTP/1.1\r\nHost: berth\r\n\r\n' + PING_KA, PING_KA], answers(6));
  assert.equal(mixed.split('HTTP/1.1 200 OK').length - 1, 6, mixed);
  assert.match(mixed, /"ApiVersion":"1.52"/);
});

test('what is not a plain ping goes to the HTTP server: its errors, its 400s', async () => {
  const until = /\r\n\r\n[^]*\n$|\r\n\r\n$/;
  // No Host (HTTP/1.1 requires one), a malformed header line, a bare LF, a body: node's server decides.
  assert.match(await exchange(['GET /_ping HTTP/1.1\r\n\r\n'], until), /^HTTP\/1.1 400 /);
  assert.match(await exchange(['GET /_ping HTTP/1.1\r\nHost: berth\r\nBad Header: x\r\n\r\n'], until), /^HTTP\/1.1 400 /);
  assert.match(await exchange(['GET /_ping HTTP/1.1\r\nHost: berth\r\nX: a\x01b\r\n\r\n'], until), /^HTTP\/1.1 400 /);
  assert.match(await exchange(['GET /v1.12/_ping HTTP/1.1\r\nHost: berth\r\n\r\n'], until), /^HTTP\/1.1 400 [^]*too old/);
  const body = await exchange(['GET /_ping HTTP/1.1\r\nHost: berth\r\nContent-Length: 3\r\n\r\nabc' + PING_KA], answers(2));
  assert.equal(body.split('HTTP/1.1 200 OK').length - 1, 2, JSON.stringify(body));
  // Garbage after answered pings: the HTTP server's 400, then the connection closes.
  const garbage = await exchange([PING_KA, '\x00\x01garbage\r\n\r\n'], /400 Bad Request[^]*\n$/);
  assert.match(garbage, /^HTTP\/1.1 200 OK[^]*OK\r?\n?HTTP\/1.1 400 /);
});

test('a hijacked exec after pings on the same connection', async () => {
  const { ok } = dockerCli(() => b);
  await ok('run', '-d', '--name', 'wire-exec', 'busybox', 'sleep', '1000');
  const create = JSON.parse((await exchange([`POST /containers/wire-exec/exec HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: 64\r\nConnection: close\r\n\r\n${JSON.stringify({ Cmd: ['echo', 'hello-front'], AttachStdout: true }).padEnd(64)}`], /\}\n$/)).split('\r\n\r\n')[1]);
  const start = JSON.stringify({ Detach: false, Tty: true });
  const out = await exchange([PING_KA + PING_KA, `POST /exec/${create.Id}/start HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${start.length}\r\n\r\n${start}`], /hello-front/);
  assert.match(out, /^HTTP\/1.1 200 OK[^]*HTTP\/1.1 200 OK[^]*HTTP\/1.1 101 UPGRADED[^]*hello-front/);
  await ok('rm', '-f', 'wire-exec');
});

test('an idle keep-alive connection of pings stays open (disconnect.test.ts: silent ones are closed)', async () => {
  // Answered pings leave the connection open for more (node's keepAliveTimeout is 60 s).
  const c = net.connect(b.sock);
  c.setEncoding('latin1');
  let got = '';
  c.on('data', (d: string) => (got += d));
  await new Promise<void>((r) => c.on('connect', () => r()));
  c.write(PING_KA);
  await new Promise((r) => setTimeout(r, 1500));
  c.write(PING_KA);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(got.split('HTTP/1.1 200 OK').length - 1, 2);
  assert.ok(!c.destroyed);
  c.destroy();
});

test('pings and another request cut at every byte: the same answers, and a client leaving at any byte harms nothing', async () => {
  const stream = PING_KA + 'HEAD /v1.45/_ping HTTP/1.1\r\nHost: berth\r\n\r\n' + 'GET /version HTTP/1.1\r\nHost: berth\r\n\r\n' + PING_KA;
  const whole = (s: string) => s.split('HTTP/1.1 200 OK').length - 1 === 4 && s.endsWith('\r\n\r\nOK');
  for (let k = 1; k < stream.length; k++) {
    const out = await exchange([stream.slice(0, k), stream.slice(k)], whole, 2);
    assert.ok(whole(out), `cut at ${k}: ${JSON.stringify(out.slice(-200))}`);
    assert.match(out, /"ApiVersion":"1.52"/, `cut at ${k}`);
  }
  for (let k = 1; k < stream.length; k += 3) {
    await new Promise<void>((resolve) => {
      const c = net.connect(b.sock, () => c.write(stream.slice(0, k), () => {
        c.destroy();
        resolve();
      }));
      c.on('error', () => resolve());
    });
  }
  assert.match(await req('GET /_ping'), /^HTTP\/1.1 200 OK/);
});
