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
  /** --userns-remap: each lower dir is seen through an idmapped mount of this mapping (uid_map/gid_map
   *  lines "inside outside count"), attached on `<target>.idmap/<n>` only while the overlay is made. */
  idmap?: { uidMap: string; gidMap: string };
}

/** An overlay mount: the new mount API with one `lowerdir+` per layer where the kernel takes it (6.8), else
 *  mount(2) with lowerdir=…,upperdir=…,workdir=… (long option strings, many layers: each lower dir as a
 *  short /proc/self/fd/N; E2BIG when even those exceed a page). A kernel before 6.5 that refuses
 *  `lowerdir+` only when the superblock is made is detected there and sent to mount(2). */
export function mountOverlay(spec: OverlayMount): Promise<void>;

/** Whether an overlay over an idmapped lower dir works here (Linux 5.19 and a file system with idmapped
 *  mounts): made under `scratch` (created and removed), its root-owned directory must show as `hostUid`.
 *  Rejects with the kernel's errno and words otherwise. */
export function probeIdmappedOverlay(scratch: string, uidMap: string, gidMap: string, hostUid: number): Promise<void>;

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
  /** Device access at create, in order, later rules winning: "allow c 1:3 rwm", "deny a *:* rwm" (v1
   *  devices.allow/deny, v2 a device BPF program). Absent: every device. */
  devices?: string[];
  /** Cgroup files written as given after the fields above (v1: in `controller`'s hierarchy; v2: the
   *  container's directory), e.g. { controller: 'blkio', file: 'blkio.throttle.read_bps_device', value: '8:0 1048576' }. */
  files?: Array<{ controller: string; file: string; value: string }>;
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

/** A bridge device (down, no address), in `netns` (berthd's namespace when absent). Rejects with EEXIST
 *  when a link of that name exists. */
export function linkAddBridge(name: string, options?: { mtu?: number; netns?: string }): Promise<void>;

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

/** Adds an IPv4 address ('172.17.0.2/16', with the subnet's broadcast address) or an IPv6 one
 *  ('fd00::2/64', without duplicate address detection) to a link. replace: an address already there is not
 *  an error (EEXIST otherwise). */
export function addrAdd(spec: { name: string; address: string; netns?: string; replace?: boolean }): Promise<void>;

/** The default route via `gateway` on link `name`, replacing any default route there was (the IPv6 one
 *  when `gateway` is an IPv6 address). */
export function routeReplaceDefault(spec: { name: string; gateway: string; netns?: string }): Promise<void>;

// ---- kernel features ----------------------------------------------------------------------------------

export interface KernelFeature {
  /** The interface, e.g. 'close_range(CLOSE_RANGE_CLOEXEC)', 'openat2', 'overlayfs lowerdir+ through fsconfig'. */
  name: string;
  /** The mainline release that brought it ('5.11'). */
  since: string;
  available: boolean;
  /** Why not: the errno text or the kernel's own message. '' when available. */
  detail: string;
}

/** Probes, in this process (so under any seccomp filter it runs in), each newer kernel interface berth uses,
 *  with arguments that change nothing. `scratch` (absolute) is created for an overlay probe of two empty
 *  dirs (made, never mounted) and removed again; the answer about `lowerdir+` is also what mountOverlay
 *  goes by from then on. */
export function kernelFeatures(scratch: string): Promise<KernelFeature[]>;

/** An exclusive flock(2) on the open file `fd`, without waiting: true when this process now holds it,
 *  false when another open file description holds it (EWOULDBLOCK). Other errors throw (code, errno). */
export function flockTry(fd: number): boolean;

// ---- files inside a container's root or a volume (src/fs/inroot.h) -----------------------------------
// A root is a directory fd (from rootOpen). Every `path` is resolved beneath it: absolute paths and
// symlinks start again at the root, `..` never climbs above it, /proc magic links are never followed
// (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, or, before Linux 5.6 or with BERTH_INROOT_WALK=1 in
// the environment, a walk of O_PATH | O_NOFOLLOW opens that reads each symlink itself). Whatever is then
// done is done through an fd or by one name relative to the fd of its parent, never by a host path. Fds
// handed back (roots, files, mounts) are plain process fds: the caller closes them (fs.close).

export interface InRootStat {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';
  /** st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  rdevMajor: number;
  rdevMinor: number;
  mtimeSec: number;
  mtimeNsec: number;
}

/** An O_PATH directory fd of `path` (a directory berthd controls, or /proc/PID/root). With `owner`, the
 *  path belongs to that process, and it must still be the process that started at `startTime` (field 22 of
 *  /proc/PID/stat) once the fd is open: otherwise ESRCH, never a root of whatever has the pid now. */
export function rootOpen(path: string, owner?: { pid: number; startTime: string }): Promise<number>;

/** 'openat2' or 'walk': how paths beneath a root are resolved here. */
export function inRootResolver(): 'openat2' | 'walk';

/** Where `path` leads (by the component walk): the clean path inside the root after every symlink
 *  (components that do not exist kept as given) and its lstat, or null when it does not exist.
 *  follow: whether a symlink as the last component is followed. */
export function inRootResolve(root: number, path: string, follow?: boolean): Promise<{ inner: string; stat: InRootStat | null }>;

/** The entries of directory `path` (its last component not followed), lstat'ed, sorted by name. */
export function inRootList(root: number, path: string): Promise<Array<{ name: string; stat: InRootStat }>>;

/** Regular file `path` (last component not followed) opened for reading. EINVAL for anything else. */
export function inRootOpenFile(root: number, path: string): Promise<{ fd: number; stat: InRootStat }>;

/** The text of symlink `path`. */
export function inRootReadlink(root: number, path: string): Promise<string>;

/** Synchronous: up to `limit` bytes of regular file `path` beneath the directory `rootPath` (symlinks
 *  followed inside it), or null when there is no such file. For small files on latency-bound paths. */
export function inRootReadFileSync(rootPath: string, path: string, limit: number): string | null;

/** mkdir -p of `path`; directories made get `owner`'s mode and ids. ENOTDIR when something on the way is
 *  not a directory. */
export function inRootMkdirAll(root: number, path: string, owner: { mode: number; uid: number; gid: number }): Promise<void>;

export interface PlaceSpec {
  /** Its last component is never followed; what is there is replaced (a directory over a directory is kept). */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'link';
  /** Permission bits (set after the owner, so set-id bits stay). */
  mode: number;
  uid: number;
  gid: number;
  /** symlink: its text. link: the existing file's path in the root (a final symlink not followed). */
  linkname?: string;
  /** Seconds. Set here on symlinks and directories; a file's times are the caller's, after its data. */
  mtime?: number;
  /** Missing parents are made with these; absent: ENOENT. */
  parents?: { mode: number; uid: number; gid: number } | null;
  /** EISDIR instead of replacing a directory with a non-directory, ENOTDIR for the reverse. */
  noOverwriteDirNonDir?: boolean;
}

/** Puts one object at spec.path. Resolves with the new file's fd open for writing (type 'file'), else -1. */
export function inRootPlace(root: number, spec: PlaceSpec): Promise<number>;

/** Access and modification time (seconds) of `path` itself. */
export function inRootSetTimes(root: number, path: string, mtime: number): Promise<void>;

/** Fills the empty directory `dst` (an fd) with a copy of directory `srcPath` of `srcRoot` (symlinks
 *  followed inside it): owners, modes, times, symlinks, hard links, device nodes and fifos. Resolves
 *  false, copying nothing, when `dst` is not empty or the source is missing, not a directory or empty. */
export function inRootCopyUp(srcRoot: number, srcPath: string, dst: number): Promise<boolean>;

/** An O_PATH fd of `path` (e.g. a volume's subpath, to be mounted by fd). */
export function inRootOpenPath(root: number, path: string, follow?: boolean): Promise<number>;

/** Bind-mounts (recursively, private) the object `source` (an fd) on `path` beneath `root`, made first
 *  when missing (a directory, or an empty file with `file`). Resolves with an O_PATH fd of the new
 *  mount's root, for unmountFd. */
export function bindMountInRoot(source: number, root: number, path: string, options?: { file?: boolean; readOnly?: boolean }): Promise<number>;

/** umount2(MNT_DETACH) of the mount whose root `fd` is. */
export function unmountFd(fd: number): Promise<void>;


// ---- compression (src/js/deflate.cc) -------------------------------------------------------------------

/** `data` as one complete gzip member (header, raw deflate, CRC-32, length), deflated with libdeflate at
 *  `level` (1–12, 6 as zlib's default; 0 stores) on the thread pool, or stored when three 16 KiB samples of
 *  it do not shrink below 97 % at level 1, or when deflate would not make it smaller. Deterministic: the
 *  same bytes and level give the same member. `data` must not change until the promise settles. */
export function gzipMember(data: Buffer, level: number): Promise<Buffer>;

// ---- the userland relay's UDP socket (src/js/udp.cc) ----------------------------------------------------

/** A bound UDP socket (IPv6 ones v6-only) polled on the event loop, for a relayed published port: each
 *  datagram is given with the address it was sent to (IP_PKTINFO / IPV6_PKTINFO), and an answer can
 *  leave from a given address, as docker-proxy answers. Bind errors throw with `code` (EADDRINUSE, …).
 *  Open until close(), whatever JS keeps of it. */
export class UdpRelaySocket {
  constructor(family: 4 | 6, address: string, port: number, onMessage: (msg: Buffer, fromAddr: string, fromPort: number, toAddr: string) => void);
  /** Whether the kernel took the datagram (false when its queue is full or the socket is closed);
   *  `fromAddr` '' lets the kernel pick the source address. */
  send(msg: Buffer, toAddr: string, toPort: number, fromAddr: string): boolean;
  close(): void;
}

// ---- memory (src/js/memory.cc) -------------------------------------------------------------------------

/** Starts a V8 collection that reduces memory (young generation shrunk, empty pages freed; finished by
 *  tasks on the event loop), then runs glibc's malloc_trim(0). True when malloc_trim released memory. For
 *  an idle daemon: the collection costs about one full collection's CPU. */
export function releaseMemory(): boolean;

/** glibc's malloc_trim(0) alone: true when it released memory. */
export function mallocTrim(): boolean;


// ---- child processes (src/js/spawn.cc) -----------------------------------------------------------------

export interface SpawnSpec {
  /** An absolute path, or a name looked up in berthd's PATH (posix_spawnp). */
  file: string;
  /** The whole argv, argv[0] included. */
  argv: string[];
  /** The whole environment, "NAME=value" each. */
  envp: string[];
  /** fds[i] becomes the child's fd i (-1: /dev/null opened for it); every other fd is closed. */
  fds: number[];
  /** A session of its own (setsid): not in berthd's process group or terminal. */
  setsid?: boolean;
  /** Whether the watch of its exit keeps the event loop alive (default true). */
  keepAlive?: boolean;
}

/** posix_spawn (clone(CLONE_VM|CLONE_VFORK): a cost that does not grow with berthd's memory) with every
 *  signal unblocked and at its default. Returns the pid; `onExit` runs once the child has exited and been
 *  reaped: (code, null) for an exit, (null, signal number) for a kill. Throws (code ENOENT, EACCES, …,
 *  syscall 'spawn', path file) when the exec failed; then no child remains. Synchronous. */
export function spawnProcess(spec: SpawnSpec, onExit: (code: number | null, signal: number | null) => void): number;

/** Whether spawnProcess can watch exits here (pidfd_open, Linux 5.3). */
export function spawnSupported(): boolean;

/** A connected AF_UNIX stream socket pair, both ends close-on-exec. */
export function socketPair(): [number, number];
