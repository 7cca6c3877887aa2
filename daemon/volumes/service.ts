// Volumes of the local driver: a directory <data-root>/volumes/<name>/_data, or, with driver options
// (`-o type=tmpfs -o device=tmpfs -o o=size=10m`), a file system mounted there while containers use it.
// The service owns the `volumes` table and those directories; which containers use a volume is read from
// the containers' mount points.
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { chownToRoot, type Remap } from '../runtime/userns';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { DB } from '../state/db';
import type { EventSink } from '../containers/deps';
import type { ContainerService } from '../containers/service';
import { BerthError, conflict, invalid, notFound } from '../errors/errors';
import { nowNs, rfc3339Nano } from '../lib/time';
import { checkVolumeName } from './mounts';
import { isMounted, mountsUnder } from '../lib/mounts';
import { tools } from '../lib/tools';
import { crashPoint } from '../lib/crash';

/** What the volume service needs: its data root, its table, and which containers use a volume. */
export interface VolumeDeps {
  readonly config: { dataRoot: string };
  readonly db: DB;
  readonly log: Logger;
  readonly events: EventSink;
  readonly containers: Pick<ContainerService, 'all'>;
  /** --userns-remap: new volumes belong to its root. */
  readonly remap?: Remap;
}

export interface VolumeRow {
  name: string;
  driver: string;
  created: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  anonymous: boolean;
}

interface DbRow { name: string; driver: string; created: string; labels: string; options: string; anonymous: number }

const fromRow = (r: DbRow): VolumeRow => ({
  name: r.name, driver: r.driver, created: r.created, labels: JSON.parse(r.labels), options: JSON.parse(r.options), anonymous: !!r.anonymous,
});

/** Bytes used under a directory (not following links, each inode once). */
async function du(dir: string): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(d, e.name);
      const st = await stat(p).catch(() => undefined);
      if (!st) continue;
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (e.isDirectory()) await walk(p);
      else if (!e.isSymbolicLink()) total += st.size;
    }
  };
  await walk(dir);
  return total;
}

export class VolumeService {
  readonly root: string;
  /** Volumes with driver options mounted now, and how many running containers use each. */
  private readonly held = new Map<string, number>();

  constructor(private readonly d: VolumeDeps) {
    this.root = path.join(d.config.dataRoot, 'volumes');
  }

  has(name: string): boolean {
    return this.row(name) !== undefined;
  }

  private row(name: string): VolumeRow | undefined {
    const r = this.d.db.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as DbRow | undefined;
    return r && fromRow(r);
  }

  all(): VolumeRow[] {
    return (this.d.db.prepare('SELECT * FROM volumes ORDER BY created, name').all() as DbRow[]).map(fromRow);
  }

  get(name: string): VolumeRow {
    const v = this.row(name);
    if (!v) throw notFound(`get ${name}: no such volume`);
    return v;
  }

  dataPath(name: string): string {
    return path.join(this.root, name, '_data');
  }

  /** POST /volumes/create, and the volumes containers name. An existing name gives the existing volume. */
  async create(o: { Name?: string; Driver?: string; DriverOpts?: Record<string, string> | null; Labels?: Record<string, string> | null }, anonymous = false): Promise<VolumeRow> {
    const driver = o.Driver || 'local';
    if (driver !== 'local') throw notFound(`error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    // A volume created without a name is anonymous, also through POST /volumes/create, and carries
    // Docker's label for it: `docker volume prune` (anonymous volumes only, API 1.42+) removes it.
    if (!o.Name) anonymous = true;
    const name = o.Name || randomBytes(32).toString('hex');
    checkVolumeName(name);
    const existing = this.row(name);
    if (existing) return existing;
    const options = o.DriverOpts ?? {};
    for (const k of Object.keys(options)) {
      if (!['type', 'device', 'o', 'size'].includes(k)) throw invalid(`invalid option: "${k}"`);
    }
    if ((options.type || options.device) && !(options.type && options.device)) throw invalid('missing required option: "device"');
    await mkdir(this.dataPath(name), { recursive: true, mode: 0o755 });
    // Under --userns-remap the volume's root belongs to the containers' root, as Docker makes it.
    if (this.d.remap) await chownToRoot(this.d.remap, this.dataPath(name));
    crashPoint('volume-create.after-dir');
    const v: VolumeRow = { name, driver, created: rfc3339Nano(nowNs()).replace(/\.\d+Z$/, 'Z'), labels: anonymous ? { ...(o.Labels ?? {}), 'com.docker.volume.anonymous': '' } : o.Labels ?? {}, options, anonymous };
    this.d.db.prepare('INSERT INTO volumes (name, driver, created, labels, options, anonymous) VALUES (?, ?, ?, ?, ?, ?)')
      .run(v.name, v.driver, v.created, JSON.stringify(v.labels), JSON.stringify(v.options), v.anonymous ? 1 : 0);
    this.d.events.emit('volume', 'create', name, { driver });
    return v;
  }

  /** Containers (ids) whose mount points name the volume. */
  usedBy(name: string): string[] {
    return this.d.containers.all().filter((l) => (l.rec.mounts ?? []).some((m) => m.Type === 'volume' && m.Name === name)).map((l) => l.rec.id);
  }

  async remove(name: string, force = false): Promise<void> {
    const v = this.row(name);
    if (!v) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    const users = this.usedBy(name);
    if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(', ')}]`);
    // The file system first, and only then the row and the directory: a recursive delete through a mount that
    // could not be taken down would delete the contents of a still-mounted device.
    await this.unmountData(name).catch(() => {});
    await this.assertUnmounted(name);
    this.d.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
    crashPoint('volume-rm.after-row');
    await rm(path.join(this.root, name), { recursive: true, force: true });
    this.d.events.emit('volume', 'destroy', name, { driver: v.driver });
  }

  async prune(labelOk: (labels: Record<string, string>) => boolean, all: boolean): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let space = 0;
    for (const v of this.all()) {
      if (!all && !v.anonymous) continue;
      if (!labelOk(v.labels) || this.usedBy(v.name).length) continue;
      space += await du(this.dataPath(v.name));
      await this.remove(v.name).catch(() => undefined);
      if (!this.row(v.name)) deleted.push(v.name);
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: space };
  }

  /** A container using the volume starts: a volume with driver options gets its file system mounted. */
  async acquire(name: string): Promise<void> {
    const v = this.get(name);
    if (!v.options.type && !v.options.device) return;
    const data = this.dataPath(name);
    if (!isMounted(data)) {
      await mkdir(data, { recursive: true });
      const args = ['-t', v.options.type, ...(v.options.o ? ['-o', v.options.o] : []), v.options.device, data];
      await tools.mount(args);
    }
    this.held.set(name, (this.held.get(name) ?? 0) + 1);
  }

  /** A container using the volume stopped: the last one unmounts it (the data of a tmpfs volume goes, as with Docker). */
  async release(name: string): Promise<void> {
    const n = (this.held.get(name) ?? 0) - 1;
    if (n > 0) {
      this.held.set(name, n);
      return;
    }
    this.held.delete(name);
    await this.unmountData(name);
  }

  /** Throws (and the volume stays) while anything is mounted in the volume's directory. */
  private async assertUnmounted(name: string): Promise<void> {
    const left = mountsUnder(path.join(this.root, name));
    if (left.length) throw new BerthError('system', `remove ${name}: the volume's file system is still mounted at ${left[0]} and could not be unmounted; its data was not touched`);
  }

  private async unmountData(name: string): Promise<void> {
    const data = this.dataPath(name);
    if (isMounted(data)) await tools.umount([data]).catch(() => tools.umount(['-l', data]));
  }

  /** After a start: directories without a row (a crash during create) go; mounted volumes are counted again. */
  async sweep(runningUsers: (name: string) => number): Promise<void> {
    const known = new Set(this.all().map((v) => v.name));
    for (const dir of await readdir(this.root).catch(() => [] as string[])) {
      if (!known.has(dir)) {
        await this.unmountData(dir).catch(() => {});
        const left = mountsUnder(path.join(this.root, dir));
        if (left.length) {
          this.d.log.warn({ dir, mounted: left }, 'a volume directory without a volume is still mounted: left in place');
          continue;
        }
        await rm(path.join(this.root, dir), { recursive: true, force: true }).catch(() => {});
      }
    }
    for (const v of this.all()) {
      if (!v.options.type && !v.options.device) continue;
      const n = runningUsers(v.name);
      if (n > 0 && isMounted(this.dataPath(v.name))) this.held.set(v.name, n);
      else await this.unmountData(v.name).catch(() => {});
    }
  }

  view(v: VolumeRow, usage?: { Size: number; RefCount: number }): Record<string, unknown> {
    return {
      CreatedAt: v.created,
      Driver: v.driver,
      Labels: Object.keys(v.labels).length ? v.labels : null,
      Mountpoint: this.dataPath(v.name),
      Name: v.name,
      Options: Object.keys(v.options).length ? v.options : null,
      Scope: 'local',
      ...(usage ? { UsageData: usage } : {}),
    };
  }

  async usage(v: VolumeRow): Promise<{ Size: number; RefCount: number }> {
    return { Size: await du(this.dataPath(v.name)), RefCount: this.usedBy(v.name).length };
  }
}
