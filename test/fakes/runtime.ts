// An in-memory ContainerRuntime (daemon/runtime/types.ts) and the HostTools that go with it: container
// processes, cgroups and mounts that exist only in this object, so that the rules above the runtime seam
// run in milliseconds and without root. What it keeps is what the real runtime keeps on the host: a
// process per shim (alive or exited, with its exit "file"), cgroups with their limits and freeze state,
// and a mount table. A second ContainerService on the same FakeRuntime is a berthd restarted over
// containers whose shims lived on.
//
// A container's command (its OCI process.args, as buildSpec wrote them to config.json) is read as a tiny
// program, so that a test says how the process behaves the way a user would, with a command:
//   true | false | exit N      exits at once with 0, 1 or N
//   exit-after MS N            exits with N after MS milliseconds
//   exits-on-signal …          a program with signal handlers: any signal ends it (exit code 128 + signal)
//   /missing…                  the start fails as runc's does for a command that does not exist
//   anything else (sleep …)    runs until SIGKILL: as the container's pid 1 without handlers, the kernel
//                              does not deliver it other signals (`docker stop` then waits its timeout)
// fake.exit(id, code) ends a running container as if its process exited by itself.
import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { escapeMountPath } from '../../daemon/lib/mounts';
import { KernelFeatures } from '../../daemon/runtime/kernel';
import { StartError } from '../../daemon/runtime/supervisor';
import { rfc3339Nano, nowNs } from '../../daemon/lib/time';
import type {
  CgroupLayout, CgroupResources, CgroupStats, ContainerRuntime, ExecSpawnOptions, ExitInfo, HostTools, ProcessRef,
  ShimConnection, ShimSpawnOptions, Spawned,
} from '../../daemon/runtime/types';

const SIGKILL = 9;

/** One process the fake runs: a container's init (or an exec's process), with its shim's pid. */
export class FakeProcess {
  alive = true;
  exitInfo: ExitInfo | undefined;
  /** Every signal delivered to it, in order (queued ones once delivered). */
  readonly signals: number[] = [];
  /** Signals sent while its cgroup was frozen: a frozen process acts on them once thawed. */
  private readonly queued: number[] = [];
  readonly stdin: Buffer[] = [];
  stdinClosed = false;
  readonly conns = new Set<FakeShimConnection>();
  /** A shim that is alive but does not answer (connect() gets null): berthd must keep its container. */
  unresponsive = false;
  /** The exit a program (exit-after) has planned. */
  timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly rt: FakeRuntime,
    readonly id: string,
    readonly pid: number,
    readonly shimPid: number,
    readonly startTime: string,
    readonly args: string[],
    readonly cgroupDirs: string[],
  ) {}

  get frozen(): boolean {
    return this.cgroupDirs.some((d) => this.rt.cgroupOfDir(d)?.frozen);
  }

  signal(sig: number): void {
    if (!this.alive) return;
    if (this.frozen) {
      this.queued.push(sig);
      return;
    }
    this.deliver(sig);
  }

  private deliver(sig: number): void {
    this.signals.push(sig);
    if (sig === 0) return;
    // pid 1 of a PID namespace gets only the signals it has a handler for, and SIGKILL from outside.
    if (sig !== SIGKILL && this.args[0] !== 'exits-on-signal') return;
    this.exit(128 + sig, sig);
  }

  /** The cgroup was thawed: what was sent meanwhile arrives now. */
  thawed(): void {
    for (const sig of this.queued.splice(0)) if (this.alive) this.deliver(sig);
  }

  /** Ends the process (as its shim reports it: EXITED, then the connection closes). */
  exit(code: number, signal?: number): void {
    if (!this.alive) return;
    this.alive = false;
    clearTimeout(this.timer);
    this.exitInfo = { exitCode: code, finishedAt: rfc3339Nano(nowNs()), ...(signal ? { signal } : {}) };
    this.rt.journal.push(`exit ${this.id} ${code}`);
    for (const c of this.conns) c.exited(this.exitInfo);
    this.rt.exited(this);
  }
}

/**
 * One connection to a fake shim. Like the real one, it holds 'output', 'exited' and 'close' until
 * release(), and drops writes once closed.
 */
export class FakeShimConnection extends EventEmitter implements ShimConnection {
  exitInfo: ExitInfo | undefined;
  private closed = false;
  private held: Array<[string, unknown[]]> | null = [];
  subscribed = false;

  constructor(readonly proc: FakeProcess) {
    super();
    proc.conns.add(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private deliver(event: string, ...args: unknown[]): void {
    // Asynchronous, as frames read from a socket are: never inside the call that caused them.
    setImmediate(() => {
      if (this.held) this.held.push([event, args]);
      else this.emit(event, ...args);
    });
  }

  release(): void {
    const held = this.held;
    this.held = null;
    for (const [event, args] of held ?? []) this.emit(event, ...args);
  }

  exited(info: ExitInfo): void {
    if (this.closed) return;
    this.exitInfo = info;
    this.deliver('exited', info);
    this.shutdown();
  }

  /** The process writes to stdout (1) or stderr (2); sent only while subscribed, as the shim does. */
  output(stream: 1 | 2, data: Buffer): void {
    if (this.subscribed && !this.closed) this.deliver('output', stream, data);
  }

  subscribe(on: boolean): void {
    if (!this.closed) this.subscribed = on;
  }

  signal(sig: number): boolean {
    if (this.closed) return false;
    this.proc.signal(sig);
    return true;
  }

  stdin(data: Buffer): boolean {
    if (this.closed) return false;
    this.proc.stdin.push(data);
    return true;
  }

  closeStdin(): void {
    if (!this.closed) this.proc.stdinClosed = true;
  }

  resize(): void {}

  drain(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.shutdown();
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.proc.conns.delete(this);
    this.deliver('close');
  }
}

interface FakeCgroup { relPath: string; dir: string; res: CgroupResources; frozen: boolean }

export class FakeRuntime implements ContainerRuntime {
  readonly cgroups: CgroupLayout;
  readonly cgroupDriver = 'cgroupfs' as const;
  kernel: KernelFeatures | undefined;
  /** What was asked of the runtime, in order ("spawn <id>", "unmount <path>", …); shared with the other
   *  fakes of a harness, so that a test can check the order of steps across seams. */
  readonly journal: string[];
  /** Processes by state dir (a container's shim) and by exec id. */
  readonly procs = new Map<string, FakeProcess>();
  readonly execs = new Map<string, FakeProcess>();
  readonly cgroupMap = new Map<string, FakeCgroup>();
  readonly mounts = new Set<string>();
  /** The idmap a mount was made with (--userns-remap), by target. */
  readonly idmaps = new Map<string, { uidMap: string; gidMap: string }>();
  /** Set to make the next createCgroup fail (a host without a controller, a full disk). */
  failNextCgroup: Error | undefined;
  private nextPid = 40_000;

  constructor(private readonly root: string, journal: string[] = [], private readonly cgroupParent = 'berth') {
    this.journal = journal;
    this.cgroups = { version: 2, controllers: {}, unified: path.join(root, 'cgroup') };
  }

  cgroupPathFor(id: string): string {
    return `${this.cgroupParent}/${id}`;
  }

  async probeKernel(): Promise<KernelFeatures> {
    this.kernel = new KernelFeatures([], true);
    return this.kernel;
  }

  async mountRootfs(lowerdirs: string[], _upperdir: string, _workdir: string, target: string, idmap?: { uidMap: string; gidMap: string }): Promise<void> {
    if (lowerdirs.length === 0) throw new Error('mount overlay: no lower directories');
    if (this.mounts.has(target)) throw new Error(`mount overlay on ${target}: already mounted`);
    mkdirSync(target, { recursive: true });
    this.mounts.add(target);
    if (idmap) this.idmaps.set(target, idmap);
    this.journal.push(`mount ${target}`);
  }

  async unmount(target: string): Promise<void> {
    if (!this.mounts.delete(target)) throw new Error(`umount ${target}: not mounted`);
    this.idmaps.delete(target);
    this.journal.push(`unmount ${target}`);
  }

  async createCgroup(relPath: string, res: CgroupResources): Promise<string[]> {
    const e = this.failNextCgroup;
    if (e) {
      this.failNextCgroup = undefined;
      throw e;
    }
    const dir = path.join(this.cgroups.unified, relPath);
    this.cgroupMap.set(relPath, { relPath, dir, res, frozen: false });
    this.journal.push(`createCgroup ${relPath}`);
    return [dir];
  }

  async updateCgroup(relPath: string, res: CgroupResources): Promise<void> {
    const cg = this.cgroup(relPath);
    cg.res = { ...cg.res, ...res };
    this.journal.push(`updateCgroup ${relPath}`);
  }

  async removeCgroup(relPath: string): Promise<void> {
    const cg = this.cgroupMap.get(relPath);
    if (!cg) return;
    // As rmdir(2) on a cgroup: refused while a process is in it.
    if (this.livingIn(cg).length) throw new Error(`rmdir ${cg.dir}: EBUSY`);
    this.cgroupMap.delete(relPath);
    this.journal.push(`removeCgroup ${relPath}`);
  }

  async freezeCgroup(relPath: string, frozen: boolean): Promise<void> {
    const cg = this.cgroup(relPath);
    cg.frozen = frozen;
    this.journal.push(`${frozen ? 'freeze' : 'thaw'} ${relPath}`);
    if (!frozen) for (const p of this.livingIn(cg)) p.thawed();
  }

  async cgroupPids(relPath: string): Promise<number[]> {
    return this.livingIn(this.cgroup(relPath)).map((p) => p.pid);
  }

  async cgroupStats(relPath: string): Promise<CgroupStats> {
    const cg = this.cgroup(relPath);
    return {
      cpu: { totalUsage: 0, kernel: 0, user: 0, throttling: { periods: 0, throttledPeriods: 0, throttledTime: 0 } },
      systemUsage: 0,
      onlineCpus: 1,
      memory: { usage: 0, limit: cg.res.memory || undefined, stats: {} },
      pids: { current: this.livingIn(cg).length, limit: cg.res.pidsLimit || undefined },
      blkio: { serviceBytes: [], serviced: [] },
    };
  }

  cgroupDirsOf(pid: number): string[] {
    return [...this.procs.values(), ...this.execs.values()].find((p) => p.pid === pid && p.alive)?.cgroupDirs ?? [];
  }

  async spawn(o: ShimSpawnOptions): Promise<Spawned> {
    const spec = JSON.parse(readFileSync(path.join(o.bundle, 'config.json'), 'utf8'));
    const args: string[] = spec.process?.args ?? [];
    this.journal.push(`spawn ${o.id}`);
    const p = this.start(o.id, args, o.cgroupDirs);
    this.procs.set(o.stateDir, p);
    return { conn: new FakeShimConnection(p), pid: p.pid, shimPid: p.shimPid };
  }

  async spawnExec(o: ExecSpawnOptions): Promise<Spawned> {
    const file = JSON.parse(readFileSync(o.processFile, 'utf8'));
    const target = [...this.procs.values()].find((p) => p.pid === o.targetPid && p.alive);
    if (!target) throw new StartError(`process ${o.targetPid} is not running`);
    this.journal.push(`exec ${o.id}`);
    const p = this.start(o.id, file.process?.args ?? [], o.cgroupDirs);
    this.execs.set(o.id, p);
    return { conn: new FakeShimConnection(p), pid: p.pid, shimPid: p.shimPid };
  }

  execEnded(): void {}

  private start(id: string, args: string[], cgroupDirs: string[]): FakeProcess {
    const cmd = args[0] ?? '';
    if (cmd.startsWith('/missing')) {
      throw new StartError(`exec: "${cmd}": stat ${cmd}: no such file or directory`);
    }
    const shimPid = this.nextPid++;
    const pid = this.nextPid++;
    const p = new FakeProcess(this, id, pid, shimPid, String(pid * 7), args, cgroupDirs);
    const code = cmd === 'true' ? 0 : cmd === 'false' ? 1 : cmd === 'exit' ? Number(args[1] ?? 0) : undefined;
    // Exits after STARTED, as a short command does: the start succeeds, the exit follows.
    if (code !== undefined) setImmediate(() => p.exit(code));
    if (cmd === 'exit-after') p.timer = setTimeout(() => p.exit(Number(args[2] ?? 0)), Number(args[1]));
    return p;
  }

  async connect(stateDir: string): Promise<ShimConnection | null> {
    const p = this.procs.get(stateDir);
    if (!p || !p.alive || p.unresponsive) return null;
    return new FakeShimConnection(p);
  }

  shimAlive(stateDir: string, id: string): boolean {
    const p = this.procs.get(stateDir);
    return !!p && p.id === id && p.alive;
  }

  shimPids(stateDir: string): { shimPid: number; pid: number } | null {
    const p = this.procs.get(stateDir);
    return p ? { shimPid: p.shimPid, pid: p.pid } : null;
  }

  exitStatus(stateDir: string): ExitInfo | null {
    return this.procs.get(stateDir)?.exitInfo ?? null;
  }

  // ---- for tests -----------------------------------------------------------------------------------

  /** The (last) process of container `id`. */
  proc(id: string): FakeProcess {
    const p = [...this.procs.values()].reverse().find((x) => x.id === id);
    if (!p) throw new Error(`the fake runtime never started ${id}`);
    return p;
  }

  /** Container `id`'s process exits by itself with `code`. */
  exit(id: string, code: number): void {
    this.proc(id).exit(code);
  }

  /** A container's init is gone: as the kernel does when a pid namespace's init dies, every other
   *  process of the container (its execs) is killed. */
  exited(p: FakeProcess): void {
    if (![...this.procs.values()].includes(p)) return;
    for (const x of this.execs.values()) {
      if (x.alive && x.cgroupDirs.length && x.cgroupDirs.every((d) => p.cgroupDirs.includes(d))) x.exit(128 + SIGKILL, SIGKILL);
    }
  }

  cgroupOfDir(dir: string): FakeCgroup | undefined {
    return [...this.cgroupMap.values()].find((c) => c.dir === dir);
  }

  private cgroup(relPath: string): FakeCgroup {
    const cg = this.cgroupMap.get(relPath);
    if (!cg) throw new Error(`cgroup ${relPath}: no such file or directory`);
    return cg;
  }

  private livingIn(cg: FakeCgroup): FakeProcess[] {
    return [...this.procs.values(), ...this.execs.values()].filter((p) => p.alive && p.cgroupDirs.includes(cg.dir));
  }

  /** The host as the container service reads it, answered from this runtime's processes and mounts. */
  readonly host: HostTools = {
    isMounted: (p) => this.mounts.has(p),
    isOwnMount: (p) => this.mounts.has(p),
    mountPoints: () => [...this.mounts].map(escapeMountPath),
    mountsUnder: (dir) => [...this.mounts].filter((m) => m === dir || m.startsWith(`${dir}/`)).map(escapeMountPath),
    identify: (pid, parent) => {
      const p = [...this.procs.values(), ...this.execs.values()].find((x) => x.pid === pid && x.alive);
      if (!p || (parent && p.shimPid !== parent)) return null;
      return { pid, startTime: p.startTime };
    },
    stillSame: (ref: ProcessRef) => [...this.procs.values(), ...this.execs.values()].some((x) => x.pid === ref.pid && x.alive && x.startTime === ref.startTime),
  };
}
