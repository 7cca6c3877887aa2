// The systemd cgroup driver: on a host whose PID 1 is systemd with cgroup v2, each container is a
// transient `berth-<id>.scope` (as Docker's docker-<id>.scope) in system.slice or in the slice that
// --cgroup-parent names, and each shim a `berth-shim-<id>.scope` of its own in system.slice, so that
// berth.service's cgroup holds berthd alone and systemd knows every process berth started.
//
// How berth speaks to systemd: busctl, the D-Bus client that ships with systemd itself, run as a child
// process. It is on every host where this driver applies (no build dependency on libsystemd-dev, no
// npm D-Bus client to vendor), it calls the same org.freedesktop.systemd1 API Docker uses
// (StartTransientUnit, StopUnit, SetUnitProperties), and as a separate process it can never block
// berthd's event loop, whatever systemd does. A call costs a process start (a few ms), paid once per
// container start, stop and shim: not on any per-request path.
//
// systemd only knows what it was told: a scope's resource properties are re-applied whenever systemd
// realizes its cgroup again (a daemon-reload, a sibling's change), so every limit systemd has a property
// for goes into the unit as well as into the files; what it has none for (cpuset, the device program,
// io.bfq.weight) is written to the scope's own files by the addon, which systemd leaves alone under
// Delegate=yes.
import { startProcess, runProcess, type HostProcess } from './spawn';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { CgroupResources } from '../../addon/index';

const INFINITY = '18446744073709551615';
const DEFAULT_SLICE = 'system.slice';

export class SystemdError extends Error {}

/** Is systemd the init system (sd_booted(3): it made /run/systemd/system)? */
export function systemdBooted(): boolean {
  return existsSync('/run/systemd/system');
}

/** A slice name as systemd takes it: "a-b.slice" is b's child of a ("a.slice/a-b.slice"). */
export function validSlice(name: string): boolean {
  if (name === '-.slice') return true;
  if (!name.endsWith('.slice')) return false;
  return /^[A-Za-z0-9:_.\\]+(-[A-Za-z0-9:_.\\]+)*$/.test(name.slice(0, -'.slice'.length));
}

/** The cgroup path (relative to the cgroup2 mount) of a slice: "kubepods-besteffort.slice" →
 *  "kubepods.slice/kubepods-besteffort.slice"; "-.slice" is the root. */
export function slicePath(slice: string): string {
  if (slice === '-.slice') return '';
  const parts = slice.slice(0, -'.slice'.length).split('-');
  const out: string[] = [];
  for (let i = 1; i <= parts.length; i++) out.push(`${parts.slice(0, i).join('-')}.slice`);
  return out.join('/');
}

export function containerUnit(id: string): string {
  return `berth-${id}.scope`;
}

/** The container's cgroup, relative to the cgroup2 mount. */
export function containerCgroup(slice: string, id: string): string {
  const p = slicePath(slice);
  return p ? `${p}/${containerUnit(id)}` : containerUnit(id);
}

function cpuWeight(shares: number): number {
  const s = Math.min(Math.max(shares, 2), 262144);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

function ioWeight(w: number): number {
  const b = Math.min(Math.max(w, 10), 1000);
  return 1 + Math.floor(((b - 10) * 9999) / 990);
}

type Prop = [string, string, ...string[]];

/** The unit properties for the limits systemd has names for (the same conversions the addon writes). At
 *  create, an absent limit is set to systemd's "none" explicitly: a scope's TasksMax otherwise defaults
 *  to a share of pid_max, where Docker leaves pids.max at max. */
export function resourceProps(res: CgroupResources, create: boolean): Prop[] {
  const p: Prop[] = [];
  if (res.memory !== undefined) p.push(['MemoryMax', 't', res.memory > 0 ? String(res.memory) : INFINITY]);
  else if (create) p.push(['MemoryMax', 't', INFINITY]);
  if (res.memoryReservation !== undefined) p.push(['MemoryLow', 't', String(Math.max(res.memoryReservation, 0))]);
  // The API counts memory+swap; systemd's MemorySwapMax (memory.swap.max) is swap alone.
  if (res.memorySwap !== undefined && res.memorySwap !== 0) {
    if (res.memorySwap < 0) p.push(['MemorySwapMax', 't', INFINITY]);
    else if (res.memory !== undefined && res.memory > 0 && res.memorySwap >= res.memory) p.push(['MemorySwapMax', 't', String(res.memorySwap - res.memory)]);
  }
  if (res.pidsLimit !== undefined) p.push(['TasksMax', 't', res.pidsLimit > 0 ? String(res.pidsLimit) : INFINITY]);
  else if (create) p.push(['TasksMax', 't', INFINITY]);
  if (res.cpuShares !== undefined && res.cpuShares > 0) p.push(['CPUWeight', 't', String(cpuWeight(res.cpuShares))]);
  const period = res.cpuPeriod !== undefined && res.cpuPeriod > 0 ? res.cpuPeriod : undefined;
  if (period !== undefined) p.push(['CPUQuotaPeriodUSec', 't', String(period)]);
  if (res.cpuQuota !== undefined && res.cpuQuota !== 0) {
    p.push(['CPUQuotaPerSecUSec', 't', res.cpuQuota > 0 ? String(Math.ceil((res.cpuQuota * 1_000_000) / (period ?? 100_000))) : INFINITY]);
  }
  if (res.blkioWeight !== undefined && res.blkioWeight > 0) p.push(['IOWeight', 't', String(ioWeight(res.blkioWeight))]);
  return p;
}

/** busctl's words for an a(sv) argument. */
function propArgs(props: Prop[]): string[] {
  const out = [String(props.length)];
  for (const [name, sig, ...values] of props) out.push(name, sig, ...values);
  return out;
}

/** One busctl call to systemd's manager object; rejects with systemd's own message. */
async function managerCall(method: string, signature: string, args: string[], timeoutMs = 30000): Promise<string> {
  const r = await runProcess('busctl', ['--system', 'call', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', method, signature, ...args],
    { timeoutMs, maxBuffer: 1024 * 1024 });
  if (r.error || r.code !== 0) {
    const why = r.stderr || r.error?.message || `busctl ${r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`}`;
    throw new SystemdError(`systemd ${method}: ${why.trim().replace(/^Call failed: /, '')}`);
  }
  return r.stdout;
}

const notLoaded = (e: unknown) => e instanceof SystemdError && /not loaded|No such unit|NoSuchUnit/i.test(e.message);
const exists = (e: unknown) => e instanceof SystemdError && /already exists|UnitExists/i.test(e.message);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls (bounded) until `done` holds; false when it never did. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (done()) return true;
    if (Date.now() > end) return false;
    await sleep(10);
  }
}

function cgroupOf(pid: number): string | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
    return line?.slice(3);
  } catch {
    return undefined;
  }
}

export class SystemdCgroups {
  /** The processes holding a new container scope until the shim has put the container in it (a scope
   *  is made with processes in it, and ends when the last one leaves), by cgroup path. */
  private readonly holders = new Map<string, HostProcess>();

  constructor(private readonly unified: string) {}

  /**
   * Starts the container's scope and returns once its cgroup exists. systemd makes a scope only around
   * processes and stops it when it empties, so a small holder process (a shell waiting on its stdin) is
   * the scope's first member, until release() after the shim has moved the container's init in.
   */
  async startScope(slice: string, id: string, res: CgroupResources): Promise<string> {
    const unit = containerUnit(id);
    const rel = containerCgroup(slice, id);
    const holder = startProcess('/bin/sh', ['-c', 'read -r _'], ['pipe', 'ignore', 'ignore']);
    holder.on('error', () => { /* reported below: it has no pid */ });
    if (holder.pid === undefined) throw new SystemdError('could not start the process that holds a new scope');
    const pid = holder.pid;
    const props: Prop[] = [
      ['Description', 's', `berth container ${id}`],
      ['Slice', 's', slice],
      ['Delegate', 'b', 'true'],
      // As runc: the scope is not ordered against shutdown.target and the like; berth stops it.
      ['DefaultDependencies', 'b', 'false'],
      // A scope that failed (an OOM kill) is not left behind as a failed unit.
      ['CollectMode', 's', 'inactive-or-failed'],
      ['PIDs', 'au', '1', String(pid)],
      ...resourceProps(res, true),
    ];
    try {
      try {
        await managerCall('StartTransientUnit', 'ssa(sv)a(sa(sv))', [unit, 'fail', ...propArgs(props), '0']);
      } catch (e) {
        // A scope of an earlier run of this container that systemd has not collected yet.
        if (!exists(e)) throw e;
        await this.stopUnit(unit, rel);
        await managerCall('StartTransientUnit', 'ssa(sv)a(sa(sv))', [unit, 'fail', ...propArgs(props), '0']);
      }
      // StartTransientUnit returns a job; the scope is there once systemd has moved the holder in.
      if (!(await until(() => cgroupOf(pid) === `/${rel}`, 20000))) {
        throw new SystemdError(`systemd did not start ${unit} (its process is in ${cgroupOf(pid) ?? 'no cgroup'})`);
      }
    } catch (e) {
      holder.kill('SIGKILL');
      throw e;
    }
    this.holders.set(rel, holder);
    return rel;
  }

  /** The container's init is in the scope (or its start failed): the holder goes. */
  release(rel: string): void {
    const h = this.holders.get(rel);
    this.holders.delete(rel);
    h?.kill('SIGKILL');
  }

  /** New resource values for a running container's scope, kept by systemd across daemon-reloads. */
  async update(rel: string, res: CgroupResources): Promise<void> {
    const props = resourceProps(res, false);
    if (props.length === 0) return;
    await managerCall('SetUnitProperties', 'sba(sv)', [path.basename(rel), 'true', ...propArgs(props)]);
  }

  /** Stops the scope (its processes are gone by now) and waits (bounded) until systemd removed its cgroup. */
  async stop(rel: string): Promise<void> {
    this.release(rel);
    await this.stopUnit(path.basename(rel), rel);
  }

  private async stopUnit(unit: string, rel: string): Promise<void> {
    try {
      await managerCall('StopUnit', 'ss', [unit, 'replace']);
    } catch (e) {
      if (!notLoaded(e)) throw e;
    }
    await until(() => !existsSync(path.join(this.unified, rel)), 10000);
  }

  /** Moves a shim (a container's or an exec's) out of berth.service into a scope of its own: it outlives
   *  berthd, and systemd must neither charge it to the service nor find it there at the next start. */
  async adoptShim(name: string, pid: number): Promise<void> {
    // Named with the shim's pid: a restarting container's next shim may start before systemd has
    // collected the last one's scope.
    const unit = `berth-shim-${name}.scope`;
    const props: Prop[] = [
      ['Description', 's', `berth shim ${name}`],
      ['Slice', 's', DEFAULT_SLICE],
      ['DefaultDependencies', 'b', 'false'],
      ['CollectMode', 's', 'inactive-or-failed'],
      ['PIDs', 'au', '1', String(pid)],
    ];
    await managerCall('StartTransientUnit', 'ssa(sv)a(sa(sv))', [unit, 'fail', ...propArgs(props), '0']);
  }
}

export const SYSTEMD_DEFAULT_SLICE = DEFAULT_SLICE;
