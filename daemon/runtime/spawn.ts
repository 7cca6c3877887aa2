// berthd's child processes (berth-shim, nft, ip, mount, …) started by the addon's posix_spawn instead of
// node's child_process, whose fork() copies berthd's page tables on every start: its cost grew with the
// number of running containers (issue 17, bench/README.md "At scale"). What a caller gets is the part of
// ChildProcess that berthd uses, so the two are interchangeable: on a kernel without pidfd_open (before
// 5.3) node's spawn is used as before.
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { closeSync } from 'node:fs';
import os from 'node:os';
import { native } from './native';

/** What each of the child's fds 0, 1, 2, 3, … is: /dev/null, or one end of a new socket pair whose other
 *  end is `stdio[i]` here (node's 'pipe'). */
export type StdioKind = 'ignore' | 'pipe';

export interface HostProcessOptions {
  /** Its own session (setsid): a shim outlives berthd's process group and terminal. */
  detached?: boolean;
  /** The whole environment; berthd's own when absent. */
  env?: NodeJS.ProcessEnv;
  /** false: waiting for its exit does not keep berthd's event loop alive (ChildProcess.unref()); the
   *  exit is still collected, so it never stays a zombie. */
  keepAlive?: boolean;
}

/** A started child: the ChildProcess members berthd relies on. 'exit' (code, signal name) once it has
 *  exited and been reaped; 'error' when it could not be started (then no 'exit'). */
export interface HostProcess extends EventEmitter {
  readonly pid: number | undefined;
  readonly stdio: Array<net.Socket | null>;
  readonly stdin: net.Socket | null;
  readonly stdout: net.Socket | null;
  readonly stderr: net.Socket | null;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals | number): boolean;
}

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

class SpawnedProcess extends EventEmitter implements HostProcess {
  pid: number | undefined;
  stdio: Array<net.Socket | null> = [];
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private exited = false;

  get stdin(): net.Socket | null { return this.stdio[0] ?? null; }
  get stdout(): net.Socket | null { return this.stdio[1] ?? null; }
  get stderr(): net.Socket | null { return this.stdio[2] ?? null; }

  constructor(file: string, args: string[], stdio: StdioKind[], opts: HostProcessOptions) {
    super();
    const env = opts.env ?? process.env;
    const envp: string[] = [];
    for (const [k, v] of Object.entries(env)) if (v !== undefined) envp.push(`${k}=${v}`);
    const fds: number[] = [];
    const ours: Array<number | null> = [];
    try {
      for (const kind of stdio) {
        if (kind === 'pipe') {
          const [mine, theirs] = native.socketPair();
          ours.push(mine);
          fds.push(theirs);
        } else {
          ours.push(null);
          fds.push(-1);
        }
      }
      this.pid = native.spawnProcess({ file, argv: [file, ...args], envp, fds, setsid: !!opts.detached, keepAlive: opts.keepAlive ?? true },
        (code, sig) => this.onExit(code, sig));
    } catch (e) {
      for (const fd of ours) if (fd !== null) closeSync(fd);
      // As ChildProcess reports it: asynchronously, on 'error' (a caller wires its listeners first).
      process.nextTick(() => this.emit('error', e));
      return;
    } finally {
      // The child has its own copies (or never will); the pair's far ends are closed here.
      for (const fd of fds) if (fd >= 0) closeSync(fd);
    }
    this.stdio = ours.map((fd) => (fd === null ? null : new net.Socket({ fd, readable: true, writable: true })));
  }

  private onExit(code: number | null, sig: number | null): void {
    this.exited = true;
    this.exitCode = code;
    this.signalCode = sig === null ? null : signalNames.get(sig) ?? null;
    this.emit('exit', this.exitCode, this.signalCode);
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    // Until the exit is reaped (onExit) the pid is still this child's, even as a zombie: never another's.
    if (this.exited || !this.pid) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

let supported: boolean | undefined;
/** Whether the addon's spawner is used (pidfd_open is there); BERTH_NODE_SPAWN=1 keeps node's. */
export function nativeSpawn(): boolean {
  if (supported === undefined) supported = process.env.BERTH_NODE_SPAWN !== '1' && native.spawnSupported();
  return supported;
}

/**
 * Starts `file` (a path, or a name looked up in PATH) with `args`, its fd i being what `stdio[i]` says,
 * every other fd closed, every signal unblocked and at its default.
 */
export function startProcess(file: string, args: string[], stdio: StdioKind[], opts: HostProcessOptions = {}): HostProcess {
  if (!nativeSpawn()) {
    const child: ChildProcess = nodeSpawn(file, args, { stdio: stdio.map((k) => (k === 'pipe' ? 'pipe' : 'ignore')), detached: !!opts.detached, env: opts.env });
    if (opts.keepAlive === false) child.unref();
    return child as unknown as HostProcess;
  }
  return new SpawnedProcess(file, args, stdio, opts);
}

export interface RunResult {
  /** Exit code, or null when a signal ended it (`signal`) or it never started (`error`). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Why it did not start, or why it was ended (the timeout, too much output). */
  error?: Error;
}

/**
 * Runs a tool to its end, as execFile does: `input` on its stdin (closed either way, so a tool that reads
 * it never waits), stdout and stderr collected as UTF-8, SIGTERM after `timeoutMs` or once either stream
 * passes `maxBuffer` bytes. Never rejects: what happened is in the result.
 */
export function runProcess(file: string, args: string[], opts: { input?: string; timeoutMs?: number; maxBuffer?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = startProcess(file, args, ['pipe', 'pipe', 'pipe']);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let error: Error | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let open = 2;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (timer) clearTimeout(timer);
      resolve({ code: exit?.code ?? null, signal: exit?.signal ?? null, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ...(error ? { error } : {}) });
    };
    // Done when it has exited and both streams have ended (execFile's 'close').
    const maybeDone = () => {
      if (exit && open === 0) finish();
    };
    const stop = (why: Error) => {
      error ??= why;
      child.kill('SIGTERM');
    };
    child.once('error', (e: Error) => {
      error = e;
      exit = { code: null, signal: null };
      for (const s of child.stdio) s?.destroy();
      finish();
    });
    if (!child.stdout || !child.stderr || !child.stdin) return; // the 'error' above reports it
    const collect = (s: net.Socket, into: Buffer[], add: (n: number) => number) => {
      s.on('data', (c: Buffer) => {
        into.push(c);
        if (opts.maxBuffer && add(c.length) > opts.maxBuffer) stop(new Error(`${file}: more than ${opts.maxBuffer} bytes of output`));
      });
      s.on('error', () => { /* 'close' follows */ });
      s.once('close', () => {
        open--;
        maybeDone();
      });
    };
    collect(child.stdout, out, (n) => (outLen += n));
    collect(child.stderr, err, (n) => (errLen += n));
    child.stdin.on('error', () => { /* a tool that exits without reading its input */ });
    child.stdin.end(opts.input ?? '');
    if (opts.timeoutMs) timer = setTimeout(() => stop(new Error(`${file}: timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      exit = { code, signal };
      child.stdin?.destroy();
      maybeDone();
    });
  });
}
