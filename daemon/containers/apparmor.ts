// AppArmor, as dockerd applies it: on a host where AppArmor is on (/sys/module/apparmor/parameters/enabled
// is "Y") and apparmor_parser is installed, berthd loads a profile of its own, `berth-default`, at start
// (and again before a start that finds it unloaded: package upgrades reload policy and can drop it), and
// every container runs confined by it unless `--security-opt apparmor=NAME` names another loaded profile
// or `unconfined`; --privileged runs unconfined. The shim switches to the profile on exec
// (/proc/self/attr/apparmor/exec, OCI process.apparmorProfile). Elsewhere nothing is applied and
// inspect shows only what --security-opt asked for, as with Docker.
//
// berth-default has the rules of Docker's docker-default, written here: everything a container usually
// needs is allowed (network, capabilities its bounding set holds, files); mount is refused; writes to
// /proc outside a process's own directory and /proc/sys/kernel/shm*, and /proc/sysrq-trigger and
// /proc/kcore altogether, are refused; /sys is read-only but for /sys/fs/cgroup, with firmware, powercap
// and the LSM's own files closed; signals and ptrace only among the profile's own processes and from
// outside (unconfined, or berthd's own profile).
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile, rename } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';

const run = promisify(execFile);

export const DEFAULT_APPARMOR_PROFILE = 'berth-default';

/** What the host offers: the module's switch and the parser (undefined when missing). */
export interface AppArmorHost {
  /** Contents of /sys/module/apparmor/parameters/enabled, undefined when the file does not exist. */
  enabled?: string;
  /** The apparmor_parser found on PATH (or in /sbin, /usr/sbin), undefined when there is none. */
  parser?: string;
  /** Whether the kernel's AppArmor interface is there (/sys/kernel/security/apparmor: securityfs mounted).
   *  Undefined is taken as present (callers that only know the switch and the parser). */
  securityfs?: boolean;
}

/** Whether berthd uses AppArmor on this host, and why not when it does not (logged at start). */
export function appArmorDecision(h: AppArmorHost): { use: boolean; reason: string } {
  if (h.enabled === undefined) return { use: false, reason: 'the kernel has no AppArmor (no /sys/module/apparmor)' };
  if (h.enabled.trim() !== 'Y') return { use: false, reason: 'AppArmor is disabled in the kernel' };
  // As dockerd decides it: without the interface no profile can be loaded or applied (a boot without
  // securityfs mounted, e.g. a minimal init), so the host counts as one without AppArmor.
  if (h.securityfs === false) return { use: false, reason: 'AppArmor is enabled but /sys/kernel/security/apparmor is missing (securityfs not mounted)' };
  if (!h.parser) return { use: false, reason: 'AppArmor is enabled but apparmor_parser is not installed (apt-get install apparmor)' };
  return { use: true, reason: `AppArmor is enabled; containers run under ${DEFAULT_APPARMOR_PROFILE}` };
}

/** Looks at this host. */
export function probeAppArmorHost(): AppArmorHost {
  let enabled: string | undefined;
  try {
    enabled = readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8');
  } catch { /* no module */ }
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/sbin', '/usr/sbin'];
  const parser = dirs.map((d) => path.join(d, 'apparmor_parser')).find((p) => existsSync(p));
  return { enabled, parser, securityfs: existsSync('/sys/kernel/security/apparmor') };
}

/** The profile text. `daemonProfile`: the profile berthd itself runs under ('unconfined' normally), whose
 *  signals (docker kill, stop) the containers must receive. */
export function appArmorProfileText(name = DEFAULT_APPARMOR_PROFILE, daemonProfile = 'unconfined'): string {
  const peers = [...new Set(['unconfined', daemonProfile])];
  return `#include <tunables/global>

# ${name}: berth's default AppArmor profile for containers (the rules of Docker's docker-default).
profile ${name} flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>

  # What a container normally does is allowed; capabilities stay bounded by the container's own set.
  network,
  capability,
  file,
  umount,

  # Signals: from outside the container (berthd, the shim, root's shell) and among its own processes.
${peers.map((p) => `  signal (receive) peer=${p},`).join('\n')}
  signal (send,receive) peer=${name},

  # /proc: no writes to files right under /proc, nor anywhere but a process's own directory and
  # /proc/sys/kernel/shm*; sysrq-trigger and kcore are closed entirely.
  deny @{PROC}/* w,
  deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,
  deny @{PROC}/sys/[^k]** w,
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/kcore rwklx,

  # No new mounts from inside.
  deny mount,

  # /sys: read-only everywhere but the cgroup tree; firmware, powercap and the LSMs' files closed.
  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/kernel/security/** rwklx,

  # ps inside the container, and docker top, read the container's own processes.
  ptrace (trace,read,tracedby,readby) peer=${name},
}
`;
}

/** The profile a container runs under: --security-opt apparmor=NAME (or apparmor:NAME) wins; otherwise,
 *  where AppArmor is used, `unconfined` for --privileged and berth-default for the rest; '' elsewhere.
 *  This is also inspect's AppArmorProfile. */
export function appArmorProfileFor(hc: { SecurityOpt?: string[] | null; Privileged?: boolean }, used: boolean): string {
  let asked: string | undefined;
  for (const o of hc.SecurityOpt ?? []) {
    const m = /^apparmor[=:](.*)$/s.exec(o);
    if (m) asked = m[1];
  }
  if (asked !== undefined) return asked;
  if (!used) return '';
  return hc.Privileged ? 'unconfined' : DEFAULT_APPARMOR_PROFILE;
}

/** Whether the kernel has `name` loaded (/sys/kernel/security/apparmor/profiles lists "NAME (mode)"). */
export function profileLoaded(name: string, profilesFile = '/sys/kernel/security/apparmor/profiles'): boolean {
  try {
    return readFileSync(profilesFile, 'utf8').split('\n').some((l) => l.startsWith(`${name} (`));
  } catch {
    return false;
  }
}

/** berthd's own profile, from /proc/self/attr/current ("unconfined", or "NAME (enforce)"). */
function ownProfile(): string {
  try {
    const cur = readFileSync('/proc/self/attr/current', 'utf8').replace(/\0/g, '').trim();
    return cur.replace(/\s+\((enforce|complain)\)$/, '') || 'unconfined';
  } catch {
    return 'unconfined';
  }
}

/** AppArmor for one berthd: decided once at start; the default profile loaded then and whenever a start
 *  finds it gone. */
export class AppArmor {
  used: boolean;
  reason: string;
  /** Set when the host has AppArmor on but refused berth's profile at start: shown in `docker info`. */
  warning?: string;

  constructor(private readonly execRoot: string, private readonly host: AppArmorHost = probeAppArmorHost()) {
    const d = appArmorDecision(host);
    this.used = d.use;
    this.reason = d.reason;
  }

  /** The host has AppArmor on but cannot take a profile (e.g. apparmor_parser answers "interface file
   *  missing" on a kernel whose AppArmor is not the active LSM): containers run as on a host without
   *  AppArmor, and `docker info` says so, rather than every start failing. */
  refuse(why: string): void {
    this.used = false;
    this.reason = `${why}; containers run without an AppArmor profile`;
    this.warning = `WARNING: ${this.reason}`;
  }

  /** Loads berth-default unless the kernel has it (apparmor_parser -Kr: replace, no cache). */
  async ensureDefault(): Promise<void> {
    if (!this.used || profileLoaded(DEFAULT_APPARMOR_PROFILE)) return;
    const dir = path.join(this.execRoot, 'apparmor');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, DEFAULT_APPARMOR_PROFILE);
    await writeFile(`${file}.tmp`, appArmorProfileText(DEFAULT_APPARMOR_PROFILE, ownProfile()));
    await rename(`${file}.tmp`, file);
    try {
      await run(this.host.parser!, ['-Kr', file], { timeout: 60000 });
    } catch (e) {
      throw new Error(`AppArmor is enabled but the ${DEFAULT_APPARMOR_PROFILE} profile could not be loaded: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
    }
  }
}
