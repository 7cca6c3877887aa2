#!/usr/bin/env node
// Smoke test of berth-shim against real namespaces, mounts and cgroups. Run as root from the repo:
//
//   make shim && node addon/shim/test/shim-smoke.js
//
// It builds a busybox rootfs in a temporary directory (bind-mounted onto itself, as berthd mounts the
// overlay there), writes config.json files shaped like Docker's, drives the shim over its fd-3
// socket and shim.sock, and checks frames, exit.json and the json-file log. Plain node, no packages.
// Everything it creates (mounts, cgroups, temp dirs, processes) is removed at the end, also on failure.
// BERTH_SHIM overrides the binary; SMOKE_ONLY=substring runs only matching cases.
'use strict';

const assert = require('assert');
const cp = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const SHIM = process.env.BERTH_SHIM || path.resolve(__dirname, '../../../build/berth-shim');
const BUSYBOX = '/bin/busybox';

const T = { STDOUT: 1, STDERR: 2, STARTED: 0x10, START_FAILED: 0x11, EXITED: 0x12, STATUS: 0x13,
  SUBSCRIBE: 0x20, STDIN: 0x21, STDIN_CLOSE: 0x22, SIGNAL: 0x23, RESIZE: 0x24, STATUS_REQ: 0x25 };

// ---------------------------------------------------------------- cleanup bookkeeping

const cleanup = { mounts: [], dirs: [], cgroups: [], pids: new Set() };

function runCleanup() {
  for (const pid of cleanup.pids) {
    try { process.kill(pid, 'SIGKILL'); } catch (_) { /* already gone */ }
  }
  for (const m of cleanup.mounts.reverse()) {
    try { cp.execFileSync('umount', [m], { stdio: 'ignore' }); } catch (_) {
      try { cp.execFileSync('umount', ['-l', m], { stdio: 'ignore' }); } catch (_) { /* not mounted */ }
    }
  }
  for (const cg of cleanup.cgroups) {
    // A killed container leaves its cgroup only once the kernel has reaped it; retry briefly.
    for (let i = 0; i < 50; i++) {
      try { fs.rmdirSync(cg); break; } catch (e) {
        if (e.code === 'ENOENT') break;
        cp.execFileSync('sleep', ['0.1']);
      }
    }
  }
  for (const d of cleanup.dirs.reverse()) fs.rmSync(d, { recursive: true, force: true });
}

// ---------------------------------------------------------------- fixtures

function makeRootfs(base) {
  const root = path.join(base, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home/nobody']) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const applets = cp.execFileSync(BUSYBOX, ['--list']).toString().split('\n').filter(Boolean);
  for (const a of applets) {
    if (a !== 'busybox') fs.symlinkSync('busybox', path.join(root, 'bin', a));
  }
  fs.writeFileSync(path.join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
  fs.writeFileSync(path.join(root, 'etc/secret'), 'not executable\n', { mode: 0o644 });
  // berthd mounts the container's overlay on root.path; a bind mount of the directory stands in here.
  cp.execFileSync('mount', ['--bind', root, root]);
  cleanup.mounts.push(root);
  return root;
}

function makeCgroup(name) {
  // cgroup v2 (unified at /sys/fs/cgroup) or the v1 pids hierarchy.
  let parent = null;
  if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) parent = '/sys/fs/cgroup';
  else if (fs.existsSync('/sys/fs/cgroup/pids/cgroup.procs')) parent = '/sys/fs/cgroup/pids';
  if (!parent) return null;
  const dir = path.join(parent, name);
  fs.mkdirSync(dir);
  cleanup.cgroups.push(dir);
  return dir;
}

const DEFAULT_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT',
  'CAP_KILL', 'CAP_AUDIT_WRITE'];
const DEFAULT_CAPS_MASK = '00000000a80425fb';

// A config.json shaped like the one Docker hands to runc for `docker run busybox ...`.
function makeConfig(rootfs, args, over = {}) {
  const cfg = {
    ociVersion: '1.2.0',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0, additionalGids: [0, 10] },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=smoke'],
      cwd: '/',
      capabilities: { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 1024 }],
      noNewPrivileges: true,
      oomScoreAdj: 0,
    },
    root: { path: rootfs, readonly: false },
    hostname: 'smoke-host',
    domainname: 'smoke.example',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'] },
    ],
    linux: {
      sysctl: { 'net.ipv4.ip_forward': '1' },
      namespaces: [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }, { type: 'cgroup' }],
      maskedPaths: ['/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys',
        '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi',
        '/sys/firmware', '/sys/devices/virtual/powercap'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      devices: [],
    },
    annotations: {},
  };
  if (over.process) Object.assign(cfg.process, over.process);
  if (over.root) Object.assign(cfg.root, over.root);
  if (over.linux) Object.assign(cfg.linux, over.linux);
  if (over.annotations) Object.assign(cfg.annotations, over.annotations);
  if (over.mounts) cfg.mounts = cfg.mounts.concat(over.mounts);
  return cfg;
}

// ---------------------------------------------------------------- frames

function frame(type, payload = Buffer.alloc(0)) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(p.length, 4);
  return Buffer.concat([h, p]);
}
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };

// Collects the frames arriving on a socket and lets a test wait for one.
class FrameReader {
  constructor(sock) {
    this.sock = sock;
    this.frames = [];
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    this.closed = false;
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 8) {
        const len = this.buf.readUInt32BE(4);
        if (this.buf.length < 8 + len) break;
        this.frames.push({ type: this.buf[0], payload: this.buf.subarray(8, 8 + len) });
        this.buf = this.buf.subarray(8 + len);
      }
      this.wake();
    });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => {});
  }
  wake() {
    for (const w of this.waiters.slice()) w();
  }
  // Resolves with the first frame of the given type (or the first matching pred).
  wait(type, timeoutMs = 10000, pred = () => true) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = this.frames.find((x) => x.type === type && pred(x));
        if (f) { done(); resolve(f); return; }
        if (this.closed) { done(); reject(new Error(`connection closed before frame 0x${type.toString(16)}; got ${this.describe()}`)); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`timeout waiting for frame 0x${type.toString(16)}; got ${this.describe()}`)); }, timeoutMs);
      const done = () => { clearTimeout(timer); this.waiters = this.waiters.filter((w) => w !== check); };
      this.waiters.push(check);
      check();
    });
  }
  text(type) {
    return Buffer.concat(this.frames.filter((f) => f.type === type).map((f) => f.payload)).toString();
  }
  json(type) {
    const f = this.frames.find((x) => x.type === type);
    return f ? JSON.parse(f.payload.toString()) : undefined;
  }
  describe() {
    return JSON.stringify(this.frames.map((f) => [f.type, f.payload.toString().slice(0, 200)]));
  }
  send(type, payload) { this.sock.write(frame(type, payload)); }
}

// ---------------------------------------------------------------- running the shim

let caseNo = 0;

// Starts a shim for a config. Returns { reader, child, state, log, exit (promise of the shim's exit code) }.
function startShim(base, cfg, { attach = true, extraArgs = [], cgroup = null } = {}) {
  const n = ++caseNo;
  const bundle = path.join(base, `bundle${n}`);
  const state = path.join(base, `state${n}`);
  fs.mkdirSync(bundle);
  fs.mkdirSync(state);
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg, null, 2));
  const log = path.join(base, `ctr${n}-json.log`);
  const args = ['--id', `smoke${n}`, '--bundle', bundle, '--state', state, '--log', log, ...extraArgs];
  if (attach) args.push('--attach');
  if (cgroup) args.push('--cgroup', cgroup);
  const stderr = process.env.SMOKE_DEBUG ? 'inherit' : 'ignore';
  const child = cp.spawn(SHIM, args, { stdio: ['ignore', 'ignore', stderr, 'pipe'], detached: true });
  cleanup.pids.add(child.pid);
  let containerPid = 0;
  const exit = new Promise((resolve) => child.on('exit', (code, sig) => {
    cleanup.pids.delete(child.pid);
    // A shim that exited by itself has reaped the container (exit 0 after EXITED, exit 1 after
    // START_FAILED); its pid may be reused from now on and must not be killed at cleanup.
    if (!sig) cleanup.pids.delete(containerPid);
    resolve(sig ? `signal ${sig}` : code);
  }));
  const reader = new FrameReader(child.stdio[3]);
  // Remember the container's pid so that a failing test still kills it.
  reader.wait(T.STARTED, 30000).then((f) => {
    containerPid = JSON.parse(f.payload).pid;
    if (child.exitCode === null && child.signalCode === null) cleanup.pids.add(containerPid);
  }, () => {});
  return { reader, child, state, log, bundle, exit };
}

// Exec mode: one more process in the running container whose init has host pid `pid`.
function startExec(base, pid, proc, { stdin = false, cgroup = null, linux = undefined } = {}) {
  const n = ++caseNo;
  const state = path.join(base, `exec-state${n}`);
  fs.mkdirSync(state);
  const file = path.join(state, 'process.json');
  const process_ = {
    terminal: false, user: { uid: 0, gid: 0 }, cwd: '/',
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    capabilities: { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS },
    ...proc,
  };
  fs.writeFileSync(file, JSON.stringify({ process: process_, linux }));
  const args = ['exec', '--id', `exec${n}`, '--pid', String(pid), '--process', file, '--state', state];
  if (stdin) args.push('--stdin');
  if (cgroup) args.push('--cgroup', cgroup);
  const stderr = process.env.SMOKE_DEBUG ? 'inherit' : 'ignore';
  const child = cp.spawn(SHIM, args, { stdio: ['ignore', 'ignore', stderr, 'pipe'], detached: true });
  cleanup.pids.add(child.pid);
  const exit = new Promise((resolve) => child.on('exit', (code, sig) => {
    cleanup.pids.delete(child.pid);
    resolve(sig ? `signal ${sig}` : code);
  }));
  return { reader: new FrameReader(child.stdio[3]), child, state, exit };
}

function readLog(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
// Go's RFC3339Nano, as Docker shows State.FinishedAt: trailing zeros of the fraction trimmed, no fraction at all
// on a whole second.
const GO_TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$/;

// Runs a command to completion with --attach and returns what it printed and how it ended.
async function runToExit(base, cfg, opts) {
  const s = startShim(base, cfg, opts);
  const exited = await s.reader.wait(T.EXITED);
  const code = await s.exit;
  return { ...s, exited: JSON.parse(exited.payload), shimCode: code,
    stdout: s.reader.text(T.STDOUT), stderr: s.reader.text(T.STDERR) };
}

function rssOf(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : -1;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Fails a case that hangs (a shim that never exits, say) instead of hanging the suite.
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- cases

function cases(base, rootfs) {
  const cg = () => makeCgroup(`berth-shim-smoke-${process.pid}-${caseNo + 1}`);
  return {
    async 'echo hello: output, exit.json, log, shim.pid'() {
      const r = await runToExit(base, makeConfig(rootfs, ['echo', 'hello']));
      assert.strictEqual(r.stdout, 'hello\n');
      assert.strictEqual(r.exited.exitCode, 0);
      assert.strictEqual(r.exited.signal, 0);
      assert.match(r.exited.finishedAt, GO_TIME_RE);
      assert.strictEqual(r.shimCode, 0);
      const started = r.reader.json(T.STARTED);
      assert.ok(started.pid > 1, 'STARTED has the host pid');
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(r.state, 'exit.json'))), r.exited);
      assert.strictEqual(fs.readFileSync(path.join(r.state, 'shim.pid'), 'utf8').trim(), String(r.child.pid));
      assert.ok(!fs.existsSync(path.join(r.state, 'shim.sock')), 'shim.sock removed at exit');
      const log = readLog(r.log);
      assert.strictEqual(log.length, 1);
      assert.strictEqual(log[0].log, 'hello\n');
      assert.strictEqual(log[0].stream, 'stdout');
      assert.match(log[0].time, TIME_RE);
      assert.deepStrictEqual(Object.keys(log[0]), ['log', 'stream', 'time']);
    },

    async 'stdout and stderr apart, exit 3'() {
      const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', 'echo out; echo err >&2; exit 3']));
      assert.strictEqual(r.stdout, 'out\n');
      assert.strictEqual(r.stderr, 'err\n');
      assert.strictEqual(r.exited.exitCode, 3);
      const log = readLog(r.log);
      assert.deepStrictEqual(log.map((e) => [e.stream, e.log]).sort(), [['stderr', 'err\n'], ['stdout', 'out\n']]);
    },

    async 'hostname, pid 1, lo up, sysctl, devices, masked and read-only paths'() {
      const script = [
        'hostname', 'echo pid=$$', 'ps -o pid,comm | sed -n 2p', 'ip link show lo | head -1',
        'cat /proc/sys/net/ipv4/ip_forward', 'ls /dev | tr "\\n" " "; echo', 'echo x > /dev/null && echo devnull-ok',
        'wc -c < /proc/keys', 'ls /sys/firmware | wc -l',
        'echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-ro',
        'echo x > /sys/x 2>/dev/null || echo sysfs-ro', 'ulimit -n', 'cat /proc/self/oom_score_adj',
        'grep NoNewPrivs /proc/self/status', 'grep CapBnd /proc/self/status', 'grep CapEff /proc/self/status',
        'id', 'pwd', 'cat /proc/sys/kernel/domainname', 'ls /proc/self/fd | tr "\\n" " "; echo', 'grep -E "SigIgn|SigBlk" /proc/self/status | tr -s "\\t\\n" "  "; echo',
      ].join('; ');
      const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', script], { process: { cwd: '/work/dir' } }));
      const lines = r.stdout.split('\n');
      assert.strictEqual(r.exited.exitCode, 0, r.stdout + r.stderr);
      assert.strictEqual(lines[0], 'smoke-host');
      assert.strictEqual(lines[1], 'pid=1');
      assert.match(lines[2], /^\s*1 sh$/);
      assert.match(lines[3], /<LOOPBACK,UP/);
      assert.strictEqual(lines[4], '1');
      for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'fd', 'stdin', 'stdout', 'stderr', 'pts', 'shm', 'mqueue']) {
        assert.ok(lines[5].split(' ').includes(d), `/dev/${d} in ${lines[5]}`);
      }
      assert.strictEqual(lines[6], 'devnull-ok');
      assert.strictEqual(lines[7].trim(), '0', '/proc/keys masked');
      assert.strictEqual(lines[8].trim(), '0', '/sys/firmware masked');
      assert.strictEqual(lines[9], 'sys-ro');
      assert.strictEqual(lines[10], 'sysfs-ro');
      assert.strictEqual(lines[11], '1024');
      assert.strictEqual(lines[12], '0');
      assert.match(lines[13], /NoNewPrivs:\s+1/);
      assert.match(lines[14], new RegExp(`CapBnd:\\s+${DEFAULT_CAPS_MASK}`));
      assert.match(lines[15], new RegExp(`CapEff:\\s+${DEFAULT_CAPS_MASK}`));
      assert.match(lines[16], /^uid=0\(root\) gid=0\(root\) groups=0\(root\),10/);
      assert.strictEqual(lines[17], '/work/dir');
      assert.strictEqual(lines[18], 'smoke.example');
      assert.strictEqual(lines[19], '0 1 2 3 ', 'only stdio (and ls\'s own directory fd) in the container');
      assert.strictEqual(lines[20], 'SigBlk: 0000000000000000 SigIgn: 0000000000000000 ', 'no ignored or blocked signals');
    },

    async 'non-root user loses capabilities, groups set'() {
      const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', 'id; grep CapEff /proc/self/status; touch /etc/x 2>&1 || echo denied'],
        { process: { user: { uid: 65534, gid: 65534, additionalGids: [65534] } } }));
      assert.strictEqual(r.exited.exitCode, 0, r.stdout + r.stderr);
      const lines = r.stdout.split('\n');
      assert.match(lines[0], /^uid=65534\(nobody\) gid=65534\(nogroup\) groups=65534\(nogroup\)$/);
      assert.match(lines[1], /CapEff:\s+0000000000000000/);
      assert.ok(r.stdout.includes('denied'));
    },

    async 'cgroup placement and cgroup namespace'() {
      const dir = cg();
      if (!dir) return 'skipped: no cgroup hierarchy to use';
      const s = startShim(base, makeConfig(rootfs, ['sh', '-c', 'cat /proc/self/cgroup; ls /sys/fs/cgroup | tr "\\n" " "; echo; sleep 1000']), { cgroup: dir });
      const started = JSON.parse((await s.reader.wait(T.STARTED)).payload);
      await s.reader.wait(T.STDOUT);
      for (let i = 0; i < 50 && !s.reader.text(T.STDOUT).includes('\n\n') && s.reader.text(T.STDOUT).split('\n').length < 3; i++) await sleep(50);
      await sleep(200);
      const procs = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      assert.ok(procs.includes(started.pid), `pid ${started.pid} in ${dir}/cgroup.procs (${procs})`);
      const out = s.reader.text(T.STDOUT).split('\n');
      const cgLines = out.filter((l) => /^\d+:/.test(l));
      assert.ok(cgLines.length > 0, out.join('|'));
      for (const l of cgLines) assert.match(l, /:\/$/, `cgroup namespace root in "${l}"`);
      s.reader.send(T.SIGNAL, u32(9));
      const ex = JSON.parse((await s.reader.wait(T.EXITED)).payload);
      assert.strictEqual(ex.exitCode, 137);
      assert.strictEqual(await s.exit, 0);
      return `cgroup.procs ok; /proc/self/cgroup: ${cgLines.join(' ')}`;
    },

    async 'missing command: START_FAILED "executable file not found"'() {
      const s = startShim(base, makeConfig(rootfs, ['no-such-command', 'x']));
      const f = JSON.parse((await s.reader.wait(T.START_FAILED)).payload);
      assert.strictEqual(f.message, 'exec: "no-such-command": executable file not found in $PATH');
      assert.strictEqual(await s.exit, 1);
      assert.ok(!fs.existsSync(path.join(s.state, 'exit.json')));
      assert.ok(!fs.existsSync(path.join(s.state, 'shim.sock')));
    },

    async 'missing absolute path: "no such file or directory"'() {
      const s = startShim(base, makeConfig(rootfs, ['/no/such']));
      const f = JSON.parse((await s.reader.wait(T.START_FAILED)).payload);
      assert.strictEqual(f.message, 'exec: "/no/such": stat /no/such: no such file or directory');
      assert.strictEqual(await s.exit, 1);
    },

    async 'not executable: "permission denied"'() {
      const s = startShim(base, makeConfig(rootfs, ['/etc/secret']));
      const f = JSON.parse((await s.reader.wait(T.START_FAILED)).payload);
      assert.match(f.message, /permission denied/);
      assert.strictEqual(await s.exit, 1);
    },

    async 'bad mount: START_FAILED names it'() {
      const s = startShim(base, makeConfig(rootfs, ['true'], { mounts: [{ destination: '/data', type: 'bind', source: '/no/such/dir', options: ['rbind'] }] }));
      const f = JSON.parse((await s.reader.wait(T.START_FAILED)).payload);
      assert.match(f.message, /\/no\/such\/dir.*no such file or directory/);
      assert.strictEqual(await s.exit, 1);
    },

    async 'sleep killed with SIGNAL 9 gives 137; STATUS; RSS'() {
      const s = startShim(base, makeConfig(rootfs, ['sleep', '1000']));
      const started = JSON.parse((await s.reader.wait(T.STARTED)).payload);
      s.reader.send(T.STATUS_REQ);
      const st = JSON.parse((await s.reader.wait(T.STATUS)).payload);
      assert.deepStrictEqual(st, { pid: started.pid, running: true });
      await sleep(300);
      const rss = rssOf(s.child.pid);
      s.reader.send(T.SIGNAL, u32(9));
      const ex = JSON.parse((await s.reader.wait(T.EXITED)).payload);
      assert.strictEqual(ex.exitCode, 137);
      assert.strictEqual(ex.signal, 9);
      assert.strictEqual(await s.exit, 0);
      return `shim VmRSS while idle: ${rss} kB`;
    },

    async 'fd 3 closed: logging goes on, shim.sock client subscribes, signals, gets EXITED'() {
      const s = startShim(base, makeConfig(rootfs, ['sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']));
      await s.reader.wait(T.STDOUT);
      s.child.stdio[3].destroy(); // berthd is gone
      await sleep(500);
      const c = net.createConnection(path.join(s.state, 'shim.sock'));
      await new Promise((res, rej) => { c.once('connect', res); c.once('error', rej); });
      const r = new FrameReader(c);
      r.send(T.STATUS_REQ);
      const st = JSON.parse((await r.wait(T.STATUS)).payload);
      assert.strictEqual(st.running, true);
      r.send(T.SUBSCRIBE, Buffer.from([1]));
      await r.wait(T.STDOUT);
      // The log keeps growing with berthd gone: wait (bounded) for lines written after fd 3 closed, since a
      // loaded machine may run the 0.1 s ticks late.
      let logged = readLog(s.log).length;
      for (let i = 0; i < 100 && logged < 8; i++) {
        await sleep(100);
        logged = readLog(s.log).length;
      }
      r.send(T.SIGNAL, u32(9));
      const ex = JSON.parse((await r.wait(T.EXITED)).payload);
      assert.strictEqual(ex.exitCode, 137);
      assert.strictEqual(await s.exit, 0);
      assert.ok(logged >= 8, `log kept growing after fd 3 closed (${logged} lines)`);
      assert.ok(r.text(T.STDOUT).startsWith('tick '));
      c.destroy();
    },

    async 'joining another container\'s pid, network and ipc namespaces by path'() {
      const a = startShim(base, makeConfig(rootfs, ['sleep', '1000']));
      const apid = JSON.parse((await a.reader.wait(T.STARTED)).payload).pid;
      const ns = [{ type: 'mount' }, { type: 'uts' }, { type: 'cgroup' },
        { type: 'pid', path: `/proc/${apid}/ns/pid` }, { type: 'network', path: `/proc/${apid}/ns/net` },
        { type: 'ipc', path: `/proc/${apid}/ns/ipc` }];
      const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', 'ps -o pid,comm | grep -c "1 sleep"; ip link show lo | head -1; readlink /proc/1/ns/net'],
        { linux: { namespaces: ns } }));
      const lines = r.stdout.split('\n');
      assert.strictEqual(r.exited.exitCode, 0, r.stdout + r.stderr);
      assert.strictEqual(lines[0], '1', 'sees the first container\'s init as pid 1');
      assert.match(lines[1], /<LOOPBACK,UP/);
      assert.strictEqual(lines[2], fs.readlinkSync(`/proc/${apid}/ns/net`));
      a.reader.send(T.SIGNAL, u32(9));
      assert.strictEqual(JSON.parse((await a.reader.wait(T.EXITED)).payload).exitCode, 137);
      assert.strictEqual(await a.exit, 0);
    },

    async 'TTY: pty output on STDOUT frames, RESIZE, STDIN'() {
      const s = startShim(base, makeConfig(rootfs, ['sh', '-c', 'read x; stty size; echo "got $x"; tty'],
        { process: { terminal: true, env: ['PATH=/bin', 'TERM=xterm'] } }));
      await s.reader.wait(T.STARTED);
      s.reader.send(T.RESIZE, Buffer.from([0, 40, 0, 100]));
      s.reader.send(T.STDIN, 'abc\n');
      const ex = JSON.parse((await s.reader.wait(T.EXITED)).payload);
      assert.strictEqual(ex.exitCode, 0);
      const out = s.reader.text(T.STDOUT);
      assert.ok(out.includes('40 100\r\n'), JSON.stringify(out));
      assert.ok(out.includes('got abc\r\n'), JSON.stringify(out));
      assert.ok(out.includes('/dev/pts/0\r\n'), `tty names the container's own pty: ${JSON.stringify(out)}`);
      assert.strictEqual(s.reader.text(T.STDERR), '');
      assert.ok(readLog(s.log).every((e) => e.stream === 'stdout'));
      assert.strictEqual(await s.exit, 0);
    },

    async 'TTY: consoleSize gives the first window size'() {
      const r = await runToExit(base, makeConfig(rootfs, ['stty', 'size'],
        { process: { terminal: true, consoleSize: { height: 33, width: 120 } } }));
      assert.strictEqual(r.exited.exitCode, 0);
      assert.strictEqual(r.stdout, '33 120\r\n');
    },

    async 'backpressure: a subscriber that does not read holds the container back, then gets everything'() {
      const total = 24 * 1024 * 1024;
      // The container waits a moment so that the subscription below is in place before it writes.
      const s = startShim(base, makeConfig(rootfs, ['sh', '-c', `sleep 0.5; head -c ${total} /dev/zero | tr '\\0' x; echo; echo done`]), { attach: false });
      await s.reader.wait(T.STARTED);
      const c = net.createConnection(path.join(s.state, 'shim.sock'));
      await new Promise((res, rej) => { c.once('connect', res); c.once('error', rej); });
      // Count bytes of STDOUT frames without keeping them; stop reading to build a backlog.
      let got = 0;
      let pending = Buffer.alloc(0);
      let exited = null;
      c.on('data', (d) => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 8) {
          const len = pending.readUInt32BE(4);
          if (pending.length < 8 + len) break;
          if (pending[0] === T.STDOUT) got += len;
          if (pending[0] === T.EXITED) exited = JSON.parse(pending.subarray(8, 8 + len));
          pending = pending.subarray(8 + len);
        }
      });
      c.pause();
      c.write(frame(T.SUBSCRIBE, Buffer.from([1])));
      await sleep(1500);
      const logged = fs.statSync(s.log).size;
      // Without backpressure all 24 MiB would be in the log by now; the 4 MiB limit (plus socket buffers)
      // stops the reading much earlier.
      assert.ok(logged < total / 2, `container held back while the subscriber stalls (log ${logged} bytes)`);
      c.resume();
      const code = await s.exit;
      for (let i = 0; i < 100 && !exited; i++) await sleep(50);
      assert.strictEqual(code, 0);
      assert.ok(exited && exited.exitCode === 0, 'EXITED after the backlog drained');
      assert.strictEqual(got, total + 6, 'every byte reached the subscriber');
      c.destroy();
      return `log held at ${(logged / 1048576).toFixed(1)} MiB while stalled`;
    },

    async 'stdin pipe: STDIN then STDIN_CLOSE'() {
      const s = startShim(base, makeConfig(rootfs, ['sh', '-c', 'cat; echo done'], { annotations: { 'org.berth.stdin': 'true' } }));
      await s.reader.wait(T.STARTED);
      s.reader.send(T.STDIN, 'line1\n');
      s.reader.send(T.STDIN, 'line2\n');
      s.reader.send(T.STDIN_CLOSE);
      const ex = JSON.parse((await s.reader.wait(T.EXITED)).payload);
      assert.strictEqual(ex.exitCode, 0);
      assert.strictEqual(s.reader.text(T.STDOUT), 'line1\nline2\ndone\n');
    },

    async 'stdin: 6 MiB to a slow reader arrive whole and in order, then STDIN_CLOSE'() {
      const s = startShim(base, makeConfig(rootfs, ['sh', '-c', 'sleep 0.5; md5sum'], { annotations: { 'org.berth.stdin': 'true' } }));
      await s.reader.wait(T.STARTED);
      const data = Buffer.alloc(6 * 1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
      for (let off = 0; off < data.length; off += 32768) s.reader.send(T.STDIN, data.subarray(off, off + 32768));
      s.reader.send(T.STDIN_CLOSE);
      const ex = JSON.parse((await s.reader.wait(T.EXITED, 30000)).payload);
      assert.strictEqual(ex.exitCode, 0);
      const md5 = require('crypto').createHash('md5').update(data).digest('hex');
      assert.strictEqual(s.reader.text(T.STDOUT), `${md5}  -\n`);
    },

    async 'stdin not read: a SIGNAL behind pending STDIN still gets through'() {
      const s = startShim(base, makeConfig(rootfs, ['sleep', '1000'], { annotations: { 'org.berth.stdin': 'true' } }));
      await s.reader.wait(T.STARTED);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      for (let i = 0; i < 24; i++) s.reader.send(T.STDIN, chunk); // 1.5 MiB the container never reads
      s.reader.send(T.SIGNAL, u32(9));
      const ex = JSON.parse((await s.reader.wait(T.EXITED)).payload);
      assert.strictEqual(ex.exitCode, 137);
      assert.strictEqual(await s.exit, 0);
    },

    async 'no stdin pipe: stdin is /dev/null'() {
      const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', 'cat; echo eof']));
      assert.strictEqual(r.stdout, 'eof\n');
    },

    async 'log: escaping, invalid UTF-8, partial line, long line'() {
      const script = "printf 'a\\tb\"q\\\\\\001\\377<>&\\n'; printf 'é€😀\\n'; head -c 40000 /dev/zero | tr '\\0' x; echo; printf tail";
      const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', script]));
      assert.strictEqual(r.exited.exitCode, 0);
      const raw = fs.readFileSync(r.log, 'utf8');
      assert.ok(raw.includes('\\u0001') && raw.includes('\\ufffd') && raw.includes('\\u003c\\u003e\\u0026'), raw.slice(0, 200));
      const log = readLog(r.log);
      assert.strictEqual(log[0].log, 'a\tb"q\\\u0001\ufffd<>&\n');
      assert.strictEqual(log[1].log, 'é€😀\n');
      const long = log.slice(2, -1).map((e) => e.log);
      assert.deepStrictEqual(long.map((l) => l.length), [16384, 16384, 7233]);
      assert.strictEqual(long.join(''), 'x'.repeat(40000) + '\n');
      assert.strictEqual(log[log.length - 1].log, 'tail');
    },

    async 'log rotation: --log-max-size/--log-max-file'() {
      const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); done']),
        { extraArgs: ['--log-max-size', '400', '--log-max-file', '3'] });
      assert.strictEqual(r.exited.exitCode, 0);
      assert.ok(fs.existsSync(r.log) && fs.existsSync(r.log + '.1') && fs.existsSync(r.log + '.2'));
      assert.ok(!fs.existsSync(r.log + '.3'));
      for (const f of [r.log, r.log + '.1', r.log + '.2']) assert.ok(fs.statSync(f).size <= 400, f);
      assert.strictEqual(readLog(r.log).pop().log, 'line 39\n');
    },

    async 'log rotation with --log-compress: FILE.N.gz, complete when the shim has exited'() {
      const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); done']),
        { extraArgs: ['--log-max-size', '400', '--log-max-file', '3', '--log-compress'] });
      assert.strictEqual(r.exited.exitCode, 0);
      assert.ok(!fs.existsSync(r.log + '.1') && !fs.existsSync(r.log + '.3'));
      const zlib = require('zlib');
      const older = [r.log + '.2.gz', r.log + '.1.gz'].map((f) => zlib.gunzipSync(fs.readFileSync(f)).toString());
      const all = [...older.flatMap((t) => t.split('\n').filter(Boolean).map((l) => JSON.parse(l))), ...readLog(r.log)].map((e) => e.log);
      const nums = all.map((l) => Number(/^line (\d+)\n$/.exec(l)[1]));
      nums.forEach((n, i) => i && assert.strictEqual(n, nums[i - 1] + 1));
      assert.strictEqual(nums[nums.length - 1], 39);
    },

    async 'log drivers: none writes nothing; syslog sends each line over UDP'() {
      const none = await runToExit(base, makeConfig(rootfs, ['echo', 'hi']), { extraArgs: ['--log-driver', 'none'] });
      assert.strictEqual(none.stdout, 'hi\n');
      assert.ok(!fs.existsSync(none.log));
      const dgram = require('dgram');
      const sock = dgram.createSocket('udp4');
      const got = [];
      sock.on('message', (m) => got.push(m.toString()));
      await new Promise((res) => sock.bind(0, '127.0.0.1', res));
      try {
        const r = await runToExit(base, makeConfig(rootfs, ['sh', '-c', 'echo out; echo err >&2']), { extraArgs: ['--log-driver', 'syslog',
          '--syslog-address', `udp://127.0.0.1:${sock.address().port}`, '--syslog-facility', '16', '--syslog-tag', 'tg', '--syslog-format', 'rfc3164'] });
        assert.strictEqual(r.exited.exitCode, 0);
        for (let i = 0; i < 100 && got.length < 2; i++) await sleep(20);
        const host = os.hostname();
        assert.ok(got.some((m) => new RegExp(`^<134>\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d ${host} tg\\[\\d+\\]: out\\n$`).test(m)), JSON.stringify(got));
        assert.ok(got.some((m) => /^<131>.* tg\[\d+\]: err\n$/.test(m)), JSON.stringify(got));
        // --log is the syslog driver's cache: the same lines, readable by docker logs.
        assert.deepStrictEqual(readLog(r.log).map((e) => e.log).sort(), ['err\n', 'out\n']);
      } finally {
        sock.close();
      }
      // A syslog socket that is not there fails the start, before the container runs.
      const bad = startShim(base, makeConfig(rootfs, ['true']), { extraArgs: ['--log-driver', 'syslog', '--syslog-address', `unix://${base}/no.sock`] });
      const f = await bad.reader.wait(T.START_FAILED);
      assert.match(JSON.parse(f.payload).message, /failed to initialize logging driver: dial unix .*no\.sock: connect: no such file or directory/);
      assert.strictEqual(await bad.exit, 1);
    },

    async 'mount targets resolve inside the root, symlinks included'() {
      // A symlink in the image that climbs out of the root must stay inside it.
      const link = path.join(rootfs, 'escape');
      fs.symlinkSync('../'.repeat(12) + base.slice(1), link);
      try {
        const r = await runToExit(base, makeConfig(rootfs, ['ls', '-d', '/escape/inside'],
          { mounts: [{ destination: '/escape/inside', type: 'tmpfs', source: 'tmpfs', options: ['mode=755'] }] }));
        assert.strictEqual(r.exited.exitCode, 0, r.stdout + r.stderr);
        assert.ok(!fs.existsSync(path.join(base, 'inside')), 'nothing created on the host side of the link');
        assert.ok(fs.existsSync(path.join(rootfs, base, 'inside')), 'target created inside the root');
      } finally {
        fs.unlinkSync(link);
      }
    },

    async 'read-only root and bind mounts'() {
      const vol = path.join(base, 'vol');
      fs.mkdirSync(vol, { recursive: true });
      fs.writeFileSync(path.join(vol, 'f'), 'from host\n');
      const hostname = path.join(base, 'hostname-file');
      fs.writeFileSync(hostname, 'bound-file\n');
      const r = await runToExit(base, makeConfig(rootfs,
        ['sh', '-c', 'cat /data/f; echo hi > /data/g; touch /x 2>/dev/null || echo root-ro; cat /ro/f; touch /ro/y 2>/dev/null || echo bind-ro; ' +
          'touch /rro/y 2>/dev/null || echo rbind-rro; cat /etc/new/hostname'],
        { root: { readonly: true }, mounts: [
          { destination: '/data', type: 'bind', source: vol, options: ['rbind', 'rprivate'] },
          { destination: '/ro', type: 'bind', source: vol, options: ['rbind', 'ro', 'rprivate'] },
          { destination: '/rro', type: 'bind', source: vol, options: ['rbind', 'rro', 'rprivate'] },
          // A file bind whose target does not exist yet, as Docker binds /etc/hostname and friends.
          { destination: '/etc/new/hostname', type: 'bind', source: hostname, options: ['rbind', 'rprivate'] }] }));
      assert.strictEqual(r.exited.exitCode, 0, r.stderr);
      assert.strictEqual(r.stdout, 'from host\nroot-ro\nfrom host\nbind-ro\nrbind-rro\nbound-file\n');
      assert.strictEqual(fs.readFileSync(path.join(vol, 'g'), 'utf8'), 'hi\n');
    },

    async 'exec mode: namespaces, cgroup, env, user, stdin, exit code, TTY, failures, idle RSS'() {
      const cgroup = cg();
      const ctr = startShim(base, makeConfig(rootfs, ['sleep', '60']), { cgroup });
      const pid = JSON.parse((await ctr.reader.wait(T.STARTED)).payload).pid;
      try {
        const kinds = ['mnt', 'pid', 'uts', 'ipc', 'net', 'cgroup'];
        const script = kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; ') +
          '; cat /proc/self/cgroup | grep -c . >/dev/null; echo cg=$(cat /proc/$$/cgroup | head -1 | cut -d: -f3); ' +
          'echo host=$(hostname) foo=$FOO uid=$(id -u) pwd=$PWD; echo oops >&2; exit 7';
        const e = startExec(base, pid, { args: ['sh', '-c', script], env: ['PATH=/bin', 'FOO=bar'], cwd: '/tmp', user: { uid: 65534, gid: 65534 } }, { cgroup });
        const started = JSON.parse((await e.reader.wait(T.STARTED)).payload);
        assert.ok(started.pid > 1 && started.pid !== pid);
        const exited = JSON.parse((await e.reader.wait(T.EXITED)).payload);
        assert.strictEqual(exited.exitCode, 7, e.reader.describe());
        assert.strictEqual(await e.exit, 0);
        const lines = e.reader.text(T.STDOUT).trim().split('\n');
        const want = kinds.map((k) => fs.readlinkSync(`/proc/${pid}/ns/${k}`));
        assert.deepStrictEqual(lines.slice(0, kinds.length), want, 'every namespace of the init joined');
        assert.strictEqual(lines[kinds.length], 'cg=/', 'in the container cgroup namespace, at its root');
        assert.strictEqual(lines[kinds.length + 1], 'host=smoke-host foo=bar uid=65534 pwd=/tmp');
        assert.strictEqual(e.reader.text(T.STDERR), 'oops\n');
        assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(e.state, 'exit.json'))), exited);
        if (cgroup) {
          // The exec was in the container's cgroup: while it ran, the cgroup held two processes.
          const e2 = startExec(base, pid, { args: ['sleep', '30'] }, { cgroup });
          const p2 = JSON.parse((await e2.reader.wait(T.STARTED)).payload).pid;
          const procs = fs.readFileSync(path.join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
          assert.ok(procs.includes(p2) && procs.includes(pid), `cgroup.procs ${procs}`);
          // The idle exec supervisor stays small.
          await sleep(200);
          const rss = rssOf(e2.child.pid);
          assert.ok(rss > 0 && rss < 1024, `exec shim RSS ${rss} kB`);
          e2.reader.send(T.SIGNAL, u32(9));
          assert.strictEqual(JSON.parse((await e2.reader.wait(T.EXITED)).payload).exitCode, 137);
        }
        // stdin pipe and its half-close
        const c = startExec(base, pid, { args: ['cat'] }, { stdin: true });
        await c.reader.wait(T.STARTED);
        c.reader.send(T.STDIN, 'piped\n');
        c.reader.send(T.STDIN_CLOSE);
        assert.strictEqual(JSON.parse((await c.reader.wait(T.EXITED)).payload).exitCode, 0);
        assert.strictEqual(c.reader.text(T.STDOUT), 'piped\n');
        // TTY: a terminal in the container's devpts, with the size asked for
        const t = startExec(base, pid, { args: ['sh', '-c', 'tty; stty size'], terminal: true, consoleSize: { height: 40, width: 132 } });
        assert.strictEqual(JSON.parse((await t.reader.wait(T.EXITED)).payload).exitCode, 0);
        assert.match(t.reader.text(T.STDOUT), /^\/dev\/pts\/\d+\r\n40 132\r\n$/);
        // A missing binary: START_FAILED with runc's wording, no exit.json
        const m = startExec(base, pid, { args: ['/no/such/bin'] });
        const failed = JSON.parse((await m.reader.wait(T.START_FAILED)).payload);
        assert.strictEqual(failed.message, 'exec: "/no/such/bin": stat /no/such/bin: no such file or directory');
        assert.strictEqual(await m.exit, 1);
        assert.ok(!fs.existsSync(path.join(m.state, 'exit.json')));
      } finally {
        ctr.reader.send(T.SIGNAL, u32(9));
        await ctr.reader.wait(T.EXITED).catch(() => {});
        await ctr.exit;
      }
      // The container is gone: an exec into it fails to start.
      const gone = startExec(base, pid, { args: ['true'] });
      await gone.reader.wait(T.START_FAILED);
      assert.strictEqual(await gone.exit, 1);
    },
  };
}

// ---------------------------------------------------------------- main

async function main() {
  if (process.getuid() !== 0) {
    console.log('SKIP: berth-shim smoke test needs root (namespaces, mounts, cgroups)');
    return 0;
  }
  if (!fs.existsSync(SHIM)) throw new Error(`${SHIM} is missing; run make shim`);
  if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing (Debian busybox-static)`);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-shim-smoke-'));
  cleanup.dirs.push(base);
  const rootfs = makeRootfs(base);
  let failed = 0;
  const all = cases(base, rootfs);
  for (const [name, fn] of Object.entries(all)) {
    if (process.env.SMOKE_ONLY && !name.includes(process.env.SMOKE_ONLY)) continue;
    const t0 = Date.now();
    try {
      const note = await withTimeout(fn(), 60000, name);
      console.log(`ok   ${name} (${Date.now() - t0} ms)${note ? ` - ${note}` : ''}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}\n     ${String(e && e.stack || e).split('\n').join('\n     ')}`);
    }
  }
  console.log(failed ? `${failed} failed` : 'all passed');
  return failed ? 1 : 0;
}

let code = 1;
main().then((c) => { code = c; }, (e) => { console.error(e); code = 1; }).finally(() => {
  runCleanup();
  process.exit(code);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { runCleanup(); process.exit(130); });
}
