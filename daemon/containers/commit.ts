// docker commit (POST /commit): the container's read-write layer becomes a new layer on top of its image's,
// and a new image is written whose config is the container's (with -c changes applied), with a history
// entry for the new layer, `author` and `comment`, and the image as parent.
//
// The layer is packed from overlay2/<layerId>/diff (pack.ts): overlay whiteouts become `.wh.` entries.
// Opaque directories (trusted.overlay.opaque) are not detected yet: reading that xattr needs an lgetxattr in
// the addon, which it lacks; a directory that was removed and made again therefore keeps the image's old
// entries under it in the committed image.
//
// A running container is paused (cgroup freezer) while its layer is read, unless pause=0, so that the
// layer is consistent; it is unpaused afterwards, also on failure.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { nowNs, rfc3339Nano } from '../lib/time';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ContainerService } from './service';
import type { ImageService } from '../images/service';
import { conflict } from '../errors/errors';
import { packDir } from '../storage/layers/pack';
import { isOpaqueDir } from '../runtime/layerfs';
import { archiveIds } from '../runtime/userns';
import { applyChanges } from '../images/changes';
import { parseRepoTag } from '../images/import';
import { goArch } from '../lib/host';
import { pauseContainer, unpauseContainer } from './pause';
import type { ContainerRecord } from './model';

/** What docker commit needs: the container (paused meanwhile), the image service to write the image. */
export interface CommitDeps {
  readonly containers: ContainerService;
  readonly images: Pick<ImageService, 'get' | 'commitImage'>;
  readonly log: Logger;
}

export interface CommitOptions {
  container: string;
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  changes: string[];
  pause: boolean;
  /** A container config from the request body (docker-py's `conf`), merged over the container's. */
  config?: Record<string, unknown>;
}

/** The container's read-write layer (overlay upper directory) as a layer tar: whiteouts and opaque
 *  directories as `.wh.` entries. docker commit and docker build (daemon/build) use it. */
export function packUpper(d: { readonly containers: Pick<ContainerService, 'layerDir' | 'remapOf'> }, rec: ContainerRecord): AsyncIterable<Buffer> {
  const upper = path.join(d.containers.layerDir(rec), 'diff');
  const remap = d.containers.remapOf(rec);
  return packDir(upper, {
    whiteouts: true, isOpaque: (rel) => isOpaqueDir(path.join(upper, rel)), ...(remap ? { ids: archiveIds(remap) } : {}),
  }) as unknown as AsyncIterable<Buffer>;
}

export async function commitContainer(d: CommitDeps, o: CommitOptions): Promise<string> {
  const live = d.containers.lookup(o.container);
  const rec = live.rec;
  if (rec.state.status === 'removing' || rec.state.status === 'dead') throw conflict(`container ${rec.id} is marked for removal and cannot be committed`);
  const named = parseRepoTag(o.repo, o.tag);
  const base = d.images.get(rec.imageId);
  const containerConfig: any = JSON.parse(JSON.stringify(rec.config ?? {}));
  if (o.config && typeof o.config === 'object') {
    for (const [k, v] of Object.entries(o.config)) if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) containerConfig[k] = v;
  }
  const newConfig = applyChanges(JSON.parse(JSON.stringify(containerConfig)), o.changes);

  let paused = false;
  if (o.pause && rec.state.status === 'running') {
    try {
      await pauseContainer(d.containers, rec.id);
      paused = true;
    } catch (e) {
      d.log.warn({ err: e, id: rec.id }, 'could not pause the container for commit; committing it running');
    }
  }
  try {
    const img = await d.images.commitImage(base, packUpper(d, rec), (diffId) => {
      const now = rfc3339Nano(nowNs());
      const cfg: any = base.config ?? {};
      const history = Array.isArray(cfg.history) ? [...cfg.history] : [];
      const cmd = Array.isArray(containerConfig.Cmd) ? containerConfig.Cmd : [rec.path, ...rec.args];
      const h: any = { created: now, created_by: cmd.join(' ') };
      if (o.author) h.author = o.author;
      if (o.comment) h.comment = o.comment;
      history.push(h);
      const out: any = {
        architecture: cfg.architecture ?? goArch(),
        ...(o.author ? { author: o.author } : {}),
        ...(o.comment ? { comment: o.comment } : {}),
        config: newConfig,
        container: rec.id,
        container_config: containerConfig,
        created: now,
        history,
        os: cfg.os ?? 'linux',
        rootfs: { type: 'layers', diff_ids: [...(cfg.rootfs?.diff_ids ?? []), diffId] },
      };
      if (cfg.variant) out.variant = cfg.variant;
      return out;
    }, named);
    return img.id;
  } finally {
    if (paused) await unpauseContainer(d.containers, rec.id).catch((e) => d.log.warn({ err: e, id: rec.id }, 'unpause after commit failed'));
  }
}
