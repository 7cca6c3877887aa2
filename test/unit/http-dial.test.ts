// request() in daemon/distribution/http.ts: the connect deadline bounds the dial only. A request whose body
// is streamed for longer than that (docker push sends a whole layer in one PATCH as it is compressed) must
// still get its answer; a server that never accepts the connection's request still fails by the idle timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { request, readBody } from '../../daemon/distribution/http';

test('a body streamed for longer than the connect timeout is sent whole and answered', async () => {
  let got = 0;
  const s = http.createServer((req, res) => {
    req.on('data', (c: Buffer) => { got += c.length; });
    req.on('end', () => {
      res.writeHead(202, { 'Content-Type': 'text/plain' });
      res.end(String(got));
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (s.address() as net.AddressInfo).port;
    const body = Readable.from((async function* () {
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 100));
        yield Buffer.alloc(1000, i);
      }
    })());
    const res = await request({ method: 'PATCH', url: `http://127.0.0.1:${port}/up`, body, connectTimeout: 200, idleTimeout: 5000 });
    assert.equal(res.status, 202);
    assert.equal((await readBody(res)).toString(), '8000');
  } finally {
    s.close();
  }
});

test('a server that accepts and never answers fails the request by the idle timeout', async () => {
  const socks: net.Socket[] = [];
  const s = net.createServer((c) => { socks.push(c); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (s.address() as net.AddressInfo).port;
    const t0 = Date.now();
    await assert.rejects(request({ method: 'GET', url: `http://127.0.0.1:${port}/`, connectTimeout: 200, idleTimeout: 600 }), /timeout/);
    assert.ok(Date.now() - t0 >= 500, `failed after ${Date.now() - t0} ms`);
  } finally {
    for (const c of socks) c.destroy();
    s.close();
  }
});
