// The namespaces a container gets besides its network (network/ decides that one): new ones by default,
// the host's with --pid/--ipc/--uts/--cgroupns host, or another running container's with
// --pid/--ipc container:NAME (under --userns-remap, that container's user namespace too). And its
// /dev/shm, which follows the IPC mode: its own tmpfs (private), one kept on the host so that others can
// share it (shareable), the donor's (container:NAME), the host's (host) or none at all (none).
import { mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { conflict, invalid } from '../errors/errors';
import type { ContainerRecord } from './model';
import { isMounted } from '../lib/mounts';
import { tools } from '../lib/tools';

/** undefined: a new namespace; '': the host's; a path: join that namespace file. */
export interface NamespacePlan {
  pid?: string;
  ipc?: string;
  uts?: string;
  cgroup?: string;
  /** A remapped container that shares another's PID, IPC or network namespace joins that container's user
   *  namespace (this path); undefined: a user namespace of its own (or none, without a remap). */
  user?: string;
  /** /dev/shm: undefined = a tmpfs of the container's own (the spec's default), 'none' = no mount,
   *  else a host directory bound there. */
  shm?: string;
}

/** What the plan needs of other containers. */
export interface Donors {
  lookup(ref: string): { rec: ContainerRecord; running: boolean };
  containerDir(id: string): string;
  /** A path the shim can open the running donor's namespace by, held for this start (never
   *  /proc/PID/ns of a pid read earlier, which another process may have by then). */
  namespace(donor: ContainerRecord, kind: 'pid' | 'ipc' | 'user'): string;
  /** Whether a container runs under the daemon's --userns-remap (not --userns host, nor a daemon without one). */
  remapped(rec: ContainerRecord): boolean;
}

const IPC_MODES = ['', 'private', 'shareable', 'host', 'none'];

/** Checks the modes at create, as Docker does (a container: donor is only looked up at start). */
export function checkModes(hc: { PidMode?: string; IpcMode?: string; UTSMode?: string; CgroupnsMode?: string }, hostname: string | undefined): void {
  const pid = hc.PidMode ?? '';
  if (pid && pid !== 'host' && !/^container:.+/.test(pid)) throw invalid(`invalid PID mode: ${pid}`);
  const ipc = hc.IpcMode ?? '';
  if (!IPC_MODES.includes(ipc) && !/^container:.+/.test(ipc)) throw invalid(`invalid IPC mode: ${ipc}`);
  const uts = hc.UTSMode ?? '';
  if (uts && uts !== 'host') throw invalid(`invalid UTS mode: ${uts}`);
  if (uts === 'host' && hostname) throw invalid('Conflicting options: hostname and the UTS mode');
  const cg = hc.CgroupnsMode ?? '';
  if (cg && cg !== 'host' && cg !== 'private') throw invalid(`invalid cgroup namespace mode: ${cg}`);
}

/** The host directory of a shareable container's /dev/shm. */
export function shmDir(containerDir: string): string {
  return path.join(containerDir, 'mounts', 'shm');
}

/** Works out the namespaces of `rec` at its start; mounts a shareable container's /dev/shm on the host. */
export async function planNamespaces(rec: ContainerRecord, donors: Donors): Promise<NamespacePlan> {
  const hc = rec.hostConfig;
  const plan: NamespacePlan = {};
  const donor = (mode: string, what: 'PID' | 'IPC') => {
    const ref = mode.slice('container:'.length);
    let d: { rec: ContainerRecord; running: boolean };
    try {
      d = donors.lookup(ref);
    } catch {
      throw invalid(`cannot join ${what} of a non running container: ${ref}`);
    }
    if (d.rec.id === rec.id) throw invalid(`cannot join own ${what} namespace`);
    if (!d.running || !d.rec.state.pid) throw conflict(`cannot join ${what} of a non running container: ${ref}`);
    return d;
  };
  // Under a remap, the user namespace of the container whose namespaces are shared: a PID or IPC
  // namespace owned by another user namespace cannot have its /proc or /dev/mqueue mounted. Docker's
  // order: the network donor's, then the IPC donor's, then the PID donor's (the last one set wins).
  let userDonor: { rec: ContainerRecord; what: string; ref: string } | undefined;
  const net = hc.NetworkMode ?? '';
  if (net.startsWith('container:')) {
    const ref = net.slice('container:'.length);
    let d: { rec: ContainerRecord; running: boolean } | undefined;
    try {
      d = donors.lookup(ref);
    } catch {
      d = undefined;  // the network service answers for a missing donor (network/endpoints.ts)
    }
    if (d) userDonor = { rec: d.rec, what: 'network', ref };
  }
  const pid = hc.PidMode ?? '';
  let pidDonor: ContainerRecord | undefined;
  if (pid === 'host') plan.pid = '';
  else if (pid.startsWith('container:')) {
    pidDonor = donor(pid, 'PID').rec;
    plan.pid = donors.namespace(pidDonor, 'pid');
  }

  const ipc = hc.IpcMode ?? '';
  if (ipc === 'host') {
    plan.ipc = '';
    plan.shm = '/dev/shm';
  } else if (ipc === 'none') {
    plan.shm = 'none';
  } else if (ipc.startsWith('container:')) {
    const d = donor(ipc, 'IPC');
    const dir = shmDir(donors.containerDir(d.rec.id));
    if (d.rec.hostConfig.IpcMode !== 'shareable' || !isMounted(dir)) {
      throw invalid('non-shareable IPC (hint: use IpcMode:shareable for the donor container)');
    }
    plan.ipc = donors.namespace(d.rec, 'ipc');
    plan.shm = dir;
    userDonor = { rec: d.rec, what: 'IPC', ref: ipc.slice('container:'.length) };
  } else if (ipc === 'shareable') {
    const dir = shmDir(donors.containerDir(rec.id));
    if (!isMounted(dir)) {
      await mkdir(dir, { recursive: true });
      const size = hc.ShmSize && hc.ShmSize > 0 ? hc.ShmSize : 67108864;
      await tools.mount(['-t', 'tmpfs', '-o', `nosuid,nodev,noexec,mode=1777,size=${size}`, 'shm', dir]);
    }
    plan.shm = dir;
  }

  if (pidDonor) userDonor = { rec: pidDonor, what: 'PID', ref: pid.slice('container:'.length) };
  if (userDonor && donors.remapped(rec)) {
    // A donor outside the remap has the host's user namespace, which a remapped container cannot enter.
    if (!donors.remapped(userDonor.rec)) {
      throw invalid(`cannot share the ${userDonor.what} namespace of container ${userDonor.ref}: it runs in the host's user namespace (--userns host); use --userns host for this container too`);
    }
    plan.user = donors.namespace(userDonor.rec, 'user');
  }

  if (hc.UTSMode === 'host') plan.uts = '';
  if (hc.CgroupnsMode === 'host') plan.cgroup = '';
  return plan;
}

/** After the exit: a shareable container's /dev/shm is unmounted from the host (containers that joined
 *  it keep their own mount of it until they exit). */
export async function releaseNamespaces(rec: ContainerRecord, containerDir: string): Promise<void> {
  if (rec.hostConfig.IpcMode !== 'shareable') return;
  const dir = shmDir(containerDir);
  if (isMounted(dir)) await tools.umount([dir]).catch(() => tools.umount(['-l', dir]));
  if (existsSync(dir)) await rm(dir, { recursive: true, force: true }).catch(() => {});
}
