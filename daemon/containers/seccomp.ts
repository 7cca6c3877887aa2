// The container's seccomp profile (OCI linux.seccomp). berth's default keeps Docker's effect: the
// syscalls Docker's default profile refuses are refused with EPERM, except where the container holds the
// capability that Docker's profile lets them through with. It is written as a deny list (default allow),
// which stays correct for syscalls newer than the list; clone3 answers ENOSYS so that libcs fall back to
// clone, whose namespace flags can then be checked.
import { invalid } from '../errors/errors';

interface Rule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: Array<{ index: number; value: number; valueTwo?: number; op: string }>;
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  syscalls: Rule[];
}

const EPERM = 1;
const ENOSYS = 38;

/** Syscalls refused unless the container has the capability named with them. */
const GATED: Array<[string | null, string[]]> = [
  [null, ['add_key', 'keyctl', 'request_key', 'create_module', 'get_kernel_syms', 'query_module', 'nfsservctl',
    'sysfs', '_sysctl', 'uselib', 'ustat', 'vm86', 'vm86old', 'afs_syscall', 'putpmsg', 'getpmsg', 'security',
    'tuxcall', 'vserver']],
  ['CAP_SYS_ADMIN', ['bpf', 'fanotify_init', 'lookup_dcookie', 'mount', 'mount_setattr', 'move_mount', 'open_tree',
    'fsopen', 'fsconfig', 'fsmount', 'fspick', 'umount', 'umount2', 'pivot_root', 'setns', 'unshare', 'quotactl',
    'quotactl_fd', 'swapon', 'swapoff', 'name_to_handle_at', 'perf_event_open', 'setdomainname', 'sethostname',
    'vhangup', 'syslog', 'iopl', 'ioperm']],
  ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
  ['CAP_SYS_BOOT', ['reboot', 'kexec_load', 'kexec_file_load']],
  ['CAP_SYS_TIME', ['settimeofday', 'stime', 'clock_settime', 'clock_settime64', 'adjtimex', 'clock_adjtime', 'clock_adjtime64']],
  ['CAP_SYS_PACCT', ['acct']],
  ['CAP_SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node', 'move_pages']],
  ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
  ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise', 'userfaultfd']],
];

/** clone's namespace flags: refused without CAP_SYS_ADMIN. */
const CLONE_NS_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];

export function defaultProfile(caps: string[]): SeccompProfile {
  const has = (c: string) => caps.includes(c);
  const denied: string[] = [];
  for (const [cap, names] of GATED) if (cap === null || !has(cap)) denied.push(...names);
  const syscalls: Rule[] = [{ names: denied, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM }];
  if (!has('CAP_SYS_ADMIN')) {
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
    for (const flag of CLONE_NS_FLAGS) {
      syscalls.push({ names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }] });
    }
  }
  return { defaultAction: 'SCMP_ACT_ALLOW', syscalls };
}

/** Docker's own profile format (what `--security-opt seccomp=file.json` sends inline) → OCI. */
function fromDockerProfile(p: Record<string, unknown>): SeccompProfile {
  const out: SeccompProfile = { defaultAction: String(p.defaultAction ?? 'SCMP_ACT_ALLOW'), syscalls: [] };
  if (typeof p.defaultErrnoRet === 'number') out.defaultErrnoRet = p.defaultErrnoRet;
  for (const s of (p.syscalls as Array<Record<string, unknown>>) ?? []) {
    const names = (s.names as string[]) ?? (s.name ? [s.name as string] : []);
    out.syscalls.push({
      names, action: String(s.action),
      ...(typeof s.errnoRet === 'number' ? { errnoRet: s.errnoRet } : {}),
      ...(Array.isArray(s.args) && s.args.length ? { args: s.args as Rule['args'] } : {}),
    });
  }
  return out;
}

/** The profile for a container, or undefined for none (--privileged, seccomp=unconfined). */
export function seccompFor(securityOpt: string[] | null, privileged: boolean, caps: string[]): SeccompProfile | undefined {
  let custom: string | undefined;
  for (const o of securityOpt ?? []) {
    const m = /^seccomp[=:](.*)$/s.exec(o);
    if (m) custom = m[1];
  }
  if (custom === 'unconfined') return undefined;
  if (custom !== undefined && custom !== 'builtin') {
    try {
      return fromDockerProfile(JSON.parse(custom));
    } catch (e) {
      throw invalid(`Decoding seccomp profile failed: ${(e as Error).message}`);
    }
  }
  if (privileged) return undefined;
  return defaultProfile(caps);
}
