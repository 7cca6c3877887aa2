// Starts a real berthd on a temporary socket, data root and exec root, and removes everything it made
// (shims, mounts, cgroups, files) when stopped — also after a failed test, and when the test process is
// ended by a signal before its after() hooks run (reaper.ts).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, rmdirSync, statSync, openSync, closeSync, unlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { unmountUnder } from './cleanup';
import { childGone, killChild, reapOnExit, sleepSync, waitDeadSync } from './reaper';

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
  /** This instance's default bridge device and its networks (10.213.<slot>.0/24; user networks from 10.214.<slot>.0/24). */
  net: TestNet;
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

// `logOffset`: where this start's output begins in the (appended) log, so that a restart after kill -9
// (which leaves the old socket file and the old "berthd ready" line behind) waits for the new daemon.
// BERTH_TEST_START_MS: slower machines (test/vm's emulated guests) give berthd longer to come up.
function waitForSocket(sock: string, proc: ChildProcess, logFile: string, logOffset = 0, ms = Number(process.env.BERTH_TEST_START_MS) || 20000): Promise<void> {
  const started = Date.now();
  const fresh = () => readFileSync(logFile).subarray(logOffset).toString('utf8');
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (childGone(proc)) {
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

// ---- networks of test daemons ---------------------------------------------------------------------
// Every daemon gets a slot N (1..250) held by a lock file naming the test process: its bridge is berth-tN,
// its default network 10.213.N.0/24 and its user networks /28s of 10.214.N.0/24, so that daemons of test
// files running at once never share a device, a subnet or an nftables table. A slot whose holder is dead
// is taken over after removing what the dead run left.
export interface TestNet {
  slot: number;
  bridge: string;
  subnet: string;
  gateway: string;
  pool: string;
  table: string;
}

const SLOT_DIR = path.join(os.tmpdir(), 'berth-test-nets');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function netOfSlot(slot: number): TestNet {
  const bridge = `berth-t${slot}`;
  return { slot, bridge, subnet: `10.213.${slot}.0/24`, gateway: `10.213.${slot}.1`, pool: `10.214.${slot}.0/24`, table: `berth_${bridge.replace(/[^A-Za-z0-9_]/g, '_')}` };
}

export function takeNetSlot(): TestNet {
  mkdirSync(SLOT_DIR, { recursive: true });
  const start = 1 + ((process.pid * 7) % 250);
  for (let i = 0; i < 250; i++) {
    const slot = 1 + ((start + i) % 250);
    const f = path.join(SLOT_DIR, String(slot));
    try {
      const fd = openSync(f, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
    } catch {
      let holder = 0;
      try { holder = Number(readFileSync(f, 'utf8')); } catch { /* racing */ }
      if (!holder || pidAlive(holder)) continue;
      try { unlinkSync(f); } catch { /* another took it */ }
      i--;
      continue;
    }
    const net = netOfSlot(slot);
    removeTestNet(net, []); // whatever a dead run left under this slot
    return net;
  }
  throw new Error('no free network slot for a test daemon');
}

function releaseNetSlot(net: TestNet): void {
  try {
    if (Number(readFileSync(path.join(SLOT_DIR, String(net.slot)), 'utf8')) === process.pid) unlinkSync(path.join(SLOT_DIR, String(net.slot)));
  } catch { /* gone */ }
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/** The bridges of a data root's user networks, from its database (read-only). */
function userBridges(dataRoot: string): string[] {
  const db = path.join(dataRoot, 'berth.db');
  if (!existsSync(db)) return [];
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const Database = require('better-sqlite3');
    const h = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return (h.prepare("SELECT bridge FROM networks WHERE driver = 'bridge' AND bridge != ''").all() as { bridge: string }[]).map((r) => r.bridge);
    } finally {
      h.close();
    }
  } catch {
    return [];
  }
}

/** Deletes the veths on the instance's bridges, the bridges and its nftables table. */
export function removeTestNet(net: TestNet, extraBridges: string[]): void {
  const bridges = new Set([net.bridge, ...extraBridges]);
  for (const line of sh('ip', ['-o', 'link', 'show']).split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)(?:@\S+)?:.* master (\S+)/.exec(line);
    if (m && bridges.has(m[2]) && m[1].startsWith('veth')) sh('ip', ['link', 'del', 'dev', m[1]]);
  }
  for (const br of bridges) sh('ip', ['link', 'del', 'dev', br]);
  sh('nft', ['delete', 'table', 'ip', net.table]);
  sh('nft', ['delete', 'table', 'bridge', net.table]);
  sh('nft', ['delete', 'table', 'ip6', net.table]); // made when a network has IPv6
  removeTestChains(net.bridge);
}

/** The chains a daemon killed with -9 left in the host's iptables filter table (berth adds them only
 *  where that table can drop traffic, e.g. on a host that has run Docker): looked for without creating a
 *  table (nft lists; the legacy tables in use are in /proc/net/ip_tables_names). */
function removeTestChains(bridge: string): void {
  const chains = [`BERTH-FWD-${bridge}`, `BERTH-IN-${bridge}`];
  const tools: string[] = [];
  if (sh('nft', ['list', 'chain', 'ip', 'filter', 'FORWARD'])) tools.push('iptables-nft');
  let legacy = '';
  try { legacy = readFileSync('/proc/net/ip_tables_names', 'utf8'); } catch { /* none */ }
  if (legacy.split('\n').includes('filter')) tools.push('iptables-legacy');
  for (const tool of tools) {
    const rules = sh(tool, ['-w', '10', '-S']);
    for (const c of chains) {
      if (!rules.includes(`-N ${c}\n`)) continue;
      for (const builtin of ['FORWARD', 'INPUT']) {
        const jumps = rules.split('\n').filter((l) => l === `-A ${builtin} -j ${c}`).length;
        for (let i = 0; i < jumps; i++) sh(tool, ['-w', '10', '-D', builtin, '-j', c]);
      }
      sh(tool, ['-w', '10', '-F', c]);
      sh(tool, ['-w', '10', '-X', c]);
    }
  }
}

export interface StartOptions {
  /** Merged over the instance's network settings in its daemon.json. */
  daemonJson?: object;
  extraArgs?: string[];
  dataRoot?: string;
  /** Runs berthd in this network namespace (a file such as /run/netns/NAME) with berth's own network
   *  defaults (berth0, subnets from the default pools) instead of the instance's private test bridge:
   *  safe only in a namespace of the test's own (test/helpers/dockerhost.ts). */
  netns?: string;
  /** A command berthd is started through (its argv before node's), e.g. build/enosys-exec with its
   *  options: berthd and every shim it starts then run as that command leaves them. */
  launcher?: string[];
  /** More environment for berthd (and so its shims). */
  env?: Record<string, string>;
}

export async function startBerthd(opts: StartOptions = {}): Promise<Berthd> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-test-'));
  // A daemon in a namespace of its own takes no slot: its devices and tables go with the namespace, and
  // nothing of the host's network may be touched on its behalf (its default bridge is berth0 there).
  const net = opts.netns ? netOfSlot(0) : takeNetSlot();
  const hostNet = opts.netns ? undefined : net;
  const sock = path.join(root, 'berth.sock');
  const dataRoot = opts.dataRoot ?? path.join(root, 'data');
  const execRoot = path.join(root, 'exec');
  const cgroupParent = `berth-test-${randomBytes(4).toString('hex')}`;
  const configFile = path.join(root, 'daemon.json');
  const testNet = opts.netns ? {} : { bridge: net.bridge, bip: `${net.gateway}/24`, 'default-address-pools': [{ base: net.pool, size: 28 }] };
  writeFileSync(configFile, JSON.stringify({ ...testNet, ...(opts.daemonJson ?? {}) }));
  const logFile = path.join(root, 'berthd.log');
  mkdirSync(dataRoot, { recursive: true });

  // Until destroy() has run: a signal or exit of the test process kills this berthd (by the child it
  // spawned) and removes its roots, shims, cgroups and network.
  const reap = reapOnExit(`berthd in ${root}`, () => {
    if (b.proc) {
      killChild(b.proc);
      if (b.proc.pid !== undefined && !childGone(b.proc)) waitDeadSync(b.proc.pid);
    }
    cleanupRoot(root, execRoot, cgroupParent, hostNet);
  });

  const b: Berthd = {
    root, sock, host: `unix://${sock}`, dataRoot, execRoot, cgroupParent, net,
    proc: undefined as unknown as ChildProcess,
    docker: (args, o = {}) => runCmd(DOCKER, args, { ...o, env: { DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: path.join(root, 'docker-config'), ...o.env } }),
    async stop() {
      if (childGone(b.proc)) return;
      const exited = new Promise((r) => b.proc.once('exit', r));
      b.proc.kill('SIGTERM');
      await exited;
    },
    async kill9() {
      if (childGone(b.proc)) return;
      const exited = new Promise((r) => b.proc.once('exit', r));
      b.proc.kill('SIGKILL');
      await exited;
    },
    async restart() {
      await launch();
    },
    async destroy() {
      await b.kill9().catch(() => {});
      reap.run();
    },
  };

  const launch = async () => {
    const logOffset = existsSync(logFile) ? statSync(logFile).size : 0;
    const fd = require('node:fs').openSync(logFile, 'a');
    const argv = [process.execPath, path.join(REPO, 'bin', 'berthd'), '-H', `unix://${sock}`, '--data-root', dataRoot,
      '--exec-root', execRoot, '--pidfile', path.join(root, 'berthd.pid'), '--config-file', configFile,
      // cgroupfs also on a systemd host (where berthd would pick the systemd driver): the tests read the
      // cgroup files at <cgroup-parent>/<id>. test/vm/systemd.vm.test.ts tests the systemd driver.
      '--cgroup-parent', cgroupParent, '--exec-opt', 'native.cgroupdriver=cgroupfs',
      '--log-level', process.env.BERTH_TEST_LOG_LEVEL ?? 'info', ...(opts.extraArgs ?? [])];
    // nsenter changes the network namespace only (`ip netns exec` would also remount /sys, hiding cgroups).
    const inNetns = opts.netns ? ['nsenter', `--net=${opts.netns}`, '--'] : [];
    const [cmd, ...rest] = [...inNetns, ...(opts.launcher ?? []), ...argv];
    b.proc = spawn(cmd, rest, {
      stdio: ['ignore', fd, fd],
      // Tests never reach beyond loopback: a registry elsewhere (docker.io for an unknown image) is asked
      // through a proxy on a closed loopback port, so the pull fails at once without any outside traffic.
      env: { ...process.env, HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: 'localhost,127.0.0.1,::1', ...opts.env },
    });
    require('node:fs').closeSync(fd);
    await waitForSocket(sock, b.proc, logFile, logOffset);
  };
  try {
    await launch();
  } catch (e) {
    // A berthd still starting when the wait gave up would keep the test process (and node --test) alive.
    await b.kill9().catch(() => {});
    reap.run();
    throw e;
  }
  return b;
}

/** Kills the shims and containers this instance started (by the pids it recorded), unmounts everything
 *  under its root, removes its cgroups and its files. Synchronous: it also runs from a signal handler. */
export function cleanupRoot(root: string, execRoot: string, cgroupParent: string, net?: TestNet): void {
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
  // A paused container's tasks take SIGKILL only once thawed (v1 freezer, v2 cgroup.freeze): thaw first.
  for (const hier of cgroupHierarchies()) {
    const dir = path.join(hier, cgroupParent);
    if (!existsSync(dir)) continue;
    for (const sub of readdirSync(dir, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      try { writeFileSync(path.join(dir, sub.name, 'freezer.state'), 'THAWED'); } catch { /* not the freezer */ }
      try { writeFileSync(path.join(dir, sub.name, 'cgroup.freeze'), '0'); } catch { /* not v2 */ }
    }
  }
  // Kill what is left in our cgroups (container processes whose shim is gone), then remove them.
  for (const hier of cgroupHierarchies()) {
    const dir = path.join(hier, cgroupParent);
    if (!existsSync(dir)) continue;
    // Deepest first: containers given a CgroupParent under ours (pods: kubepods/burstable/pod<uid>/<id>).
    const removeTree = (d: string, depth: number): void => {
      if (depth > 8) return;
      for (const sub of readdirSync(d, { withFileTypes: true })) if (sub.isDirectory()) removeTree(path.join(d, sub.name), depth + 1);
      for (let i = 0; i < 50; i++) {
        let pids: string[] = [];
        try { pids = readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean); } catch { break; }
        if (pids.length === 0) break;
        for (const p of pids) { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } }
        sleepSync(20);
      }
      try { rmdirSync(d); } catch { /* busy or gone */ }
    };
    removeTree(dir, 0);
  }
  unmountUnder(root);
  // Network: with the processes gone and the namespace files unmounted the container ends of the veths
  // are gone; the host ends, the bridges and the nftables table go here.
  if (net) {
    removeTestNet(net, userBridges(path.join(root, 'data')));
    releaseNetSlot(net);
  }
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
