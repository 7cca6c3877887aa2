// /_ping is answered before fastify (api/ping.ts): its bytes on the wire must be those fastify's route
// sent (the same header names, values and order), for GET and HEAD, with and without a version prefix,
// a query or a trailing slash; what it does not take (a refused version, another method) is fastify's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { berthdForFile } from '../helpers/file';

const b = berthdForFile();

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
