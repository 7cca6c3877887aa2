// Writing to a client with backpressure, without ever waiting for a 'drain' that a closed connection will
// never emit (which would keep the writer, and the files, watchers and mounts it holds, forever).
import type { Writable } from 'node:stream';

/** What drainOrClose needs of a stream: node's Writable and streamx's (tar-stream's entries) alike. */
export interface DrainSource {
  on(event: 'drain' | 'close' | 'error', fn: () => void): unknown;
  off(event: 'drain' | 'close' | 'error', fn: () => void): unknown;
}

/** Resolves at the next 'drain' of `out`, or at once when it closes or fails meanwhile. */
export function drained(out: Writable): Promise<void> {
  if (out.destroyed || !out.writableNeedDrain) return Promise.resolve();
  return drainOrClose(out);
}

/** For a stream whose write() has just returned false (streamx streams have no writableNeedDrain): the next
 *  'drain', or its 'close' or 'error', whichever comes first. */
export function drainOrClose(out: DrainSource): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

/** Writes `chunk` unless `out` is gone; returns a promise to wait on when the client is behind. */
export function writeOrWait(out: Writable, chunk: Buffer | string): Promise<void> | undefined {
  if (out.destroyed || out.writableEnded) return undefined;
  return out.write(chunk) ? undefined : drained(out);
}
