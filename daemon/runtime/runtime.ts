// THE seam between berthd and the host: overlay mounts and cgroups through the addon, container processes
// through berth-shim. Services call this; nothing else in daemon/ touches the addon or the shims.
import { native } from './native';
import { readCgroupStats, readCgroupPids, type CgroupStats } from './cgstats';
import type { CgroupLayout, CgroupResources } from '../../addon/index';
import { KernelFeatures } from './kernel';
import { systemError } from '../errors/errors';
import { spawnShim, spawnExec, refillWaitingShim, cgroupDirsOf, connectShim, readExitFile, shimAlive, shimPids, type ShimSpawnOptions, type ExecSpawnOptions, type ShimConnection, type ExitInfo } from './supervisor';

export type { CgroupLayout, CgroupResources, ShimConnection, ExitInfo, ShimSpawnOptions, ExecSpawnOptions };

export type { CgroupStats };

export class Runtime {
  readonly cgroups: CgroupLayout;
  /** Set by probeKernel() when berthd starts; until then every feature is taken to be there. */
  kernel: KernelFeatures | undefined;

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

  /** Probes the kernel's newer interfaces once (scratch: an absolute path the probe may create and removes). */
  async probeKernel(scratch: string): Promise<KernelFeatures> {
    this.kernel = await KernelFeatures.probe(scratch, this.cgroups.version === 2);
    return this.kernel;
  }

  createCgroup(relPath: string, res: CgroupResources): Promise<string[]> {
    // The v2 device filter has no way around bpf(2): the start fails with the sentence berthd logged at
    // its own start, not with ENOSYS from the middle of it.
    const refusal = res.devices && this.kernel?.refusal('bpf');
    if (refusal) return Promise.reject(systemError(refusal));
    return native.cgroupCreate(this.cgroups, relPath, res);
  }

  updateCgroup(relPath: string, res: CgroupResources): Promise<void> {
    return native.cgroupUpdate(this.cgroups, relPath, res);
  }

  removeCgroup(relPath: string): Promise<void> {
    return native.cgroupRemove(this.cgroups, relPath);
  }

  /** Pause (true) or unpause (false) every process of the cgroup. */
  freezeCgroup(relPath: string, frozen: boolean): Promise<void> {
    return native.cgroupFreeze(this.cgroups, relPath, frozen);
  }

  /** The pids in the container's cgroup (cgroup.procs). */
  cgroupPids(relPath: string): Promise<number[]> {
    return readCgroupPids(this.cgroups, relPath);
  }

  /** CPU, memory, pids and block I/O counters of the cgroup, from the v1 or v2 control files. */
  cgroupStats(relPath: string): Promise<CgroupStats> {
    return readCgroupStats(this.cgroups, relPath);
  }

  spawn(o: ShimSpawnOptions) {
    return spawnShim(o);
  }

  /** One more process in a running container, under its own `berth-shim exec`. */
  spawnExec(o: ExecSpawnOptions) {
    return spawnExec(o);
  }

  /** An exec ended: the shim ready for the next one is made soon (`ms`). */
  execEnded(shimPath: string, ms: number) {
    refillWaitingShim(shimPath, ms);
  }

  /** The cgroup directories a (container init) process is in, one per hierarchy. */
  cgroupDirsOf(pid: number): string[] {
    return cgroupDirsOf(pid);
  }

  connect(stateDir: string) {
    return connectShim(stateDir);
  }

  shimAlive(stateDir: string, id: string): boolean {
    return shimAlive(stateDir, id);
  }

  shimPids(stateDir: string) {
    return shimPids(stateDir);
  }

  exitStatus(stateDir: string) {
    return readExitFile(stateDir);
  }
}
