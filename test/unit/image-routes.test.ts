// The /images routes through fastify's inject, with the real image service on a temporary data root:
// wildcard dispatch of names with slashes and colons, status codes and Docker's error bodies, and the JSON
// streams of load and pull. Needs root (a load unpacks layers).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { imageRoutes } from '../../daemon/api/routes/images';
import { ImageService } from '../../daemon/images/service';
import { openDb, type DB } from '../../daemon/state/db';
import type { Daemon } from '../../daemon/daemon';
import { build, dockerSave } from '../fixtures/make-images';
import { routeApp } from '../helpers/route-app';

const isRoot = process.getuid?.() === 0;

describe('/images routes', { skip: !isRoot && 'needs root' }, () => {
  let root: string;
  let db: DB;
  let app: FastifyInstance;
  let busyboxTar: Buffer;
  let busyboxId: string;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'berth-image-routes-'));
    db = openDb(path.join(root, 'berth.db'));
    const images = new ImageService(db, root, pino({ level: 'silent' }), { imageInUse: () => [], emit: () => undefined });
    const config = { dataRoot: root, insecureRegistries: [], registryMirrors: [], maxConcurrentDownloads: 3, maxConcurrentUploads: 5 };
    app = await routeApp((a) => imageRoutes(a, { images, config, log: pino({ level: 'silent' }) } as unknown as Daemon),
      { maxParamLength: 2048, ignoreTrailingSlash: true });
    const img = await build();
    busyboxTar = await dockerSave([img.busybox]);
    busyboxId = img.busybox.id;
  });
  after(async () => {
    await app?.close();
    db?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const lines = (body: string) => body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l));

  test('load streams JSON messages; a body that is not an archive ends the stream with errorDetail', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1.50/images/load?quiet=1', payload: busyboxTar, headers: { 'content-type': 'application/x-tar' } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(lines(r.body), [{ stream: 'Loaded image: busybox:latest\n' }]);
    // docker-py sends no Content-Type at all.
    const bare = await app.inject({ method: 'POST', url: '/images/load', payload: busyboxTar });
    assert.equal(bare.statusCode, 200);
    assert.equal(lines(bare.body).at(-1).stream, 'Loaded image: busybox:latest\n');
    const bad = await app.inject({ method: 'POST', url: '/images/load', payload: Buffer.from('garbage\n'), headers: { 'content-type': 'application/x-tar' } });
    // As Docker's load answers it (moby writes every load error into the stream): a 200 whose last
    // message is the errorDetail (docker-py raises ImageLoadError, the CLI prints it and exits 1).
    assert.equal(bad.statusCode, 200);
    assert.match(lines(bad.body).at(-1).errorDetail.message, /truncated|invalid tar header/);
  });

  test('names with registries, ports, slashes and tags reach the right handler', async () => {
    const tag = await app.inject({ method: 'POST', url: '/v1.50/images/busybox/tag?repo=localhost%3A5000%2Fdoc%2Ftag&tag=v3' });
    assert.equal(tag.statusCode, 201);
    assert.equal(tag.body, '');
    const inspect = await app.inject({ method: 'GET', url: '/v1.50/images/localhost:5000/doc/tag:v3/json' });
    assert.equal(inspect.statusCode, 200, inspect.body);
    assert.equal(inspect.json().Id, busyboxId);
    const full = await app.inject({ method: 'GET', url: `/images/docker.io/library/busybox:latest/json` });
    assert.equal(full.json().Id, busyboxId);
    const hist = await app.inject({ method: 'GET', url: '/images/localhost:5000/doc/tag:v3/history' });
    assert.equal(hist.statusCode, 200);
    assert.equal(hist.json()[0].Id, busyboxId);
    const del = await app.inject({ method: 'DELETE', url: '/v1.50/images/localhost:5000/doc/tag:v3' });
    assert.equal(del.statusCode, 200);
    assert.deepEqual(del.json(), [{ Untagged: 'localhost:5000/doc/tag:v3' }]);
    const list = await app.inject({ method: 'GET', url: '/v1.41/images/json' });
    assert.deepEqual(list.json().map((i: { RepoTags: string[] }) => i.RepoTags), [['busybox:latest']]);
  });

  test('errors: Docker\'s status codes and {"message"} bodies', async () => {
    const cases: [string, string, number, RegExp][] = [
      ['GET', '/images/nosuch/json', 404, /^No such image: nosuch:latest$/],
      ['GET', '/images/Bad/json', 400, /^invalid reference format: repository name \(library\/Bad\) must be lowercase$/],
      ['GET', '/images/busybox/nosuchverb', 404, /^page not found$/],
      ['DELETE', '/images/nosuch:1', 404, /^No such image: nosuch:1$/],
      ['POST', '/images/busybox/tag?repo=x&tag=bad%20tag', 400, /^invalid tag format$/],
      ['POST', '/images/nosuch/tag?repo=x&tag=1', 404, /^No such image: nosuch:latest$/],
      ['POST', '/images/create?fromSrc=-&repo=x', 400, /the archive to import is empty/],
      ['POST', '/images/create?fromImage=Bad', 400, /must be lowercase/],
      ['GET', '/images/json?filters=%7B%22nosuch%22%3A%7B%22x%22%3Atrue%7D%7D', 400, /^invalid filter 'nosuch'$/],
    ];
    for (const [method, url, status, re] of cases) {
      const r = await app.inject({ method: method as 'GET', url });
      assert.equal(r.statusCode, status, `${method} ${url}: ${r.body}`);
      assert.equal(r.headers['content-type'], 'application/json', `${method} ${url}`);
      assert.match(r.json().message, re, `${method} ${url}`);
    }
  });

  test('pull from a registry that cannot be reached: an HTTP error naming the image, before any stream', async () => {
    // Port 1 on loopback: nothing listens, so the connection is refused at once.
    const r = await app.inject({ method: 'POST', url: '/images/create?fromImage=127.0.0.1%3A1%2Fx&tag=1.36', headers: { 'X-Registry-Auth': 'e30=' } });
    assert.equal(r.statusCode, 500, r.body);
    assert.match(r.json().message, /^failed to resolve reference "127\.0\.0\.1:1\/x:1\.36": /);
  });

  test('push of a tag that does not exist locally: the stream names the repository, then the error', async () => {
    const r = await app.inject({ method: 'POST', url: '/images/127.0.0.1:1/nosuch/push?tag=1' });
    assert.equal(r.statusCode, 200);
    const m = lines(r.body);
    assert.deepEqual(m[0], { status: 'The push refers to repository [127.0.0.1:1/nosuch]' });
    assert.equal(m[1].errorDetail.message, 'An image does not exist locally with the tag: 127.0.0.1:1/nosuch');
  });
});
