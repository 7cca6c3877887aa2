// The build context: the request's tar (plain or compressed) unpacked into a private directory under the
// data root (image/tmp, which start-up clears), through the same unpacker as image layers, so an entry with
// an absolute name, a `..` component or a path through a symlink fails the build before any step runs.
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { applyTar } from '../storage/layers/apply';
import { decompressed } from '../storage/layers/decompress';
import { layerFs } from '../runtime/layerfs';

export interface BuildDir {
  /** The unpacked context. */
  context: string;
  /** Scratch space for the build's steps. */
  tmp: string;
  dispose(): Promise<void>;
}

/** The docker CLI adds a Dockerfile from outside the context (`-f /elsewhere/Dockerfile`, `-f -`) by
 *  appending a `.dockerfile.<random>` member to the context's tar and stops right after that member's data:
 *  no padding to the 512-byte block and no end-of-archive blocks. Docker's reader takes that as the end; here
 *  the missing padding and the two zero blocks are supplied, so such a stream reads as the archive it is. A
 *  body cut off inside a header or a member's data still fails as truncated. */
export async function* withTarEnd(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of src) {
    n += chunk.length;
    yield chunk;
  }
  yield Buffer.alloc((512 - (n % 512)) % 512 + 1024);
}

/** Unpacks the context into a new directory under `<dataRoot>/image/tmp`; on error nothing remains. */
export async function receiveContext(dataRoot: string, body: AsyncIterable<Buffer>): Promise<BuildDir> {
  const root = path.join(dataRoot, 'image', 'tmp');
  await fsp.mkdir(root, { recursive: true, mode: 0o700 });
  const dir = path.join(root, `build-${randomBytes(8).toString('hex')}`);
  const context = path.join(dir, 'context');
  const tmp = path.join(dir, 'tmp');
  await fsp.mkdir(dir, { mode: 0o700 });
  const dispose = () => fsp.rm(dir, { recursive: true, force: true });
  try {
    await fsp.mkdir(context, { mode: 0o755 });
    await fsp.mkdir(tmp, { mode: 0o700 });
    await applyTar(withTarEnd(decompressed(body)), context, { fs: layerFs });
  } catch (e) {
    await dispose();
    throw e;
  }
  return { context, tmp, dispose };
}
