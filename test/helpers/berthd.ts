// Starts a real berthd on a temporary socket, data root and exec root, and removes everything it made
// (shims, mounts, cgroups, files) when stopped — also after a failed test.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { umount2 } from './cleanup';

export const REPO = path.resolve(__dirname, '..', '..', '..');
export const FIXTURES = path.join(REPO, 'build', 'fixtures');
export const DOCKER = process.env.DOCKER_CLI ?? '/usr/local/bin/docker';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Berthd {
  root: string;
  sock: string;
  host: string; // unix://…
  dataRoot: string;
  execRoot: string;
  cgroupParent: string;
  proc: ChildProcess;
  docker(args: string[], opts?: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult>;
  /** SIGTERM and wait. Containers keep running. */
  stop(): Promise<void>;
  /** kill -9, as a crash. Containers keep running. */
  kill9(): Promise<void>;
  /** Starts berthd again on the same roots. */
  restart(): Promise<void>;
  /** Stops berthd and removes every container process, mount, cgroup and file it made. */
  destroy(): Promise<void>;
}

/** A process that was killed by a signal has exitCode null and signalCode set: it is gone all the same,
 *  and no further 'exit' event will come. */
function isGone(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

// `logOffset`: where this start's output begins in the (appended) log, so that a restart after kill -9
// (which leaves the old socket file and the old "berthd ready" line behind) waits for the new daemon.
function waitForSocket(sock: string, proc: ChildProcess, logFile: string, logOffset = 0, ms = 20000): Promise<void> {
  const started = Date.now();
  const fresh = () => readFileSync(logFile).subarray(logOffset).toString('utf8');
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (isGone(proc)) {
        reject(new Error(`berthd exited with ${proc.exitCode ?? proc.signalCode}: ${fresh().slice(-2000)}`));
        return;
      }
      if (existsSync(sock) && fresh().includes('berthd ready')) return resolve();
      if (Date.now() - started > ms) return reject(new Error('berthd did not start in time'));
      setTimeout(tick, 25);
    };
    tick();
  });
}

export function runCmd(cmd: string, args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60000, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 255) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

export async function startBerthd(opts: { daemonJson?: object } = {}): Promise<Berthd> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-test-'));
  const sock = path.join(root, 'berth.sock');
  const dataRoot = path.join(root, 'data');
  const execRoot = path.join(root, 'exec');
  const cgroupParent = `berth-test-${randomBytes(4).toString('hex')}`;
  const configFile = path.join(root, 'daemon.json');
  writeFileSync(configFile, JSON.stringify(opts.daemonJson ?? {}));
  const logFile = path.join(root, 'berthd.log');
  mkdirSync(dataRoot);

  const b: Berthd = {
    root, sock, host: `unix://${sock}`, dataRoot, execRoot, cgroupParent,
    proc: undefined as unknown as ChildProcess,
    docker: (args, o = {}) => runCmd(DOCKER, args, { ...o, env: { DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: path.join(root, 'docker-config'), ...o.env } }),
    async stop() {
      if (isGone(b.proc)) return;
      const exited = new Promise((r) => b.proc.once('exit', r));
      b.proc.kill('SIGTERM');
      await exited;
    },
    async kill9() {
      if (isGone(b.proc)) return;
      const exited = new Promise((r) => b.proc.once('exit', r));
      b.proc.kill('SIGKILL');
      await exited;
    },
    async restart() {
      await launch();
    },
    async destroy() {
      await b.kill9().catch(() => {});
      await cleanupRoot(root, execRoot, cgroupParent);
    },
  };

  const launch = async () => {
    const logOffset = existsSync(logFile) ? statSync(logFile).size : 0;
    const fd = require('node:fs').openSync(logFile, 'a');
    b.proc = spawn(process.execPath, [path.join(REPO, 'bin', 'berthd'), '-H', `unix://${sock}`, '--data-root', dataRoot,
      '--exec-root', execRoot, '--pidfile', path.join(root, 'berthd.pid'), '--config-file', configFile,
      '--cgroup-parent', cgroupParent, '--log-level', process.env.BERTH_TEST_LOG_LEVEL ?? 'info'], { stdio: ['ignore', fd, fd] });
    require('node:fs').closeSync(fd);
    await waitForSocket(sock, b.proc, logFile, logOffset);
  };
  try {
    await launch();
  } catch (e) {
    await cleanupRoot(root, execRoot, cgroupParent);
    throw e;
  }
  return b;
}

/** Kills the shims and containers this instance started (by the pids it recorded), unmounts everything
 *  under its root, removes its cgroups and its files. */
export async function cleanupRoot(root: string, execRoot: string, cgroupParent: string): Promise<void> {
  const ctrDir = path.join(execRoot, 'containers');
  if (existsSync(ctrDir)) {
    for (const id of readdirSync(ctrDir)) {
      const pidFile = path.join(ctrDir, id, 'shim.pid');
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      // Only a process that is still our shim: its cmdline names the shim and this container id.
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmd.includes('berth-shim') && cmd.includes(id)) process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
  }
  // Kill what is left in our cgroups (container processes whose shim is gone), then remove them.
  for (const hier of cgroupHierarchies()) {
    const dir = path.join(hier, cgroupParent);
    if (!existsSync(dir)) continue;
    for (const sub of readdirSync(dir, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      const leaf = path.join(dir, sub.name);
      for (let i = 0; i < 50; i++) {
        let pids: string[] = [];
        try { pids = readFileSync(path.join(leaf, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean); } catch { break; }
        if (pids.length === 0) break;
        for (const p of pids) { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } }
        await new Promise((r) => setTimeout(r, 20));
      }
      try { rmdirSync(leaf); } catch { /* busy or gone */ }
    }
    try { rmdirSync(dir); } catch { /* busy or gone */ }
  }
  // Unmount deepest first.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]).filter((m) => m && (m === root || m.startsWith(root + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) umount2(m);
  rmSync(root, { recursive: true, force: true });
}

function cgroupHierarchies(): string[] {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const parts = line.split(' ');
    const sep = parts.indexOf('-');
    if (sep < 0) continue;
    if (parts[sep + 1] === 'cgroup' || parts[sep + 1] === 'cgroup2') out.add(parts[4]);
  }
  return [...out];
}
