// The image service without a daemon: load (both layouts, gzip, broken and hostile archives), the list,
// inspect and history shapes per API version, tag, and Docker's rmi rules with containers faked through the
// service's hooks. Needs root (layers are unpacked for real).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ImageService, type DeleteItem, type StreamMessage } from '../../daemon/images/service';
import { openDb, type DB } from '../../daemon/state/db';
import { BerthError } from '../../daemon/errors/errors';
import { build, dockerSave, ociLayout } from '../fixtures/make-images';
import { packTar, sorted, type TarEntry } from '../fixtures/tar';

const isRoot = process.getuid?.() === 0;
type Built = Awaited<ReturnType<typeof build>>;

async function* chunks(b: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += 64 * 1024) yield b.subarray(i, i + 64 * 1024);
}

interface FakeContainer { image: string; running: boolean }

class Harness {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'berth-images-'));
  readonly db: DB = openDb(path.join(this.root, 'berth.db'));
  readonly containers = new Map<string, FakeContainer>();
  readonly events: { type: string; action: string; id: string; attrs: Record<string, string> }[] = [];
  readonly svc = new ImageService(this.db, this.root, pino({ level: 'silent' }), {
    imageInUse: (id) => [...this.containers].filter(([, c]) => c.image === id).map(([cid]) => cid),
    containerRunning: (cid) => this.containers.get(cid)?.running ?? false,
    emit: (type, action, id, attrs = {}) => this.events.push({ type, action, id, attrs }),
  });

  async load(tar: Buffer, quiet = true): Promise<StreamMessage[]> {
    const out: StreamMessage[] = [];
    await this.svc.load(chunks(tar), quiet, (m) => out.push(m));
    return out;
  }

  /** A container row, as the container service would write it (the images foreign key needs it). */
  addContainer(id: string, image: string, running: boolean): void {
    this.containers.set(id, { image, running });
    this.db.prepare('INSERT INTO containers (id, name, image_id, image_ref, created, config, host_config, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(id, `/${id.slice(0, 8)}`, image, image, '2024-01-01T00:00:00Z', '{}', '{}', '{}');
  }

  removeContainer(id: string): void {
    const c = this.containers.get(id);
    this.containers.delete(id);
    this.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
    if (c) this.svc.releaseImage(c.image);
  }

  layerDirs(): string[] {
    return readdirSync(path.join(this.root, 'overlay2')).filter((n) => !n.startsWith('del-')).sort();
  }

  ids(): string[] {
    return this.svc.list({ all: true, filters: new Map(), apiVersion: '1.50' }).map((i) => i.Id as string).sort();
  }

  close(): void {
    this.db.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}

function berthError(status: number, re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof BerthError, `expected a BerthError, got ${e}`);
    assert.equal(e.status, status, e.message);
    assert.match(e.message, re);
    return true;
  };
}

const cid = (c: string) => c.repeat(64);
const messages = (out: StreamMessage[]) => out.map((m) => m.stream).filter(Boolean).join('');

describe('image service', { skip: !isRoot && 'needs root' }, () => {
  let img: Built;
  let h: Harness;
  before(async () => {
    img = await build();
  });

  test('loads a docker-save archive, an OCI layout and a gzip-compressed archive as the same image', async () => {
    h = new Harness();
    try {
      const out = await h.load(await dockerSave([img.busybox]));
      assert.equal(messages(out), 'Loaded image: busybox:latest\n');
      assert.deepEqual(h.ids(), [img.busybox.id]);
      assert.deepEqual(h.events.map((e) => e.action), ['tag', 'load']);
      assert.equal(h.events[1].id, img.busybox.id);
      const layers = h.layerDirs();
      assert.equal(layers.length, 1);

      const oci = await h.load(await ociLayout(img.busybox));
      assert.equal(messages(oci), 'Loaded image: busybox:latest\n');
      const gz = await h.load(gzipSync(await dockerSave([img.busybox])), false);
      assert.equal(messages(gz), 'Loaded image: busybox:latest\n');
      assert.deepEqual(h.ids(), [img.busybox.id]);
      assert.deepEqual(h.layerDirs(), layers, 'the layer was unpacked once');
      assert.equal(readdirSync(path.join(h.root, 'image', 'tmp')).length, 0, 'the spool is gone');

      // Lookups: tag, name without tag, full id, bare hex, short prefix; unknown names say what was asked.
      const id = img.busybox.id;
      for (const ref of ['busybox', 'busybox:latest', 'docker.io/library/busybox:latest', id, id.slice(7), id.slice(7, 19), `sha256:${id.slice(7, 12)}`]) {
        assert.equal(h.svc.get(ref).id, id, ref);
      }
      assert.throws(() => h.svc.get('nosuch'), berthError(404, /^No such image: nosuch:latest$/));
      assert.throws(() => h.svc.get('busybox:nope'), berthError(404, /^No such image: busybox:nope$/));
      assert.throws(() => h.svc.get(`sha256:${'0'.repeat(64)}`), berthError(404, /^No such image: sha256:0{64}$/));
      assert.throws(() => h.svc.get('Bad:Ref'), berthError(400, /invalid reference format/));
      assert.equal(h.svc.lowerDirs(h.svc.get('busybox'))[0], path.join(h.root, 'overlay2', layers[0], 'diff'));
      assert.ok(existsSync(path.join(h.svc.lowerDirs(h.svc.get('busybox'))[0], 'bin', 'busybox')));
    } finally {
      h.close();
    }
  });

  test('a layered image: lower dirs topmost first, whiteout and opaque directory, history, inspect', async () => {
    h = new Harness();
    try {
      const out = await h.load(await dockerSave([img.busybox, img.layered]));
      assert.equal(messages(out), 'Loaded image: busybox:latest\nLoaded image: layered:latest\n');
      const lay = h.svc.get('layered');
      const dirs = h.svc.lowerDirs(lay);
      assert.equal(dirs.length, 3);
      assert.equal(dirs[2], h.svc.lowerDirs(h.svc.get('busybox'))[0], 'the base layer is shared');
      assert.ok(existsSync(path.join(dirs[0], 'app', 'run.sh')));
      assert.deepEqual(h.svc.familiarTags(lay.id), ['layered:latest']);

      const hist = h.svc.history('layered');
      assert.equal(hist.length, 9);
      assert.equal(hist[0].Id, lay.id);
      assert.deepEqual(hist[0].Tags, ['layered:latest']);
      assert.equal(hist[0].CreatedBy, '/bin/sh -c #(nop)  CMD ["default-arg"]');
      assert.equal(hist[1].Id, '<missing>');
      assert.equal(hist[8].Size, h.svc.get('busybox').size);
      assert.equal(hist.reduce((n, e) => n + (e.Size as number), 0), lay.size);

      const v50 = h.svc.inspect('layered', '1.50');
      assert.deepEqual(Object.keys(v50), ['Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'DockerVersion', 'Author', 'Config',
        'Architecture', 'Os', 'Size', 'GraphDriver', 'RootFS', 'Metadata']);
      assert.deepEqual(v50.Config, {
        User: 'app', Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello-from-image'],
        Entrypoint: ['/app/run.sh'], Cmd: ['default-arg'], WorkingDir: '/app', Labels: { 'org.berth.fixture': 'layered' },
      });
      assert.equal(v50.Created, '2024-01-01T00:00:02Z');
      assert.deepEqual(v50.RootFS, { Type: 'layers', Layers: img.layered.diffIds });
      const gd = v50.GraphDriver as { Name: string; Data: Record<string, string> };
      assert.equal(gd.Name, 'overlay2');
      assert.equal(gd.Data.UpperDir, dirs[0]);
      assert.equal(gd.Data.LowerDir, dirs.slice(1).join(':'));
      assert.deepEqual(v50.Metadata, { LastTagTime: '0001-01-01T00:00:00Z' }, 'docker load does not touch LastTagTime');
      const v41 = h.svc.inspect('layered', '1.41');
      assert.equal(v41.VirtualSize, v41.Size);
      assert.equal(v41.Container, '');
      const c41 = v41.Config as Record<string, unknown>;
      assert.equal(c41.Hostname, '');
      assert.equal(c41.Tty, false);
      assert.equal(c41.Image, '');
      assert.equal(c41.OnBuild, null);
      assert.ok(!('VirtualSize' in h.svc.inspect('layered', '1.44')));
      assert.ok('ContainerConfig' in h.svc.inspect('layered', '1.44'));
      assert.ok(!('ContainerConfig' in h.svc.inspect('layered', '1.45')));
    } finally {
      h.close();
    }
  });

  test('broken and hostile archives load nothing and leave nothing behind', async () => {
    h = new Harness();
    try {
      const good = await dockerSave([img.busybox]);
      const expectFail = async (tar: Buffer, re: RegExp) => {
        await assert.rejects(h.load(tar), (e: unknown) => {
          assert.match((e as Error).message, re);
          return true;
        });
        assert.deepEqual(h.ids(), []);
        assert.deepEqual(h.layerDirs(), []);
        assert.equal((h.db.prepare('SELECT COUNT(*) AS n FROM layers').get() as { n: number }).n, 0);
        assert.deepEqual(readdirSync(path.join(h.root, 'image', 'tmp')), []);
      };
      await expectFail(good.subarray(0, 1_000_000), /truncated/);
      await expectFail(Buffer.from('garbage\n'), /truncated|invalid tar header/);
      await expectFail(Buffer.alloc(0), /neither manifest.json nor index.json/);
      await expectFail(gzipSync(good).subarray(0, 300_000), /gzip|truncated/);

      // A layer whose bytes do not match the config's diff id.
      const tampered = await packTar([{ name: 'bin/', type: 'directory' }, { name: 'bin/sh', content: 'not busybox' }]);
      const swapped = await dockerSave([{ ...img.busybox, layers: [tampered] }]);
      await expectFail(swapped, /invalid diffID/);

      // A second image whose layer is hostile: the first layer of it must not stay either.
      const evil = await packTar([{ name: '../../../../escape', content: 'x' }]);
      const { createHash } = await import('node:crypto');
      const d = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
      const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [img.busybox.diffIds[0], d(evil)] } }));
      const hostile = await dockerSave([{ config: cfg, id: d(cfg), layers: [img.busybox.layers[0], evil], diffIds: [img.busybox.diffIds[0], d(evil)], repoTags: ['evil:1'] }]);
      await expectFail(hostile, /outside the layer/);

      // Bad names are refused before anything is unpacked.
      await expectFail(await dockerSave([{ ...img.busybox, repoTags: ['Bad Name'] }]), /invalid tag "Bad Name"/);
      await expectFail(await dockerSave([{ ...img.busybox, repoTags: [`busybox@sha256:${'a'.repeat(64)}`] }]), /invalid tag/);

      // Manifest and config that do not fit together.
      const mismatch = sorted([
        { name: 'c.json', content: img.busybox.config },
        { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', RepoTags: ['x:1'], Layers: [] }]) },
      ] as TarEntry[]);
      await expectFail(await packTar(mismatch), /layers length mismatch: expected 1, got 0/);
      await expectFail(await packTar([{ name: 'manifest.json', content: '{not json' }]), /invalid JSON in "manifest.json"/);
      await expectFail(await packTar([{ name: 'repositories', content: '{}' }]), /pre-1.10/);
    } finally {
      h.close();
    }
  });

  test('tag, and rmi: untag vs delete, conflicts with containers, force', async () => {
    h = new Harness();
    try {
      await h.load(await dockerSave([img.busybox, img.layered]));
      const bb = img.busybox.id;
      const short = bb.slice(7, 19);
      h.svc.tag('busybox', 'docker.io/library/doc-tag', 'v1');
      h.svc.tag('busybox', 'localhost:5000/doc/tag', 'v3');
      h.svc.tag('busybox', 'imported:9', '');
      assert.deepEqual(h.svc.familiarTags(bb), ['busybox:latest', 'doc-tag:v1', 'imported:9', 'localhost:5000/doc/tag:v3']);
      assert.notEqual(h.svc.get(bb).lastTagTime, '0001-01-01T00:00:00Z');
      assert.deepEqual(h.events.slice(-3).map((e) => [e.action, e.attrs.name]), [['tag', 'doc-tag:v1'], ['tag', 'localhost:5000/doc/tag:v3'], ['tag', 'imported:9']]);
      assert.throws(() => h.svc.tag('nosuch', 'x', 'y'), berthError(404, /No such image: nosuch:latest/));
      assert.throws(() => h.svc.tag('busybox', 'x', 'bad tag'), berthError(400, /invalid tag format/));
      assert.throws(() => h.svc.tag('busybox', 'Upper', 'y'), berthError(400, /must be lowercase/));
      assert.throws(() => h.svc.tag('busybox', `x@sha256:${'a'.repeat(64)}`, ''), berthError(400, /cannot tag with a digest/));

      // One of several tags: only untagged.
      assert.deepEqual(h.svc.remove('doc-tag:v1', false, true), [{ Untagged: 'doc-tag:v1' }]);
      assert.deepEqual(h.svc.remove('localhost:5000/doc/tag:v3', false, true), [{ Untagged: 'localhost:5000/doc/tag:v3' }]);
      // By id with several tags: must be forced.
      assert.throws(() => h.svc.remove(short, false, true), berthError(409, new RegExp(`^conflict: unable to delete ${short} \\(must be forced\\) - image is referenced in multiple repositories$`)));
      assert.throws(() => h.svc.remove('nosuch:1', false, true), berthError(404, /^No such image: nosuch:1$/));

      // A stopped container uses busybox: one of its two tags just goes (as in Docker), the last is refused.
      h.addContainer(cid('c'), bb, false);
      assert.deepEqual(h.svc.remove('imported:9', false, true), [{ Untagged: 'imported:9' }]);
      assert.throws(() => h.svc.remove('busybox', false, true),
        berthError(409, new RegExp(`^conflict: unable to remove repository reference "busybox" \\(must force\\) - container cccccccccccc is using its referenced image ${short}$`)));
      // Running now: by id even force is refused; by name force only untags.
      h.containers.get(cid('c'))!.running = true;
      assert.throws(() => h.svc.remove(bb, true, true), berthError(409, new RegExp(`^conflict: unable to delete ${short} \\(cannot be forced\\) - image is being used by running container cccccccccccc$`)));
      assert.deepEqual(h.svc.remove('busybox', true, true), [{ Untagged: 'busybox:latest' }]);
      assert.deepEqual(h.ids(), [img.busybox.id, img.layered.id].sort(), 'the image stays, untagged');
      const dangling = h.svc.list({ all: false, filters: new Map([['dangling', ['true']]]), apiVersion: '1.41' });
      assert.deepEqual(dangling.map((i) => [i.Id, i.RepoTags, i.RepoDigests]), [[bb, ['<none>:<none>'], ['<none>@<none>']]]);
      const d50 = h.svc.list({ all: false, filters: new Map([['dangling', ['true']]]), apiVersion: '1.50' });
      assert.deepEqual(d50.map((i) => [i.RepoTags, i.RepoDigests]), [[[], []]]);

      // Stopped again, forced by id: Docker deletes it; berth hides the row while the container exists.
      h.containers.get(cid('c'))!.running = false;
      assert.throws(() => h.svc.remove(bb, false, true), berthError(409, /\(must be forced\) - image is being used by stopped container cccccccccccc$/));
      const before = h.layerDirs();
      assert.deepEqual(h.svc.remove(bb, true, true), [{ Deleted: bb }]);
      assert.deepEqual(h.ids(), [img.layered.id]);
      assert.throws(() => h.svc.find(bb), berthError(404, /No such image/));
      assert.equal(h.svc.get(bb).id, bb, 'the container can still reach its image by id');
      assert.equal(h.svc.count(), 1);
      assert.deepEqual(h.layerDirs(), before, 'its layers stay for the container');
      h.removeContainer(cid('c'));
      assert.throws(() => h.svc.get(bb), berthError(404, /No such image/));

      // Removing layered removes its two own layers, not the base it shared with busybox... which is gone
      // now too, so all three go.
      const res = h.svc.remove('layered', false, true);
      assert.deepEqual(res.slice(0, 2), [{ Untagged: 'layered:latest' }, { Deleted: img.layered.id }]);
      assert.equal(res.filter((r: DeleteItem) => 'Deleted' in r).length, 4, 'the image and three layers');
      assert.deepEqual(h.ids(), []);
      await waitFor(() => h.layerDirs().length === 0);
      assert.deepEqual(h.events.filter((e) => e.action === 'delete').map((e) => e.id), [bb, img.layered.id]);
    } finally {
      h.close();
    }
  });

  test('a removed layer shared with another image stays', async () => {
    h = new Harness();
    try {
      await h.load(await dockerSave([img.busybox, img.layered]));
      const res = h.svc.remove('layered', false, true);
      assert.equal(res.filter((r) => 'Deleted' in r).length, 3, 'the image and its two own layers');
      assert.equal(h.layerDirs().length, 1);
      assert.ok(existsSync(path.join(h.svc.lowerDirs(h.svc.get('busybox'))[0], 'bin', 'busybox')));
      // Loading over an existing tag moves it and says so.
      h.svc.tag('busybox', 'layered', 'latest');
      const out = await h.load(await dockerSave([img.layered]));
      assert.match(messages(out), new RegExp(`^The image layered:latest already exists, renaming the old one with ID ${img.busybox.id} to empty string\nLoaded image: layered:latest\n$`));
    } finally {
      h.close();
    }
  });

  test('list: filters, shapes per version, sort order; prune', async () => {
    h = new Harness();
    try {
      await h.load(await dockerSave([img.busybox, img.layered]));
      h.svc.tag('busybox', '127.0.0.1:5000/busybox', 'latest');
      const list = (f: Record<string, string[]> = {}, v = '1.50', all = false) => h.svc.list({ all, filters: new Map(Object.entries(f)), apiVersion: v });
      const all = list();
      assert.deepEqual(all.map((i) => i.Id), [img.layered.id, img.busybox.id], 'newest first');
      assert.deepEqual(Object.keys(all[0]), ['Containers', 'Created', 'Id', 'Labels', 'ParentId', 'RepoDigests', 'RepoTags', 'SharedSize', 'Size']);
      assert.deepEqual(all[1].RepoTags, ['127.0.0.1:5000/busybox:latest', 'busybox:latest']);
      assert.deepEqual(all[1].RepoDigests, []);
      assert.equal(all[1].Labels, null);
      assert.deepEqual(all[0].Labels, { 'org.berth.fixture': 'layered' });
      assert.equal(all[0].Created, Date.parse('2024-01-01T00:00:02Z') / 1000);
      assert.equal(all[0].Containers, -1);
      const v41 = list({}, '1.41');
      assert.equal(v41[1].VirtualSize, v41[1].Size);
      assert.equal(v41[1].RepoDigests, null);
      assert.deepEqual(list({ reference: ['busybox*'] }).map((i) => i.RepoTags), [['busybox:latest']], 'only matching tags are shown');
      assert.deepEqual(list({ reference: ['127.0.0.1:5000/*'] }).map((i) => i.RepoTags), [['127.0.0.1:5000/busybox:latest']]);
      assert.deepEqual(list({ label: ['org.berth.fixture=layered'] }).map((i) => i.Id), [img.layered.id]);
      assert.deepEqual(list({ label: ['org.berth.fixture'] }).map((i) => i.Id), [img.layered.id]);
      assert.deepEqual(list({ before: ['layered'] }).map((i) => i.Id), [img.busybox.id]);
      assert.deepEqual(list({ since: ['busybox'] }).map((i) => i.Id), [img.layered.id]);
      assert.deepEqual(list({ dangling: ['true'] }), []);
      assert.equal(list({ dangling: ['false'] }).length, 2);
      assert.throws(() => list({ nosuch: ['x'] }), berthError(400, /^invalid filter 'nosuch'$/));
      assert.throws(() => list({ dangling: ['maybe'] }), berthError(400, /invalid filter 'dangling=maybe'/));
      assert.throws(() => list({ before: ['nosuch'] }), berthError(404, /No such image/));

      // prune: nothing dangling; then an untagged image goes, a used one stays.
      assert.deepEqual(h.svc.prune(new Map()), { ImagesDeleted: null, SpaceReclaimed: 0 });
      h.svc.remove('layered', false, true);
      await h.load(await dockerSave([{ ...img.layered, repoTags: [] }]));
      assert.equal(list({ dangling: ['true'] }).length, 1);
      const p = h.svc.prune(new Map());
      assert.deepEqual(p.ImagesDeleted?.[0], { Deleted: img.layered.id });
      assert.ok(p.SpaceReclaimed > 0);
      assert.deepEqual(h.ids(), [img.busybox.id]);
      h.addContainer(cid('d'), img.busybox.id, false);
      assert.deepEqual(h.svc.prune(new Map([['dangling', ['false']]])).ImagesDeleted, null, 'an image a container uses is kept');
      h.removeContainer(cid('d'));
      assert.equal(h.svc.prune(new Map([['dangling', ['false']]])).ImagesDeleted?.length, 4, 'two untags, the image and its layer');
    } finally {
      h.close();
    }
  });

  test('cleanup after a crash: spool and half-unpacked layers go; a recent layer without an image stays for a retry, until prune', async () => {
    h = new Harness();
    try {
      await h.load(await dockerSave([img.busybox]));
      const { mkdirSync } = await import('node:fs');
      mkdirSync(path.join(h.root, 'image', 'tmp', 'load-deadbeef'), { recursive: true });
      mkdirSync(path.join(h.root, 'overlay2', `tmp-${'9'.repeat(64)}`, 'diff'), { recursive: true });
      // A layer committed by a load that died before its image row.
      const lonely = await packTar([{ name: 'x', content: 'x' }]);
      const { createHash } = await import('node:crypto');
      await h.svc.layers.create(null, chunks(lonely), `sha256:${createHash('sha256').update(lonely).digest('hex')}`);
      assert.equal(h.layerDirs().length, 3);
      await h.svc.cleanup();
      await waitFor(() => h.layerDirs().length === 2);
      assert.ok(!existsSync(path.join(h.root, 'image', 'tmp')));
      assert.deepEqual(h.ids(), [img.busybox.id]);
      h.svc.prune(new Map());
      await waitFor(() => h.layerDirs().length === 1);
      assert.deepEqual(h.ids(), [img.busybox.id]);
    } finally {
      h.close();
    }
  });

});

async function waitFor(fn: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
