// Docker fills an empty volume from the image: when a container mounts a volume whose directory is empty
// over a path where its root file system has files, those files (with owners, modes and times) are copied
// into the volume first. The path is resolved inside the root, so an image's symlinks cannot point the copy
// at the host.
import { execFile } from 'node:child_process';
import { lstat, readdir } from 'node:fs/promises';
import { resolveInRoot } from '../containers/archive';

export async function copyUp(rootfs: string, destination: string, volumeData: string): Promise<void> {
  if ((await readdir(volumeData).catch(() => ['?'])).length > 0) return;
  const { host } = await resolveInRoot(rootfs, destination, true);
  const st = await lstat(host).catch(() => undefined);
  if (!st?.isDirectory() || (await readdir(host)).length === 0) return;
  await new Promise<void>((resolve, reject) => {
    execFile('cp', ['-a', '--', `${host}/.`, `${volumeData}/`], (err, _o, stderr) => (err ? reject(new Error(`copying ${destination} into the volume: ${stderr.trim() || err.message}`)) : resolve()));
  });
}
