// THE seam between berthd and the host: overlay mounts and cgroups through the addon, container processes
// through berth-shim. Services call this; nothing else in daemon/ touches the addon or the shims.
import { native } from './native';
import { readCgroupStats, readCgroupPids, type CgroupStats } from './cgstats';
import { spawnShim, spawnExec, refillWaitingShim, onSpareShim, cgroupDirsOf, connectShim, readExitFile, shimAlive, shimPids } from './supervisor';
import type { CgroupLayout, CgroupResources, CgroupDriver, ContainerRuntime, ShimConnection, ExitInfo, ShimSpawnOptions, ExecSpawnOptions, Spawned } from './types';
import { SystemdCgroups, systemdBooted, validSlice, slicePath, containerCgroup, SYSTEMD_DEFAULT_SLICE } from './systemd';
import { invalid } from '../errors/errors';
import path from 'node:path';
import { KernelFeatures } from './kernel';
import { systemError } from '../errors/errors';

export type { CgroupLayout, CgroupResources, CgroupDriver, ContainerRuntime, ShimConnection, ExitInfo, ShimSpawnOptions, ExecSpawnOptions, Spawned };

export type { CgroupStats };

export interface RuntimeOptions {
  /** native.cgroupdriver from --exec-opt / daemon.json exec-opts; undefined = as Docker picks it. */
  cgroupDriver?: string;
  /** The daemon's --cgroup-parent (a path for cgroupfs, a slice for systemd). */
  cgroupParent: string;
  /** Problems that must not fail the operation that met them (a shim left in berth.service). */
  warn?: (msg: string, err: unknown) => void;
}

/** The cgroupfs driver's default parent: under the systemd driver it means "not given". */
const CGROUPFS_DEFAULT_PARENT = 'berth';

export class Runtime implements ContainerRuntime {
  readonly cgroups: CgroupLayout;
  readonly cgroupDriver: CgroupDriver;
  private readonly systemd: SystemdCgroups | undefined;
  private readonly defaultSlice: string;
  private readonly warn: (msg: string, err: unknown) => void;
  /** Set by probeKernel() when berthd starts; until then every feature is taken to be there. */
  kernel: KernelFeatures | undefined;

  constructor(private readonly opts: RuntimeOptions = { cgroupParent: CGROUPFS_DEFAULT_PARENT }) {
    this.cgroups = native.cgroupDetect();
    this.warn = opts.warn ?? (() => {});
    // Docker's choice: systemd when it is PID 1 on a cgroup v2 host, cgroupfs elsewhere.
    const wanted = opts.cgroupDriver ?? (this.cgroups.version === 2 && systemdBooted() ? 'systemd' : 'cgroupfs');
    if (wanted !== 'cgroupfs' && wanted !== 'systemd') {
      throw new Error(`native.cgroupdriver option ${wanted} not supported (use cgroupfs or systemd)`);
    }
    this.cgroupDriver = wanted;
    this.defaultSlice = SYSTEMD_DEFAULT_SLICE;
    if (wanted === 'systemd') {
      if (this.cgroups.version !== 2) throw new Error('the systemd cgroup driver needs cgroup v2 (this host mounts cgroup v1 controllers); use native.cgroupdriver=cgroupfs');
      if (!systemdBooted()) throw new Error('the systemd cgroup driver needs systemd as the init system (no /run/systemd/system); use native.cgroupdriver=cgroupfs');
      if (opts.cgroupParent !== CGROUPFS_DEFAULT_PARENT) {
        if (!validSlice(opts.cgroupParent)) throw new Error(`cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice", not ${JSON.stringify(opts.cgroupParent)}`);
        this.defaultSlice = opts.cgroupParent;
      }
      this.systemd = new SystemdCgroups(this.cgroups.unified);
      // The shim kept waiting for the next exec ends with berthd, but until then it is no part of the
      // service either.
      onSpareShim((pid) => void this.adopt('exec-wait', pid));
    }
  }

  /** A container's cgroup, relative to the hierarchies' mount points: cgroupfs "<parent>/<id>", the
   *  parent being HostConfig.CgroupParent (taken from the hierarchy's root, as runc takes it; the kubelet
   *  asks for /kubepods/burstable/pod<uid>; a slice name maps to systemd's path for it) or else the
   *  daemon's; systemd "<slice path>/berth-<id>.scope", in the slice HostConfig.CgroupParent names, else
   *  the daemon's (system.slice). */
  cgroupPathFor(id: string, containerParent?: string): string {
    if (!this.systemd) {
      // A slice name (the kubelet's and cri-dockerd's under --cgroup-driver=systemd) stands for the path
      // systemd would give it, so that the same pod cgroups come out without systemd; any other parent is
      // normalized from the root, so that `..` cannot climb out of the hierarchy's mount.
      const parent = !containerParent ? ''
        : validSlice(containerParent) ? slicePath(containerParent)
          : path.posix.normalize(`/${containerParent}`).replace(/^\/+|\/+$/g, '');
      return `${parent || this.opts.cgroupParent}/${id}`;
    }
    if (containerParent && !validSlice(containerParent)) {
      throw invalid(`cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"`);
    }
    return containerCgroup(containerParent || this.defaultSlice, id);
  }

  get cgroupVersion(): '1' | '2' {
    return this.cgroups.version === 2 ? '2' : '1';
  }

  /** `idmap`: the lowers are seen through idmapped mounts of that mapping (--userns-remap). */
  mountRootfs(lowerdirs: string[], upperdir: string, workdir: string, target: string, idmap?: { uidMap: string; gidMap: string }): Promise<void> {
    return native.mountOverlay({ lowerdirs, upperdir, workdir, target, ...(idmap ? { idmap } : {}) });
  }

  unmount(target: string): Promise<void> {
    return native.unmount(target, true);
  }

  /** Probes the kernel's newer interfaces once (scratch: an absolute path the probe may create and removes). */
  async probeKernel(scratch: string): Promise<KernelFeatures> {
    this.kernel = await KernelFeatures.probe(scratch, this.cgroups.version === 2);
    return this.kernel;
  }

  /** Makes the container's cgroup with its limits (systemd: starts its scope first) and returns the
   *  directories its init must join. */
  async createCgroup(relPath: string, res: CgroupResources): Promise<string[]> {
    // The v2 device filter has no way around bpf(2): the start fails with the sentence berthd logged at
    // its own start, not with ENOSYS from the middle of it.
    const refusal = res.devices && this.kernel?.refusal('bpf');
    if (refusal) throw systemError(refusal);
    if (!this.systemd) return native.cgroupCreate(this.cgroups, relPath, res);
    const { slice, id } = scopeOf(relPath);
    await this.systemd.startScope(slice, id, res);
    try {
      // The scope exists: the addon writes every limit (systemd's properties and the rest) and the
      // device program into its files, as it does for a cgroupfs cgroup.
      return await native.cgroupCreate(this.cgroups, relPath, res);
    } catch (e) {
      await this.systemd.stop(relPath).catch(() => {});
      throw e;
    }
  }

  async updateCgroup(relPath: string, res: CgroupResources): Promise<void> {
    await native.cgroupUpdate(this.cgroups, relPath, res);
    await this.systemd?.update(relPath, res);
  }

  async removeCgroup(relPath: string): Promise<void> {
    await this.systemd?.stop(relPath);
    // What systemd left (nothing, normally), and the whole of a cgroupfs cgroup.
    await native.cgroupRemove(this.cgroups, relPath);
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

  async spawn(o: ShimSpawnOptions): Promise<Spawned> {
    let r: Spawned;
    try {
      r = await spawnShim(o);
    } finally {
      // The container's init is in its scope now (or will never be): the scope's holder can go.
      for (const d of o.cgroupDirs) this.systemd?.release(path.relative(this.cgroups.unified, d));
    }
    await this.adopt(o.id, r.shimPid);
    return r;
  }

  /** One more process in a running container, under its own `berth-shim exec`. */
  async spawnExec(o: ExecSpawnOptions): Promise<Spawned> {
    const r = await spawnExec(o);
    await this.adopt(o.id, r.shimPid);
    return r;
  }

  /** systemd: the shim leaves berth.service for a scope of its own. A failure leaves it where it is,
   *  still working: the container runs; systemd will name it a left-over of the service. */
  private async adopt(id: string, shimPid: number): Promise<void> {
    if (!this.systemd || !shimPid) return;
    await this.systemd.adoptShim(`${id}-${shimPid}`, shimPid).catch((e) => this.warn('could not move the shim out of berthd\'s cgroup', e));
  }

  /** An exec ended: the shim ready for the next one is made soon (`ms`). */
  execEnded(shimPath: string, ms: number) {
    refillWaitingShim(shimPath, ms);
  }

  /** The cgroup directories a (container init) process is in, one per hierarchy. */
  cgroupDirsOf(pid: number): string[] {
    return cgroupDirsOf(pid);
  }

  connect(stateDir: string): Promise<ShimConnection | null> {
    return connectShim(stateDir);
  }

  shimAlive(stateDir: string, id: string): boolean {
    return shimAlive(stateDir, id);
  }

  shimPids(stateDir: string): { shimPid: number; pid: number } | null {
    return shimPids(stateDir);
  }

  exitStatus(stateDir: string): ExitInfo | null {
    return readExitFile(stateDir);
  }
}

/** "<slice path>/berth-<id>.scope" → its slice and container id. */
function scopeOf(relPath: string): { slice: string; id: string } {
  const unit = path.basename(relPath);
  const parent = path.dirname(relPath);
  return { slice: parent === '.' ? '-.slice' : path.basename(parent), id: unit.replace(/^berth-/, '').replace(/\.scope$/, '') };
}
