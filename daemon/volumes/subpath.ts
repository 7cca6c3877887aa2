// VolumeOptions.Subpath (`--mount type=volume,volume-subpath=dir`): a directory inside the volume is
// mounted instead of the volume's root. It is looked up inside the volume at every start (the directory
// may be made after the create), through the volume's own symlinks, never above its root; it must exist.
import { stat } from 'node:fs/promises';
import { invalid } from '../errors/errors';
import { resolveInRoot } from '../containers/archive';
import type { MountPoint } from './mounts';

/** The mount points with each volume subpath turned into the host path it names. */
export async function resolveSubpaths(mounts: MountPoint[]): Promise<MountPoint[]> {
  return Promise.all(mounts.map(async (m) => {
    if (m.Type !== 'volume' || !m.Subpath || !m.Source) return m;
    const { host } = await resolveInRoot(m.Source, m.Subpath, true);
    if (!(await stat(host).catch(() => undefined))) {
      throw invalid(`error while mounting volume '${m.Name}': subpath ${m.Subpath} does not exist in the volume`);
    }
    return { ...m, Source: host };
  }));
}
