// docker export (GET /containers/{id}/export): the container's whole file system, flattened, as a plain
// tar. A running container's root is already mounted (overlay2/<layerId>/merged) and is read from there;
// otherwise a read-only overlay of its read-write layer over the image's layers is mounted for the time of
// the export at <exec-root>/export/<random> and unmounted afterwards, also when the export fails or the
// client goes away. A mount left there by a berthd that was killed mid-export is swept by the next export
// (outside the container's directories, it never stands in the way of docker rm).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { copyTo } from '../images/save';
import type { Logger } from 'pino';
import type { ContainerService } from './service';
import type { LayerDeps } from './changes';
import { packDir } from '../storage/layers/pack';
import { containerLayers } from './changes';
import { isMounted } from '../lib/mounts';
import { archiveIds } from '../runtime/userns';

/** What docker export needs: the container's layers, the runtime to mount them, a scratch directory. */
export interface ExportDeps extends LayerDeps {
  readonly config: { execRoot: string };
  readonly containers: Pick<ContainerService, 'lookup' | 'layerDir' | 'runtime' | 'remapOf'>;
  readonly log: Logger;
}

/** Checks the container exists (so that a 404 can still be sent) and returns what export needs. */
export function prepareExport(d: ExportDeps, ref: string): { id: string; upper: string; lowers: string[]; layerDir: string } {
  const live = d.containers.lookup(ref);
  return { id: live.rec.id, ...containerLayers(d, live.rec.id) };
}

export async function writeExport(d: ExportDeps, p: ReturnType<typeof prepareExport>, out: Writable): Promise<void> {
  const merged = path.join(p.layerDir, 'merged');
  // A remapped container's own files are its range's on disk: the archive gives the container's ids.
  const remap = d.containers.remapOf(d.containers.lookup(p.id).rec);
  const opts = remap ? { ids: archiveIds(remap) } : {};
  if (isMounted(merged)) {
    await copyTo(packDir(merged, opts) as unknown as AsyncIterable<Buffer>, out);
    return;
  }
  const root = path.join(d.config.execRoot, 'export');
  await sweepStale(d, root);
  const target = path.join(root, randomBytes(8).toString('hex'));
  active.add(target);
  let mounted = false;
  try {
    await mkdir(target, { recursive: true, mode: 0o700 });
    // No upper and work dir: a read-only overlay whose top layer is the container's own.
    await d.containers.runtime.mountRootfs([p.upper, ...p.lowers], '', '', target);
    mounted = true;
    await copyTo(packDir(target, opts) as unknown as AsyncIterable<Buffer>, out);
  } finally {
    if (mounted) await d.containers.runtime.unmount(target).catch((e) => d.log.warn({ err: e, target }, 'unmounting an export mount failed'));
    await rmdir(target).catch(() => undefined);
    active.delete(target);
  }
}

/** Export mounts of this process that are in use. */
const active = new Set<string>();

/** Unmounts and removes what an interrupted export left under `root`. */
async function sweepStale(d: ExportDeps, root: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  for (const n of names) {
    const dir = path.join(root, n);
    if (active.has(dir)) continue;
    if (isMounted(dir)) await d.containers.runtime.unmount(dir).catch((e) => d.log.warn({ err: e, dir }, 'unmounting a stale export mount failed'));
    await rmdir(dir).catch(() => undefined);
  }
}
