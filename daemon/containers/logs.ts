// GET /containers/{id}/logs from the json-file log the shim writes: rotated files oldest first, tail,
// since/until, timestamps, and follow until the container stops.
import { open, stat, readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { parseRfc3339Ns, rfc3339Fixed9 } from '../lib/time';

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

function parseLine(line: string): LogEntry | null {
  if (!line) return null;
  try {
    const o = JSON.parse(line) as { log: string; stream: string; time: string; attrs?: Record<string, string> };
    return { stream: o.stream === 'stderr' ? 2 : 1, time: o.time, timeNs: parseRfc3339Ns(o.time), data: o.log, attrs: o.attrs };
  } catch {
    return null; // a torn last line of a crashed writer
  }
}

async function existingFiles(logPath: string): Promise<string[]> {
  const files: string[] = [];
  for (let i = 1; i < 100; i++) {
    try {
      await stat(`${logPath}.${i}`);
      files.unshift(`${logPath}.${i}`);
    } catch {
      break;
    }
  }
  files.push(logPath);
  return files;
}

function wanted(e: LogEntry, o: LogOptions): boolean {
  if (e.stream === 1 ? !o.stdout : !o.stderr) return false;
  if (o.sinceNs && e.timeNs < o.sinceNs) return false;
  if (o.untilNs && e.timeNs > o.untilNs) return false;
  return true;
}

export function formatEntry(e: LogEntry, o: LogOptions, tty: boolean): Buffer {
  let line = e.data;
  if (o.details) {
    // As Docker: the attributes sorted by key, query-escaped, comma-separated, then a space (also when none).
    const attrs = Object.keys(e.attrs ?? {}).sort().map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(e.attrs![k])}`).join(',');
    line = `${attrs} ${line}`;
  }
  const text = o.timestamps ? `${rfc3339Fixed9(e.timeNs)} ${line}` : line;
  const payload = Buffer.from(text, 'utf8');
  if (tty) return payload;
  const h = Buffer.allocUnsafe(8);
  h[0] = e.stream; h[1] = 0; h[2] = 0; h[3] = 0;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/**
 * Writes the log to `write`. With follow, keeps reading as the file grows until `running()` turns false
 * (then reads what is left) or `closed()` turns true.
 */
export async function streamLogs(logPath: string, o: LogOptions, tty: boolean, write: (b: Buffer) => Promise<void> | void,
  running: () => boolean, closed: () => boolean, onStop?: (cb: () => void) => void): Promise<void> {
  const files = await existingFiles(logPath);
  // Read what exists now.
  let entries: LogEntry[] = [];
  let offset = 0;
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch {
      continue;
    }
    let lines = text.split('\n');
    const last = lines.pop() ?? '';
    if (f === logPath) offset = Buffer.byteLength(text) - Buffer.byteLength(last);
    for (const l of lines) {
      const e = parseLine(l);
      if (e && wanted(e, o)) entries.push(e);
    }
    lines = [];
  }
  if (o.tail >= 0) entries = o.tail === 0 ? [] : entries.slice(-o.tail);
  const chunk: Buffer[] = [];
  for (const e of entries) chunk.push(formatEntry(e, o, tty));
  if (chunk.length) await write(Buffer.concat(chunk));
  if (!o.follow || closed()) return;
  if (o.untilNs && o.untilNs < BigInt(Date.now()) * 1_000_000n) return;

  // Follow: read new complete lines from `offset` whenever the file changes, until the container stops.
  let wake: (() => void) | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(logPath, () => wake?.());
  } catch { /* polling covers it */ }
  onStop?.(() => wake?.());
  let rest = Buffer.alloc(0);
  try {
    for (;;) {
      const wasRunning = running();
      let fh;
      try {
        fh = await open(logPath, 'r');
        const st = await fh.stat();
        if (st.size < offset) offset = 0; // rotated under us
        if (st.size > offset) {
          const buf = Buffer.allocUnsafe(st.size - offset);
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          offset += bytesRead;
          const all = Buffer.concat([rest, buf.subarray(0, bytesRead)]);
          const nl = all.lastIndexOf(10);
          rest = nl >= 0 ? all.subarray(nl + 1) : all;
          if (nl >= 0) {
            const out: Buffer[] = [];
            for (const l of all.subarray(0, nl).toString('utf8').split('\n')) {
              const e = parseLine(l);
              if (e && wanted(e, o)) out.push(formatEntry(e, o, tty));
            }
            if (out.length) await write(Buffer.concat(out));
          }
        }
      } catch { /* the file may be gone with the container */ } finally {
        await fh?.close();
      }
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
  }
}
