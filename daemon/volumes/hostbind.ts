// docker cp on a stopped container with volumes or binds: the container's root is mounted on the host
// for the copy, and its volumes and binds are bind-mounted into it for the time of the copy, so that a
// path under a volume reaches the volume (as it would inside the running container), read-only ones
// included. Sources (a volume's subpath beneath the volume) and mount points (beneath the container's
// root) are resolved by the addon and mounted by fd (runtime/inroot.ts), so neither the image's nor a
// volume's symlinks can make berthd mount over, or from, a host path. Unmounted in reverse.
import path from 'node:path';
import { Root, type Mounted } from '../runtime/inroot';
import type { MountPoint } from './mounts';

/** Where a mount point's files come from: a root and a path beneath it. A bind's source is the host path
 *  the user named (opened from its parent); a volume's is its directory, or its subpath beneath it. */
async function sourceOf(m: MountPoint): Promise<{ root: Root; at: string }> {
  if (m.Subpath) return { root: await Root.open(m.Source), at: m.Subpath };
  const clean = path.posix.normalize(m.Source);
  return clean === '/' ? { root: await Root.open('/'), at: '.' } : { root: await Root.open(path.posix.dirname(clean)), at: path.posix.basename(clean) };
}

/** Bind-mounts the container's volumes and binds into `rootPath`; resolves with the function that undoes it. */
export async function bindMountsInto(rootPath: string, mounts: MountPoint[]): Promise<() => Promise<void>> {
  const made: Mounted[] = [];
  const root = await Root.open(rootPath);
  const undo = async () => {
    for (const m of made.splice(0).reverse()) await m.unmount().catch(() => undefined);
  };
  try {
    for (const m of mounts) {
      if (m.Type === 'tmpfs' || m.Type === 'image' || !m.Source) continue;
      const src = await sourceOf(m).catch(() => undefined);
      if (!src) continue;
      try {
        const st = (await src.root.resolve(src.at, true)).stat;
        if (!st) continue;
        made.push(await root.bindFrom(src.root, src.at, m.Destination, { file: st.type !== 'dir', readOnly: !m.RW }));
      } finally {
        await src.root.close();
      }
    }
  } catch (e) {
    await undo();
    throw e;
  } finally {
    await root.close();
  }
  return undo;
}
