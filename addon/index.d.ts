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
  /** Per-device throttles (--device-read-bps …): "MAJOR:MINOR rbps|wbps|riops|wiops=N", N = 0 lifting
   *  the limit; v2 io.max, v1 blkio.throttle.*_device. */
  ioLimits?: string[];
  /** Device access at create, in order, later rules winning: "allow c 1:3 rwm", "deny a *:* rwm" (v1
   *  devices.allow/deny, v2 a device BPF program). Absent: every device. */
  devices?: string[];
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

// ---- networking (rtnetlink over a raw NETLINK_ROUTE socket) --------------------------------------------
// `netns` arguments name a namespace file (a bind mount such as <exec-root>/netns/<id>); absent or '' is
// berthd's own namespace. Work inside another namespace runs on a short-lived thread of its own, so no
// libuv pool thread is ever left there. Netlink failures reject with the errno of the kernel's answer
// (e.g. EEXIST, ENODEV), syscall 'netlink RTM_NEWLINK' and the like, path = the link's name, and the
// kernel's extended-ack text in the message when it gives one.

/** Makes `dir` a private bind mount of itself (if it is not a mount point yet), so namespace files under it
 *  do not propagate into containers' mount namespaces. Creates the directory if needed. */
export function netnsPrepareDir(dir: string): Promise<void>;

/** A new network namespace, bind-mounted on `path` (created if missing; an old mount there is detached
 *  first), with its loopback up. */
export function netnsCreate(path: string): Promise<void>;

/** umount2(path, MNT_DETACH) and unlink(path); neither a missing file nor a missing mount is an error. */
export function netnsDelete(path: string): Promise<void>;

/** Writes `value` to /proc/sys/<key> (key like 'net/ipv4/ip_forward'), inside `netns` when given. */
export function sysctlWrite(key: string, value: string, netns?: string): Promise<void>;

/** A bridge device (down, no address). Rejects with EEXIST when a link of that name exists. */
export function linkAddBridge(name: string, options?: { mtu?: number }): Promise<void>;

export interface VethSpec {
  /** The end made in `netns` (berthd's namespace when absent). */
  name: string;
  /** The other end's name, made directly inside `peerNetns` (e.g. 'eth0'). */
  peer: string;
  peerNetns?: string;
  peerMac?: string;
  mtu?: number;
  netns?: string;
}

/** A veth pair; both ends are down. Rejects with EEXIST when `name` (or `peer` in its namespace) exists. */
export function linkAddVeth(spec: VethSpec): Promise<void>;

export interface LinkChange {
  name: string;
  netns?: string;
  /** Set first: address, master, MTU; then up/down. */
  mac?: string;
  /** A bridge's name to attach to; '' detaches. */
  master?: string;
  mtu?: number;
  up?: boolean;
}

/** Changes a link (ENODEV when there is none). */
export function linkSet(change: LinkChange): Promise<void>;

/** Deletes a link (with a veth, its peer goes too). Resolves false when there was none by that name. */
export function linkDelete(name: string, netns?: string): Promise<boolean>;

export interface LinkInfo {
  index: number;
  name: string;
  /** 'veth', 'bridge', …; '' for devices without link info (lo). */
  kind: string;
  /** The name of the bridge this is a port of, or ''. */
  master: string;
  mac: string;
  mtu: number;
  up: boolean;
}

export function linkList(netns?: string): Promise<LinkInfo[]>;

/** Adds an IPv4 address ('172.17.0.2/16') to a link, with the subnet's broadcast address. replace: an
 *  address already there is not an error (EEXIST otherwise). */
export function addrAdd(spec: { name: string; address: string; netns?: string; replace?: boolean }): Promise<void>;

/** The default route via `gateway` on link `name`, replacing any default route there was. */
export function routeReplaceDefault(spec: { name: string; gateway: string; netns?: string }): Promise<void>;
