// docker create: the container's row, directories and volumes.
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { conflict, invalid } from '../errors/errors';
import type { ContainerRecord } from './model';
import { checkResources } from './resources';
import { prepareCreate, type CreateBody } from './create';
import type { MountDefaults } from '../volumes/mounts';
import { crashPoint } from '../lib/crash';
import { removeFiles } from './remove';
import { newLive } from './live';
import type { ContainerService } from './service';

export async function create(svc: ContainerService, nameParam: string | undefined, body: CreateBody, mountDefaults: MountDefaults = {}): Promise<{ Id: string; Warnings: string[] }> {
  const rec = prepareCreate({ config: svc.d.config, images: svc.d.images, validateBody: svc.d.validateBody, remap: svc.d.remap, containers: svc }, nameParam, body, (n) => svc.isNameTaken(n), mountDefaults);
  const warnings = checkResources(rec.hostConfig, svc.runtime.cgroups.version, svc.hasCgroupFile);
  svc.d.networks.validateCreate(rec, body?.NetworkingConfig?.EndpointsConfig);
  const existing = svc.byName.get(rec.name);
  if (existing) {
    throw conflict(`Conflict. The container name "${rec.name}" is already in use by container "${existing}". You have to remove (or rename) that container to be able to reuse that name.`);
  }
  // Reserve the name before any await so that concurrent creates cannot both take it.
  svc.byName.set(rec.name, rec.id);
  let made: string[] = [];
  try {
    const dir = svc.containerDir(rec.id);
    const layer = svc.layerDir(rec);
    await Promise.all([
      mkdir(dir, { recursive: true, mode: 0o710 }),
      mkdir(path.join(layer, 'diff'), { recursive: true }),
      mkdir(path.join(layer, 'work'), { recursive: true }),
      mkdir(path.join(layer, 'merged'), { recursive: true }),
      makeInitLayer(`${layer}-init`),
    ]);
    crashPoint('create.after-dirs');
    made = await prepareMounts(svc, rec);
    svc.store.insert(rec);
    svc.d.networks.recordCreate(rec, body?.NetworkingConfig?.EndpointsConfig);
    crashPoint('create.after-row');
  } catch (e) {
    svc.byName.delete(rec.name);
    await removeFiles(svc, rec.id, rec.layerId).catch(() => {});
    for (const v of made) await svc.d.volumes.remove(v, true).catch(() => {});
    throw e;
  }
  const live = newLive(rec);
  svc.byId.set(rec.id, live);
  svc.emit(live, 'create');
  return { Id: rec.id, Warnings: warnings };
}

/** Makes the volumes the container names (anonymous ones get a new name) and checks its binds' host
 *  paths. Returns the volumes it made, for the caller to remove if the create fails later. */
export async function prepareMounts(svc: ContainerService, rec: ContainerRecord): Promise<string[]> {
  const made: string[] = [];
  try {
    for (const m of rec.mounts ?? []) {
      if (m.Type === 'volume') {
        const existed = !!m.Name && svc.d.volumes.has(m.Name);
        const v = await svc.d.volumes.create({ Name: m.Name || undefined, Labels: m.VolumeLabels, DriverOpts: m.VolumeDriverOpts }, !m.Name);
        if (!existed) made.push(v.name);
        m.Name = v.name;
        m.Source = svc.d.volumes.dataPath(v.name);
        m.Anonymous = v.anonymous;
        delete m.VolumeLabels;
        delete m.VolumeDriverOpts;
      } else if (m.Type === 'bind' && !existsSync(m.Source)) {
        if (!m.CreateSource) throw invalid(`invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
        await mkdir(m.Source, { recursive: true, mode: 0o755 });
      }
    }
  } catch (e) {
    for (const v of made) await svc.d.volumes.remove(v, true).catch(() => {});
    throw e;
  }
  return made;
}

/** The init layer: empty mount points for the files and dirs the runtime mounts over, so that they do not
 *  show up as changes in the container's own layer. */
async function makeInitLayer(dir: string): Promise<void> {
  const d = path.join(dir, 'diff');
  await mkdir(path.join(d, 'etc'), { recursive: true });
  await mkdir(path.join(d, 'dev', 'pts'), { recursive: true });
  await mkdir(path.join(d, 'dev', 'shm'), { recursive: true });
  await mkdir(path.join(d, 'proc'), { recursive: true });
  await mkdir(path.join(d, 'sys'), { recursive: true });
  await Promise.all(['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'dev/console'].map((f) => writeFile(path.join(d, f), '')));
}
