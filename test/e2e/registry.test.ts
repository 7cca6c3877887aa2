// docker pull / push / login against real registries on loopback: Debian's docker-registry (one plain, one
// with htpasswd basic auth), and a small node proxy of this test's own in front of the plain one that demands
// bearer tokens from a token endpoint it also serves, or that holds back one blob (to kill berthd mid-pull).
// Images the test makes itself (zstd layer, tampered layer, OCI index) are written through the registry API.
// Nothing leaves 127.0.0.1; registries, proxies and berthd are stopped and removed in after(), by PID.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { FIXTURES, runCmd, type Berthd } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli, show } from '../helpers/clients';
import { packTar } from '../fixtures/tar';
import { forwardToRegistry, listenOwnPort, startRegistry, type Registry } from '../helpers/registry';

const IDS: { busybox: string; layered: string } = JSON.parse(readFileSync(path.join(FIXTURES, 'ids.json'), 'utf8'));
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A proxy in front of a registry: with `token`, a bearer-token registry (plus its token endpoint at /token);
 *  `stall` holds GETs of one blob until released; every blob GET is counted. */
class Proxy {
  server!: http.Server;
  port = 0;
  stall?: string;
  private release?: () => void;
  stalled?: Promise<void>;
  private stalledHit?: () => void;
  gets = new Map<string, number>();
  constructor(private readonly upstream: number, private readonly token: boolean) {}
  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    // Not a port of the kernel's ephemeral range: another test daemon's DNAT rule for a port it published
    // there, left while its container runs, would take this proxy's connections (listenOwnPort says why).
    this.port = await listenOwnPort(this.server);
  }
  holdBlob(digest: string): void {
    this.stall = digest;
    this.stalled = new Promise((r) => (this.stalledHit = r));
  }
  releaseBlob(): void {
    this.stall = undefined;
    this.release?.();
  }
  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    if (this.token && url.startsWith('/token')) {
      const authz = req.headers.authorization ?? '';
      const ok = authz === `Basic ${Buffer.from('tester:s3cret').toString('base64')}`;
      const scope = new URL(url, 'http://x').searchParams.get('service');
      if (!ok || scope !== 'berth-test') {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: 'tok-123', expires_in: 300 }));
      return;
    }
    if (this.token && req.headers.authorization !== 'Bearer tok-123') {
      res.writeHead(401, {
        'Content-Type': 'application/json',
        'WWW-Authenticate': `Bearer realm="http://127.0.0.1:${this.port}/token",service="berth-test",scope="repository:x:pull"`,
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.split('?')[0]);
    if (m && req.method === 'GET') {
      this.gets.set(m[1], (this.gets.get(m[1]) ?? 0) + 1);
      if (this.stall === m[1]) {
        this.stalledHit?.();
        await new Promise<void>((r) => (this.release = r));
      }
    }
    forwardToRegistry(req, res, this.upstream, this.port, true);
  }
  close(): void {
    this.release?.();
    this.server?.closeAllConnections();
    this.server?.close();
  }
}

/** The registry API from node: uploads a blob (POST + PUT), returns its digest. */
async function putBlob(base: string, repo: string, data: Buffer): Promise<string> {
  const d = sha(data);
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(r.status, 202);
  const u = new URL(r.headers.get('location')!, base);
  u.searchParams.set('digest', d);
  const p = await fetch(u, { method: 'PUT', body: new Uint8Array(data), headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(p.status, 201, await p.text());
  return d;
}

async function putManifest(base: string, repo: string, ref: string, m: object, mediaType: string): Promise<string> {
  const body = Buffer.from(JSON.stringify(m));
  const r = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'Content-Type': mediaType } });
  assert.equal(r.status, 201, await r.text());
  return sha(body);
}

/** A zstd frame made of raw (stored) blocks: valid zstd that any decoder must read. */
function zstdRaw(data: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38])]; // magic; no size/checksum; 128 KiB window
  const MAX = 128 * 1024;
  for (let off = 0; off < data.length || off === 0; off += MAX) {
    const chunk = data.subarray(off, off + MAX);
    const last = off + MAX >= data.length ? 1 : 0;
    const h = (chunk.length << 3) | last; // block type 0 = raw
    parts.push(Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]), chunk);
    if (last) break;
  }
  return Buffer.concat(parts);
}

/** A small image whose layers the test makes; pushed through the registry API. */
async function pushMadeImage(base: string, repo: string, tag: string, layers: { files: Record<string, string | Buffer>; compress: 'gzip' | 'zstd' | 'none' }[]): Promise<{ id: string; digest: string; blobs: string[] }> {
  const diffIds: string[] = [];
  const descs: object[] = [];
  const blobs: string[] = [];
  for (const l of layers) {
    const tar = await packTar(Object.entries(l.files).map(([name, content]) => ({ name, content, mode: 0o644, uid: 0, gid: 0 })));
    diffIds.push(sha(tar));
    const blob = l.compress === 'gzip' ? gzipSync(tar) : l.compress === 'zstd' ? zstdRaw(tar) : tar;
    const d = await putBlob(base, repo, blob);
    blobs.push(d);
    const mediaType = `application/vnd.oci.image.layer.v1.tar${l.compress === 'none' ? '' : `+${l.compress}`}`;
    descs.push({ mediaType, digest: d, size: blob.length });
  }
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/bin'], Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'berth test' })),
  }));
  const id = await putBlob(base, repo, config);
  const digest = await putManifest(base, repo, tag, {
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: id, size: config.length }, layers: descs,
  }, 'application/vnd.oci.image.manifest.v1+json');
  return { id, digest, blobs };
}

describe('registries: pull, push, login', () => {
  let dir: string;
  let plain: Registry;
  let basic: Registry;
  let tokenProxy: Proxy;
  let stallProxy: Proxy;
  let A: string; // 127.0.0.1:port of the plain registry
  let B: string; // … of the htpasswd one
  let T: string; // … of the token proxy
  let S: string; // … of the stalling proxy

  const docker = async (...args: string[]) => b.docker(args, { timeoutMs: 90000 });
  const { ok, fails } = dockerCli(() => b, { timeoutMs: 90000, matchStdout: true });
  const inspect = async (ref: string) => JSON.parse(await ok('image', 'inspect', ref))[0];
  const listed = async () => (await ok('images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}')).split('\n').filter(Boolean).sort();

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-registry-e2e-'));
    const pw = path.join(dir, 'htpasswd');
    const h = await runCmd('htpasswd', ['-Bbc', pw, 'tester', 's3cret']);
    assert.equal(h.code, 0, show(h));
    plain = await startRegistry(dir, 'plain');
    basic = await startRegistry(dir, 'basic', pw);
    tokenProxy = new Proxy(plain.port, true);
    await tokenProxy.start();
    stallProxy = new Proxy(plain.port, false);
    await stallProxy.start();
    A = `127.0.0.1:${plain.port}`;
    B = `127.0.0.1:${basic.port}`;
    T = `127.0.0.1:${tokenProxy.port}`;
    S = `127.0.0.1:${stallProxy.port}`;
  });
  // Started after the registries above: its mirror is A.
  const b = berthdForFile({
    start: () => ({ daemonJson: { 'registry-mirrors': [`http://${A}`], 'max-concurrent-downloads': 2 } }),
    fixtures: ['busybox', 'layered'],
  });

  after(async () => {
    tokenProxy?.close();
    stallProxy?.close();
    for (const r of [plain, basic]) r?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('/info shows the mirror and the loopback insecure range', async () => {
    const info = JSON.parse(await ok('info', '--format', '{{json .RegistryConfig}}'));
    assert.deepEqual(info.Mirrors, [`http://${A}/`]);
    assert.ok(info.InsecureRegistryCIDRs.includes('127.0.0.0/8'));
  });

  test('push, push again, mount from another repository', async () => {
    await ok('tag', 'layered', `${A}/e2e/layered:1`);
    const out = await ok('push', `${A}/e2e/layered:1`);
    assert.match(out, /The push refers to repository \[127\.0\.0\.1:\d+\/e2e\/layered\]/);
    assert.match(out, /Pushed/);
    assert.match(out, /1: digest: sha256:[a-f0-9]{64} size: \d+/);
    const again = await ok('push', `${A}/e2e/layered:1`);
    assert.match(again, /Layer already exists/);
    assert.doesNotMatch(again, /Pushed/);
    await ok('tag', 'busybox', `${A}/e2e/bb:1`);
    const mounted = await ok('push', `${A}/e2e/bb:1`);
    assert.match(mounted, /Mounted from e2e\/layered/);
    const img = await inspect(`${A}/e2e/layered:1`);
    assert.ok(img.RepoDigests.some((d: string) => d.startsWith(`${A}/e2e/layered@sha256:`)), JSON.stringify(img.RepoDigests));
    await fails(/An image does not exist locally with the tag: 127\.0\.0\.1:\d+\/e2e\/nosuch/, 'push', `${A}/e2e/nosuch:1`);
  });

  test('rmi then pull: progress, RepoDigests, up to date, by digest, unknown tag', async () => {
    await ok('rmi', `${A}/e2e/layered:1`, 'layered:latest');
    const r = await docker('pull', `${A}/e2e/layered:1`);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /1: Pulling from e2e\/layered/);
    assert.match(r.stdout, /Already exists/); // the busybox layer
    assert.match(r.stdout, /Pull complete/);
    assert.match(r.stdout, /Digest: sha256:[a-f0-9]{64}/);
    assert.match(r.stdout, /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/e2e\/layered:1/);
    const img = await inspect(`${A}/e2e/layered:1`);
    assert.equal(img.Id, IDS.layered);
    const digest = /Digest: (sha256:[a-f0-9]{64})/.exec(r.stdout)![1];
    assert.deepEqual(img.RepoDigests, [`${A}/e2e/layered@${digest}`]);
    assert.match(await ok('images', '--digests', `${A}/e2e/layered`), new RegExp(digest));
    // The CLI's JSON stream, as a terminal would draw it.
    const again = await ok('pull', `${A}/e2e/layered:1`);
    assert.match(again, /Status: Image is up to date for 127\.0\.0\.1:\d+\/e2e\/layered:1/);
    const byDigest = await ok('pull', `${A}/e2e/layered@${digest}`);
    assert.match(byDigest, new RegExp(`Status: Image is up to date for 127\\.0\\.0\\.1:\\d+/e2e/layered@${digest}`));
    const r404 = await fails(/manifest for 127\.0\.0\.1:\d+\/e2e\/layered:nope not found: manifest unknown: manifest unknown/, 'pull', `${A}/e2e/layered:nope`);
    assert.doesNotMatch(r404.stdout, /Pulling from/);
    // Progress lines as the daemon sends them (raw API).
    const raw = await rawPull(b, `${A}/e2e/bb`, '1');
    assert.match(raw, /"status":"Pulling from e2e\/bb","id":"1"/);
  });

  test('a zstd layer and an uncompressed layer; a manifest list / OCI index with platform choice', async () => {
    const made = await pushMadeImage(plain.base, 'e2e/zstd', '1', [
      { files: { 'hello.txt': 'zstd layer\n' }, compress: 'zstd' },
      { files: { 'plain.txt': 'plain layer\n' }, compress: 'none' },
    ]);
    // Through the API, to see every progress message the CLI draws.
    const out = await rawPull(b, `${A}/e2e/zstd`, '1');
    for (const re of [/"status":"Pulling fs layer"/, /"status":"Downloading","progressDetail":\{"current":\d+,"total":\d+\},"progress":"\[=/,
      /"status":"Verifying Checksum"/, /"status":"Download complete"/, /"status":"Extracting","progressDetail":\{"current":/, /"status":"Pull complete"/,
      /"status":"Digest: sha256:[a-f0-9]{64}"/, /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/e2e\/zstd:1/]) assert.match(out, re);
    assert.doesNotMatch(out, /errorDetail/);
    const img = await inspect(`${A}/e2e/zstd:1`);
    assert.equal(img.Id, made.id);
    assert.equal(img.RootFS.Layers.length, 2);

    // An index over two images pushed to one repository: amd64 → layered, arm64 → busybox.
    await ok('tag', 'busybox', `${A}/e2e/multi:arm`);
    await ok('push', `${A}/e2e/multi:arm`);
    await ok('tag', `${A}/e2e/layered:1`, `${A}/e2e/multi:amd`);
    await ok('push', `${A}/e2e/multi:amd`);
    const desc = async (tag: string) => {
      const r = await fetch(`${plain.base}/v2/e2e/multi/manifests/${tag}`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      const body = Buffer.from(await r.arrayBuffer());
      return { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: sha(body), size: body.length };
    };
    const index = {
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { ...(await desc('arm')), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { ...(await desc('amd')), platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const idxDigest = await putManifest(plain.base, 'e2e/multi', 'idx', index, 'application/vnd.oci.image.index.v1+json');
    const p1 = await ok('pull', `${A}/e2e/multi:idx`);
    assert.match(p1, new RegExp(`Digest: ${idxDigest}`));
    assert.equal((await inspect(`${A}/e2e/multi:idx`)).Id, IDS.layered);
    await ok('pull', '--platform', 'linux/arm64', `${A}/e2e/multi:idx`);
    assert.equal((await inspect(`${A}/e2e/multi:idx`)).Id, IDS.busybox);
    await fails(/no matching manifest for linux\/s390x/, 'pull', '--platform', 'linux/s390x', `${A}/e2e/multi:idx`);
  });

  test('a layer that does not match its digest: clear error, nothing listed', async () => {
    const made = await pushMadeImage(plain.base, 'e2e/bad', '1', [{ files: { 'x.txt': 'x'.repeat(5000) }, compress: 'gzip' }]);
    const hex = made.blobs[0].slice(7);
    const data = path.join(plain.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(data);
    bytes[bytes.length - 20] ^= 0xff;
    writeFileSync(data, bytes);
    const before = await listed();
    await fails(/filesystem layer verification failed for digest sha256:[a-f0-9]{64}/, 'pull', `${A}/e2e/bad:1`);
    assert.deepEqual(await listed(), before);
    const blobs = path.join(b.dataRoot, 'image', 'blobs');
    assert.deepEqual(existsSync(blobs) ? readdirSync(blobs).filter((f) => f.includes(hex.slice(0, 12))) : [], []);
  });

  test('login and pull/push with basic auth', async () => {
    const bad = await fails(/401 Unauthorized|unauthorized/i, 'login', '-u', 'tester', '-p', 'wrong', B);
    assert.doesNotMatch(bad.stdout, /Login Succeeded/);
    await ok('tag', 'busybox', `${B}/auth/bb:1`);
    await fails(/no basic auth credentials/, 'push', `${B}/auth/bb:1`);
    assert.match(await ok('login', '-u', 'tester', '-p', 's3cret', B), /Login Succeeded/);
    assert.match(await ok('push', `${B}/auth/bb:1`), /1: digest: sha256:/);
    await ok('rmi', `${B}/auth/bb:1`);
    assert.match(await ok('pull', `${B}/auth/bb:1`), /Status: (Downloaded newer image|Image is up to date) for/);
    await ok('logout', B);
    await ok('rmi', `${B}/auth/bb:1`);
    await fails(/no basic auth credentials/, 'pull', `${B}/auth/bb:1`);
  });

  test('bearer tokens: login, push and pull through a token server', async () => {
    await fails(/401 Unauthorized|unauthorized/i, 'login', '-u', 'tester', '-p', 'nope', T);
    assert.match(await ok('login', '-u', 'tester', '-p', 's3cret', T), /Login Succeeded/);
    await ok('tag', 'busybox', `${T}/tok/bb:1`);
    assert.match(await ok('push', `${T}/tok/bb:1`), /1: digest: sha256:/);
    await ok('rmi', `${T}/tok/bb:1`);
    assert.match(await ok('pull', `${T}/tok/bb:1`), /Status: /);
    await ok('logout', T);
  });

  test('registry-mirrors: docker.io names resolve through the mirror', async () => {
    await ok('tag', 'busybox', `${A}/library/busybox:latest`);
    const pushed = /digest: (sha256:[a-f0-9]{64})/.exec(await ok('push', `${A}/library/busybox:latest`))?.[1];
    // Distribution inspect walks the same endpoints as a pull: the mirror answers for docker.io.
    const dist = await api(b, 'GET', '/distribution/busybox/json');
    assert.equal(dist.status, 200, dist.body);
    assert.equal(dist.json().Descriptor.digest, pushed);
    await ok('rmi', 'busybox:latest');
    const out = await ok('pull', 'busybox');
    assert.match(out, /Status: Downloaded newer image for busybox:latest/);
    assert.equal((await inspect('busybox')).Id, IDS.busybox);
  });

  test('kill -9 during a pull: nothing listed; after restart the pull completes and reuses finished blobs', async () => {
    const made = await pushMadeImage(plain.base, 'e2e/crash', '1', [
      { files: { 'one.bin': Buffer.alloc(300000, 1) }, compress: 'gzip' },
      { files: { 'two.bin': Buffer.alloc(300000, 2) }, compress: 'gzip' },
    ]);
    stallProxy.holdBlob(made.blobs[1]);
    const pulling = docker('pull', `${S}/e2e/crash:1`);
    // A pull that ends before it asks for the held blob is a failure to see, not a wait until the file's timeout.
    const early = await Promise.race([stallProxy.stalled!.then(() => undefined), pulling.then((r) => r)]);
    assert.equal(early, undefined, `the pull ended before it asked for the held layer: ${JSON.stringify(early)}`);
    // Let the first layer finish (it is not held back).
    for (let i = 0; i < 100 && !(stallProxy.gets.get(made.blobs[0])); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    await b.kill9();
    await pulling;
    stallProxy.releaseBlob();
    await b.restart();
    assert.ok(!(await listed()).some((l) => l.includes('e2e/crash')));
    const out = await ok('pull', `${S}/e2e/crash:1`);
    assert.match(out, /Downloaded newer image/);
    assert.equal((await inspect(`${S}/e2e/crash:1`)).Id, made.id);
    assert.equal(stallProxy.gets.get(made.blobs[0]), 1, 'the finished blob was downloaded again');
  });
});

/** POST /images/create through the socket, returning the raw JSON stream. */
function rawPull(b: Berthd, image: string, tag: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: b.sock, method: 'POST', path: `/v1.50/images/create?fromImage=${encodeURIComponent(image)}&tag=${tag}`, headers: { 'X-Registry-Auth': 'e30=' } }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (s += c));
      res.on('end', () => resolve(s));
    });
    req.on('error', reject);
    req.end();
  });
}
