// VolumeOptions.Subpath (`--mount type=volume,volume-subpath=dir`) and ImageOptions.Subpath: a directory
// inside the volume (or the mounted image) is mounted instead of its root. It is looked up inside at every
// start (a volume's directory may be made after the create), through the volume's own symlinks, never
// above its root; it must exist.
import { stat } from 'node:fs/promises';
import { invalid } from '../errors/errors';
import { resolveInRoot } from '../containers/archive';
import type { MountPoint } from './mounts';

/** The mount points with each volume subpath turned into the host path it names. */
export async function resolveSubpaths(mounts: MountPoint[]): Promise<MountPoint[]> {
  return Promise.all(mounts.map(async (m) => {
    if ((m.Type !== 'volume' && m.Type !== 'image') || !m.Subpath || !m.Source) return m;
    const { host } = await resolveInRoot(m.Source, m.Subpath, true);
    if (!(await stat(host).catch(() => undefined))) {
      throw invalid(m.Type === 'volume'
        ? `error while mounting volume '${m.Name}': subpath ${m.Subpath} does not exist in the volume`
        : `error while mounting image '${m.Image}': subpath ${m.Subpath} does not exist in the image`);
    }
    return { ...m, Source: host };
  }));
}
