// Docker fills an empty volume from the image: when a container mounts a volume whose directory is empty
// over a path where its root file system has files, those files (with owners, modes, times and hard
// links) are copied into the volume first. The copy is the addon's (runtime/inroot.ts): the path is
// resolved beneath an fd of the root, and both trees are walked through fds with O_NOFOLLOW, so neither
// an image's symlinks nor a container that shares the volume and swaps its directories meanwhile can
// point the copy at the host.
import { withRoot } from '../runtime/inroot';

export async function copyUp(rootfs: string, destination: string, volumeData: string): Promise<void> {
  await withRoot(rootfs, (root) => withRoot(volumeData, (vol) => root.copyUpInto(destination, vol)));
}
