// VolumeOptions.Subpath (`--mount type=volume,volume-subpath=dir`) and ImageOptions.Subpath: a directory
// (or file) inside the volume or the mounted image is mounted instead of its root. It is looked up inside
// at every start (a volume's directory may be made after the create), through the volume's own symlinks,
// never above its root; it must exist.
//
// The shim mounts by path, and a path inside a volume can be swapped for a symlink by any container that
// shares the volume, between the look-up and the mount (moby's subpath CVE). So the subpath is resolved by
// the addon beneath an fd of the volume, and what it leads to is bind-mounted by its fd on a staging point
// in berthd's exec root, a path no container can reach; the shim mounts that. The staging mounts are
// detached as soon as the container has started: its mount namespace keeps its own copies.
import { readdir, rmdir, unlink, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { invalid } from '../errors/errors';
import { withRoot, errnoOf, type Mounted } from '../runtime/inroot';
import { isMounted } from '../lib/mounts';
import { tools } from '../lib/tools';
import type { MountPoint } from './mounts';

/** The mount points with each subpath staged, and how to take the staging mounts down again. */
export interface StagedSubpaths {
  mounts: MountPoint[];
  release(): Promise<void>;
}

function missing(m: MountPoint): Error {
  return invalid(m.Type === 'volume'
    ? `error while mounting volume '${m.Name}': subpath ${m.Subpath} does not exist in the volume`
    : `error while mounting image '${m.Image}': subpath ${m.Subpath} does not exist in the image`);
}

/** Stages every volume or image subpath of `mounts` under `stagingDir` (made if missing), named
 *  `<prefix>-<index>`. */
export async function stageSubpaths(mounts: MountPoint[], stagingDir: string, prefix: string): Promise<StagedSubpaths> {
  const made: Array<{ mount: Mounted; name: string }> = [];
  const release = async () => {
    for (const s of made.splice(0).reverse()) {
      await s.mount.unmount().catch(() => undefined);
      // Never recursive: should the unmount have failed, the volume's files are still under it.
      await rmdir(path.join(stagingDir, s.name)).catch(() => unlink(path.join(stagingDir, s.name))).catch(() => undefined);
    }
  };
  if (!mounts.some((m) => (m.Type === 'volume' || m.Type === 'image') && m.Subpath && m.Source)) return { mounts, release };
  await mkdir(stagingDir, { recursive: true, mode: 0o700 });
  try {
    // One at a time: should one fail, every mount made before it is known to `release`.
    const out = await withRoot(stagingDir, async (staging) => {
      const list: MountPoint[] = [];
      for (const [i, m] of mounts.entries()) {
        if ((m.Type !== 'volume' && m.Type !== 'image') || !m.Subpath || !m.Source) {
          list.push(m);
          continue;
        }
        const name = `${prefix}-${i}`;
        await clearStagingPoint(stagingDir, name);
        const mount = await withRoot(m.Source, async (src) => {
          const r = await src.resolve(m.Subpath!, true).catch(() => ({ stat: null }));
          if (!r.stat) throw missing(m);
          return staging.bindFrom(src, m.Subpath!, name, { file: r.stat.type !== 'dir' }).catch((e) => {
            if (errnoOf(e) === 'ENOENT') throw missing(m);
            throw e;
          });
        });
        made.push({ mount, name });
        list.push({ ...m, Source: path.join(stagingDir, name) });
      }
      return list;
    });
    return { mounts: out, release };
  } catch (e) {
    await release();
    throw e;
  }
}

/** A staging point left mounted by a berthd that died during a start: detached and removed, never
 *  recursively. */
async function clearStagingPoint(stagingDir: string, name: string): Promise<void> {
  const p = path.join(stagingDir, name);
  if (isMounted(p)) await tools.umount(['-l', p]).catch(() => undefined);
  await rmdir(p).catch(() => unlink(p)).catch(() => undefined);
}

/** At berthd's start: no start is under way, so every staging point is a leftover. */
export async function sweepStaging(stagingDir: string): Promise<void> {
  for (const name of await readdir(stagingDir).catch(() => [] as string[])) await clearStagingPoint(stagingDir, name);
}

