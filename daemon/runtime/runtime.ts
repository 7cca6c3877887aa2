// THE seam between berthd and the host: overlay mounts and cgroups through the addon, container processes
// through berth-shim. Services call this; nothing else in daemon/ touches the addon or the shims.
import { native } from './native';
import type { CgroupLayout, CgroupResources } from '../../addon/index';
import { spawnShim, connectShim, readExitFile, shimAlive, type ShimSpawnOptions, type ShimConnection, type ExitInfo } from './supervisor';

export type { CgroupLayout, CgroupResources, ShimConnection, ExitInfo, ShimSpawnOptions };

export class Runtime {
  readonly cgroups: CgroupLayout;

  constructor() {
    this.cgroups = native.cgroupDetect();
  }

  get cgroupVersion(): '1' | '2' {
    return this.cgroups.version === 2 ? '2' : '1';
  }

  mountRootfs(lowerdirs: string[], upperdir: string, workdir: string, target: string): Promise<void> {
    return native.mountOverlay({ lowerdirs, upperdir, workdir, target });
  }

  unmount(target: string): Promise<void> {
    return native.unmount(target, true);
  }

  createCgroup(relPath: string, res: CgroupResources): Promise<string[]> {
    return native.cgroupCreate(this.cgroups, relPath, res);
  }

  updateCgroup(relPath: string, res: CgroupResources): Promise<void> {
    return native.cgroupUpdate(this.cgroups, relPath, res);
  }

  removeCgroup(relPath: string): Promise<void> {
    return native.cgroupRemove(this.cgroups, relPath);
  }

  spawn(o: ShimSpawnOptions) {
    return spawnShim(o);
  }

  connect(stateDir: string) {
    return connectShim(stateDir);
  }

  shimAlive(stateDir: string, id: string): boolean {
    return shimAlive(stateDir, id);
  }

  exitStatus(stateDir: string) {
    return readExitFile(stateDir);
  }
}
