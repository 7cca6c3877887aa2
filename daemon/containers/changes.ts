// docker diff (GET /containers/{id}/changes): what the container changed, read from its read-write layer
// (overlay2/<layerId>/diff). A whiteout (0/0 character device) is a deletion (Kind 2); anything else that
// also exists in a lower layer (the init layer or the image's) is a change (Kind 0) — the parents of changed
// files show up this way, as Docker shows them; anything else was added (Kind 1).
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerService } from './service';
import type { ContainerImages } from './deps';
import { walk, isWhiteout } from '../storage/layers/pack';

/** What reading a container's layers needs: the container and its image's layers. */
export interface LayerDeps {
  readonly containers: Pick<ContainerService, 'lookup' | 'layerDir'>;
  readonly images: Pick<ContainerImages, 'get' | 'lowerDirs'>;
}

export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

/** The container's read-write (upper) directory and the directories under it, topmost first. */
export function containerLayers(d: LayerDeps, ref: string): { upper: string; lowers: string[]; layerDir: string } {
  const live = d.containers.lookup(ref);
  const layerDir = d.containers.layerDir(live.rec);
  const img = d.images.get(live.rec.imageId);
  return { upper: path.join(layerDir, 'diff'), lowers: [`${layerDir}-init/diff`, ...d.images.lowerDirs(img)], layerDir };
}

async function existsIn(dirs: string[], rel: string): Promise<boolean> {
  for (const d of dirs) {
    try {
      const st = await lstat(path.join(d, rel));
      return !isWhiteout(st);
    } catch {
      /* not in this layer */
    }
  }
  return false;
}

/** Changes of an upper directory against its lower directories, sorted by path. */
export async function changesOf(upper: string, lowers: string[]): Promise<Change[]> {
  const out: Change[] = [];
  for await (const e of walk(upper)) {
    const p = `/${e.rel}`;
    if (isWhiteout(e.st)) out.push({ Path: p, Kind: 2 });
    else out.push({ Path: p, Kind: (await existsIn(lowers, e.rel)) ? 0 : 1 });
  }
  return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}

export async function containerChanges(d: LayerDeps, ref: string): Promise<Change[]> {
  const { upper, lowers } = containerLayers(d, ref);
  return changesOf(upper, lowers);
}
