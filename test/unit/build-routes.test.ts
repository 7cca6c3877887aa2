// POST /build through fastify's inject, with the real image service on a temporary data root and no
// container service: errors before the stream starts are plain HTTP errors (bad parameters, a hostile
// context, a missing or broken Dockerfile), and a FROM scratch build (COPY needs no container there) shows
// the exact message stream and the build cache. Needs root (layers are unpacked with their owners).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildRoutes } from '../../daemon/api/routes/build';
import { ImageService } from '../../daemon/images/service';
import { openDb, type DB } from '../../daemon/state/db';
import type { Daemon } from '../../daemon/daemon';
import { packTar } from '../fixtures/tar';
import { routeApp } from '../helpers/route-app';

const isRoot = process.getuid?.() === 0;

describe('POST /build', { skip: !isRoot && 'needs root' }, () => {
  let root: string;
  let db: DB;
  let app: FastifyInstance;
  let images: ImageService;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'berth-build-routes-'));
    db = openDb(path.join(root, 'berth.db'));
    images = new ImageService(db, root, pino({ level: 'silent' }), { imageInUse: () => [], emit: () => undefined });
    app = await routeApp((a) => buildRoutes(a, { images, config: { dataRoot: root }, log: pino({ level: 'silent' }) } as unknown as Daemon));
  });
  after(async () => {
    await app?.close();
    db?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const post = async (query: string, files: Parameters<typeof packTar>[0]) => app.inject({
    method: 'POST', url: `/v1.41/build?${query}`, payload: await packTar(files), headers: { 'content-type': 'application/x-tar' },
  });
  const lines = (body: string) => body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l));
  const buildDirs = () => readdirSync(path.join(root, 'image', 'tmp')).filter((n) => n.startsWith('build-'));

  test('errors before the stream are HTTP errors in Docker words', async () => {
    const df = { name: 'Dockerfile', content: 'FROM scratch\n' };
    const cases: [string, Parameters<typeof packTar>[0], RegExp][] = [
      ['remote=https://example.com/x.git', [df], /remote build contexts/],
      ['version=2', [df], /BuildKit/],
      ['buildargs=nope', [df], /invalid buildargs parameter/],
      ['t=Bad:Name', [df], /is not a valid repository\/tag: invalid reference format/],
      ['', [{ name: 'x', content: '' }], /^Cannot locate specified Dockerfile: Dockerfile$/],
      ['', [{ name: 'Dockerfile', content: 'FROM scratch\nBOGUS x\n' }], /^dockerfile parse error line 2: unknown instruction: BOGUS$/],
      ['', [{ name: 'Dockerfile', content: 'RUN true\n' }], /no build stage in current context/],
      ['target=nope', [df], /failed to reach build target nope/],
      ['', [df, { name: '../outside', content: 'x' }], /points outside/],
      ['', [df, { name: '/etc/absolute', content: 'x' }], /absolute path/],
      // A Dockerfile behind a symlink is read inside the context, never from the host.
      ['dockerfile=link/passwd', [{ name: 'link', type: 'symlink', linkname: '/etc' }], /Cannot locate specified Dockerfile/],
    ];
    for (const [q, files, re] of cases) {
      const r = await post(q, files);
      assert.equal(r.statusCode, 400, `${q}: ${r.body}`);
      assert.match(r.json().message, re, q);
    }
    assert.deepEqual(buildDirs(), [], 'every build directory is removed');
  });

  test('POST /build/prune: the classic builder has no cache apart from the images', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1.41/build/prune?all=1' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { CachesDeleted: null, SpaceReclaimed: 0 });
  });

  test('FROM scratch + COPY: the message stream, the image, and the cache on the second build', async () => {
    const files = [
      { name: 'Dockerfile', content: 'FROM scratch\nCOPY a.txt /files/\n' },
      { name: 'a.txt', content: 'hello\n', mode: 0o640 },
    ];
    const r = await post('t=scratchy%3A1', files);
    assert.equal(r.statusCode, 200, r.body);
    const msgs = lines(r.body);
    const id = (msgs.find((m) => m.aux) as { aux: { ID: string } }).aux.ID;
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(msgs, [
      { stream: 'Step 1/2 : FROM scratch' }, { stream: '\n' }, { stream: ' ---> \n' },
      { stream: 'Step 2/2 : COPY a.txt /files/' }, { stream: '\n' }, { stream: ` ---> ${id.slice(7, 19)}\n` },
      { aux: { ID: id } }, { stream: `Successfully built ${id.slice(7, 19)}\n` }, { stream: 'Successfully tagged scratchy:1\n' },
    ]);
    const img = images.find('scratchy:1');
    assert.equal(img.id, id);
    assert.equal(img.config.rootfs.diff_ids.length, 1);
    assert.match(img.config.history[0].created_by, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/files\/ $/);
    assert.equal(img.parent, '');

    const again = lines((await post('q=1', files)).body);
    assert.deepEqual(again, [{ stream: `${id}\n` }], 'q=1: only the id, which the cache gave');
    const fresh = lines((await post('nocache=1', files)).body);
    assert.ok(!fresh.some((m) => m.stream === ' ---> Using cache\n'));
    assert.notEqual((fresh.find((m) => m.aux) as { aux: { ID: string } }).aux.ID, id);
    assert.deepEqual(buildDirs(), []);
  });
});
