// Writing to a client with backpressure, without ever waiting for a 'drain' that a closed connection will
// never emit (which would keep the writer, and the files, watchers and mounts it holds, forever).
import type { Writable } from 'node:stream';

/** Resolves at the next 'drain' of `out`, or at once when it closes or fails meanwhile. */
export function drained(out: Writable): Promise<void> {
  if (out.destroyed || !out.writableNeedDrain) return Promise.resolve();
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
