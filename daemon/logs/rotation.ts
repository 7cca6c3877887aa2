// Finding a log's files while the shim rotates them under the reader.
//
// The shim (addon/shim/jsonlog.cc) rotates by renaming FILE.(n-1) → FILE.n from the highest number down,
// then FILE → FILE.1, then making a new FILE; the rename onto the highest number deletes the oldest file.
// With compress, FILE.1 is gzipped into FILE.1.gz (same entries, another inode) and then removed, before
// the next rotation. "Position" n below is FILE (0), or FILE.n / FILE.n.gz. So a file only ever moves up,
// by one position per rotation, until it is deleted at the top, and two facts follow:
//
// 1. A scan up the positions, one stat each, meets every file that stays at or above where the scan
//    began: the file moves up one per rotation, the scan one per step, so the scan cannot step over it.
// 2. If file X is at position n both before and after position n-1 is opened, what was opened is the file
//    written right after X: while X stays at n nothing is renamed onto n, so nothing leaves n-1 either.
//    The same holds for n+1 and the file written right before X.
//
// The reader relies on these alone. It does not trust a directory listing (a rotation between readdir and
// the opens that follow it made the listing miss the oldest files, which the follower then skipped: ten
// files under load) nor entry times (equal times at a rotation, or a clock set back, made it skip files).
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import zlib from 'node:zlib';

/** An open file of the log (the fd is the caller's to close). */
export interface Held {
  fd: number;
  gz: boolean;
}

/** The name of position n, plain or gzipped. */
export function nameAt(logPath: string, n: number, gz = false): string {
  return n === 0 ? logPath : `${logPath}.${n}${gz ? '.gz' : ''}`;
}

function statOrNull(p: string): { ino: number; dev: number } | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

function openOrNull(p: string): number | null {
  try {
    return openSync(p, 'r');
  } catch {
    return null;
  }
}

/** Whether any file is at position n now. */
function occupied(logPath: string, n: number): boolean {
  return statOrNull(nameAt(logPath, n)) !== null || (n > 0 && statOrNull(nameAt(logPath, n, true)) !== null);
}

/**
 * Opens what is at position n: FILE.n, else FILE.n.gz. null when nothing is there; 'busy' for a FILE.1.gz
 * opened while FILE.1 exists, which may be the copy the shim is still writing (FILE.1 is removed only once
 * its copy is complete, and nothing else is ever written into a .gz).
 */
export function openAt(logPath: string, n: number): Held | null | 'busy' {
  const fd = openOrNull(nameAt(logPath, n));
  if (fd !== null) return { fd, gz: false };
  if (n === 0) return null;
  const gz = openOrNull(nameAt(logPath, n, true));
  if (gz === null) return null;
  if (n === 1 && statOrNull(nameAt(logPath, 1)) !== null) {
    closeSync(gz);
    return 'busy';
  }
  return { fd: gz, gz: true };
}

/** The first line of a file (decompressed for a .gz), at most 128 KiB, or null. */
function headOf(fd: number, gz: boolean): Buffer | null {
  let buf: Buffer = Buffer.allocUnsafe(128 * 1024);
  buf = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  if (gz) {
    try {
      // Only the beginning is wanted: decompress what was read without asking for the rest of the stream.
      buf = zlib.gunzipSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch {
      return null;
    }
  }
  const nl = buf.indexOf(10);
  return nl < 0 ? null : Buffer.from(buf.subarray(0, nl + 1));
}

/** The size of a .gz's data as its trailer gives it (mod 2^32), or -1. */
function gzSize(fd: number): number {
  const size = fstatSync(fd).size;
  if (size < 18) return -1;
  const t = Buffer.alloc(4);
  readSync(fd, t, 0, 4, size - 4);
  return t.readUInt32LE(0);
}

/**
 * A file the reader holds, recognisable among the log's files: by inode, or, for a rotated plain file
 * that compress has replaced with its gzipped copy, by the copy's content (the same first entry, with its
 * time to the nanosecond, and the same length).
 */
export class Ident {
  private readonly ino: number;
  private readonly dev: number;
  private copy: { fd: number; ino: number; dev: number } | null = null;
  private head: Buffer | null | undefined;

  constructor(private readonly held: Held) {
    const st = fstatSync(held.fd);
    this.ino = st.ino;
    this.dev = st.dev;
  }

  /** 'yes' when this file is at position n now, 'no' when another is, 'none' when nothing is. */
  at(logPath: string, n: number): 'yes' | 'no' | 'none' {
    const p = statOrNull(nameAt(logPath, n));
    if (p) return p.ino === this.ino && p.dev === this.dev ? 'yes' : 'no';
    if (n === 0) return 'none';
    const g = statOrNull(nameAt(logPath, n, true));
    if (!g) return 'none';
    if (g.ino === this.ino && g.dev === this.dev) return 'yes';
    if (this.copy) return g.ino === this.copy.ino && g.dev === this.copy.dev ? 'yes' : 'no';
    if (this.held.gz) return 'no';
    return this.isCopy(nameAt(logPath, n, true)) ? 'yes' : 'no';
  }

  private isCopy(gzName: string): boolean {
    const fd = openOrNull(gzName);
    if (fd === null) return false;
    let keep = false;
    try {
      const st = fstatSync(this.held.fd);
      // Only a file that is complete (renamed away from FILE, so no longer written) has a copy.
      if (gzSize(fd) !== st.size % 2 ** 32) return false;
      if (this.head === undefined) this.head = headOf(this.held.fd, false);
      const h = headOf(fd, true);
      if (!this.head || !h || !h.equals(this.head)) return false;
      const g = fstatSync(fd);
      this.copy = { fd, ino: g.ino, dev: g.dev };
      keep = true;
      return true;
    } finally {
      if (!keep) closeSync(fd);
    }
  }

  /** true when the file is deleted, false when it still exists, 'maybe' for a removed plain file whose
   *  gzipped copy (if compress made one) has not been found yet. */
  gone(logPath: string): boolean | 'maybe' {
    if (this.copy) return fstatSync(this.copy.fd).nlink === 0;
    if (fstatSync(this.held.fd).nlink > 0) return false;
    if (this.held.gz) return true;
    // Without compress there are no .gz files (the shim names FILE.2 on as FILE.2.gz only with it).
    return statOrNull(nameAt(logPath, 1, true)) || statOrNull(nameAt(logPath, 2, true)) ? 'maybe' : true;
  }

  dispose(): void {
    if (this.copy) closeSync(this.copy.fd);
    this.copy = null;
  }
}

/** The position of `id` now, scanning up from `from` (files only move up); -1 when the scan finds it nowhere
 *  before two empty positions in a row (one is the hole a rotation in progress leaves). */
export function locate(logPath: string, id: Ident, from: number): number {
  let holes = 0;
  for (let n = from; n < from + 1_000_000; n++) {
    const r = id.at(logPath, n);
    if (r === 'yes') return n;
    holes = r === 'none' ? holes + 1 : 0;
    if (holes >= 2) return -1;
  }
  return -1;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retries: immediately at first, then waiting up to 20 ms, for about 5 s in all. */
const ATTEMPTS = 300;
const pause = (attempt: number) => (attempt < 3 ? Promise.resolve() : sleep(Math.min(20, attempt)));

/**
 * The file written right after `id` (fact 2), opened; 'gone' when `id` itself is deleted (the reader then
 * goes on with what exists), null when `stop()` turns true first.
 */
export async function nextFile(logPath: string, id: Ident, stop: () => boolean): Promise<Held | 'gone' | null> {
  let from = 1;
  for (let attempt = 0; attempt < ATTEMPTS && !stop(); attempt++) {
    const k = locate(logPath, id, from);
    if (k >= 1) {
      let x = openAt(logPath, k - 1);
      // Nothing at k-1 while the file stays at k is a hole no rotation is filling (the shim was killed
      // between two renames): the next file is the one below it.
      if (x === null && k >= 2 && id.at(logPath, k) === 'yes') x = openAt(logPath, k - 2);
      const still = id.at(logPath, k) === 'yes';
      if (x && x !== 'busy') {
        if (still) return x;
        closeSync(x.fd);
      }
      from = k;
    } else {
      // Not found: deleted (max-file), or moved while the scan looked, or (compress) replaced by a copy
      // the scan did not recognise yet.
      const g = id.gone(logPath);
      if (g === true || (g === 'maybe' && attempt >= 8)) return 'gone';
      from = 1;
    }
    await pause(attempt);
  }
  return stop() ? null : 'gone';
}

/**
 * Every file of the log, newest first (FILE, then each one's predecessor by fact 2), opened; [] when there
 * is no FILE yet. A file deleted while this walks ends the list: all older ones are deleted too.
 */
export async function openAll(logPath: string): Promise<Held[]> {
  const held: Held[] = [];
  for (let attempt = 0; held.length === 0; attempt++) {
    const main = openAt(logPath, 0);
    if (main && main !== 'busy') held.push(main);
    // No FILE and nothing rotated: no log yet. A FILE missing beside rotated files is being made anew.
    else if (!occupied(logPath, 1) || attempt >= ATTEMPTS) return [];
    else await pause(attempt);
  }
  let id = new Ident(held[0]);
  let k = 0;
  try {
    for (let attempt = 0; attempt < ATTEMPTS;) {
      let d = 1;
      let y = openAt(logPath, k + 1);
      const end = y === null && !occupied(logPath, k + 2);
      // Nothing at k+1 but something at k+2, while the file stays at k: a rotation is under way (k+1 has
      // moved up, k not yet) or was cut short (the shim killed between two renames); either way the file
      // written before this one is at k+2.
      if (y === null && !end && id.at(logPath, k) === 'yes') {
        y = openAt(logPath, k + 2);
        d = 2;
      }
      const still = id.at(logPath, k) === 'yes';
      if (y && y !== 'busy') {
        if (still) {
          held.push(y);
          id.dispose();
          id = new Ident(y);
          k += d;
          continue;
        }
        closeSync(y.fd);
      } else if (still && end) {
        break;
      }
      // A rotation meanwhile: find the file again, higher up.
      attempt++;
      const n = locate(logPath, id, k);
      if (n >= 0) {
        k = n;
      } else {
        const g = id.gone(logPath);
        if (g === true || (g === 'maybe' && attempt >= 8)) break;
      }
      await pause(attempt);
    }
  } finally {
    id.dispose();
  }
  return held;
}
