// HostConfig.Sysctls: only the kernel parameters that live in a namespace the container has to itself may be
// set, since /proc/sys/vm, /proc/sys/kernel/core_pattern and the like are the host's whatever process writes
// them. The rules are runc's (which Docker relies on), checked here at create so that a refused key is never
// stored, and checked again by berth-shim before it writes anything (a record made before this check, or a
// donor container that turned out to use the host's network).
import { invalid } from '../errors/errors';

/** The IPC namespace's parameters (besides fs.mqueue.*). */
const IPC_KEYS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

/** runc's canonical form: a key written with '/' separators ("net/ipv4/ip_forward") is read with '.' ones, and
 *  a '.' inside one of its names (an interface "eth0.100") becomes '/'. */
export function canonicalSysctl(key: string): string {
  const first = key.search(/[./]/);
  if (first < 0 || key[first] === '.') return key;
  return key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

/** Which of the container's namespaces are the host's. */
export interface SysctlNamespaces {
  hostIpc: boolean;
  hostNet: boolean;
  hostUts: boolean;
}

/** Why the key may not be set, in runc's words (which dockerd passes on), or null when it may. */
export function sysctlRefusal(key: string, ns: SysctlNamespaces): string | null {
  const k = canonicalSysctl(key);
  const path = k.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
  // The shim writes /proc/sys/<path>: a name that is empty, '.' or '..' could lead anywhere.
  if (!k || /[\0\s]/.test(k) || path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    return `sysctl ${JSON.stringify(key)} is not a valid sysctl name`;
  }
  if (IPC_KEYS.has(k) || k.startsWith('fs.mqueue.')) {
    return ns.hostIpc ? `sysctl ${JSON.stringify(k)} is not allowed in the hosts ipc namespace` : null;
  }
  if (k.startsWith('net.')) {
    return ns.hostNet ? `sysctl ${JSON.stringify(k)} not allowed in host network namespace` : null;
  }
  if (!ns.hostUts) {
    if (k === 'kernel.domainname') return null;
    // Namespaced, but the container's hostname comes from its own field (runc refuses it the same way).
    if (k === 'kernel.hostname') return `sysctl ${JSON.stringify(k)} is not allowed as it conflicts with the OCI "hostname" field`;
  }
  return `sysctl ${JSON.stringify(k)} is not in a separate kernel namespace`;
}

interface SysctlHostConfig {
  Sysctls?: Record<string, unknown> | null;
  NetworkMode?: string;
  IpcMode?: string;
  UTSMode?: string;
}

/**
 * Refuses (400) a create whose sysctls are not the container's own to set. `donorNetworkMode` gives the
 * network mode of a `container:X` donor, when it exists: joining a donor that uses the host's network is
 * the host's network too (a donor made later is checked by the shim at start).
 */
export function checkSysctls(hc: SysctlHostConfig, donorNetworkMode?: (ref: string) => string | undefined): void {
  const entries = Object.entries(hc.Sysctls ?? {});
  if (entries.length === 0) return;
  const net = hc.NetworkMode ?? '';
  let hostNet = net === 'host';
  if (net.startsWith('container:')) hostNet = donorNetworkMode?.(net.slice('container:'.length)) === 'host';
  const ns: SysctlNamespaces = { hostIpc: hc.IpcMode === 'host', hostNet, hostUts: hc.UTSMode === 'host' };
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw invalid(`sysctl ${JSON.stringify(key)}: the value must be a string`);
    const why = sysctlRefusal(key, ns);
    if (why) throw invalid(why);
  }
}
