// The pure parts of daemon/distribution: X-Registry-Auth decoding, WWW-Authenticate parsing, platform
// choice, progress bars, manifest reading, and which registries may be reached over plain HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { decodeRegistryAuth, parseWwwAuthenticate } from '../../daemon/distribution/auth';
import { choosePlatform, parsePlatform } from '../../daemon/distribution/platform';
import { progressBar, humanSize } from '../../daemon/distribution/progress';
import { parseManifest, MT } from '../../daemon/distribution/manifest';
import { Registries, registryErrorText } from '../../daemon/distribution/registry';
import { limiter } from '../../daemon/distribution/limit';

const b64url = (s: string) => Buffer.from(s).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

test('X-Registry-Auth: url and std alphabets, padding or not, junk ignored', () => {
  const json = JSON.stringify({ username: 'tester', password: 's3cret?>>', serveraddress: '127.0.0.1:5001' });
  const want = { username: 'tester', password: 's3cret?>>', serveraddress: '127.0.0.1:5001' };
  assert.deepEqual(decodeRegistryAuth(b64url(json)), want);
  assert.deepEqual(decodeRegistryAuth(Buffer.from(json).toString('base64')), want);
  assert.deepEqual(decodeRegistryAuth(b64url(json).replace(/=+$/, '')), want);
  assert.deepEqual(decodeRegistryAuth('e30='), {});
  assert.deepEqual(decodeRegistryAuth('e30'), {});
  assert.deepEqual(decodeRegistryAuth(undefined), {});
  assert.deepEqual(decodeRegistryAuth('!!!not base64'), {});
  assert.deepEqual(decodeRegistryAuth(b64url('[1,2]')), {});
  assert.deepEqual(decodeRegistryAuth(b64url('{"Username":"u","IdentityToken":"t","password":""}')), { username: 'u', identitytoken: 't' });
});

test('WWW-Authenticate: basic, bearer with quoted params, several challenges', () => {
  assert.deepEqual(parseWwwAuthenticate('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/busybox:pull,push"'), [{
    scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:library/busybox:pull,push' },
  }]);
  const two = parseWwwAuthenticate(['Bearer realm="r", error="insufficient_scope"', 'Basic realm=x']);
  assert.equal(two.length, 2);
  assert.equal(two[0].params.error, 'insufficient_scope');
  assert.deepEqual(two[1], { scheme: 'basic', params: { realm: 'x' } });
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="a \\"q\\" b"')[0].params.realm, 'a "q" b');
  assert.deepEqual(parseWwwAuthenticate(undefined), []);
  assert.deepEqual(parseWwwAuthenticate(''), []);
});

test('platform: parsing and choosing from a manifest list', () => {
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.throws(() => parsePlatform('windows/amd64'), /unknown operating system/);
  const d = (n: number) => `sha256:${String(n).repeat(64)}`;
  const entries = [
    { digest: d(1), platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { digest: d(2), platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { digest: d(3), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { digest: d(4), platform: { os: 'linux', architecture: 'amd64' } },
    { digest: d(5), platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
  ];
  assert.equal(choosePlatform(entries, { os: 'linux', architecture: 'amd64' })?.digest, d(4));
  assert.equal(choosePlatform(entries, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, d(2));
  assert.equal(choosePlatform(entries, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest, d(3));
  assert.equal(choosePlatform([{ digest: d(6), platform: { os: 'linux', architecture: 'arm64' } }], parsePlatform('linux/arm64'))?.digest, d(6));
  assert.equal(choosePlatform(entries, { os: 'linux', architecture: 's390x' }), undefined);
});

test('progress bars as Docker draws them', () => {
  assert.equal(progressBar(36446, 614881), `[==>${' '.repeat(48)}]  36.45kB/614.9kB`);
  assert.equal(progressBar(614881, 614881), `[${'='.repeat(50)}>]  614.9kB/614.9kB`);
  assert.equal(progressBar(512, 4), `[${'='.repeat(50)}>]     512B`);
  assert.equal(humanSize(616960), '617kB');
  assert.equal(humanSize(2129920), '2.13MB');
});

test('manifests: by content type or by their own fields; schema 1 refused', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const img = { schemaVersion: 2, mediaType: MT.dockerV2, config: { mediaType: MT.dockerConfig, digest, size: 1 }, layers: [{ mediaType: MT.ociLayerZstd, digest, size: 2 }] };
  const p = parseManifest(Buffer.from(JSON.stringify(img)), MT.dockerV2);
  assert.equal(p.kind, 'image');
  assert.equal(parseManifest(Buffer.from(JSON.stringify(img)), 'application/json').kind, 'image');
  const idx = { schemaVersion: 2, manifests: [{ digest, size: 3, platform: { os: 'linux', architecture: 'amd64' } }] };
  assert.equal(parseManifest(Buffer.from(JSON.stringify(idx)), undefined).kind, 'index');
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1}'), MT.dockerV1Signed), /schema 1/);
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...img, layers: [{ mediaType: 'text/evil', digest, size: 1 }] })), MT.dockerV2), /unsupported media type/);
  assert.throws(() => parseManifest(Buffer.from('nope'), MT.dockerV2), /not JSON/);
});

test('registry errors and insecure registries', () => {
  assert.equal(registryErrorText('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', 404), 'manifest unknown: manifest unknown');
  assert.equal(registryErrorText('<html>', 502), 'unexpected status 502');
  const r = new Registries({ insecureRegistries: ['myreg.example:5000', '10.1.0.0/16'], registryMirrors: ['http://127.0.0.1:5999'] }, pino({ level: 'silent' }));
  assert.ok(r.isInsecure('127.0.0.1:5000'));
  assert.ok(r.isInsecure('127.3.4.5'));
  assert.ok(r.isInsecure('localhost:5000'));
  assert.ok(r.isInsecure('[::1]:5000'));
  assert.ok(r.isInsecure('myreg.example:5000'));
  assert.ok(r.isInsecure('10.1.2.3:443'));
  assert.ok(!r.isInsecure('10.2.0.1:443'));
  assert.ok(!r.isInsecure('registry.example.com'));
  const eps = r.endpoints('docker.io', true);
  assert.deepEqual(eps.map((e) => [e.url, e.mirror]), [['http://127.0.0.1:5999', true], ['https://registry-1.docker.io', false]]);
  assert.deepEqual(r.endpoints('docker.io', false).map((e) => e.url), ['https://registry-1.docker.io']);
});

test('limiter runs at most n at once', async () => {
  const lim = limiter(2);
  let running = 0;
  let peak = 0;
  let waits = 0;
  await Promise.all(Array.from({ length: 6 }, () => lim(async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 10));
    running--;
  }, () => waits++)));
  assert.equal(peak, 2);
  assert.equal(waits, 4);
});

test('proxies from the environment; loopback and NO_PROXY hosts go direct', async () => {
  const { proxyFor } = await import('../../daemon/distribution/http');
  const env = { HTTPS_PROXY: 'http://127.0.0.1:9', http_proxy: 'proxy.example:3128', NO_PROXY: 'internal.example,.corp' };
  assert.equal(proxyFor(new URL('https://registry-1.docker.io/v2/'), env)?.host, '127.0.0.1:9');
  assert.equal(proxyFor(new URL('http://registry.example/v2/'), env)?.host, 'proxy.example:3128');
  assert.equal(proxyFor(new URL('http://127.0.0.1:5000/v2/'), env), undefined);
  assert.equal(proxyFor(new URL('https://localhost:5000/v2/'), env), undefined);
  assert.equal(proxyFor(new URL('https://internal.example/v2/'), env), undefined);
  assert.equal(proxyFor(new URL('https://reg.corp/v2/'), env), undefined);
  assert.equal(proxyFor(new URL('https://registry-1.docker.io/v2/'), {}), undefined);
});
