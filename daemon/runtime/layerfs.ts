// The few filesystem calls that unpacking a layer needs and Node cannot make: overlay whiteouts (a 0/0
// character device), device nodes and fifos, and extended attributes (trusted.overlay.opaque, file
// capabilities). They go through the addon, so they live here, on the runtime seam.
import { native } from './native';

export interface LayerFs {
  /** An overlayfs whiteout at `path` (mknod S_IFCHR 0/0). */
  mkWhiteout(path: string): Promise<void>;
  /** A character/block device or fifo; `mode` is the permission bits. */
  mknod(path: string, type: 'c' | 'b' | 'p', mode: number, major: number, minor: number): Promise<void>;
  /** lsetxattr: never follows a symlink at `path`. */
  setXattr(path: string, name: string, value: string): Promise<void>;
  /** lgetxattr: the value, or null when the attribute is not set. */
  getXattr(path: string, name: string): Promise<string | null>;
}

export const layerFs: LayerFs = {
  mkWhiteout: (p) => native.mkWhiteout(p),
  mknod: (p, type, mode, major, minor) => native.mknod(p, type, mode, major, minor),
  setXattr: (p, name, value) => native.setXattr(p, name, value),
  getXattr: (p, name) => native.getXattr(p, name),
};

/** Whether `dir` is an opaque directory of an overlay upper layer (its lower contents are hidden). */
export async function isOpaqueDir(dir: string): Promise<boolean> {
  return (await native.getXattr(dir, 'trusted.overlay.opaque')) === 'y';
}
