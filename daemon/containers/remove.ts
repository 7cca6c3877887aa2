// docker rm: the row at once, the files after the answer.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { conflict } from '../errors/errors';
import { thaw } from './pause';
import { crashPoint } from '../lib/crash';
import { unmountRootfs } from './mounts';
import type { ContainerService } from './service';

export async function remove(svc: ContainerService, ref: string, o: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
  const live = svc.lookup(ref);
  await svc.serial(live, async () => {
    if (live.removed) return;
    svc.assertReachable(live);
    // A container waiting out its restart back-off counts as running, as in Docker (checked before the
    // pending restart is dropped).
    if (!o.force && (svc.isRunning(live) || live.rec.state.status === 'restarting')) {
      throw conflict(`You cannot remove a ${live.rec.state.status} container ${live.rec.id}. Stop the container before attempting removal or force remove`);
    }
    svc.restarts.cancel(live);
    if (svc.isRunning(live)) {
      live.conn!.signal(9);
      svc.emit(live, 'kill', { signal: '9' });
      // A frozen process dies of SIGKILL only once thawed (rm -f of a paused container waited for ever).
      await thaw(svc, live).catch(() => {});
      await svc.waitExit(live, 30_000);
    }
    await live.settling;
    // Unmounted while the row still names the container (a crash here leaves a stopped container that
    // can be removed again): a stopped container's root is mounted only while a cp or export uses it.
    await unmountRootfs(svc, live).catch(() => {});
    crashPoint('rm.after-unmount');
    live.removed = true;
    // The container's row and its endpoint rows go together (a crash between them would leave endpoints,
    // and their addresses, that no container owns), with the mark that its files are still to go.
    svc.d.db.transaction(() => {
      svc.store.remove(live.rec.id, live.rec.layerId);
      svc.d.networks.forget(live.rec.id);
    })();
    svc.byId.delete(live.rec.id);
    if (svc.byName.get(live.rec.name) === live.rec.id) svc.byName.delete(live.rec.name);
    crashPoint('rm.after-row');
    svc.d.images.releaseImage(live.rec.imageId);
    // Anonymous volumes go with the container on `rm -v` and `--rm`; named ones stay.
    if (o.volumes || live.rec.hostConfig.AutoRemove) {
      for (const m of live.rec.mounts ?? []) {
        if (m.Type === 'volume' && m.Anonymous && m.Name) {
          await svc.d.volumes.remove(m.Name).catch((e) => svc.d.log.info({ err: e, volume: m.Name }, 'anonymous volume kept'));
        }
      }
    }
    svc.emit(live, 'destroy');
    for (const w of live.removeWaiters.splice(0)) w();
    for (const w of live.exitWaiters.splice(0)) w();
    // The container is gone from the API: its files (the read-write layer can be large, a recursive
    // delete takes as long as it has files) are deleted after the answer, as Docker's rm waits for them
    // and berth's need not. Nothing can reach them any more: ids are never reused and layer dirs are
    // named by a fresh random id.
    finishRemoval(svc, live.rec.id, live.rec.layerId);
  });
}

/** Deletes a removed container's files, then its pending-removal mark; a failure leaves the mark, which
 *  the next start tries again. */
export function finishRemoval(svc: ContainerService, id: string, layerId: string): Promise<void> {
  const done = (async () => {
    // After the answer has been written (the request's own microtasks come first).
    await new Promise((r) => setImmediate(r));
    crashPoint('rm.before-files');
    await removeFiles(svc, id, layerId);
    svc.store.removalDone(id);
  })().catch((e) => svc.logWarn(e, id, 'deleting the files of a removed container failed; retried at the next start'))
    .finally(() => svc.removing.delete(id));
  svc.removing.set(id, done);
  return done;
}

/** Removals a killed berthd left half done (pending_removals): their files are deleted now. Their
 *  directories are named by no container, so anything still mounted there is unmounted first. */
export async function finishPendingRemovals(svc: ContainerService): Promise<void> {
  await Promise.all(svc.store.pendingRemovals().map(async ({ id, layerId }) => {
    const layer = path.join(svc.d.config.dataRoot, 'overlay2', layerId);
    for (const m of svc.host.mountsUnder(layer).sort((a, b) => b.length - a.length)) {
      await svc.runtime.unmount(m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))).catch(() => {});
    }
    svc.d.log.info({ id }, 'finishing the removal of a container');
    await finishRemoval(svc, id, layerId);
  }));
}

export async function removeFiles(svc: ContainerService, id: string, layerId: string): Promise<void> {
  const layer = path.join(svc.d.config.dataRoot, 'overlay2', layerId);
  await Promise.all([
    rm(svc.containerDir(id), { recursive: true, force: true }),
    rm(svc.stateDir(id), { recursive: true, force: true }),
    rm(layer, { recursive: true, force: true }),
    rm(`${layer}-init`, { recursive: true, force: true }),
  ]);
}
