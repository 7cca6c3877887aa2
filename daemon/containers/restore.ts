// After a berthd start: containers re-attached (or found exited) and what crashes left behind swept;
// before a stop, the shims detached.
import { rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { nowNs, rfc3339Nano } from '../lib/time';
import type { ShimConnection } from '../runtime/types';
import { thaw } from './pause';
import { sweepStaging } from '../volumes/subpath';
import { inRootResolver } from '../runtime/inroot';
import { escapeMountPath } from '../lib/mounts';
import { wire, onExit } from './monitor';
import { finishPendingRemovals } from './remove';
import { newLive, type Live } from './live';
import type { ContainerService } from './service';

/** `liveRestore` false (daemon.json "live-restore": false): a container found running is not adopted but
 *  killed, as dockerd without live-restore does after a crash; its restart policy then applies. */
export async function restore(svc: ContainerService, liveRestore = true): Promise<void> {
  svc.d.log.info({ resolver: inRootResolver() }, 'files in containers are reached beneath their roots');
  for (const rec of svc.store.all()) {
    const live = newLive(rec);
    svc.byId.set(rec.id, live);
    svc.byName.set(rec.name, rec.id);
  }
  // One read of the mount table for all containers (isMounted per container reads it whole each time,
  // quadratic with hundreds of running containers).
  const mountedNow = new Set(svc.host.mountsUnder(path.join(svc.d.config.dataRoot, 'overlay2')));
  await Promise.all(svc.all().map(async (live) => {
    const st = live.rec.state;
    const sd = svc.stateDir(live.rec.id);
    if (st.status !== 'running' && st.status !== 'paused' && st.status !== 'restarting') {
      if (!svc.runtime.shimAlive(sd, live.rec.id)) return;
      // berthd died between the shim's STARTED and saving the start: the container runs whatever the row
      // says. Adopted as running, so that nothing of it (netns, veth, state dir) is swept or reused.
      const pids = svc.runtime.shimPids(sd);
      live.rec.state = {
        ...st, status: 'running', pid: pids?.pid ?? 0, shimPid: pids?.shimPid ?? 0, exitCode: 0, error: '',
        startedAt: rfc3339Nano(nowNs()), finishedAt: st.hasBeenStarted ? st.finishedAt : '0001-01-01T00:00:00Z', oomKilled: false, hasBeenStarted: true,
      };
      svc.save(live);
      svc.d.log.warn({ id: live.rec.id, pid: live.rec.state.pid }, 'adopted a container whose start berthd did not live to record');
    }
    live.mounted = mountedNow.has(escapeMountPath(path.join(svc.layerDir(live.rec), 'merged')));
    let conn = await svc.runtime.connect(sd);
    for (let i = 0; !conn && i < 20 && svc.runtime.shimAlive(sd, live.rec.id); i++) {
      await new Promise((r) => setTimeout(r, 100));
      conn = await svc.runtime.connect(sd);
    }
    if (conn) return adopt(svc, live, conn, liveRestore);
    if (svc.runtime.shimAlive(sd, live.rec.id)) {
      // Alive but not answering (a loaded host, a stopped shim): never declared dead, since removing its
      // cgroup would kill a running container. It stays running, is reported, and is tried again.
      svc.unreachable.set(live.rec.id, Date.now());
      svc.d.log.warn({ id: live.rec.id, shimPid: live.rec.state.shimPid }, 'the container supervisor does not answer; keeping the container and retrying');
      retryConnect(svc, live, liveRestore);
      return;
    }
    await exitedWhileDown(svc, live);
  }));
  await sweepStoppedMounts(svc);
  await sweepCgroups(svc);
  await finishPendingRemovals(svc);
  await sweepOrphans(svc);
  await sweepStaging(svc.subpathStagingDir());
  // Restart policies apply again: containers that were stopped when berthd went down (or that exited
  // meanwhile and were not restarted above) and whose policy wants them running.
  for (const live of svc.all()) {
    if (!svc.restarts.wantsStartAfterDaemonStart(live)) continue;
    svc.d.log.info({ id: live.rec.id }, 'starting container by its restart policy');
    svc.start(live.rec.id).catch((e) => svc.logWarn(e, live.rec.id, 'restart by policy failed'));
  }
}

/** A reached shim after a berthd start: wired, or (live-restore off) its container killed. */
export async function adopt(svc: ContainerService, live: Live, conn: ShimConnection, liveRestore: boolean): Promise<void> {
  svc.unreachable.delete(live.rec.id);
  live.proc = svc.host.identify(live.rec.state.pid, live.rec.state.shimPid) ?? undefined;
  wire(svc, live, conn);
  if (liveRestore) {
    svc.d.log.info({ id: live.rec.id }, 're-attached to running container');
    return;
  }
  svc.d.log.info({ id: live.rec.id }, 'live-restore is off: killing the container found running');
  await thaw(svc, live).catch(() => {});
  live.conn?.signal(9);
  svc.emit(live, 'kill', { signal: '9' });
  await svc.waitExit(live, 10_000);
}

/** The shim is gone: its exit file tells how the container ended. */
export async function exitedWhileDown(svc: ContainerService, live: Live): Promise<void> {
  svc.unreachable.delete(live.rec.id);
  const info = svc.runtime.exitStatus(svc.stateDir(live.rec.id)) ?? { exitCode: 255, finishedAt: rfc3339Nano(nowNs()) };
  svc.d.log.info({ id: live.rec.id, exitCode: info.exitCode }, 'container exited while berthd was down');
  const fake = { close() {} } as unknown as ShimConnection;
  live.conn = fake;
  await onExit(svc, live, fake, info);
}

/** Tries an unanswering shim again with a bounded back-off (0.2 s doubling to 5 s) until it answers or its
 *  process is gone. */
export function retryConnect(svc: ContainerService, live: Live, liveRestore: boolean, delay = 200): void {
  const t = setTimeout(() => {
    void (async () => {
      if (live.removed || !svc.unreachable.has(live.rec.id)) return;
      const sd = svc.stateDir(live.rec.id);
      const conn = await svc.runtime.connect(sd);
      if (conn) {
        svc.d.log.info({ id: live.rec.id }, 'the container supervisor answers again');
        return adopt(svc, live, conn, liveRestore);
      }
      if (!svc.runtime.shimAlive(sd, live.rec.id)) return exitedWhileDown(svc, live);
      retryConnect(svc, live, liveRestore, Math.min(delay * 2, 5000));
    })().catch((e) => svc.logWarn(e, live.rec.id, 'reconnecting to the container supervisor failed'));
  }, delay);
  t.unref();
}

/** Cgroups under the parent that no running container owns: a crash between recording an exit (or a
 *  removal) and removing the cgroup leaves one behind. */
export async function sweepCgroups(svc: ContainerService): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  const cg = svc.runtime.cgroups;
  const roots = [...new Set([...Object.values(cg.controllers), cg.unified].filter(Boolean))];
  const names = new Set<string>();
  for (const r of roots) {
    for (const e of await readdir(path.join(r, svc.d.config.cgroupParent), { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory() && /^[0-9a-f]{64}$/.test(e.name)) names.add(e.name);
    }
  }
  // Containers with a CgroupParent of their own (pods under the kubelet) live elsewhere.
  for (const live of svc.all()) {
    if (!live.rec.hostConfig.CgroupParent || svc.isRunningId(live.rec.id)) continue;
    let rel = '';
    try { rel = svc.cgroupPath(live.rec.id); } catch { continue; }
    if (roots.some((r) => existsSync(path.join(r, rel)))) names.add(live.rec.id);
  }
  for (const id of names) {
    if (svc.isRunningId(id)) continue;
    await svc.runtime.removeCgroup(svc.cgroupPath(id))
      .then(() => svc.d.log.info({ id }, 'removed the cgroup of a container that is not running'))
      .catch((e) => svc.logWarn(e, id, 'could not remove a leftover cgroup'));
  }
}

/** Mounts left by containers that are not running (one that exited while berthd was down, or a crash
 *  between recording an exit and unmounting): the overlay root, image mounts, shm and binds under its
 *  directories. A later start would stack a second overlay on the same upper and work directories. */
export async function sweepStoppedMounts(svc: ContainerService): Promise<void> {
  // The mount table read once (per container it was quadratic: a thousand running containers have
  // thousands of mounts); it is filtered below per stopped container.
  const table = svc.host.mountPoints();
  for (const live of svc.all()) {
    if (svc.isRunningId(live.rec.id)) continue;
    const dirs = [svc.layerDir(live.rec), svc.containerDir(live.rec.id), ...(live.rec.mounts ?? []).filter((m) => m.Type === 'image' && m.Source).map((m) => m.Source)]
      .map(escapeMountPath);
    // Deepest first, so that a mount is never taken down from under another.
    const points = [...new Set(table.filter((m) => dirs.some((d) => m === d || m.startsWith(`${d}/`))))].sort((a, b) => b.length - a.length);
    for (const p of points) {
      const target = p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      await svc.runtime.unmount(target)
        .then(() => svc.d.log.info({ id: live.rec.id, mount: target }, 'unmounted what a stopped container left mounted'))
        .catch((e) => svc.logWarn(e, live.rec.id, `could not unmount ${target}`));
    }
    live.mounted = false;
  }
}

/** Container directories no row names (a crash during create, or in rm between the row and the files):
 *  the container's dirs, its read-write and init layers under overlay2 (told apart from image layers by
 *  the layers table), each unmounted first and left alone if that fails. */
export async function sweepOrphans(svc: ContainerService): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  const known = new Set(svc.byId.keys());
  const gone = async (p: string) => {
    for (const m of svc.host.mountsUnder(p).sort((a, b) => b.length - a.length)) {
      await svc.runtime.unmount(m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))).catch(() => {});
    }
    if (svc.host.mountsUnder(p).length) return svc.d.log.warn({ dir: p }, 'an orphaned container directory is still mounted; left in place');
    await rm(p, { recursive: true, force: true });
    svc.d.log.info({ dir: p }, 'removed an orphaned container directory');
  };
  const dir = path.join(svc.d.config.dataRoot, 'containers');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!known.has(name)) await gone(path.join(dir, name));
  }
  // Endpoint rows of containers that are gone (a crash in an rm made before rows went together).
  const ownerless = new Set(svc.d.networks.all().flatMap((n) => svc.d.networks.endpointsOf(n.id)).map((e) => e.containerId).filter((id) => !known.has(id)));
  for (const id of ownerless) {
    svc.d.networks.forget(id);
    svc.d.log.info({ id }, 'removed the endpoints of a container that is gone');
  }
  const layers = new Set([...svc.d.images.layers.all().map((l) => l.cacheId), ...svc.containerLayerIds()]);
  const overlay = path.join(svc.d.config.dataRoot, 'overlay2');
  for (const name of await readdir(overlay).catch(() => [] as string[])) {
    if (/^[0-9a-f]{64}(-init)?$/.test(name) && !layers.has(name)) await gone(path.join(overlay, name));
  }
  const execDir = path.join(svc.d.config.execRoot, 'containers');
  for (const name of await readdir(execDir).catch(() => [] as string[])) {
    if (!known.has(name)) await rm(path.join(execDir, name), { recursive: true, force: true });
  }
}

/** berthd is stopping: drop the shim connections; the containers keep running. Deletions of removed
 *  containers' files still under way are finished first (else the next start does them). */
export async function detachAll(svc: ContainerService): Promise<void> {
  await Promise.all(svc.removing.values());
  for (const l of svc.byId.values()) {
    const c = l.conn;
    l.conn = undefined;
    c?.close();
  }
}
