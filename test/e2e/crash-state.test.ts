// The state database and the crash windows around it: a damaged database stops berthd at start with a message
// that says what to do (never an empty state that forgets every container), and the same data, restored,
// brings everything back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, openSync, writeSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { alive, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok } = dockerCli(() => b);

test('a damaged state database makes berthd refuse to start, and the restored one brings every container back', async () => {
  await ok('run', '-d', '--name', 'db-keep', 'busybox', 'sleep', '1000');
  await ok('create', '--name', 'db-created', 'busybox', 'true');
  const pid = Number((await ok('inspect', '--format', '{{.State.Pid}}', 'db-keep')).trim());
  await b.stop();
  const db = path.join(b.dataRoot, 'berth.db');
  const files = [db, `${db}-wal`, `${db}-shm`].filter((f) => existsSync(f));
  for (const f of files) copyFileSync(f, `${f}.test-backup`);
  try {
    rmSync(`${db}-wal`, { force: true });
    rmSync(`${db}-shm`, { force: true });
    // Overwrite every page after the header with garbage: the b-trees are gone.
    const fd = openSync(db, 'r+');
    const size = statSync(db).size;
    const junk = Buffer.alloc(4096, 0xa5);
    for (let off = 4096; off < size; off += 4096) writeSync(fd, junk, 0, Math.min(4096, size - off), off);
    closeSync(fd);
    const damaged = readFileSync(db);
    await assert.rejects(b.restart(), (e: Error) => {
      assert.match(e.message, /exited with 1/);
      assert.match(e.message, /state database .* is damaged or unreadable/);
      assert.match(e.message, /Restore it from a backup/);
      return true;
    });
    assert.deepEqual(readFileSync(db), damaged, 'berthd left the damaged file as it was');
    assert.equal(alive(pid), true, 'the container kept running');
  } finally {
    rmSync(`${db}-wal`, { force: true });
    rmSync(`${db}-shm`, { force: true });
    for (const f of files) {
      copyFileSync(`${f}.test-backup`, f);
      rmSync(`${f}.test-backup`, { force: true });
    }
  }
  await b.restart();
  assert.equal((await ok('inspect', '--format', '{{.State.Status}} {{.State.Pid}}', 'db-keep')).trim(), `running ${pid}`);
  assert.equal((await ok('inspect', '--format', '{{.State.Status}}', 'db-created')).trim(), 'created');
  await ok('rm', '-f', 'db-keep', 'db-created');
});
