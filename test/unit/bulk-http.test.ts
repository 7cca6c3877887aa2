// request({ bulk: true }): blob downloads over plain HTTP read straight from the socket (rawGet in
// daemon/distribution/http.ts). What a registry sends for a blob comes back in 1 MiB chunks with every byte;
// anything else (errors, redirects, chunked encoding) is asked again through node's http client and looks
// exactly as it would without `bulk`; a body cut short is an error, never a short success.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { request, readBody } from '../../daemon/distribution/http';

async function serve(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void>; hits: () => number }> {
  let hits = 0;
  const s = http.createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () => new Promise<void>((r) => {
      s.closeAllConnections();
      s.close(() => r());
    }),
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('bulk GET: every byte, in chunks of at most 1 MiB, headers and request headers as sent', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 12345);
  let seen: http.IncomingHttpHeaders = {};
  const srv = await serve((req, res) => {
    seen = req.headers;
    res.writeHead(200, { 'Content-Length': String(data.length), 'Docker-Content-Digest': 'sha256:x' });
    // Written in odd pieces, so that chunk borders and socket reads never line up.
    let off = 0;
    const step = () => {
      while (off < data.length) {
        const n = Math.min(70001, data.length - off);
        const ok = res.write(data.subarray(off, off + n));
        off += n;
        if (!ok) return void res.once('drain', step);
      }
      res.end();
    };
    step();
  });
  try {
    const res = await request({ method: 'GET', url: `${srv.url}/v2/x/blobs/sha256:abc?y=1`, headers: { Authorization: 'Bearer t0k' }, bulk: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(data.length));
    assert.equal(res.headers['docker-content-digest'], 'sha256:x');
    const chunks: Buffer[] = [];
    for await (const c of res.body as AsyncIterable<Buffer>) chunks.push(c);
    assert.ok(chunks.every((c) => c.length <= 1024 * 1024), 'chunks of at most 1 MiB');
    assert.equal(sha(Buffer.concat(chunks)), sha(data));
    assert.equal(seen.authorization, 'Bearer t0k');
    assert.equal(seen.host, new URL(srv.url).host);
  } finally {
    await srv.close();
  }
});

test('bulk GET: an empty body, an error status, chunked encoding and a redirect look as without bulk', async () => {
  const data = randomBytes(200_000);
  const srv = await serve((req, res) => {
    if (req.url === '/empty') {
      res.writeHead(200, { 'Content-Length': '0' });
      res.end();
    } else if (req.url === '/missing') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    } else if (req.url === '/chunked') {
      res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
      res.write(data.subarray(0, 1000));
      res.end(data.subarray(1000));
    } else if (req.url === '/moved') {
      res.writeHead(307, { Location: '/chunked', 'Content-Length': '0' });
      res.end();
    }
  });
  try {
    const empty = await request({ method: 'GET', url: `${srv.url}/empty`, bulk: true });
    assert.equal(empty.status, 200);
    assert.equal((await readBody(empty)).length, 0);
    const missing = await request({ method: 'GET', url: `${srv.url}/missing`, bulk: true });
    assert.equal(missing.status, 404);
    assert.match((await readBody(missing)).toString(), /BLOB_UNKNOWN/);
    const chunked = await request({ method: 'GET', url: `${srv.url}/chunked`, bulk: true });
    assert.equal(chunked.status, 200);
    assert.equal(sha(await readBody(chunked)), sha(data));
    const moved = await request({ method: 'GET', url: `${srv.url}/moved`, bulk: true });
    assert.equal(moved.status, 307);
    assert.equal(moved.headers.location, '/chunked');
    await readBody(moved);
  } finally {
    await srv.close();
  }
});

test('bulk GET: a body cut short is an error; a refused connection is a network error', async () => {
  const srv = await serve((_req, res) => {
    res.writeHead(200, { 'Content-Length': String(5 * 1024 * 1024) });
    res.write(randomBytes(1536 * 1024), () => res.destroy());
  });
  try {
    const res = await request({ method: 'GET', url: `${srv.url}/short`, bulk: true });
    assert.equal(res.status, 200);
    let got = 0;
    await assert.rejects(async () => {
      for await (const c of res.body as AsyncIterable<Buffer>) got += c.length;
    }, /unexpected EOF/);
    assert.ok(got < 5 * 1024 * 1024);
  } finally {
    await srv.close();
  }
  // A port nobody listens on (the server above is closed).
  const port = Number(new URL(srv.url).port);
  await assert.rejects(request({ method: 'GET', url: `http://127.0.0.1:${port}/x`, bulk: true }), /ECONNREFUSED/);
});
