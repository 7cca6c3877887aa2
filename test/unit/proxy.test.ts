// The registry HTTP client goes through HTTPS_PROXY for https URLs: a CONNECT to the proxy, never a
// lookup or a connection of its own to the registry host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

test('https requests tunnel through HTTPS_PROXY with CONNECT', async () => {
  const seen: string[] = [];
  const proxy = net.createServer((c) => c.once('data', (d) => {
    seen.push(d.toString().split('\r\n')[0]);
    c.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  }));
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const saved = process.env.HTTPS_PROXY;
  process.env.HTTPS_PROXY = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  try {
    const { request } = await import('../../daemon/distribution/http');
    await assert.rejects(request({ method: 'GET', url: 'https://registry.invalid/v2/' }), /proxyconnect tcp: the proxy answered 403/);
    assert.deepEqual(seen, ['CONNECT registry.invalid:443 HTTP/1.1']);
  } finally {
    if (saved === undefined) delete process.env.HTTPS_PROXY;
    else process.env.HTTPS_PROXY = saved;
    proxy.close();
  }
});

test('NO_PROXY takes CIDRs and wildcard domains, as in a systemd drop-in for dockerd', async () => {
  const { proxyFor } = await import('../../daemon/distribution/http');
  const env = { HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.0/8,172.17.0.0/16,10.0.0.0/8,localhost,*.local,cluster.local' };
  assert.equal(proxyFor(new URL('https://10.1.2.3:5000/v2/'), env), undefined);
  assert.equal(proxyFor(new URL('https://172.17.9.9/v2/'), env), undefined);
  assert.equal(proxyFor(new URL('https://harbor.test.local/v2/'), env), undefined);
  assert.equal(proxyFor(new URL('https://cluster.local/v2/'), env), undefined);
  assert.equal(proxyFor(new URL('https://172.18.0.1/v2/'), env)?.host, '127.0.0.1:9');
  assert.equal(proxyFor(new URL('https://registry-1.docker.io/v2/'), env)?.host, '127.0.0.1:9');
});
