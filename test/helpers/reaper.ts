// What a test process started or made (berthd and its roots, registries, network namespaces, scratch
// directories), so that it is removed even when the process ends without running its after() hooks.
// node 20's test runner ends a file that overruns --test-timeout with SIGTERM to the file's process (and
// waits for it to exit, without a later SIGKILL); a stopped `make test` sends SIGINT (Ctrl-C, to the whole
// process group) or SIGTERM. Node's default for both signals is to die at once: no after() hook runs, and
// berthd, its shims, mounts, cgroups, bridges and namespaces would stay. Here each helper registers a
// synchronous clean-up when it makes something and withdraws it when its own after()/destroy() has done
// the work; whatever is still registered runs on SIGTERM, SIGINT, SIGHUP and on exit, newest first, and a
// signal is then raised again so that the process ends as it would have (the runner sees the same status).
// Clean-ups act only on what the helper recorded: the PIDs it spawned, paths under its own temp
// directories, the namespaces it named.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { unmountUnder } from './cleanup';

export interface Reaped {
  /** Runs the clean-up now (once; later calls do nothing) and withdraws it. */
  run(): void;
  /** Withdraws it without running it: the owner has cleaned up. */
  dispose(): void;
}

interface Entry {
  what: string;
  fn: () => void;
}

const live = new Set<Entry>();
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
let installed = false;

function runAll(): void {
  // Newest first: a daemon goes before the namespace it runs in, a scratch directory after what used it.
  for (const e of [...live].reverse()) {
    live.delete(e);
    try {
      e.fn();
    } catch (err) {
      process.stderr.write(`test clean-up of ${e.what} failed: ${(err as Error).message}\n`);
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  runAll();
  // Die of the signal, as without a handler, unless the test itself also handles it.
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', runAll);
}

/** Registers `fn` to run when the process ends before the returned handle is run or disposed. `fn` must be
 *  synchronous (a signal handler or 'exit' cannot wait) and safe to run when the thing is half made. */
export function reapOnExit(what: string, fn: () => void): Reaped {
  install();
  const e: Entry = { what, fn };
  live.add(e);
  return {
    run() {
      if (!live.delete(e)) return;
      fn();
    },
    dispose() {
      live.delete(e);
    },
  };
}

/** Whether a child this process spawned has ended and been reaped (then its pid may belong to another
 *  process already, and must not be signalled). */
export function childGone(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

/** SIGKILL to a child this process spawned, if it has not ended yet. Until it is reaped (by this process's
 *  event loop) its pid stays its own, even as a zombie. */
export function killChild(p: ChildProcess): void {
  if (p.pid === undefined || childGone(p)) return;
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch { /* already gone */ }
}

/** Kills `p` when the process ends early; withdrawn by itself when `p` exits. */
export function reapChild(what: string, p: ChildProcess): Reaped {
  const r = reapOnExit(`${what} (pid ${p.pid})`, () => killChild(p));
  p.once('exit', () => r.dispose());
  return r;
}

/** Sleeps without the event loop (clean-ups run in signal handlers and at exit). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Waits (bounded) until `pid` is gone or a zombie: a killed process has let go of its mounts and files. */
export function waitDeadSync(pid: number, ms = 3000): void {
  for (let i = 0; i < ms / 10; i++) {
    let state = '';
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
    } catch {
      return;
    }
    if (state === 'Z') return;
    sleepSync(10);
  }
}

/** Removes a directory tree of the test's own, with whatever the test mounted in it, when the process ends
 *  early (and nothing else). */
export function reapDir(dir: string): Reaped {
  return reapOnExit(`directory ${dir}`, () => {
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  });
}

/** `ip netns del` of a namespace the test made, when the process ends early. */
export function reapNetns(name: string): Reaped {
  return reapOnExit(`network namespace ${name}`, () => {
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch { /* never made, or gone */ }
  });
}
