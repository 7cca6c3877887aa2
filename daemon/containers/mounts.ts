// A container's file systems: its overlay root, its volumes and image mounts, mounted for a start or a cp.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { notFound } from '../errors/errors';
import type { ContainerRecord } from './model';
import { copyUp } from '../volumes/copyup';
import { bindMountsInto } from '../volumes/hostbind';
import type { ProcessRef } from '../runtime/process';
import type { MountPoint } from '../volumes/mounts';
import { chownToRoot, mapText, idMapsOf, followIdMaps, type Remap } from '../runtime/userns';
import type { Live } from './live';
import type { ContainerService } from './service';

/** Before the shim spawns: volumes with driver options mounted, empty volumes filled from the image. */
export async function mountVolumes(svc: ContainerService, live: Live, rootfs: string): Promise<string[]> {
  const held: string[] = [];
  try {
    for (const m of live.rec.mounts ?? []) {
      if (m.Type === 'image') {
        await mountImage(svc, m, svc.remapOf(live.rec));
        continue;
      }
      if (m.Type !== 'volume' || !m.Name) continue;
      await svc.d.volumes.acquire(m.Name);
      held.push(m.Name);
      // A volume's subpath is a directory of its own data: nothing of the image is copied into it.
      if (!m.NoCopy && !m.Subpath) await copyUp(rootfs, m.Destination, m.Source);
      svc.d.events.emit('volume', 'mount', m.Name, {
        container: live.rec.id, destination: m.Destination, driver: m.Driver ?? 'local', propagation: m.Propagation, 'read/write': String(m.RW),
      });
    }
  } catch (e) {
    for (const n of held) await svc.d.volumes.release(n).catch(() => {});
    await unmountImages(svc, live.rec);
    throw e;
  }
  return held;
}

/** An image mount: the image's layers as a read-only overlay (over an empty bottom layer, since an
 *  overlay without an upper layer needs two lowers) at the mount point's Source, bound into the
 *  container by the shim. Kept while the container runs, berthd restarts included. A remapped
 *  container's is made over idmapped layers, as its root is (image files are root's inside). */
export async function mountImage(svc: ContainerService, m: MountPoint, remap?: Remap): Promise<void> {
  if (svc.host.isMounted(m.Source)) return;
  const img = svc.d.images.get(m.ImageId!);
  const bottom = `${m.Source}.empty`;
  await Promise.all([mkdir(m.Source, { recursive: true }), mkdir(bottom, { recursive: true })]);
  await svc.runtime.mountRootfs([...svc.d.images.lowerDirs(img), bottom], '', '', m.Source,
    remap ? { uidMap: mapText(remap.uidMappings), gidMap: mapText(remap.gidMappings) } : undefined);
}

export async function unmountImages(svc: ContainerService, rec: ContainerRecord): Promise<void> {
  for (const m of rec.mounts ?? []) {
    if (m.Type !== 'image' || !svc.host.isMounted(m.Source)) continue;
    await svc.runtime.unmount(m.Source).catch((e) => svc.d.log.warn({ err: e, id: rec.id, image: m.Image }, 'image mount: unmount failed'));
  }
}

export async function unmountVolumes(svc: ContainerService, rec: ContainerRecord): Promise<void> {
  await unmountImages(svc, rec);
  for (const m of rec.mounts ?? []) {
    if (m.Type !== 'volume' || !m.Name) continue;
    await svc.d.volumes.release(m.Name).catch((e) => svc.d.log.warn({ err: e, volume: m.Name }, 'volume release failed'));
    svc.d.events.emit('volume', 'unmount', m.Name, { container: rec.id, driver: m.Driver ?? 'local' });
  }
}

export async function mountRootfs(svc: ContainerService, live: Live): Promise<string> {
  const layer = svc.layerDir(live.rec);
  const merged = path.join(layer, 'merged');
  await live.settling;
  if (live.mounted && svc.host.isOwnMount(merged)) return merged;
  const img = svc.d.images.get(live.rec.imageId);
  const lowers = [`${layer}-init/diff`, ...svc.d.images.lowerDirs(img)];
  const remap = svc.remapOf(live.rec);
  // A remapped container's root directory belongs to its namespace's root (the lowers show theirs
  // shifted through the idmap; the upper's top comes from the upper dir itself).
  // Made or last started under another remap (or none): its files are shifted to this one's ids first.
  const ids = remap ? idMapsOf(remap) : null;
  if (await followIdMaps(path.join(layer, 'diff'), live.rec.idMap ?? null, ids)) svc.store.setIdMap(live.rec.id, (live.rec.idMap = ids));
  if (remap) await chownToRoot(remap, path.join(layer, 'diff'));
  await svc.runtime.mountRootfs(lowers, path.join(layer, 'diff'), path.join(layer, 'work'), merged,
    remap ? { uidMap: mapText(remap.uidMappings), gidMap: mapText(remap.gidMappings) } : undefined);
  live.mounted = true;
  return merged;
}

export async function unmountRootfs(svc: ContainerService, live: Live): Promise<void> {
  const merged = path.join(svc.layerDir(live.rec), 'merged');
  if (live.mounted || svc.host.isOwnMount(merged)) await svc.runtime.unmount(merged);
  live.mounted = false;
}

/** Runs fn with the container's merged root filesystem at hand. A stopped container's is mounted for the
 *  call and unmounted after it, under the container's lock so that a start cannot race. `mounts` (docker
 *  cp): with the container's volumes and binds where it sees them; without (the builder's COPY), the
 *  container's own layer only, as Docker's classic builder writes it. */
export async function withRootfs<T>(svc: ContainerService, live: Live, fn: (root: string, owner?: ProcessRef) => Promise<T>, o: { mounts?: boolean } = {}): Promise<T> {
  const merged = path.join(svc.layerDir(live.rec), 'merged');
  // A running container with volumes or binds: its root as its own processes see it, mounts included;
  // whoever opens it checks that the pid is still the container's process (`owner`).
  if (o.mounts && svc.isRunning(live) && live.rec.mounts?.length && live.rec.state.pid > 0) {
    const owner = svc.processOf(live);
    return fn(`/proc/${owner.pid}/root`, owner);
  }
  if (svc.isRunning(live) && svc.host.isOwnMount(merged)) return fn(merged);
  return svc.serial(live, async () => {
    if (live.removed) throw notFound(`No such container: ${live.rec.id}`);
    const wasMounted = live.mounted && svc.host.isOwnMount(merged);
    const root = await mountRootfs(svc, live);
    let unbind: (() => Promise<void>) | undefined;
    try {
      // Its volumes and binds too, where the container would see them.
      if (o.mounts && live.rec.mounts?.length && !svc.isRunning(live)) unbind = await bindMountsInto(root, live.rec.mounts);
      return await fn(root);
    } finally {
      await unbind?.();
      if (!wasMounted && !svc.isRunning(live)) await unmountRootfs(svc, live).catch(() => {});
    }
  });
}
