// The log reader (daemon/logs/reader.ts, rotation.ts) against files rotated under it as the shim rotates
// them (addon/shim/jsonlog.cc: FILE.(n-1) → FILE.n from the top down, FILE → FILE.1, a new FILE; with
// compress FILE.1 → FILE.1.gz, FILE.1 removed once the copy is whole). A follower paused by a slow client
// while many rotations happen, entry times that repeat or go back at a rotation, files deleted before the
// follower reached them, a writer rotating in another thread while the reader's event loop is held up:
// every line comes once and in order while its file exists, and no descriptor is left open.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, readlinkSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Worker } from 'node:worker_threads';
import { streamLogs, type LogOptions } from '../../daemon/logs/reader';
import { rfc3339Fixed9 } from '../../daemon/lib/time';

const root = mkdtempSync(path.join(os.tmpdir(), 'berth-log-follow-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** Descriptors open on the log files (node's own, such as its inotify descriptor, are not counted). */
const fdCount = () => readdirSync('/proc/self/fd').filter((fd) => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith(root);
  } catch {
    return false;
  }
}).length;

/** The shim's rotation, step by step, in this thread; `clock` gives each entry's time. */
class Writer {
  readonly file: string;
  private fd: number;
  private size = 0;
  private n = 0;
  private pendingGz: string | null = null;
  clock = BigInt(Date.now()) * 1_000_000n;
  /** Called at each rotation, before the new file's first entry is timed. */
  onRotate: (() => void) | null = null;

  constructor(readonly maxSize: number, readonly maxFile: number, readonly compress: boolean) {
    const dir = path.join(root, `w${dirs++}`);
    mkdirSync(dir);
    this.file = path.join(dir, 'c-json.log');
    this.fd = openSync(this.file, 'a');
  }

  /** Entry n: "entry n\n", its time 1 µs after the last unless the clock was moved. */
  line(): void {
    const len = `{"log":"entry ${this.n}\\n","stream":"stdout","time":"${rfc3339Fixed9(this.clock)}"}\n`.length;
    if (this.size > 0 && this.size + len > this.maxSize) {
      this.rotate();
      this.onRotate?.();
    }
    this.clock += 1000n;
    const e = `{"log":"entry ${this.n++}\\n","stream":"stdout","time":"${rfc3339Fixed9(this.clock)}"}\n`;
    writeSync(this.fd, e);
    this.size += e.length;
  }

  lines(k: number): void {
    for (let i = 0; i < k; i++) this.line();
  }

  get written(): number {
    return this.n;
  }

  /** Ends the compression the last rotation began: the .gz written whole, then the plain file removed. */
  finishGz(): void {
    if (!this.pendingGz) return;
    const src = this.pendingGz;
    this.pendingGz = null;
    writeFileSync(`${src}.gz`, zlib.gzipSync(readFileSync(src)));
    unlinkSync(src);
  }

  private rotate(): void {
    this.finishGz();
    const ext = this.compress ? '.gz' : '';
    for (let i = this.maxFile - 1; i >= 2; i--) {
      try {
        renameSync(`${this.file}.${i - 1}${ext}`, `${this.file}.${i}${ext}`);
      } catch { /* a missing older file is normal */ }
    }
    renameSync(this.file, `${this.file}.1`);
    closeSync(this.fd);
    this.fd = openSync(this.file, 'a');
    this.size = 0;
    if (this.compress) {
      // As the shim's thread: the copy exists, partly written, beside FILE.1 for a while.
      this.pendingGz = `${this.file}.1`;
      writeFileSync(`${this.file}.1.gz`, zlib.gzipSync(readFileSync(this.pendingGz)).subarray(0, 10));
    }
  }

  close(): void {
    this.finishGz();
    closeSync(this.fd);
  }
}

const opts = (o: Partial<LogOptions> = {}): LogOptions =>
  ({ stdout: true, stderr: true, follow: true, timestamps: false, tail: -1, sinceNs: 0n, untilNs: 0n, ...o });

// A test that fails while its follower is held must not leave that follower polling forever.
const followers: Array<{ release(): void; stop(): void }> = [];
after(() => {
  for (const f of followers) {
    f.release();
    f.stop();
  }
});

/** A follower whose client takes nothing while `hold` is set: it is paused in the middle of a write. */
function follower(w: Writer, o: LogOptions = opts()) {
  const out: Buffer[] = [];
  let running = true;
  let gate: (() => void) | null = null;
  let holding = false;
  let wrote = 0;
  const done = streamLogs(w.file, o, true, async (b) => {
    out.push(b);
    wrote++;
    if (holding) await new Promise<void>((r) => { gate = r; });
  }, () => running, () => false, () => {});
  const handle = {
    done,
    hold() { holding = true; },
    /** Resolves once the follower is held in a write. */
    async held() {
      for (let i = 0; i < 400 && !gate; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(gate, 'the follower wrote nothing');
    },
    async wrote(n: number) {
      for (let i = 0; i < 400 && wrote < n; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(wrote >= n, 'the follower wrote nothing');
    },
    release() { holding = false; const g = gate; gate = null; g?.(); },
    stop() { running = false; },
    writes: () => wrote,
    numbers: () => Buffer.concat(out).toString().split('\n').slice(0, -1).map((l) => Number(/^entry (\d+)$/.exec(l)?.[1] ?? NaN)),
  };
  followers.push(handle);
  return handle;
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);

for (const compress of [false, true]) {
  test(`-f keeps its place across 40 rotations made while its client took nothing${compress ? ' (compress)' : ''}`, async () => {
    const fds = fdCount();
    const w = new Writer(2048, 99, compress);
    w.lines(30); // one rotation already
    const f = follower(w);
    await f.wrote(1); // what there was
    f.hold();
    w.lines(5);
    await f.held();
    // While it is stuck: 40 rotations, with entry times as clocks make them at their worst: one rotation
    // where the next file begins at the same nanosecond as the last one ended, then the clock set back a second.
    let rotations = 0;
    w.onRotate = () => {
      rotations++;
      if (rotations === 5) w.clock -= 1000n; // the new file's first entry has the old one's last time
      if (rotations === 9) w.clock -= 1_000_000_000n; // the clock set back at a rotation
      if (rotations % 7 === 0) w.finishGz();
    };
    w.lines(40 * 27);
    w.onRotate = null;
    assert.ok(rotations >= 40);
    f.release();
    w.lines(100);
    w.close();
    await new Promise((r) => setTimeout(r, 300));
    f.stop();
    await f.done;
    assert.deepEqual(f.numbers(), upTo(w.written));
    assert.equal(fdCount(), fds, 'every descriptor the reader opened is closed');
  });
}

for (const compress of [false, true]) {
  test(`-f with max-file 3: files deleted before it reached them are skipped, every other line comes once, in order${compress ? ' (compress)' : ''}`, async () => {
    const fds = fdCount();
    const w = new Writer(2048, 3, compress);
    w.lines(10);
    const f = follower(w);
    await f.wrote(1);
    f.hold();
    w.lines(5);
    await f.held();
    w.lines(40 * 20); // some 40 rotations: all but the newest files are gone
    f.release();
    w.lines(50);
    w.close();
    await new Promise((r) => setTimeout(r, 300));
    f.stop();
    await f.done;
    const got = f.numbers();
    for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `line ${got[i]} after ${got[i - 1]}`);
    assert.deepEqual(got.slice(0, 15), upTo(15), 'the file it was reading is read to its end');
    assert.equal(got[got.length - 1], w.written - 1);
    // What follows the gap is everything from the oldest file that still existed when it looked.
    const rest = got.slice(got.findIndex((n, i) => i > 0 && n !== got[i - 1] + 1));
    assert.deepEqual(rest, Array.from({ length: rest.length }, (_, i) => rest[0] + i));
    assert.ok(rest.length >= 50 && rest.length < 3 * 30 + 50, `${rest.length} lines after the gap`);
    assert.equal(fdCount(), fds);
  });
}

/** A writer in another thread, rotating as fast as it can (as the shim does in its own process). */
function racingWriter(file: string, lines: number, maxFile: number, ready: Int32Array): Worker {
  const code = `
    const fs = require('node:fs');
    const { workerData: w } = require('node:worker_threads');
    let fd = fs.openSync(w.file, 'a');
    let size = 0;
    let t = BigInt(Date.now()) * 1000000n;
    Atomics.wait(new Int32Array(w.ready), 0, 0);
    for (let i = 0; i < w.lines; i++) {
      t += 1000n;
      const s = new Date(Number(t / 1000000n)).toISOString().slice(0, 19) + '.' + String(t % 1000000000n).padStart(9, '0') + 'Z';
      const e = '{"log":"entry ' + i + '\\\\n","stream":"stdout","time":"' + s + '"}\\n';
      if (size > 0 && size + e.length > 2048) {
        for (let k = w.maxFile - 1; k >= 2; k--) { try { fs.renameSync(w.file + '.' + (k - 1), w.file + '.' + k); } catch {} }
        fs.renameSync(w.file, w.file + '.1');
        fs.closeSync(fd);
        fd = fs.openSync(w.file, 'a');
        size = 0;
      }
      fs.writeSync(fd, e);
      size += e.length;
      const until = process.hrtime.bigint() + 30000n;
      while (process.hrtime.bigint() < until);
    }
    fs.closeSync(fd);`;
  return new Worker(code, { eval: true, workerData: { file, lines, maxFile, ready: ready.buffer } });
}

test('a writer rotating in another thread while the reader\'s event loop is held up: -f and a plain read miss nothing', async () => {
  const fds = fdCount();
  for (let round = 0; round < 3; round++) {
    const dir = path.join(root, `race${round}`);
    mkdirSync(dir);
    const file = path.join(dir, 'c-json.log');
    writeFileSync(file, '');
    const ready = new Int32Array(new SharedArrayBuffer(4));
    const worker = racingWriter(file, 2400, 99, ready);
    let finished = false;
    const exited = new Promise<void>((r) => worker.on('exit', () => { finished = true; r(); }));
    const out: Buffer[] = [];
    const done = streamLogs(file, opts(), true, (b) => { out.push(b); }, () => !finished, () => false, () => {});
    // The event loop stalls for 8 ms at a time (a loaded daemon): a rotation now often falls between a
    // look at the directory and what the reader does with it.
    const stall = setInterval(() => { const e = Date.now() + 8; while (Date.now() < e); }, 12);
    Atomics.store(ready, 0, 1);
    Atomics.notify(ready, 0);
    // Plain reads while it rotates: each is a run of consecutive entries from the first.
    const plain: number[][] = [];
    for (let k = 0; k < 3; k++) {
      await new Promise((r) => setTimeout(r, 15));
      const o: Buffer[] = [];
      await streamLogs(file, opts({ follow: false }), true, (b) => { o.push(b); }, () => true, () => false);
      plain.push(Buffer.concat(o).toString().split('\n').slice(0, -1).map((l) => Number(l.split(' ')[1])));
    }
    await exited;
    await done;
    clearInterval(stall);
    const got = Buffer.concat(out).toString().split('\n').slice(0, -1).map((l) => Number(l.split(' ')[1]));
    const gaps = got.map((n, i) => [i === 0 ? -1 : got[i - 1], n]).filter(([a, n]) => n !== a + 1);
    assert.deepEqual(gaps, [], `round ${round}: ${got.length} lines`);
    assert.equal(got.length, 2400);
    for (const p of plain) assert.deepEqual(p, upTo(p.length));
  }
  assert.equal(fdCount(), fds);
});

test('--tail and --since with -f start in a rotated file and go on across rotations', async () => {
  const w = new Writer(2048, 99, true);
  w.lines(200);
  const times: bigint[] = [];
  const start = w.clock;
  for (let i = 0; i < 200; i++) times.push(start - BigInt(199 - i) * 1000n);
  const tailF = follower(w, opts({ tail: 75 }));
  const sinceF = follower(w, opts({ sinceNs: times[150] }));
  await new Promise((r) => setTimeout(r, 100));
  w.lines(300);
  w.close();
  await new Promise((r) => setTimeout(r, 300));
  tailF.stop();
  sinceF.stop();
  await Promise.all([tailF.done, sinceF.done]);
  assert.deepEqual(tailF.numbers(), upTo(500).slice(125));
  assert.deepEqual(sinceF.numbers(), upTo(500).slice(150));
  assert.ok(existsSync(`${w.file}.2.gz`));
});

test('a rotation cut short (the shim killed between two renames) leaves a hole that neither a read nor -f trips on', async () => {
  const fds = fdCount();
  const w = new Writer(2048, 99, false);
  w.lines(30);
  const f = follower(w);
  await f.wrote(1);
  f.hold();
  w.lines(5);
  await f.held();
  w.lines(27 * 4);
  // The shim began a rotation and died after the first two renames: FILE.(top-1) is missing from now on,
  // and the next shim's rotations skip the hole as "a missing older file" and carry it upwards.
  const top = Math.max(...readdirSync(path.dirname(w.file)).map((e) => Number(/\.(\d+)$/.exec(e)?.[1] ?? 0)));
  renameSync(`${w.file}.${top}`, `${w.file}.${top + 1}`);
  renameSync(`${w.file}.${top - 1}`, `${w.file}.${top}`);
  w.lines(27 * 3);
  const t0 = Date.now();
  const o: Buffer[] = [];
  await streamLogs(w.file, opts({ follow: false }), true, (b) => { o.push(b); }, () => true, () => false);
  assert.ok(Date.now() - t0 < 1000, 'a plain read does not wait for the hole to fill');
  const all = Buffer.concat(o).toString().split('\n').slice(0, -1).map((l) => Number(l.split(' ')[1]));
  assert.deepEqual(all, upTo(w.written));
  f.release();
  w.lines(10);
  w.close();
  await new Promise((r) => setTimeout(r, 300));
  f.stop();
  await f.done;
  assert.deepEqual(f.numbers(), upTo(w.written));
  assert.equal(fdCount(), fds);
});
