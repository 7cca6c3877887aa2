// The exact surface of the berth N-API addon (addon/build/Release/berth.node).
// Only daemon/runtime/ may import it. Every slow call runs off the JS thread (Napi::AsyncWorker) and
// returns a Promise. Errors are Error objects with `code` (errno name, e.g. 'EBUSY'), `errno` (number),
// `syscall` and `path` where one applies.

export interface OverlayMount {
  /** Lower layer directories, topmost first (overlayfs `lowerdir` order). */
  lowerdirs: string[];
  upperdir: string;
  workdir: string;
  /** Mount point; must exist. */
  target: string;
}

/** mount -t overlay overlay -o lowerdir=…,upperdir=…,workdir=… target. Long option strings (many layers)
 *  are handled by mounting from a common parent with relative paths. */
export function mountOverlay(spec: OverlayMount): Promise<void>;

/** umount2(target, MNT_DETACH when detach). Not mounted (EINVAL) or missing (ENOENT) is not an error. */
export function unmount(target: string, detach?: boolean): Promise<void>;

export interface CgroupLayout {
  /** 1 when the v1 controllers are mounted (hybrid hosts count as 1), 2 on a pure unified host. */
  version: 1 | 2;
  /** v1: controller name → hierarchy mount point (e.g. memory → /sys/fs/cgroup/memory; cpu and cpuacct
   *  may share one). v2: empty. */
  controllers: Record<string, string>;
  /** v2: the unified mount point (e.g. /sys/fs/cgroup). v1: the name=systemd or unified mount if any. */
  unified: string;
}

/** Reads /proc/self/mountinfo (or `mountinfoPath`, for tests against a fake tree) and works out the
 *  cgroup layout. */
export function cgroupDetect(mountinfoPath?: string): CgroupLayout;

export interface CgroupResources {
  memory?: number;            // bytes, 0 = unlimited
  memorySwap?: number;        // bytes of memory+swap, -1 = unlimited, 0 = unset
  memoryReservation?: number;
  pidsLimit?: number;         // 0 or -1 = unlimited
  cpuShares?: number;         // v1 cpu.shares; v2 cpu.weight is derived from it
  cpuQuota?: number;          // µs per period, 0 = unset
  cpuPeriod?: number;         // µs
  cpusetCpus?: string;
  cpusetMems?: string;
  blkioWeight?: number;
}

/** Creates the container's cgroup `relPath` (e.g. "berth/<id>") in every hierarchy of `layout`, writes the
 *  resources, and returns the directories created (the shim joins the container's pid to each). On v1 the
 *  cpuset of a new directory is copied from its parent before use. */
export function cgroupCreate(layout: CgroupLayout, relPath: string, res: CgroupResources): Promise<string[]>;

/** Applies resources to an existing cgroup (docker update). */
export function cgroupUpdate(layout: CgroupLayout, relPath: string, res: CgroupResources): Promise<void>;

/** Kills whatever is left in the cgroup (SIGKILL), then removes the directories; missing is not an error. */
export function cgroupRemove(layout: CgroupLayout, relPath: string): Promise<void>;

/** Pause (frozen = true) or unpause a container's cgroup: v1 freezer.state FROZEN/THAWED, v2 cgroup.freeze
 *  1/0. Resolves once the kernel reports the new state (v1 freezer.state, v2 "frozen 0|1" in cgroup.events);
 *  rejects with EBUSY (after putting a half-frozen cgroup back to thawed) when that takes over 5 s. */
export function cgroupFreeze(layout: CgroupLayout, relPath: string, frozen: boolean): Promise<void>;

/** mknod(path, S_IFCHR, makedev(0,0)): an overlayfs whiteout. */
export function mkWhiteout(path: string): Promise<void>;

/** mknod for device entries found in layer tars. type: 'c' | 'b' | 'p'. */
export function mknod(path: string, type: 'c' | 'b' | 'p', mode: number, major: number, minor: number): Promise<void>;

/** lsetxattr(path, name, value) (e.g. trusted.overlay.opaque = "y"). */
export function setXattr(path: string, name: string, value: string): Promise<void>;

/** lgetxattr(path, name): the value, or null when the attribute is not set (e.g. reading
 *  trusted.overlay.opaque of a container's upper dir for commit). */
export function getXattr(path: string, name: string): Promise<string | null>;
