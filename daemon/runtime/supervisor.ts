// berthd's side of berth-shim: spawning a shim for a container start, and talking to a running shim
// (over the socketpair it was started with, or over its shim.sock after berthd restarted).
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { readFileSync, existsSync, openSync, closeSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { Frame, FrameDecoder, encodeFrame } from './frames';
import { startProcess, type HostProcess } from './spawn';

import type { ExitInfo, ShimSpawnOptions, ExecSpawnOptions, ShimConnection as ShimChannel } from './types';

export type { ExitInfo, ShimSpawnOptions, ExecSpawnOptions };

/**
 * One connection to one shim. Emits 'output' (stream 1|2, data), 'exited' (ExitInfo) and 'close'.
 */
export class ShimConnection extends EventEmitter implements ShimChannel {
  private readonly decoder = new FrameDecoder();
  private closed = false;
  exitInfo: ExitInfo | undefined;
  // Output, exit and close are held until the owner has wired its listeners (release()): frames that
  // arrive in the same read as STARTED would otherwise be emitted before anyone listens, and lost.
  private held: Array<[string, unknown[]]> | null = [];

  constructor(private readonly sock: net.Socket) {
    super();
    sock.on('data', (chunk: Buffer) => this.decoder.push(chunk, (t, p) => this.onFrame(t, p)));
    sock.on('error', () => { /* 'close' follows */ });
    sock.on('close', () => {
      this.closed = true;
      this.deliver('close');
    });
  }

  private deliver(event: string, ...args: unknown[]): void {
    if (this.held) this.held.push([event, args]);
    else this.emit(event, ...args);
  }

  /** Starts delivering 'output', 'exited' and 'close', beginning with what arrived meanwhile. */
  release(): void {
    const held = this.held;
    this.held = null;
    for (const [event, args] of held ?? []) this.emit(event, ...args);
  }

  private onFrame(type: number, payload: Buffer): void {
    switch (type) {
      case Frame.STDOUT:
      case Frame.STDERR:
        this.deliver('output', type, payload);
        break;
      case Frame.STARTED:
        this.emit('started', JSON.parse(payload.toString()));
        break;
      case Frame.START_FAILED:
        this.emit('startFailed', JSON.parse(payload.toString()));
        break;
      case Frame.EXITED:
        this.exitInfo = JSON.parse(payload.toString());
        this.deliver('exited', this.exitInfo);
        break;
      case Frame.STATUS:
        this.emit('status', JSON.parse(payload.toString()));
        break;
      default:
        break;
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private send(type: number, payload?: Buffer): boolean {
    if (this.closed) return false;
    return this.sock.write(encodeFrame(type, payload));
  }

  subscribe(on: boolean): void {
    this.send(Frame.SUBSCRIBE, Buffer.from([on ? 1 : 0]));
  }

  signal(sig: number): boolean {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(sig);
    return this.send(Frame.SIGNAL, b);
  }

  stdin(data: Buffer): boolean {
    return this.send(Frame.STDIN, data);
  }

  closeStdin(): void {
    this.send(Frame.STDIN_CLOSE);
  }

  resize(rows: number, cols: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt16BE(rows, 0);
    b.writeUInt16BE(cols, 2);
    this.send(Frame.RESIZE, b);
  }

  /** Waits for writes to drain (backpressure towards an attach client's stdin). */
  drain(): Promise<void> {
    return this.sock.writableNeedDrain ? new Promise((r) => this.sock.once('drain', () => r())) : Promise.resolve();
  }

  close(): void {
    this.sock.destroy();
  }
}

export class StartError extends Error {}

/**
 * Execs a shim for one container start and resolves once the container's process runs (STARTED) or
 * rejects with the runtime's message (START_FAILED). The shim lives in its own session: it does not die
 * with berthd.
 */
export function spawnShim(o: ShimSpawnOptions): Promise<{ conn: ShimConnection; pid: number; shimPid: number }> {
  const args = ['--id', o.id, '--bundle', o.bundle, '--state', o.stateDir, ...o.logArgs];
  for (const d of o.cgroupDirs) args.push('--cgroup', d);
  if (o.attach) args.push('--attach');
  return launchShim(o.shimPath, args, 'the container supervisor exited before the container started');
}


/**
 * Execs `berth-shim exec` for one exec (PROTOCOL.md, "Exec mode"): a second small supervisor that runs
 * one process inside a running container and speaks the same frames on fd 3 (output is sent from the
 * start, nothing is logged). Resolves on STARTED with the process's host pid, rejects on START_FAILED.
 */
export function spawnExec(o: ExecSpawnOptions): Promise<{ conn: ShimConnection; pid: number; shimPid: number }> {
  const args = ['exec', '--id', o.id, '--pid', String(o.targetPid), '--process', o.processFile, '--state', o.stateDir];
  if (o.targetStart) args.push('--pid-start', o.targetStart);
  // The shim and its child start in berthd's own cgroups: those need no move (on a host with cgroup v1
  // controllers, the container sits at the root of the unified hierarchy, as berthd does).
  let own: string[] = [];
  try { own = cgroupDirsOf(process.pid); } catch { /* moved everywhere */ }
  for (const d of o.cgroupDirs) if (!own.includes(d)) args.push('--cgroup', d);
  if (o.stdin) args.push('--stdin');
  const earlyExit = 'the exec supervisor exited before the process started';
  const ready = takeWaitingShim(o.shimPath);
  if (!ready) return launchShim(o.shimPath, args, earlyExit);
  // The shim made ahead of time gets its command line now; forking one from berthd (a few ms of a blocked
  // event loop) and its exec are off this request's path.
  const blob = Buffer.from(args.map((a) => `${a}\0`).join(''));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(blob.length);
  ready.sock.write(Buffer.concat([len, blob]));
  return awaitStarted(ready.child, ready.sock, ready.conn, o.shimPath, earlyExit);
}

interface WaitingShim {
  child: HostProcess;
  sock: net.Socket;
  conn: ShimConnection;
  alive: boolean;
}

/** One `berth-shim exec-wait` per shim path, started after an exec has used the previous one. */
const waiting = new Map<string, WaitingShim>();
let refillTimer: NodeJS.Timeout | undefined;
let refillDue = 0;

function takeWaitingShim(shimPath: string): WaitingShim | undefined {
  const w = waiting.get(shimPath);
  waiting.delete(shimPath);
  // The next one is made later, while berthd is idle: starting it blocks the event loop for a
  // millisecond or two (node forks itself), which the exec's own frames and the client's next
  // requests should not wait behind. refillWaitingShim brings it forward once the exec has ended.
  scheduleRefill(shimPath, 50);
  return w && w.alive ? w : undefined;
}

/** Starts the next waiting shim `ms` from now, or sooner if that was planned already. */
function scheduleRefill(shimPath: string, ms: number): void {
  const due = Date.now() + ms;
  if (refillTimer && refillDue <= due) return;
  if (refillTimer) clearTimeout(refillTimer);
  refillDue = due;
  refillTimer = setTimeout(() => {
    refillTimer = undefined;
    startWaitingShim(shimPath);
  }, ms);
  refillTimer.unref();
}

/** An exec has ended (and its client has probably asked for its exit code): the waiting shim that
 *  replaces the one it used is made `ms` from now instead of later. */
export function refillWaitingShim(shimPath: string, ms: number): void {
  if (refillTimer) scheduleRefill(shimPath, ms);
}

/** Told the pid of each waiting shim as it starts (the systemd driver moves it out of berthd's service). */
let spareShimStarted: ((pid: number) => void) | undefined;
export function onSpareShim(fn: (pid: number) => void): void {
  spareShimStarted = fn;
}

function startWaitingShim(shimPath: string): void {
  if (waiting.has(shimPath)) return;
  const child = startShimProcess(shimPath, ['exec-wait']);
  const sock = child.stdio[3];
  if (!sock) {
    child.once('error', () => { /* the next exec starts its own shim, and says why it cannot */ });
    return;
  }
  const w: WaitingShim = { child, sock, conn: new ShimConnection(sock), alive: true };
  const gone = () => {
    w.alive = false;
    if (waiting.get(shimPath) === w) waiting.delete(shimPath);
  };
  child.once('error', gone);
  child.once('exit', gone);
  sock.once('close', gone);
  waiting.set(shimPath, w);
  if (child.pid) spareShimStarted?.(child.pid);
}

/** A shim process: stdio on /dev/null, the socket pair of PROTOCOL.md on fd 3, a session of its own (it
 *  outlives berthd), and nothing of it keeps berthd's event loop alive. Its exit is still collected (no
 *  zombie), by the addon's watch (runtime/spawn.ts). */
function startShimProcess(shimPath: string, args: string[]): HostProcess {
  const child = startProcess(shimPath, args, ['ignore', 'ignore', 'ignore', 'pipe'], { detached: true, keepAlive: false });
  // The socketpair keeps the event loop alive on its own; berthd must be able to exit with shims running.
  (child.stdio[3] as unknown as { unref?: () => void } | undefined)?.unref?.();
  return child;
}

function launchShim(shimPath: string, args: string[], earlyExit: string): Promise<{ conn: ShimConnection; pid: number; shimPid: number }> {
  const child = startShimProcess(shimPath, args);
  const sock = child.stdio[3];
  if (!sock) return new Promise((_, reject) => child.once('error', (e: Error) => reject(new StartError(`cannot exec ${shimPath}: ${e.message}`))));
  const conn = new ShimConnection(sock);
  return awaitStarted(child, sock, conn, shimPath, earlyExit);
}

function awaitStarted(child: HostProcess, sock: net.Socket, conn: ShimConnection, shimPath: string, earlyExit: string): Promise<{ conn: ShimConnection; pid: number; shimPid: number }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (msg: string) => {
      if (settled) return;
      settled = true;
      conn.close();
      reject(new StartError(msg));
    };
    child.once('error', (e) => fail(`cannot exec ${shimPath}: ${e.message}`));
    conn.once('startFailed', (m: { message: string }) => fail(m.message));
    conn.once('started', (m: { pid: number }) => {
      if (settled) return;
      settled = true;
      resolve({ conn, pid: m.pid, shimPid: child.pid! });
    });
    // The socket closes only after everything the shim sent has been read, so STARTED wins over this.
    sock.once('close', () => fail(earlyExit));
  });
}

/** The cgroup directories (one per mounted hierarchy) that hold a process, read from /proc/<pid>/cgroup
 *  and this host's cgroup mounts: where an exec is placed so that it shares the container's limits. */
export function cgroupDirsOf(pid: number): string[] {
  const mounts: Array<{ root: string; point: string; fs: string; opts: string[] }> = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || (f[sep + 1] !== 'cgroup' && f[sep + 1] !== 'cgroup2')) continue;
    mounts.push({ root: f[3], point: f[4].replace(/\\040/g, ' '), fs: f[sep + 1], opts: (f[sep + 3] ?? '').split(',') });
  }
  const out: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, hid, ctrls, p] = m;
    const want = ctrls ? ctrls.split(',') : [];
    const mnt = hid === '0' && !ctrls
      ? mounts.find((x) => x.fs === 'cgroup2')
      : mounts.find((x) => x.fs === 'cgroup' && want.every((c) => x.opts.includes(c)));
    if (!mnt) continue;
    // A mount of a sub-tree (root other than /) shows the processes below that root only.
    let rel = p;
    if (mnt.root !== '/') {
      if (rel !== mnt.root && !rel.startsWith(mnt.root + '/')) continue;
      rel = rel.slice(mnt.root.length);
    }
    const dir = path.join(mnt.point, rel);
    if (!out.includes(dir) && existsSync(path.join(dir, 'cgroup.procs'))) out.push(dir);
  }
  return out;
}

/** Connects to the shim of a container that was started by an earlier berthd, if it still runs.
 *  The socket is reached through an fd of its directory: a unix socket path is limited to 108 bytes, and
 *  exec roots (tests, --exec-root) can make the full path longer than that. */
export function connectShim(stateDir: string): Promise<ShimConnection | null> {
  if (!existsSync(path.join(stateDir, 'shim.sock'))) return Promise.resolve(null);
  let dirFd: number;
  try {
    dirFd = openSync(stateDir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  } catch {
    return Promise.resolve(null);
  }
  return new Promise((resolve) => {
    const sock = net.createConnection(`/proc/self/fd/${dirFd}/shim.sock`);
    const done = (conn: ShimConnection | null) => {
      closeSync(dirFd);
      resolve(conn);
    };
    sock.once('connect', () => {
      sock.unref();
      done(new ShimConnection(sock));
    });
    sock.once('error', () => done(null));
  });
}

/** Whether the shim recorded in `stateDir/shim.pid` is still alive (and is a berth-shim). */
export function shimAlive(stateDir: string, id: string): boolean {
  try {
    const pid = Number(readFileSync(path.join(stateDir, 'shim.pid'), 'utf8').trim());
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // An exec's shim made ahead of time keeps its `exec-wait` command line.
    return cmd.includes('berth-shim') && (cmd.includes(id) || cmd.includes('exec-wait'));
  } catch {
    return false;
  }
}

/** The shim recorded in `stateDir/shim.pid` and the container process it started (its only child, from
 *  /proc/<pid>/task/<pid>/children), for a container whose start berthd did not live to record. pid is 0
 *  while the shim has no child (not started yet, or exited and being reported). */
export function shimPids(stateDir: string): { shimPid: number; pid: number } | null {
  try {
    const shimPid = Number(readFileSync(path.join(stateDir, 'shim.pid'), 'utf8').trim());
    if (!(shimPid > 0)) return null;
    let pid = 0;
    try {
      pid = Number(readFileSync(`/proc/${shimPid}/task/${shimPid}/children`, 'utf8').trim().split(/\s+/)[0]) || 0;
    } catch { /* no children file: pid stays unknown */ }
    return { shimPid, pid };
  } catch {
    return null;
  }
}

/** The exit status the shim left behind, when it exited while no berthd listened. */
export function readExitFile(stateDir: string): ExitInfo | null {
  try {
    return JSON.parse(readFileSync(path.join(stateDir, 'exit.json'), 'utf8'));
  } catch {
    return null;
  }
}
