// docker search against a v1 search index on loopback (a small index of this test's own: Debian's
// docker-registry has no v1 search), with its filters; Docker Hub's index through the daemon's proxy (the
// harness points it at a closed loopback port, so it fails fast and nothing leaves the machine);
// docker system prune (containers, networks, images, build cache, volumes); swarm commands refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { berthdForFile } from '../helpers/file';
import { dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
let index: http.Server;
let indexPort = 0;
const queries: string[] = [];

before(async () => {
  index = http.createServer((req, res) => {
    queries.push(req.url ?? '');
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname !== '/v1/search') {
      res.writeHead(404).end();
      return;
    }
    const q = u.searchParams.get('q') ?? '';
    const all = [
      { name: 'busybox', description: 'Busybox base image.', star_count: 3000, is_official: true, is_automated: false },
      { name: 'someone/busybox-tools', description: 'tools', star_count: 2, is_official: false, is_automated: true },
    ].filter((r) => r.name.includes(q));
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ num_results: all.length, query: q, results: all }));
  });
  await new Promise<void>((r) => index.listen(0, '127.0.0.1', () => r()));
  indexPort = (index.address() as net.AddressInfo).port;
});

after(() => {
  index?.close();
});

const { ok, fails } = dockerCli(() => b);

test('docker search asks the index named in the term; filters and --limit', async () => {
  const out = await ok('search', '--no-trunc', `127.0.0.1:${indexPort}/busybox`);
  assert.match(out, /^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL/);
  assert.match(out, /\nbusybox\s+Busybox base image\.\s+3000\s+\[OK\]/);
  assert.match(out, /\nsomeone\/busybox-tools\s+tools\s+2\s/);
  assert.ok(queries.includes('/v1/search?q=busybox&n=25'), queries.join(' '));
  const official = await ok('search', '--filter', 'is-official=true', '--format', '{{.Name}}', `127.0.0.1:${indexPort}/busybox`);
  assert.equal(official.trim(), 'busybox');
  const starred = await ok('search', '--filter', 'stars=10', '--format', '{{.Name}}', `127.0.0.1:${indexPort}/busy`);
  assert.equal(starred.trim(), 'busybox');
  await ok('search', '--limit', '5', '--format', '{{.Name}}', `127.0.0.1:${indexPort}/busybox`);
  assert.ok(queries.includes('/v1/search?q=busybox&n=5'));
  await fails(/invalid filter|Invalid filter/, 'search', '--filter', 'bogus=1', `127.0.0.1:${indexPort}/busybox`);
  const t0 = Date.now();
  await fails(/index\.docker\.io.*proxyconnect/, 'search', 'node');
  assert.ok(Date.now() - t0 < 15000);
});

test('docker system prune removes stopped containers, unused networks, dangling images and, with --volumes, volumes', async () => {
  await ok('create', '--name', 'sp-stopped', 'busybox', 'true');
  await ok('run', '-d', '--name', 'sp-running', 'busybox', 'sleep', '1000');
  await ok('network', 'create', 'sp-net');
  await ok('volume', 'create', 'sp-named');
  await ok('run', '--name', 'sp-anon', '-v', '/anon', 'busybox', 'true');
  const out = await ok('system', 'prune', '-f', '--volumes');
  assert.match(out, /Deleted Containers:/);
  assert.match(out, /Deleted Networks:\nsp-net/);
  assert.match(out, /Total reclaimed space:/);
  const names = await ok('ps', '-a', '--format', '{{.Names}}');
  assert.equal(names.trim(), 'sp-running');
  const vols = (await ok('volume', 'ls', '-q')).trim().split('\n').filter(Boolean);
  assert.deepEqual(vols, ['sp-named']); // anonymous volumes only, as API >= 1.42 prunes
  assert.doesNotMatch(await ok('network', 'ls', '--format', '{{.Name}}'), /sp-net/);
  assert.match(await ok('images', '--format', '{{.Repository}}'), /busybox/);
  await ok('rm', '-f', 'sp-running');
  await ok('volume', 'rm', 'sp-named');
});

test('swarm commands are refused with a clear message', async () => {
  await fails(/single-node engine: swarm mode is not supported/, 'swarm', 'init');
  await fails(/This node is not a swarm manager/, 'node', 'ls');
  await fails(/This node is not a swarm manager/, 'service', 'ls');
  await fails(/This node is not part of a swarm/, 'swarm', 'leave');
});

test('no managed plugins: plugin ls is empty, a named plugin is not found', async () => {
  assert.equal((await ok('plugin', 'ls', '-q')).trim(), '');
  await fails(/plugin "nosuch" not found/, 'plugin', 'inspect', 'nosuch');
  await fails(/plugin "nosuch" not found/, 'plugin', 'rm', 'nosuch');
});
