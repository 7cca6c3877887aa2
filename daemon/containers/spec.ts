// Builds the OCI runtime spec (config.json) for a container start: the contract between berthd and
// berth-shim. Defaults are Docker's: namespaces, mounts, masked and read-only /proc paths, capabilities.
import { existsSync } from 'node:fs';
import type { ContainerRecord } from './model';
import { seccompCachePath, seccompFor } from './seccomp';
import { ociMount, type MountPoint } from '../volumes/mounts';
import type { SpecDevice } from './devices';
import type { NamespacePlan } from './namespaces';
import type { Remap } from '../runtime/userns';

/** Docker's default capability set for unprivileged containers. */
export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

export interface SpecInput {
  ctr: ContainerRecord;
  rootfs: string;
  user: ResolvedUser;
  env: string[];
  hostsPath: string;
  hostnamePath: string;
  resolvConfPath: string;
  cgroupsPath: string;
  /** The network namespace: undefined = a new one, '' = the host's, else a namespace file to join. */
  netns?: string;
  /** --init: berth's init binary on the host, bind-mounted at /sbin/docker-init and run as pid 1. */
  initPath?: string;
  /** Volumes, binds and tmpfs mounts (sources already host paths), in mount order. */
  mounts?: MountPoint[];
  /** Device nodes made in the container's /dev beyond the defaults (--device, --privileged). */
  devices?: SpecDevice[];
  /** Namespaces shared with the host or another container, and where /dev/shm comes from. */
  ns?: NamespacePlan;
  /** Where compiled seccomp filters are kept, one file per profile (so a start compiles none). */
  seccompCacheDir?: string;
  /** --userns-remap, for a container that uses it: a user namespace of its own with these ranges. */
  remap?: Remap;
  /** The AppArmor profile the process switches to on exec (apparmor.ts); none where AppArmor is off. */
  apparmorProfile?: string;
}

const RLIMIT_NAMES: Record<string, string> = {
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE', locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK', msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE', nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS', rtprio: 'RLIMIT_RTPRIO', rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK', as: 'RLIMIT_AS',
};

export function buildSpec(i: SpecInput): object {
  const { ctr } = i;
  const hc = ctr.hostConfig;
  const privileged = !!hc.Privileged;
  const caps = containerCaps(hc, privileged);
  const seccompProfile = seccompFor(hc.SecurityOpt, privileged, caps);
  const shmSize = hc.ShmSize && hc.ShmSize > 0 ? hc.ShmSize : 67108864;
  const std = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'] },
    ...mqueueMount(!!i.remap && i.ns?.ipc === ''),
    ...shmMount(i.ns?.shm, shmSize),
  ];
  // The container's own mounts come after the standard ones; where one lands on a standard destination
  // (a bind over /etc/hosts, a tmpfs on /dev/shm), it replaces it.
  const user = i.mounts ?? [];
  const taken = new Set(user.map((m) => m.Destination));
  const etc = [
    { destination: '/etc/resolv.conf', type: 'bind', source: i.resolvConfPath, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hostname', type: 'bind', source: i.hostnamePath, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hosts', type: 'bind', source: i.hostsPath, options: ['rbind', 'rprivate'] },
  ];
  const mounts: object[] = [
    ...std.filter((m) => !taken.has(m.destination)),
    ...user.map(ociMount),
    ...etc.filter((m) => !taken.has(m.destination)),
  ];
  const rlimits = (hc.Ulimits ?? []).map((u: { Name: string; Soft: number; Hard: number }) => {
    const type = RLIMIT_NAMES[u.Name];
    return { type, soft: u.Soft, hard: u.Hard };
  }).filter((r: { type?: string }) => r.type);
  let args = [ctr.path, ...ctr.args];
  if (hc.Init && i.initPath) {
    mounts.push({ destination: '/sbin/docker-init', type: 'bind', source: i.initPath, options: ['bind', 'ro', 'rprivate'] });
    args = ['/sbin/docker-init', '--', ...args];
  }
  return {
    ociVersion: '1.1.0',
    process: {
      terminal: !!ctr.config.Tty,
      // The client's window at create time (API >= 1.42 honours HostConfig.ConsoleSize [rows, cols]).
      ...(ctr.config.Tty && hc.ConsoleSize && (hc.ConsoleSize[0] > 0 || hc.ConsoleSize[1] > 0)
        ? { consoleSize: { height: hc.ConsoleSize[0], width: hc.ConsoleSize[1] } } : {}),
      user: { uid: i.user.uid, gid: i.user.gid, additionalGids: i.user.additionalGids },
      args,
      env: i.env,
      cwd: ctr.config.WorkingDir || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits,
      noNewPrivileges: (hc.SecurityOpt ?? []).some((o: string) => /^no-new-privileges(:true|=true)?$/.test(o)),
      oomScoreAdj: hc.OomScoreAdj ?? 0,
      ...(i.apparmorProfile ? { apparmorProfile: i.apparmorProfile } : {}),
    },
    root: { path: i.rootfs, readonly: !!hc.ReadonlyRootfs },
    hostname: ctr.config.Hostname,
    domainname: ctr.config.Domainname ?? '',
    mounts,
    annotations: {
      ...(hc.Annotations ?? {}),
      'org.berth.stdin': ctr.config.OpenStdin ? 'true' : 'false',
      'org.berth.container-id': ctr.id,
    },
    linux: {
      cgroupsPath: i.cgroupsPath,
      namespaces: [
        ...namespace('pid', i.ns?.pid), ...netNamespace(i.netns), ...namespace('ipc', i.ns?.ipc), ...namespace('uts', i.ns?.uts),
        { type: 'mount' },
        // In a user namespace the container's cgroup hierarchies can only be mounted from a cgroup
        // namespace that namespace owns: a remapped container always gets one.
        ...namespace('cgroup', i.remap && i.ns?.cgroup === '' ? undefined : i.ns?.cgroup),
        // Another container's, when this one shares its PID, IPC or network namespace (namespaces.ts).
        ...(i.remap ? [i.ns?.user ? { type: 'user', path: i.ns.user } : { type: 'user' }] : []),
      ],
      ...(i.remap ? { uidMappings: i.remap.uidMappings, gidMappings: i.remap.gidMappings } : {}),
      maskedPaths: privileged ? [] : (hc.MaskedPaths ?? MASKED_PATHS),
      readonlyPaths: privileged ? [] : (hc.ReadonlyPaths ?? READONLY_PATHS),
      sysctl: hc.Sysctls ?? {},
      ...(seccompProfile ? { seccomp: seccompProfile } : {}),
      ...(seccompProfile && i.seccompCacheDir ? { seccompCache: seccompCachePath(i.seccompCacheDir, seccompProfile) } : {}),
      devices: i.devices ?? [],
    },
  };
}

/** A namespace entry: undefined = a new one, '' = the host's (no entry), else the file to join. */
function namespace(type: string, v: string | undefined): object[] {
  if (v === undefined) return [{ type }];
  return v === '' ? [] : [{ type, path: v }];
}

/** /dev/shm: the container's own tmpfs, a host directory (shareable, a donor's, the host's), or none. */
/** /dev/mqueue: a new mqueue mount shows the container's IPC namespace. A remapped container that shares
 *  the host's IPC namespace may not mount one (the kernel wants a capability over the IPC namespace's
 *  owner, the host's user namespace; Docker's runc then fails the start with EPERM): it gets the host's
 *  /dev/mqueue bound, as rootless Docker does, or none where the host has not mounted its queues. */
function mqueueMount(hostIpcRemapped: boolean): Array<{ destination: string; type: string; source: string; options: string[] }> {
  if (!hostIpcRemapped) return [{ destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] }];
  if (!existsSync('/dev/mqueue')) return [];
  return [{ destination: '/dev/mqueue', type: 'bind', source: '/dev/mqueue', options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev'] }];
}

function shmMount(shm: string | undefined, size: number): Array<{ destination: string; type: string; source: string; options: string[] }> {
  if (shm === 'none') return [];
  if (shm) return [{ destination: '/dev/shm', type: 'bind', source: shm, options: ['rbind', 'rprivate'] }];
  return [{ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${size}`] }];
}

function netNamespace(netns: string | undefined): object[] {
  if (netns === undefined) return [{ type: 'network' }];
  return netns === '' ? [] : [{ type: 'network', path: netns }];
}

/** The capabilities of a container's processes (its init and, unless `docker exec --privileged`, its
 *  execs): Docker's default set with CapAdd/CapDrop applied, or every capability the host has. */
export function containerCaps(hc: ContainerRecord['hostConfig'], privileged = !!hc.Privileged): string[] {
  let caps = privileged ? allHostCaps() : [...DEFAULT_CAPS];
  if (!privileged) {
    const norm = (c: string) => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);
    const drop = (hc.CapDrop ?? []).map(norm);
    const add = (hc.CapAdd ?? []).map(norm);
    if (drop.includes('CAP_ALL')) caps = [];
    caps = caps.filter((c) => !drop.includes(c));
    if (add.includes('CAP_ALL')) caps = allHostCaps();
    else for (const c of add) if (!caps.includes(c)) caps.push(c);
  }
  return caps;
}

/** Every capability the kernel defines, in bit order (what Docker calls its known capabilities). */
const CAP_NAMES = ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE',
  'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME',
  'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE'];
export const KNOWN_CAPS = CAP_NAMES.map((n) => `CAP_${n}`);

let hostCaps: string[] | undefined;
/** Every capability in berthd's own bounding set: what --privileged can give on this host. */
export function allHostCaps(): string[] {
  if (hostCaps) return hostCaps;
  const names = CAP_NAMES;
  let bnd = BigInt(0);
  try {
    const status = require('node:fs').readFileSync('/proc/self/status', 'utf8') as string;
    const m = /CapBnd:\s*([0-9a-f]+)/.exec(status);
    if (m) bnd = BigInt('0x' + m[1]);
  } catch { /* keep empty */ }
  hostCaps = names.filter((_, idx) => (bnd >> BigInt(idx)) & 1n).map((n) => `CAP_${n}`);
  return hostCaps;
}
