// The shared reader of the log files the shim writes (json-file, local, and the syslog driver's cache):
// GET /containers/{id}/logs and attach's logs=1. Rotated files oldest first (FILE.N[.gz] … FILE.1[.gz],
// FILE; gzipped ones are decompressed as they are read), tail, since/until, timestamps, and follow until
// the container stops, across rotations.
//
// Streams: the files are read in chunks, complete lines are turned into output as they come, and the output
// goes out in buffers of about OUT_CHUNK bytes, waiting for the client whenever its socket is full. --tail N
// finds where the last N entries begin by reading the files backwards, so a short tail of a large log reads
// little. Lines the shim wrote ({"log":"…","stream":"stdout","time":"<30 characters>"}) are decoded straight
// from the bytes; anything else (another writer's field order, attrs) goes through JSON.parse.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { watch, closeSync, type FSWatcher } from 'node:fs';
import { parseRfc3339Ns, rfc3339Fixed9 } from '../lib/time';
import { Ident, nextFile, openAll, type Held } from './rotation';

export interface LogOptions {
  stdout: boolean;
  stderr: boolean;
  follow: boolean;
  timestamps: boolean;
  tail: number; // -1 = all
  sinceNs: bigint; // 0 = from the start
  untilNs: bigint; // 0 = no end
  /** --details: each line is preceded by the entry's attributes (log-opt labels/env), "k=v,k2=v2 ". */
  details?: boolean;
}

export interface LogEntry {
  stream: 1 | 2;
  timeNs: bigint;
  time: string;
  data: string;
  attrs?: Record<string, string>;
}

const READ_CHUNK = 1 << 20;
const OUT_CHUNK = 1 << 20;
const TAIL_CHUNK = 64 * 1024;

const gunzip = promisify(zlib.gunzip);

/** What the reader needs of an open log file: a FileHandle, or a gzipped rotated file seen decompressed. */
interface Src {
  /** The descriptor of the file as it is on disk (the .gz for a gzipped one): its identity. */
  readonly fd: number;
  readonly gz?: boolean;
  read(buf: Buffer, off: number, len: number, pos: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number; ino: number; dev: number }>;
  close(): Promise<void>;
  /** Drops what is held in memory for this file (a decompressed copy); it is made again if read again. */
  release?(): void;
}

/**
 * A rotated FILE.N.gz. Its size is the gzip trailer's (the length of the data, mod 2^32: rotated files
 * are far smaller), so listing sizes decompresses nothing; the data is decompressed on the first read
 * and dropped by release(), so that a reader holds at most the file it is reading.
 */
class GzSrc implements Src {
  readonly gz = true;
  private data: Buffer | null = null;
  private info: { size: number; ino: number; dev: number } | null = null;

  constructor(private readonly fh: FileHandle) {}

  get fd(): number {
    return this.fh.fd;
  }

  private async load(): Promise<Buffer> {
    if (!this.data) {
      try {
        // Positional reads: readFile() would go on from where an earlier load left the file position.
        const size = (await this.fh.stat()).size;
        const raw = Buffer.allocUnsafe(size);
        let got = 0;
        while (got < size) {
          const { bytesRead } = await this.fh.read(raw, got, size - got, got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        this.data = await gunzip(raw.subarray(0, got));
      } catch {
        this.data = Buffer.alloc(0); // a damaged file reads as empty rather than failing the whole log
      }
    }
    return this.data;
  }

  async read(buf: Buffer, off: number, len: number, pos: number): Promise<{ bytesRead: number }> {
    const d = await this.load();
    if (pos >= d.length) return { bytesRead: 0 };
    const n = d.copy(buf, off, pos, Math.min(d.length, pos + len));
    return { bytesRead: n };
  }

  async stat(): Promise<{ size: number; ino: number; dev: number }> {
    if (this.info) return this.info;
    const st = await this.fh.stat();
    let size = 0;
    if (this.data) size = this.data.length;
    else if (st.size >= 18) {
      const t = Buffer.alloc(4);
      await this.fh.read(t, 0, 4, st.size - 4);
      size = t.readUInt32LE(0);
    }
    this.info = { size, ino: st.ino, dev: st.dev };
    return this.info;
  }

  async close(): Promise<void> {
    this.data = null;
    await this.fh.close();
  }

  release(): void {
    this.data = null;
  }
}

function srcOf(fh: FileHandle, gz: boolean): Src {
  return gz ? new GzSrc(fh) : fh;
}

/** A Src on a file held by descriptor (the descriptor stays the caller's). */
async function srcOfHeld(h: Held): Promise<Src> {
  return srcOf(await open(`/proc/self/fd/${h.fd}`, 'r'), h.gz);
}

function parseLine(line: string): LogEntry | null {
  if (!line) return null;
  try {
    const o = JSON.parse(line) as { log: string; stream: string; time: string; attrs?: Record<string, string> };
    if (typeof o.log !== 'string' || typeof o.time !== 'string') return null;
    return { stream: o.stream === 'stderr' ? 2 : 1, time: o.time, timeNs: parseRfc3339Ns(o.time), data: o.log, attrs: o.attrs };
  } catch {
    return null; // a torn line of a crashed writer
  }
}

function attrsText(attrs: Record<string, string> | undefined): string {
  // As Docker: the attributes sorted by key, query-escaped, comma-separated (then a space, also when none).
  return Object.keys(attrs ?? {}).sort().map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(attrs![k])}`).join(',');
}

export function formatEntry(e: LogEntry, o: LogOptions, tty: boolean): Buffer {
  let line = e.data;
  if (o.details) line = `${attrsText(e.attrs)} ${line}`;
  const text = o.timestamps ? `${rfc3339Fixed9(e.timeNs)} ${line}` : line;
  const payload = Buffer.from(text, 'utf8');
  if (tty) return payload;
  const h = Buffer.allocUnsafe(8);
  h[0] = e.stream; h[1] = 0; h[2] = 0; h[3] = 0;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

// The fixed parts of a line the shim writes; the log value sits between PREFIX and MID1, the stream name
// (6 bytes) between MID1 and MID2, the time (30 bytes) between MID2 and SUFFIX.
const PREFIX = Buffer.from('{"log":"');
const MID1 = Buffer.from('","stream":"');
const MID2 = Buffer.from('","time":"');
const SUFFIX = Buffer.from('"}');
const TIME_LEN = 30; // 2006-01-02T15:04:05.000000000Z
const TAIL_LEN = MID1.length + 6 + MID2.length + TIME_LEN + SUFFIX.length; // 60

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function hex4(b: Buffer, i: number, end: number): number {
  if (i + 4 > end) return -1;
  const a = hexVal(b[i]), c = hexVal(b[i + 1]), d = hexVal(b[i + 2]), e = hexVal(b[i + 3]);
  if (a < 0 || c < 0 || d < 0 || e < 0) return -1;
  return (a << 12) | (c << 8) | (d << 4) | e;
}

/**
 * Turns log lines into the response body: frames (or raw bytes for a TTY) collected in buffers of about
 * OUT_CHUNK, handed out by take().
 */
class Formatter {
  private out = Buffer.allocUnsafe(OUT_CHUNK);
  private n = 0;
  private ready: Buffer[] = [];
  private readonly sinceB: Buffer | null;
  private readonly untilB: Buffer | null;
  /** --since still applies: as Docker's reader, it skips entries only until the first one at or after it
   *  (of either stream). Entries are in the order they were written, and their times may go backwards
   *  (a clock set back): every later entry is shown. */
  private sinceOn: boolean;
  /** An entry later than --until was seen (of either stream): as Docker, nothing after it is shown, and a
   *  follower ends there. */
  pastUntil = false;

  constructor(private readonly o: LogOptions, private readonly tty: boolean) {
    this.sinceB = o.sinceNs > 0n ? Buffer.from(rfc3339Fixed9(o.sinceNs)) : null;
    this.untilB = o.untilNs > 0n ? Buffer.from(rfc3339Fixed9(o.untilNs)) : null;
    // Times outside 0000-9999 do not compare as text; the slow path handles them.
    if (this.sinceB && this.sinceB.length !== TIME_LEN) this.sinceB = null;
    if (this.untilB && this.untilB.length !== TIME_LEN) this.untilB = null;
    this.sinceOn = o.sinceNs > 0n;
  }

  /** Buffers ready to send (and the one being filled, when `all`). */
  take(all: boolean): Buffer[] {
    if (all && this.n > 0) {
      this.ready.push(this.out.subarray(0, this.n));
      this.out = Buffer.allocUnsafe(OUT_CHUNK);
      this.n = 0;
    }
    const r = this.ready;
    this.ready = [];
    return r;
  }

  private reserve(len: number): void {
    if (this.n + len <= this.out.length) return;
    if (this.n > 0) this.ready.push(this.out.subarray(0, this.n));
    this.out = Buffer.allocUnsafe(Math.max(OUT_CHUNK, len));
    this.n = 0;
  }

  /** Every complete line in b[start, end) (end just after a '\n' or at the end of a file). */
  lines(b: Buffer, start: number, end: number): void {
    let s = start;
    while (s < end) {
      let e = b.indexOf(10, s);
      if (e < 0 || e >= end) e = end;
      if (e > s && !this.fast(b, s, e)) this.slow(b, s, e);
      s = e + 1;
    }
  }

  private fast(b: Buffer, s: number, e: number): boolean {
    if (e - s < PREFIX.length + TAIL_LEN) return false;
    const t = e - TAIL_LEN; // where MID1 begins
    for (let i = 0; i < PREFIX.length; i++) if (b[s + i] !== PREFIX[i]) return false;
    for (let i = 0; i < MID1.length; i++) if (b[t + i] !== MID1[i]) return false;
    const st = t + MID1.length;
    const m2 = st + 6;
    for (let i = 0; i < MID2.length; i++) if (b[m2 + i] !== MID2[i]) return false;
    const ts = m2 + MID2.length;
    if (b[ts + 4] !== 45 || b[ts + 10] !== 84 || b[ts + 19] !== 46 || b[ts + TIME_LEN - 1] !== 90) return false;
    if (b[e - 2] !== 34 || b[e - 1] !== 125) return false;
    let stream: 1 | 2;
    if (b[st + 3] === 111 && b[st + 5] === 116) stream = 1; // stdout
    else if (b[st + 3] === 101 && b[st + 5] === 114) stream = 2; // stderr
    else return false;
    const o = this.o;
    if (this.pastUntil) return true;
    // The window applies to every entry, whichever streams are asked for (Docker filters the streams
    // after its reader has applied --since and --until).
    if (this.sinceOn || o.untilNs > 0n) {
      if ((this.sinceOn && !this.sinceB) || (o.untilNs > 0n && !this.untilB)) return false;
      if (this.sinceOn) {
        if (b.compare(this.sinceB!, 0, TIME_LEN, ts, ts + TIME_LEN) < 0) return true;
        this.sinceOn = false;
      }
      if (this.untilB && b.compare(this.untilB, 0, TIME_LEN, ts, ts + TIME_LEN) > 0) {
        this.pastUntil = true;
        return true;
      }
    }
    if (stream === 1 ? !o.stdout : !o.stderr) return true;
    const rs = s + PREFIX.length;
    const re = t;
    // The decoded value is never longer than its JSON form.
    this.reserve(8 + TIME_LEN + 2 + (re - rs));
    const out = this.out;
    const p0 = this.n;
    let p = this.tty ? p0 : p0 + 8;
    if (o.timestamps) {
      b.copy(out, p, ts, ts + TIME_LEN);
      p += TIME_LEN;
      out[p++] = 32;
    }
    if (o.details) out[p++] = 32; // no attributes in the shim's lines
    let i = rs;
    while (i < re) {
      const c = b[i];
      if (c !== 92) {
        if (c === 34) return false; // an unescaped quote: not one of the shim's lines after all
        out[p++] = c;
        i++;
        continue;
      }
      const x = b[i + 1];
      i += 2;
      switch (x) {
        case 110: out[p++] = 10; break; // \n
        case 116: out[p++] = 9; break; // \t
        case 114: out[p++] = 13; break; // \r
        case 34: out[p++] = 34; break;
        case 92: out[p++] = 92; break;
        case 47: out[p++] = 47; break;
        case 98: out[p++] = 8; break;
        case 102: out[p++] = 12; break;
        case 117: { // \uXXXX
          let cp = hex4(b, i, re);
          if (cp < 0) return false;
          i += 4;
          if (cp >= 0xd800 && cp <= 0xdbff && b[i] === 92 && b[i + 1] === 117) {
            const lo = hex4(b, i + 2, re);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
              i += 6;
            }
          }
          if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
          if (cp < 0x80) out[p++] = cp;
          else if (cp < 0x800) {
            out[p++] = 0xc0 | (cp >> 6);
            out[p++] = 0x80 | (cp & 63);
          } else if (cp < 0x10000) {
            out[p++] = 0xe0 | (cp >> 12);
            out[p++] = 0x80 | ((cp >> 6) & 63);
            out[p++] = 0x80 | (cp & 63);
          } else {
            out[p++] = 0xf0 | (cp >> 18);
            out[p++] = 0x80 | ((cp >> 12) & 63);
            out[p++] = 0x80 | ((cp >> 6) & 63);
            out[p++] = 0x80 | (cp & 63);
          }
          break;
        }
        default:
          return false;
      }
    }
    if (!this.tty) {
      out[p0] = stream; out[p0 + 1] = 0; out[p0 + 2] = 0; out[p0 + 3] = 0;
      out.writeUInt32BE(p - p0 - 8, p0 + 4);
    }
    this.n = p;
    return true;
  }

  private slow(b: Buffer, s: number, e: number): void {
    const en = parseLine(b.toString('utf8', s, e));
    if (!en) return;
    const o = this.o;
    if (this.pastUntil) return;
    if (this.sinceOn) {
      if (en.timeNs < o.sinceNs) return;
      this.sinceOn = false;
    }
    if (o.untilNs && en.timeNs > o.untilNs) {
      this.pastUntil = true;
      return;
    }
    if (en.stream === 1 ? !o.stdout : !o.stderr) return;
    const f = formatEntry(en, o, this.tty);
    this.reserve(f.length);
    f.copy(this.out, this.n);
    this.n += f.length;
  }
}

/** A file being read forwards: complete lines go to the formatter; a partial last line waits for more. */
class Reader {
  pos: number;
  private carry: Buffer | null = null;

  constructor(public fh: Src, pos: number) {
    this.pos = pos;
  }

  /** Reads from pos to the end of the file as it is now, chunk by chunk, sending output in between. */
  async drain(f: Formatter, send: (bufs: Buffer[]) => Promise<boolean>, atEnd: boolean): Promise<boolean> {
    for (;;) {
      const keep = this.carry ? this.carry.length : 0;
      const buf = Buffer.allocUnsafe(Math.max(READ_CHUNK, keep * 2));
      if (this.carry) this.carry.copy(buf, 0);
      const { bytesRead } = await this.fh.read(buf, keep, buf.length - keep, this.pos);
      if (bytesRead === 0) {
        // A rotated file's last entry always ends in a newline; a torn one of a crash is dropped.
        if (atEnd) {
          this.carry = null;
          this.fh.release?.();
        }
        return true;
      }
      this.pos += bytesRead;
      const end = keep + bytesRead;
      const nl = buf.lastIndexOf(10, end - 1);
      if (nl < 0) {
        this.carry = buf.subarray(0, end);
        continue;
      }
      f.lines(buf, 0, nl + 1);
      this.carry = nl + 1 < end ? Buffer.from(buf.subarray(nl + 1, end)) : null;
      if (!(await send(f.take(false)))) return false;
    }
  }

  /** A file truncated in place (max-file 1): start again from its beginning. */
  reset(): void {
    this.pos = 0;
    this.carry = null;
  }
}

/**
 * Where the last `n` entries begin: [file index, byte offset], reading backwards from `ends` (the size of
 * each file, cut after the last complete line for the newest).
 */
async function tailStart(fhs: Src[], ends: number[], n: number): Promise<[number, number]> {
  let need = n; // newlines still to pass, after the one that ends the last line
  const buf = Buffer.allocUnsafe(TAIL_CHUNK);
  for (let k = fhs.length - 1; k >= 0; k--) {
    let pos = ends[k];
    // The file's last byte is the newline that ends its last line; it does not start a line.
    let first = true;
    while (pos > 0) {
      const len = Math.min(TAIL_CHUNK, pos);
      const { bytesRead } = await fhs[k].read(buf, 0, len, pos - len);
      if (bytesRead < len) break;
      let i = len - 1;
      if (first) {
        if (buf[i] === 10) i--;
        first = false;
      }
      while (i >= 0) {
        const nl = buf.lastIndexOf(10, i);
        if (nl < 0) break;
        need--;
        if (need === 0) return [k, pos - len + nl + 1];
        i = nl - 1;
      }
      pos -= len;
    }
    fhs[k].release?.();
    // The whole file holds fewer lines than wanted: its first line counts as one too.
    if (ends[k] > 0) {
      need--;
      if (need === 0) return [k, 0];
    }
  }
  return [0, 0];
}

/**
 * Writes the log to `write`. With follow, keeps reading as the file grows until `running()` turns false
 * (then reads what is left) or `closed()` turns true.
 */
export async function streamLogs(logPath: string, o: LogOptions, tty: boolean, write: (b: Buffer) => Promise<void> | void,
  running: () => boolean, closed: () => boolean, onStop?: (cb: () => void) => void): Promise<void> {
  const f = new Formatter(o, tty);
  const send = async (bufs: Buffer[]): Promise<boolean> => {
    for (const b of bufs) {
      if (closed()) return false;
      const p = write(b);
      if (p) await p;
    }
    return !closed();
  };

  const fhs: Src[] = await openSnapshot(logPath);
  let cur: Reader | undefined;
  try {
    const sizes: number[] = [];
    for (const fh of fhs) sizes.push((await fh.stat()).size);
    // The newest file ends where its last complete line ends: a partial line there is still being written.
    const lastIdx = fhs.length - 1;
    if (lastIdx >= 0 && sizes[lastIdx] > 0) {
      // One entry is at most 16 KiB of output, under 100 KiB as JSON: the last newline is in this window.
      const len = Math.min(sizes[lastIdx], 256 * 1024);
      const b = Buffer.allocUnsafe(len);
      const { bytesRead } = await fhs[lastIdx].read(b, 0, len, sizes[lastIdx] - len);
      const nl = b.subarray(0, bytesRead).lastIndexOf(10);
      sizes[lastIdx] = nl >= 0 ? sizes[lastIdx] - len + nl + 1 : 0;
    }

    let startFile = 0;
    let startPos = 0;
    if (o.tail === 0) {
      startFile = lastIdx;
      startPos = lastIdx >= 0 ? sizes[lastIdx] : 0;
    } else if (o.tail > 0) {
      [startFile, startPos] = await tailStart(fhs, sizes, o.tail);
    }

    for (let k = startFile; k < lastIdx; k++) {
      const r = new Reader(fhs[k], k === startFile ? startPos : 0);
      if (!(await r.drain(f, send, true))) return;
    }
    if (lastIdx >= 0) {
      cur = new Reader(fhs[lastIdx], startFile === lastIdx ? startPos : 0);
      fhs.length = lastIdx; // cur owns the newest file's handle from here
      if (!(await drainTo(cur, f, send, sizes[lastIdx]))) return;
    }
    if (!(await send(f.take(true)))) return;
    if (!o.follow || closed() || f.pastUntil) return;
    if (o.untilNs && o.untilNs < BigInt(Date.now()) * 1_000_000n) return;
    const c = cur;
    cur = undefined; // follow owns it now
    await follow(logPath, c, f, send, running, closed, onStop);
  } finally {
    for (const fh of fhs) await fh.close().catch(() => {});
    await cur?.fh.close().catch(() => {});
  }
}

/** The log's files, oldest first, each one's predecessor verified while the shim may rotate (./rotation.ts). */
async function openSnapshot(logPath: string): Promise<Src[]> {
  const held = await openAll(logPath);
  try {
    const out: Src[] = [];
    for (const h of held.reverse()) out.push(await srcOfHeld(h));
    return out;
  } finally {
    for (const h of held) closeSync(h.fd);
  }
}

/** Reads the newest file up to `end` only (what existed when the request came; later lines are follow's). */
async function drainTo(r: Reader, f: Formatter, send: (bufs: Buffer[]) => Promise<boolean>, end: number): Promise<boolean> {
  while (r.pos < end) {
    const len = Math.min(READ_CHUNK, end - r.pos);
    const buf = Buffer.allocUnsafe(len);
    const { bytesRead } = await r.fh.read(buf, 0, len, r.pos);
    if (bytesRead === 0) break;
    // Chunks are cut at the last newline, so that no line is split between two of them.
    const nl = buf.lastIndexOf(10, bytesRead - 1);
    if (nl < 0) {
      // One line longer than the chunk: read it whole.
      const whole = Buffer.allocUnsafe(end - r.pos);
      const got = (await r.fh.read(whole, 0, whole.length, r.pos)).bytesRead;
      f.lines(whole, 0, got);
      r.pos += got;
    } else {
      f.lines(buf, 0, nl + 1);
      r.pos += nl + 1;
    }
    if (!(await send(f.take(false)))) return false;
  }
  return true;
}

/** The time (30 bytes, as the shim writes it) of the line that ends just before b[end] ('\n'), or null. */
function lineTime(b: Buffer, end: number): string | null {
  const ts = end - 2 - TIME_LEN;
  if (ts < 0 || b[end - 1] !== 125 || b[end - 2] !== 34 || b[ts - 1] !== 34 || b[ts + 4] !== 45 || b[ts + 10] !== 84 || b[ts + TIME_LEN - 1] !== 90) return null;
  return b.toString('latin1', ts, ts + TIME_LEN);
}

/** The time of a file's first entry, or null (empty, or not written by the shim). */
async function firstTime(fh: Src): Promise<string | null> {
  const buf = Buffer.allocUnsafe(128 * 1024);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  const nl = buf.subarray(0, bytesRead).indexOf(10);
  return nl < 0 ? null : lineTime(buf, nl);
}

/** The time of a file's last entry, or null. */
async function lastTime(fh: Src): Promise<string | null> {
  const size = (await fh.stat()).size;
  const len = Math.min(size, 256 * 1024);
  const buf = Buffer.allocUnsafe(len);
  const { bytesRead } = await fh.read(buf, 0, len, size - len);
  const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
  return nl < 0 ? null : lineTime(buf, nl);
}

/**
 * The file written after `cur`, opened (./rotation.ts); when `cur` has been deleted meanwhile (max-file),
 * the oldest file left that is newer than it: as Docker, lines of files deleted before they were read are
 * not shown. undefined when the client left first, or when no file is there at all.
 */
async function successor(logPath: string, cur: Src, closed: () => boolean): Promise<Src | undefined> {
  const id = new Ident({ fd: cur.fd, gz: !!cur.gz });
  try {
    const next = await nextFile(logPath, id, closed);
    if (next === null) return undefined;
    if (next !== 'gone') {
      try {
        return await srcOfHeld(next);
      } finally {
        closeSync(next.fd);
      }
    }
  } finally {
    id.dispose();
  }
  // Deleted: every file left is newer, except (compress) a copy of it that was not recognised; entry
  // times tell those apart. A file beginning at cur's last time is newer unless cur began then too.
  const first = await firstTime(cur);
  const last = await lastTime(cur);
  const srcs = await openSnapshot(logPath);
  let pick: Src | undefined;
  for (const s of srcs) {
    if (pick) break;
    const t = await firstTime(s);
    if (t === null || last === null || t > last || (t === last && first !== last)) pick = s;
  }
  for (const s of srcs) if (s !== pick) await s.close().catch(() => {});
  return pick;
}

async function follow(logPath: string, cur: Reader | undefined, f: Formatter, send: (bufs: Buffer[]) => Promise<boolean>,
  running: () => boolean, closed: () => boolean, onStop?: (cb: () => void) => void): Promise<void> {
  let wake: (() => void) | undefined;
  let watcher: FSWatcher | undefined;
  const rewatch = () => {
    watcher?.close();
    try {
      watcher = watch(logPath, () => wake?.());
    } catch {
      watcher = undefined; // polling covers it
    }
  };
  rewatch();
  onStop?.(() => wake?.());
  try {
    for (;;) {
      const wasRunning = running();
      try {
        if (!cur) {
          cur = new Reader(await open(logPath, 'r'), 0);
          rewatch();
        }
        const st = await cur.fh.stat();
        if (st.size < cur.pos) cur.reset(); // truncated in place (max-file 1)
        if (!(await cur.drain(f, send, false))) return;
        if (f.pastUntil) {
          await send(f.take(true));
          return;
        }
        // Rotated: FILE is a new file now. The old one is complete once renamed; take its last lines first.
        const now = await stat(logPath).catch(() => null);
        if (now && (now.ino !== st.ino || now.dev !== st.dev)) {
          if (!(await cur.drain(f, send, true))) return;
          if (!(await send(f.take(true)))) return;
          // Several rotations may have happened since: go on with the file written right after this one.
          const next = await successor(logPath, cur.fh, closed);
          await cur.fh.close().catch(() => {});
          cur = undefined;
          if (next) {
            cur = new Reader(next, 0);
            rewatch();
          }
          continue;
        }
        if (!(await send(f.take(true)))) return;
      } catch { /* the file may be gone with the container */ }
      if (closed() || !wasRunning) return;
      await new Promise<void>((r) => {
        const t = setTimeout(r, 250);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  } finally {
    watcher?.close();
    await cur?.fh.close().catch(() => {});
  }
}
