// docker start: from a created or exited container to a running shim.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { conflict, invalid, notModified, BerthError } from '../errors/errors';
import { shimLogArgs } from '../logs';
import { nowNs, rfc3339Nano } from '../lib/time';
import type { CgroupResources } from '../runtime/types';
import { StartError } from '../runtime/supervisor';
import type { ContainerRecord } from './model';
import { buildSpec } from './spec';
import { resolveUserSync } from './user';
import { resourceFiles } from './resources';
import { stageSubpaths } from '../volumes/subpath';
import type { HeldNamespace } from '../runtime/process';
import { containerDevices } from './devices';
import { planNamespaces, releaseNamespaces } from './namespaces';
import { crashPoint } from '../lib/crash';
import { chownToRoot } from '../runtime/userns';
import { appArmorProfileFor, DEFAULT_APPARMOR_PROFILE } from './apparmor';
import { mountVolumes, unmountVolumes, mountRootfs, unmountRootfs } from './mounts';
import { wire } from './monitor';
import type { Live } from './live';
import type { ContainerService } from './service';

export async function start(svc: ContainerService, ref: string): Promise<void> {
  const live = svc.lookup(ref);
  await svc.serial(live, async () => {
    const st = live.rec.state.status;
    if (st === 'running' || st === 'restarting') throw notModified();
    if (st === 'paused') throw conflict(`cannot start a paused container, try unpause instead`);
    if (live.removed || st === 'removing' || st === 'dead') throw conflict(`container ${live.rec.id} is marked for removal and cannot be started`);
    svc.restarts.reset(live);
    svc.setManuallyStopped(live, false);
    await doStart(svc, live);
  }).catch(async (e) => {
    // Docker removes an --rm container whose start failed (the CLI waits for that removal).
    // Any failure of the start itself (a bad command, or ENOSPC writing its files on a full disk), not
    // the refusals above (already running, paused, being removed).
    const refused = e instanceof BerthError && (e.kind === 'notModified' || e.kind === 'conflict');
    if (!refused && live.rec.hostConfig.AutoRemove && !live.removed) {
      await svc.remove(live.rec.id, { force: true }).catch(() => {});
    }
    throw e;
  });
}

export function resources(svc: ContainerService, hc: ContainerRecord['hostConfig']): CgroupResources {
  const period = hc.CpuPeriod || 100000;
  const quota = hc.NanoCpus ? Math.round((hc.NanoCpus * period) / 1e9) : hc.CpuQuota || 0;
  return {
    memory: hc.Memory || 0,
    // Docker's default for a memory limit without a swap limit: as much swap again (memory+swap twice
    // the limit), so that a container over its limit is OOM-killed rather than swapping without bound.
    memorySwap: hc.MemorySwap || (hc.Memory > 0 ? hc.Memory * 2 : 0),
    memoryReservation: hc.MemoryReservation || 0,
    pidsLimit: hc.PidsLimit || 0,
    cpuShares: hc.CpuShares || 0,
    cpuQuota: quota,
    cpuPeriod: quota ? period : hc.CpuPeriod || 0,
    cpusetCpus: hc.CpusetCpus || '',
    cpusetMems: hc.CpusetMems || '',
    blkioWeight: hc.BlkioWeight || 0,
    files: resourceFiles(hc, svc.runtime.cgroups.version, svc.hasCgroupFile),
  };
}

export async function doStart(svc: ContainerService, live: Live): Promise<void> {
  const rec = live.rec;
  const id = rec.id;
  const stateDir = svc.stateDir(id);
  const dir = svc.containerDir(id);
  // The state dir of a live shim is its container's: removing it would orphan a running process (a start
  // that berthd did not live to record is adopted at restore; this is the last guard).
  if (svc.runtime.shimAlive(stateDir, id)) throw conflict(`container ${id} still has a running supervisor (berth-shim); it cannot be started again until that exits`);
  await rm(stateDir, { recursive: true, force: true });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  let cgroupMade = false;
  let netMade = false;
  let volumesHeld = false;
  let nsHeld = false;
  // Namespaces of other containers and subpath staging mounts: needed until the shim has the container
  // running (it then has its own references), released whatever happens.
  const held: HeldNamespace[] = [];
  let staged: { release(): Promise<void> } | undefined;
  live.startHolds = held;
  try {
    const rootfs = await mountRootfs(svc, live);
    await mountVolumes(svc, live, rootfs);
    volumesHeld = true;
    crashPoint('start.after-rootfs');
    const user = resolveUserSync(rootfs, rec.config.User ?? '', rec.hostConfig.GroupAdd ?? []);
    const env = [...containerEnv(rec, user.home), ...svc.d.networks.linkEnvironment(rec)];
    const files = {
      hostsPath: path.join(dir, 'hosts'),
      hostnamePath: path.join(dir, 'hostname'),
      resolvConfPath: path.join(dir, 'resolv.conf'),
    };
    // The network first (namespace, endpoints, and what /etc/hosts and resolv.conf say); the shim joins it.
    const net = await svc.d.networks.setup(rec);
    netMade = true;
    crashPoint('start.after-network');
    await Promise.all([
      writeFile(files.hostnamePath, `${rec.config.Hostname}\n`),
      writeFile(files.hostsPath, net.hosts),
      writeFile(files.resolvConfPath, net.resolvConf),
    ]);
    // The container's root may edit them, as without a remap (Docker gives them to the remapped root too).
    const remap = svc.remapOf(rec);
    if (remap) await Promise.all(Object.values(files).map((f) => chownToRoot(remap, f)));
    const netns = net.netns === undefined ? '' : net.netns || undefined;
    const initPath = rec.hostConfig.Init ? await initBinary(svc.d.config.shimPath) : undefined;
    const devices = await containerDevices(rec.hostConfig);
    nsHeld = true;
    const ns = await planNamespaces(rec, {
      lookup: (ref) => {
        const l = svc.lookup(ref);
        return { rec: l.rec, running: svc.isRunning(l) };
      },
      containerDir: (cid) => svc.containerDir(cid),
      namespace: (donor, kind) => svc.holdNamespace(svc.lookup(donor.id), kind, held),
      remapped: (r) => !!svc.remapOf(r),
    });
    // AppArmor where the host has it: berth-default is loaded again if something unloaded it.
    const apparmorProfile = svc.d.apparmor?.used ? appArmorProfileFor(rec.hostConfig, true) : undefined;
    if (apparmorProfile === DEFAULT_APPARMOR_PROFILE) await svc.d.apparmor?.ensureDefault();
    const stagedMounts = await stageSubpaths(rec.mounts ?? [], svc.subpathStagingDir(), id);
    staged = stagedMounts;
    const spec = buildSpec({
      ctr: rec, rootfs, user, env, ...files, cgroupsPath: `/${svc.cgroupPath(id)}`, netns, initPath,
      mounts: stagedMounts.mounts, devices: devices.nodes, ns, remap, apparmorProfile,
      seccompCacheDir: path.join(svc.d.config.execRoot, 'seccomp'),
    });
    await writeFile(path.join(stateDir, 'config.json'), JSON.stringify(spec));
    const cgroupDirs = await svc.runtime.createCgroup(svc.cgroupPath(id), { ...svc.resources(rec.hostConfig), devices: devices.rules });
    cgroupMade = true;
    // The LogConfig create stored (daemon.json's log-opts already merged in for the daemon's driver).
    const logArgs = await shimLogArgs(rec.hostConfig.LogConfig ?? {}, svc.logContext(rec));
    const subscribed = live.attachers.size > 0;
    const { conn, pid, shimPid } = await svc.runtime.spawn({
      shimPath: svc.d.config.shimPath, id, bundle: stateDir, stateDir, logArgs, cgroupDirs, attach: subscribed,
    });
    live.proc = svc.host.identify(pid, shimPid) ?? undefined;
    crashPoint('start.after-shim');
    rec.state = {
      ...rec.state, status: 'running', pid, shimPid, exitCode: 0, error: '', startedAt: rfc3339Nano(nowNs()),
      finishedAt: rec.state.hasBeenStarted ? rec.state.finishedAt : '0001-01-01T00:00:00Z', oomKilled: false, hasBeenStarted: true,
    };
    svc.save(live);
    crashPoint('start.after-save');
    wire(svc, live, conn, subscribed);
    svc.emit(live, 'start');
  } catch (e) {
    // Undo what this start made; the container stays as it was, with the error recorded.
    if (cgroupMade) await svc.runtime.removeCgroup(svc.cgroupPath(id)).catch(() => {});
    if (netMade) await svc.d.networks.teardown(rec).catch(() => {});
    if (volumesHeld) await unmountVolumes(svc, rec);
    if (nsHeld) await releaseNamespaces(rec, dir).catch(() => {});
    await unmountRootfs(svc, live).catch(() => {});
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof StartError || e instanceof BerthError) {
      rec.state.error = msg;
      rec.state.exitCode = /not found|no such file/.test(msg) ? 127 : /permission denied/.test(msg) ? 126 : 128;
      svc.save(live);
      throw invalid(e instanceof StartError ? `failed to create task for container: ${msg}` : msg);
    }
    throw e;
  } finally {
    live.startHolds = undefined;
    for (const h of held) h.release();
    await staged?.release();
  }
}

/** A restart policy's restart: starts again unless someone stopped or removed the container meanwhile. */
export async function policyStart(svc: ContainerService, live: Live): Promise<void> {
  await svc.serial(live, async () => {
    if (live.removed || live.rec.state.status !== 'restarting' || live.conn) return;
    crashPoint('policy-restart.before-start');
    try {
      await doStart(svc, live);
    } catch (e) {
      live.rec.state.status = 'exited';
      svc.save(live);
      throw e;
    }
  });
}

/** --init: berth-init, built next to berth-shim (make init). */
async function initBinary(shimPath: string): Promise<string> {
  const p = path.join(path.dirname(shimPath), 'berth-init');
  const { access } = await import('node:fs/promises');
  try {
    await access(p);
  } catch {
    throw invalid(`--init: the init binary ${p} is missing (build it with \`make init\`)`);
  }
  return p;
}

function containerEnv(rec: ContainerRecord, home: string): string[] {
  const env: string[] = [...(rec.config.Env ?? [])];
  const has = (k: string) => env.some((e) => e.startsWith(`${k}=`));
  if (!has('PATH')) env.unshift('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  if (!has('HOSTNAME')) env.push(`HOSTNAME=${rec.config.Hostname}`);
  if (!has('HOME')) env.push(`HOME=${home || '/'}`);
  if (rec.config.Tty && !has('TERM')) env.push('TERM=xterm');
  return env;
}
