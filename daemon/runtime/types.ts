// What the services need of the runtime, as interfaces: the container's processes (through berth-shim),
// its cgroup and its root filesystem. runtime.ts implements them against the addon and the shims;
// test/fakes/runtime.ts implements them in memory, so that the rules above the seam (state transitions,
// restart policies, health, removal order) are tested without namespaces.
//
// Lifecycle of one container run, in the terms used here:
//   createCgroup(path) → spawn(shim) → connection: 'output'…, then 'exited' (or 'close' without it, when
//   the shim died: exitStatus() reads what it left) → removeCgroup(path).
// A berthd restart finds the shim again with connect(stateDir); shimAlive() tells a shim that does not
// answer from one that is gone.
import type { EventEmitter } from 'node:events';
import type { CgroupLayout, CgroupResources } from '../../addon/index';
import type { CgroupStats } from './cgstats';
import type { KernelFeatures } from './kernel';

export type { CgroupLayout, CgroupResources, CgroupStats };

export type CgroupDriver = 'cgroupfs' | 'systemd';

/** How a container's (or an exec's) process ended, as its shim reports it (and writes to its exit file). */
export interface ExitInfo {
  exitCode: number;
  signal?: number;
  finishedAt: string;
  oomKilled?: boolean;
}

export interface ShimSpawnOptions {
  shimPath: string;
  id: string;
  bundle: string;
  stateDir: string;
  /** The log driver's arguments (PROTOCOL.md, "Logging"), made by daemon/logs. */
  logArgs: string[];
  cgroupDirs: string[];
  attach: boolean;
}

export interface ExecSpawnOptions {
  shimPath: string;
  /** The exec's id (for the shim's command line, so that it can be told apart in ps). */
  id: string;
  /** Host pid of the container's init: the exec joins its namespaces. */
  targetPid: number;
  /** Its start time (runtime/process.ts): the shim checks, once it holds the namespaces, that the pid is
   *  still that process. */
  targetStart?: string;
  /** JSON file with {"process": <OCI process>, "linux": {"seccomp": …}}. */
  processFile: string;
  stateDir: string;
  cgroupDirs: string[];
  stdin: boolean;
}

/**
 * One connection to one supervisor (a container's shim or an exec's). Emits 'output' (stream 1|2, data),
 * 'exited' (ExitInfo) and 'close'; those are held until release(), so that nothing is emitted before the
 * owner has wired its listeners. Writes after the shim went away are dropped (false).
 */
export interface ShimConnection extends EventEmitter {
  /** Set once 'exited' arrived. */
  exitInfo: ExitInfo | undefined;
  readonly isClosed: boolean;
  /** Starts delivering 'output', 'exited' and 'close', beginning with what arrived meanwhile. */
  release(): void;
  /** Output is sent on this connection only while subscribed (attachers exist). */
  subscribe(on: boolean): void;
  signal(sig: number): boolean;
  stdin(data: Buffer): boolean;
  closeStdin(): void;
  resize(rows: number, cols: number): void;
  /** Waits for writes to drain (backpressure towards an attach client's stdin). */
  drain(): Promise<void>;
  close(): void;
}

/** A started supervisor: its connection, the host pid of the process it runs, and its own pid. */
export interface Spawned {
  conn: ShimConnection;
  pid: number;
  shimPid: number;
}

/**
 * The container runtime as the services use it. Cgroup paths are relative to the hierarchies' mount
 * points (cgroupPathFor() makes them); stateDir is a container's directory under the exec root, where its
 * shim keeps its socket, pid files and exit file.
 */
export interface ContainerRuntime {
  /** Where the cgroup hierarchies are mounted and which version the host runs. */
  readonly cgroups: CgroupLayout;
  readonly cgroupDriver: CgroupDriver;
  /** Set by probeKernel() when berthd starts. */
  readonly kernel: KernelFeatures | undefined;
  /** The cgroup of container `id` (in the slice or parent the container names, else the daemon's). */
  cgroupPathFor(id: string, containerParent?: string): string;
  probeKernel(scratch: string): Promise<KernelFeatures>;

  /** An overlay of `lowerdirs` (top first) under `upperdir` at `target`; '' upper and work: read-only.
   *  `idmap` (uid_map/gid_map text): the lowers are seen through idmapped mounts (--userns-remap). */
  mountRootfs(lowerdirs: string[], upperdir: string, workdir: string, target: string, idmap?: { uidMap: string; gidMap: string }): Promise<void>;
  unmount(target: string): Promise<void>;

  /** Makes the cgroup with its limits; resolves with the directories the container's init must join. */
  createCgroup(relPath: string, res: CgroupResources): Promise<string[]>;
  updateCgroup(relPath: string, res: CgroupResources): Promise<void>;
  removeCgroup(relPath: string): Promise<void>;
  /** Pause (true) or unpause (false) every process of the cgroup. */
  freezeCgroup(relPath: string, frozen: boolean): Promise<void>;
  cgroupPids(relPath: string): Promise<number[]>;
  cgroupStats(relPath: string): Promise<CgroupStats>;
  /** The cgroup directories a process is in, one per hierarchy. */
  cgroupDirsOf(pid: number): string[];

  /** Starts a container's shim; resolves once the container's process runs, rejects with the runtime's
   *  refusal (StartError) otherwise. */
  spawn(o: ShimSpawnOptions): Promise<Spawned>;
  /** One more process in a running container, under its own supervisor. */
  spawnExec(o: ExecSpawnOptions): Promise<Spawned>;
  /** An exec ended: the runtime may prepare for the next one in `ms`. */
  execEnded(shimPath: string, ms: number): void;

  /** Reaches the shim of a container again (after a berthd restart); null when it does not answer. */
  connect(stateDir: string): Promise<ShimConnection | null>;
  /** Whether the shim that ran container `id` from stateDir is still a live process. */
  shimAlive(stateDir: string, id: string): boolean;
  shimPids(stateDir: string): { shimPid: number; pid: number } | null;
  /** What the shim left in its exit file, or null when it wrote none. */
  exitStatus(stateDir: string): ExitInfo | null;
}

/** A process named for good: its pid with its start time (runtime/process.ts). */
export interface ProcessRef {
  pid: number;
  startTime: string;
}

/**
 * What the container service reads of the host itself, beside the runtime: the mount table and the
 * identity of processes. host-tools.ts reads /proc; the fake answers from the fake runtime's state.
 */
export interface HostTools {
  /** Whether a file system is mounted at `p`. */
  isMounted(p: string): boolean;
  /** Whether a file system of a device of its own (overlay, tmpfs) is mounted at `p`: a stat of it and its
   *  parent, where isMounted reads the whole mount table (thousands of lines with 1,000 containers). */
  isOwnMount(p: string): boolean;
  /** Mount points at or under `dir`, escaped as /proc/self/mountinfo writes them (lib/mounts.ts). */
  mountsUnder(dir: string): string[];
  /** Every mount point, escaped likewise (one read for many lookups). */
  mountPoints(): string[];
  /** The process `pid` when it exists (and is a child of `parent`, when given). */
  identify(pid: number, parent?: number): ProcessRef | null;
  /** Whether `ref` still names that live process (its pid not reused). */
  stillSame(ref: ProcessRef): boolean;
}
