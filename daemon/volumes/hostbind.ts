// docker cp on a stopped container with volumes or binds: the container's root is mounted on the host
// for the copy, and its volumes and binds are bind-mounted into it for the time of the copy, so that a
// path under a volume reaches the volume (as it would inside the running container), read-only ones
// included. The mount points are resolved inside the root; what was mounted is unmounted in reverse.
import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { resolveInRoot } from '../containers/archive';
import type { MountPoint } from './mounts';
import { runTool } from '../lib/mounts';

/** Bind-mounts the container's volumes and binds into `root`; resolves with the function that undoes it. */
export async function bindMountsInto(root: string, mounts: MountPoint[]): Promise<() => Promise<void>> {
  const made: string[] = [];
  const undo = async () => {
    for (const p of made.reverse()) await runTool('umount', [p]).catch(() => runTool('umount', ['-l', p]).catch(() => undefined));
  };
  try {
    for (const m of mounts) {
      if (m.Type === 'tmpfs' || m.Type === 'image' || !m.Source) continue;
      const src = await stat(m.Source).catch(() => undefined);
      if (!src) continue;
      const { host } = await resolveInRoot(root, m.Destination, true);
      if (src.isDirectory()) {
        await mkdir(host, { recursive: true });
      } else {
        await mkdir(path.dirname(host), { recursive: true });
        await (await open(host, 'a')).close();
      }
      await runTool('mount', ['--bind', m.Source, host]);
      made.push(host);
      if (!m.RW) await runTool('mount', ['-o', 'remount,bind,ro', host]);
    }
  } catch (e) {
    await undo();
    throw e;
  }
  return undo;
}
