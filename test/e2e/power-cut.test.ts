// A power cut right after layers were committed: berthd's data root is an ext4 file system on a loop device;
// berthd dies at load.before-image-row (every layer of the load committed: files, then row); the loop
// device's backing file is copied at once, which is what the disk holds at that moment (what the page cache
// has not written back is not in it); a second berthd on that copy (journal and WAL replayed as after a power
// cut) must find every committed layer whole: the same load reuses them, `docker save` re-hashes their files
// against their diff ids, and a container runs from them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, FIXTURES, type Berthd } from '../helpers/berthd';
import { show } from '../helpers/clients';

const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-powercut-'));
const mounted: string[] = [];
const daemons: Berthd[] = [];

function mountImage(img: string, at: string): void {
  mkdirSync(at, { recursive: true });
  execFileSync('mount', ['-o', 'loop', img, at]);
  mounted.push(at);
}

after(async () => {
  for (const d of daemons) await d.destroy().catch(() => {});
  for (const m of mounted.reverse()) {
    try { execFileSync('umount', [m]); } catch { try { execFileSync('umount', ['-l', m]); } catch { /* gone */ } }
  }
  rmSync(dir, { recursive: true, force: true });
});

test('layers committed before a power cut are whole on the disk: reused, re-hashed by save, run', async () => {
  const img = path.join(dir, 'disk.img');
  execFileSync('truncate', ['-s', '768M', img]);
  execFileSync('mkfs.ext4', ['-q', '-F', img]);
  const root1 = path.join(dir, 'm1');
  mountImage(img, root1);
  const a = await startBerthd({ dataRoot: path.join(root1, 'data'), env: { BERTH_CRASH_AT: 'load.before-image-row' } });
  daemons.push(a);
  const r = await a.docker(['load', '-i', path.join(FIXTURES, 'busybox.tar')]);
  for (let i = 0; i < 400 && a.proc.exitCode === null && a.proc.signalCode === null; i++) await new Promise((res) => setTimeout(res, 10));
  // The disk as it is now: written-back blocks only.
  const snap = path.join(dir, 'snap.img');
  execFileSync('cp', ['--sparse=always', img, snap]);
  assert.equal(a.proc.signalCode, 'SIGKILL', `berthd died at the crash point; load gave ${show(r)}`);
  assert.match(readFileSync(path.join(a.root, 'berthd.log'), 'utf8'), /crash point load\.before-image-row/);

  const root2 = path.join(dir, 'm2');
  mountImage(snap, root2);
  const data2 = path.join(root2, 'data');
  assert.ok(existsSync(path.join(data2, 'berth.db')), 'the state database reached the disk');
  const b = await startBerthd({ dataRoot: data2 });
  daemons.push(b);
  const ok = async (...args: string[]) => {
    const res = await b.docker(args, { timeoutMs: 60000 });
    assert.equal(res.code, 0, `docker ${args.join(' ')}\n${show(res)}`);
    return res.stdout;
  };
  const log = () => readFileSync(path.join(b.root, 'berthd.log'), 'utf8');
  assert.doesNotMatch(log(), /layer directory is missing/);
  await ok('load', '-i', path.join(FIXTURES, 'busybox.tar'));
  // save reassembles each layer's tar from its files and checks it against the diff id.
  await ok('save', '-o', path.join(dir, 'saved.tar'), 'busybox');
  assert.equal((await ok('run', '--rm', 'busybox', 'echo', 'whole')).trim(), 'whole');
});
