// The container service: owns the containers and container_state tables, the container directories,
// and the live connections to every running container's shim. Verbs live in files of their own
// (create.ts, views.ts, logs.ts); this file holds lookup, the state machine and the process lifecycle.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ContainerDeps } from './deps';
import { conflict, invalid, notFound, notModified, BerthError } from '../errors/errors';
import { logReadPath, shimLogArgs, type LogContext } from '../logs';
import { isFullId } from '../lib/ids';
import { nowNs, rfc3339Nano } from '../lib/time';
import { parseSignal } from '../lib/signals';
import type { ContainerRuntime, ExitInfo, ShimConnection, CgroupResources, HostTools } from '../runtime/types';
import { StartError } from '../runtime/supervisor';
import { ContainerStore } from './store';
import type { ContainerRecord } from './model';
import { buildSpec } from './spec';
import { resolveUserSync } from './user';
import { checkResources, hostHasFile, resourceFiles, type HasFile } from './resources';
import { prepareCreate, type CreateBody } from './create';
import { thaw } from './pause';
import { RestartPolicies } from './restart';
import { HealthMonitors } from './health';
import { copyUp } from '../volumes/copyup';
import { bindMountsInto } from '../volumes/hostbind';
import { stageSubpaths, sweepStaging } from '../volumes/subpath';
import { inRootResolver } from '../runtime/inroot';
import { holdNamespace, ProcessGone, type ProcessRef, type HeldNamespace } from '../runtime/process';
import { containerDevices } from './devices';
import { planNamespaces, releaseNamespaces } from './namespaces';
import type { MountDefaults, MountPoint } from '../volumes/mounts';
import { escapeMountPath } from '../lib/mounts';
import { hostTools } from '../runtime/host-tools';
import { crashPoint } from '../lib/crash';
import { chownToRoot, mapText, type Remap } from '../runtime/userns';
import { appArmorProfileFor, DEFAULT_APPARMOR_PROFILE } from './apparmor';

/** Someone attached to a container's output (docker attach / run without -d). */
export interface Attacher {
  stdout: boolean;
  stderr: boolean;
  write(stream: number, data: Buffer): void;
  /** The container exited: flush and close. */
  end(): void;
}

/** The running container's process, or undefined when it is not running (or no longer that process). */
function runningProcess(svc: ContainerService, live: Live): ProcessRef | undefined {
  try {
    return svc.processOf(live);
  } catch {
    return undefined;
  }
}

/** In-memory companion of a container row: its shim connection and who waits for what. */
export interface Live {
  rec: ContainerRecord;
  conn?: ShimConnection;
  attachers: Set<Attacher>;
  exitWaiters: Array<() => void>;
  removeWaiters: Array<() => void>;
  lock: Promise<unknown>;
  removed: boolean;
  mounted: boolean;
  /** The clean-up after an exit (cgroup, network, rootfs unmount) while it runs: a start or a removal
   *  that comes meanwhile (`docker wait` answers as soon as the exit is recorded) waits for it. */
  settling?: Promise<void>;
  /** stdin that arrived from an attach before the container's process existed. */
  pendingStdin: Buffer[];
  pendingStdinClose: boolean;
  /** Stopped by berthd's own shutdown (live-restore off): no restart policy applies until the next start. */
  shuttingDown?: boolean;
  /** The container's init process while it runs: its pid with its start time, so that a pid reused after
   *  it is gone is never taken for it (runtime/process.ts). */
  proc?: ProcessRef;
  /** During a start: what it holds of other containers until its shim runs (holdNamespace). */
  startHolds?: HeldNamespace[];
}

function newLive(rec: ContainerRecord): Live {
  return {
    rec, attachers: new Set(), exitWaiters: [], removeWaiters: [], lock: Promise.resolve(), removed: false,
    mounted: false, pendingStdin: [], pendingStdinClose: false,
  };
}

export class ContainerService {
  /** Which cgroup files this host offers containers (read when a setting asks, not per start). */
  private get hasCgroupFile(): HasFile {
    return (this.hasFileCache ??= hostHasFile(this.runtime.cgroups));
  }
  private hasFileCache: HasFile | undefined;
  readonly restarts: RestartPolicies;
  readonly health: HealthMonitors;
  private readonly store: ContainerStore;
  private readonly byId = new Map<string, Live>();
  private readonly byName = new Map<string, string>(); // "/name" → id
  /** Running containers whose shim is alive but did not answer at restore (id → since when). */
  private readonly unreachable = new Map<string, number>();
  /** Removed containers whose files are being deleted (after rm answered), by id. */
  private readonly removing = new Map<string, Promise<void>>();

  /** `d`: the other services and settings, each as the narrow interface this one uses (deps.ts);
   *  `runtime`: the shims, cgroups and mounts (runtime/types.ts); `host`: the mount table and /proc. */
  constructor(private readonly d: ContainerDeps, readonly runtime: ContainerRuntime, private readonly host: HostTools = hostTools) {
    this.store = new ContainerStore(d.db);
    this.restarts = new RestartPolicies(this);
    this.health = new HealthMonitors(this, d.runProbe, d.db);
  }

  /** The API's schema check of a request body, for the verbs that take one (update.ts). */
  validateBody(schemaId: string, body: unknown): void {
    this.d.validateBody(schemaId, body);
  }

  // ---- paths -------------------------------------------------------------------------------------

  containerDir(id: string): string {
    return path.join(this.d.config.dataRoot, 'containers', id);
  }
  stateDir(id: string): string {
    return path.join(this.d.config.execRoot, 'containers', id);
  }
  /** The container as its log driver sees it. */
  logContext(rec: ContainerRecord): LogContext {
    return {
      id: rec.id, name: rec.name, imageId: rec.imageId, imageRef: rec.imageRef, labels: rec.config.Labels ?? {},
      env: rec.config.Env ?? [], dir: this.containerDir(rec.id),
    };
  }
  /** The log file `docker logs` reads; 501 when the container's log driver keeps none (none, syslog
   *  with cache-disabled). */
  logReadPath(rec: ContainerRecord): string {
    return logReadPath(rec.hostConfig.LogConfig ?? {}, this.logContext(rec));
  }
  /** The log file to read, for those that read it without asking first (attach's logs=1): with a driver
   *  that keeps none, a name no file is ever written under, which reads as an empty log. */
  logPath(id: string): string {
    const rec = this.lookup(id).rec;
    try {
      return this.logReadPath(rec);
    } catch {
      return path.join(this.containerDir(id), `${id}-json.log`);
    }
  }
  layerDir(rec: ContainerRecord): string {
    return path.join(this.d.config.dataRoot, 'overlay2', rec.layerId);
  }
  cgroupPath(id: string): string {
    return this.runtime.cgroupPathFor(id, this.byId.get(id)?.rec.hostConfig.CgroupParent);
  }

  // ---- lookup ------------------------------------------------------------------------------------

  /** Full id, then exact name (with or without the slash), then a unique id prefix. */
  lookup(ref: string): Live {
    if (!ref) throw notFound('No such container: ');
    const direct = this.byId.get(ref);
    if (direct) return direct;
    const byName = this.byName.get(ref.startsWith('/') ? ref : `/${ref}`);
    if (byName) return this.byId.get(byName)!;
    if (/^[0-9a-f]+$/.test(ref) && !isFullId(ref)) {
      const hits = [...this.byId.keys()].filter((id) => id.startsWith(ref));
      if (hits.length === 1) return this.byId.get(hits[0])!;
      if (hits.length > 1) throw new BerthError('system', `Multiple IDs found with provided prefix: ${ref}`);
    }
    throw notFound(`No such container: ${ref}`);
  }

  all(): Live[] {
    return [...this.byId.values()];
  }

  count(): { total: number; running: number; paused: number; stopped: number } {
    let running = 0, paused = 0, stopped = 0;
    for (const l of this.byId.values()) {
      if (l.rec.state.status === 'running' || l.rec.state.status === 'restarting') running++;
      else if (l.rec.state.status === 'paused') paused++;
      else stopped++;
    }
    return { total: this.byId.size, running, paused, stopped };
  }

  containersUsingImage(imageId: string): string[] {
    return this.all().filter((l) => l.rec.imageId === imageId || (l.rec.mounts ?? []).some((m) => m.ImageId === imageId)).map((l) => l.rec.id);
  }

  isRunningId(id: string): boolean {
    const st = this.byId.get(id)?.rec.state.status;
    return st === 'running' || st === 'paused' || st === 'restarting';
  }

  isNameTaken(name: string): boolean {
    return this.byName.has(name);
  }

  serial<T>(live: Live, fn: () => Promise<T>): Promise<T> {
    const next = live.lock.then(fn, fn);
    live.lock = next.catch(() => undefined);
    return next;
  }

  save(live: Live): void {
    if (!live.removed) this.store.saveState(live.rec.id, live.rec.state);
  }

  emit(live: Live, action: string, extra: Record<string, string> = {}): void {
    const attrs: Record<string, string> = { ...(live.rec.config.Labels ?? {}), image: live.rec.imageRef, name: live.rec.name.slice(1), ...extra };
    this.d.events.emit('container', action, live.rec.id, attrs);
  }

  // ---- create ------------------------------------------------------------------------------------

  async create(nameParam: string | undefined, body: CreateBody, mountDefaults: MountDefaults = {}): Promise<{ Id: string; Warnings: string[] }> {
    const rec = prepareCreate({ config: this.d.config, images: this.d.images, validateBody: this.d.validateBody, remap: this.d.remap, containers: this }, nameParam, body, (n) => this.isNameTaken(n), mountDefaults);
    const warnings = checkResources(rec.hostConfig, this.runtime.cgroups.version, this.hasCgroupFile);
    this.d.networks.validateCreate(rec, body?.NetworkingConfig?.EndpointsConfig);
    const existing = this.byName.get(rec.name);
    if (existing) {
      throw conflict(`Conflict. The container name "${rec.name}" is already in use by container "${existing}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    // Reserve the name before any await so that concurrent creates cannot both take it.
    this.byName.set(rec.name, rec.id);
    let made: string[] = [];
    try {
      const dir = this.containerDir(rec.id);
      const layer = this.layerDir(rec);
      await Promise.all([
        mkdir(dir, { recursive: true, mode: 0o710 }),
        mkdir(path.join(layer, 'diff'), { recursive: true }),
        mkdir(path.join(layer, 'work'), { recursive: true }),
        mkdir(path.join(layer, 'merged'), { recursive: true }),
        makeInitLayer(`${layer}-init`),
      ]);
      crashPoint('create.after-dirs');
      made = await this.prepareMounts(rec);
      this.store.insert(rec);
      this.d.networks.recordCreate(rec, body?.NetworkingConfig?.EndpointsConfig);
      crashPoint('create.after-row');
    } catch (e) {
      this.byName.delete(rec.name);
      await this.removeFiles(rec.id, rec.layerId).catch(() => {});
      for (const v of made) await this.d.volumes.remove(v, true).catch(() => {});
      throw e;
    }
    const live = newLive(rec);
    this.byId.set(rec.id, live);
    this.emit(live, 'create');
    return { Id: rec.id, Warnings: warnings };
  }

  /** Makes the volumes the container names (anonymous ones get a new name) and checks its binds' host
   *  paths. Returns the volumes it made, for the caller to remove if the create fails later. */
  private async prepareMounts(rec: ContainerRecord): Promise<string[]> {
    const made: string[] = [];
    try {
      for (const m of rec.mounts ?? []) {
        if (m.Type === 'volume') {
          const existed = !!m.Name && this.d.volumes.has(m.Name);
          const v = await this.d.volumes.create({ Name: m.Name || undefined, Labels: m.VolumeLabels, DriverOpts: m.VolumeDriverOpts }, !m.Name);
          if (!existed) made.push(v.name);
          m.Name = v.name;
          m.Source = this.d.volumes.dataPath(v.name);
          m.Anonymous = v.anonymous;
          delete m.VolumeLabels;
          delete m.VolumeDriverOpts;
        } else if (m.Type === 'bind' && !existsSync(m.Source)) {
          if (!m.CreateSource) throw invalid(`invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
          await mkdir(m.Source, { recursive: true, mode: 0o755 });
        }
      }
    } catch (e) {
      for (const v of made) await this.d.volumes.remove(v, true).catch(() => {});
      throw e;
    }
    return made;
  }

  /** Before the shim spawns: volumes with driver options mounted, empty volumes filled from the image. */
  private async mountVolumes(live: Live, rootfs: string): Promise<string[]> {
    const held: string[] = [];
    try {
      for (const m of live.rec.mounts ?? []) {
        if (m.Type === 'image') {
          await this.mountImage(m);
          continue;
        }
        if (m.Type !== 'volume' || !m.Name) continue;
        await this.d.volumes.acquire(m.Name);
        held.push(m.Name);
        // A volume's subpath is a directory of its own data: nothing of the image is copied into it.
        if (!m.NoCopy && !m.Subpath) await copyUp(rootfs, m.Destination, m.Source);
        this.d.events.emit('volume', 'mount', m.Name, {
          container: live.rec.id, destination: m.Destination, driver: m.Driver ?? 'local', propagation: m.Propagation, 'read/write': String(m.RW),
        });
      }
    } catch (e) {
      for (const n of held) await this.d.volumes.release(n).catch(() => {});
      await this.unmountImages(live.rec);
      throw e;
    }
    return held;
  }

  /** An image mount: the image's layers as a read-only overlay (over an empty bottom layer, since an
   *  overlay without an upper layer needs two lowers) at the mount point's Source, bound into the
   *  container by the shim. Kept while the container runs, berthd restarts included. */
  private async mountImage(m: MountPoint): Promise<void> {
    if (this.host.isMounted(m.Source)) return;
    const img = this.d.images.get(m.ImageId!);
    const bottom = `${m.Source}.empty`;
    await Promise.all([mkdir(m.Source, { recursive: true }), mkdir(bottom, { recursive: true })]);
    await this.runtime.mountRootfs([...this.d.images.lowerDirs(img), bottom], '', '', m.Source);
  }

  private async unmountImages(rec: ContainerRecord): Promise<void> {
    for (const m of rec.mounts ?? []) {
      if (m.Type !== 'image' || !this.host.isMounted(m.Source)) continue;
      await this.runtime.unmount(m.Source).catch((e) => this.d.log.warn({ err: e, id: rec.id, image: m.Image }, 'image mount: unmount failed'));
    }
  }

  private async unmountVolumes(rec: ContainerRecord): Promise<void> {
    await this.unmountImages(rec);
    for (const m of rec.mounts ?? []) {
      if (m.Type !== 'volume' || !m.Name) continue;
      await this.d.volumes.release(m.Name).catch((e) => this.d.log.warn({ err: e, volume: m.Name }, 'volume release failed'));
      this.d.events.emit('volume', 'unmount', m.Name, { container: rec.id, driver: m.Driver ?? 'local' });
    }
  }

  // ---- start -------------------------------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const live = this.lookup(ref);
    await this.serial(live, async () => {
      const st = live.rec.state.status;
      if (st === 'running' || st === 'restarting') throw notModified();
      if (st === 'paused') throw conflict(`cannot start a paused container, try unpause instead`);
      if (live.removed || st === 'removing' || st === 'dead') throw conflict(`container ${live.rec.id} is marked for removal and cannot be started`);
      this.restarts.reset(live);
      this.setManuallyStopped(live, false);
      await this.doStart(live);
    }).catch(async (e) => {
      // Docker removes an --rm container whose start failed (the CLI waits for that removal).
      // Any failure of the start itself (a bad command, or ENOSPC writing its files on a full disk), not
      // the refusals above (already running, paused, being removed).
      const refused = e instanceof BerthError && (e.kind === 'notModified' || e.kind === 'conflict');
      if (!refused && live.rec.hostConfig.AutoRemove && !live.removed) {
        await this.remove(live.rec.id, { force: true }).catch(() => {});
      }
      throw e;
    });
  }

  private async mountRootfs(live: Live): Promise<string> {
    const layer = this.layerDir(live.rec);
    const merged = path.join(layer, 'merged');
    await live.settling;
    if (live.mounted && this.host.isOwnMount(merged)) return merged;
    const img = this.d.images.get(live.rec.imageId);
    const lowers = [`${layer}-init/diff`, ...this.d.images.lowerDirs(img)];
    const remap = this.remapOf(live.rec);
    // A remapped container's root directory belongs to its namespace's root (the lowers show theirs
    // shifted through the idmap; the upper's top comes from the upper dir itself).
    if (remap) await chownToRoot(remap, path.join(layer, 'diff'));
    await this.runtime.mountRootfs(lowers, path.join(layer, 'diff'), path.join(layer, 'work'), merged,
      remap ? { uidMap: mapText(remap.uidMappings), gidMap: mapText(remap.gidMappings) } : undefined);
    live.mounted = true;
    return merged;
  }

  /** The daemon's --userns-remap when this container uses it (not `--userns host`). */
  remapOf(rec: ContainerRecord): Remap | undefined {
    return this.d.remap && rec.hostConfig.UsernsMode !== 'host' ? this.d.remap : undefined;
  }

  resources(hc: ContainerRecord['hostConfig']): CgroupResources {
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
      files: resourceFiles(hc, this.runtime.cgroups.version, this.hasCgroupFile),
    };
  }

  private async doStart(live: Live): Promise<void> {
    const rec = live.rec;
    const id = rec.id;
    const stateDir = this.stateDir(id);
    const dir = this.containerDir(id);
    // The state dir of a live shim is its container's: removing it would orphan a running process (a start
    // that berthd did not live to record is adopted at restore; this is the last guard).
    if (this.runtime.shimAlive(stateDir, id)) throw conflict(`container ${id} still has a running supervisor (berth-shim); it cannot be started again until that exits`);
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
      const rootfs = await this.mountRootfs(live);
      await this.mountVolumes(live, rootfs);
      volumesHeld = true;
      crashPoint('start.after-rootfs');
      const user = resolveUserSync(rootfs, rec.config.User ?? '', rec.hostConfig.GroupAdd ?? []);
      const env = [...containerEnv(rec, user.home), ...this.d.networks.linkEnvironment(rec)];
      const files = {
        hostsPath: path.join(dir, 'hosts'),
        hostnamePath: path.join(dir, 'hostname'),
        resolvConfPath: path.join(dir, 'resolv.conf'),
      };
      // The network first (namespace, endpoints, and what /etc/hosts and resolv.conf say); the shim joins it.
      const net = await this.d.networks.setup(rec);
      netMade = true;
      crashPoint('start.after-network');
      await Promise.all([
        writeFile(files.hostnamePath, `${rec.config.Hostname}\n`),
        writeFile(files.hostsPath, net.hosts),
        writeFile(files.resolvConfPath, net.resolvConf),
      ]);
      // The container's root may edit them, as without a remap (Docker gives them to the remapped root too).
      const remap = this.remapOf(rec);
      if (remap) await Promise.all(Object.values(files).map((f) => chownToRoot(remap, f)));
      const netns = net.netns === undefined ? '' : net.netns || undefined;
      const initPath = rec.hostConfig.Init ? await initBinary(this.d.config.shimPath) : undefined;
      const devices = await containerDevices(rec.hostConfig);
      nsHeld = true;
      const ns = await planNamespaces(rec, {
        lookup: (ref) => {
          const l = this.lookup(ref);
          return { rec: l.rec, running: this.isRunning(l) };
        },
        containerDir: (cid) => this.containerDir(cid),
        namespace: (donor, kind) => this.holdNamespace(this.lookup(donor.id), kind, held),
      });
      // AppArmor where the host has it: berth-default is loaded again if something unloaded it.
      const apparmorProfile = this.d.apparmor?.used ? appArmorProfileFor(rec.hostConfig, true) : undefined;
      if (apparmorProfile === DEFAULT_APPARMOR_PROFILE) await this.d.apparmor?.ensureDefault();
      const stagedMounts = await stageSubpaths(rec.mounts ?? [], this.subpathStagingDir(), id);
      staged = stagedMounts;
      const spec = buildSpec({
        ctr: rec, rootfs, user, env, ...files, cgroupsPath: `/${this.cgroupPath(id)}`, netns, initPath,
        mounts: stagedMounts.mounts, devices: devices.nodes, ns, remap, apparmorProfile,
        seccompCacheDir: path.join(this.d.config.execRoot, 'seccomp'),
      });
      await writeFile(path.join(stateDir, 'config.json'), JSON.stringify(spec));
      const cgroupDirs = await this.runtime.createCgroup(this.cgroupPath(id), { ...this.resources(rec.hostConfig), devices: devices.rules });
      cgroupMade = true;
      // The LogConfig create stored (daemon.json's log-opts already merged in for the daemon's driver).
      const logArgs = await shimLogArgs(rec.hostConfig.LogConfig ?? {}, this.logContext(rec));
      const subscribed = live.attachers.size > 0;
      const { conn, pid, shimPid } = await this.runtime.spawn({
        shimPath: this.d.config.shimPath, id, bundle: stateDir, stateDir, logArgs, cgroupDirs, attach: subscribed,
      });
      live.proc = this.host.identify(pid, shimPid) ?? undefined;
      crashPoint('start.after-shim');
      rec.state = {
        ...rec.state, status: 'running', pid, shimPid, exitCode: 0, error: '', startedAt: rfc3339Nano(nowNs()),
        finishedAt: rec.state.hasBeenStarted ? rec.state.finishedAt : '0001-01-01T00:00:00Z', oomKilled: false, hasBeenStarted: true,
      };
      this.save(live);
      crashPoint('start.after-save');
      this.wire(live, conn, subscribed);
      this.emit(live, 'start');
    } catch (e) {
      // Undo what this start made; the container stays as it was, with the error recorded.
      if (cgroupMade) await this.runtime.removeCgroup(this.cgroupPath(id)).catch(() => {});
      if (netMade) await this.d.networks.teardown(rec).catch(() => {});
      if (volumesHeld) await this.unmountVolumes(rec);
      if (nsHeld) await releaseNamespaces(rec, dir).catch(() => {});
      await this.unmountRootfs(live).catch(() => {});
      const msg = e instanceof Error ? e.message : String(e);
      if (e instanceof StartError || e instanceof BerthError) {
        rec.state.error = msg;
        rec.state.exitCode = /not found|no such file/.test(msg) ? 127 : /permission denied/.test(msg) ? 126 : 128;
        this.save(live);
        throw invalid(e instanceof StartError ? `failed to create task for container: ${msg}` : msg);
      }
      throw e;
    } finally {
      live.startHolds = undefined;
      for (const h of held) h.release();
      await staged?.release();
    }
  }

  /** Where subpath mounts are staged during starts (volumes/subpath.ts): outside every directory that is
   *  ever removed recursively. */
  private subpathStagingDir(): string {
    return path.join(this.d.config.execRoot, 'subpaths');
  }

  /** The running container's init process, checked to still be that process; 409 otherwise. */
  processOf(live: Live): ProcessRef {
    const p = live.proc;
    if (!p || !this.isRunning(live) || !this.host.stillSame(p)) throw conflict(`Container ${live.rec.id} is not running`);
    return p;
  }

  /** Holds a namespace of the running container `donor` open for the start of `holder` (a container whose
   *  start is under way, or that start's own list), and gives the path its shim opens it by: the donor's
   *  pid reused meanwhile is never joined instead. The network's container: mode asks for 'net'. */
  holdNamespace(donor: Live, kind: 'pid' | 'ipc' | 'net', holder: Live | HeldNamespace[]): string {
    const list = Array.isArray(holder) ? holder : holder.startHolds;
    if (!list) throw new Error(`namespace of ${donor.rec.id} asked for outside a start`);
    const what = kind === 'net' ? 'network' : kind.toUpperCase();
    const gone = () => conflict(`cannot join ${what} of a non running container: ${donor.rec.id}`);
    const p = runningProcess(this, donor);
    if (!p) throw gone();
    try {
      const h = holdNamespace(p, kind);
      list.push(h);
      return h.path;
    } catch (e) {
      if (e instanceof ProcessGone) throw gone();
      throw e;
    }
  }

  /** Connects a shim's events to the container: output to attachers, exit to the state machine. */
  /** `subscribed`: the shim was started with --attach, so it already sends output on this connection. */
  private wire(live: Live, conn: ShimConnection, subscribed = false): void {
    live.conn = conn;
    conn.on('output', (stream: number, data: Buffer) => {
      for (const a of live.attachers) a.write(stream, data);
    });
    conn.once('exited', (info: ExitInfo) => void this.onExit(live, conn, info).catch((e) => this.d.log.error({ err: e, id: live.rec.id }, 'exit handling failed')));
    conn.once('close', () => {
      if (conn.exitInfo || live.conn !== conn) return;
      // The shim went away without telling: it may have been killed. Read what it left.
      const info = this.runtime.exitStatus(this.stateDir(live.rec.id)) ?? { exitCode: 255, finishedAt: rfc3339Nano(nowNs()) };
      void this.onExit(live, conn, info).catch((e) => this.d.log.error({ err: e, id: live.rec.id }, 'exit handling failed'));
    });
    // Write to the shim only when needed: a container that has already exited (`echo hi`) may have had
    // its shim send everything and shut the socket down, and a write then fails with EPIPE, which makes
    // node destroy the socket before the buffered output and EXITED frames are read (output lost to
    // `docker run`, about 4 runs in 100).
    if (live.attachers.size > 0 && !subscribed) conn.subscribe(true);
    for (const b of live.pendingStdin.splice(0)) conn.stdin(b);
    if (live.pendingStdinClose) {
      live.pendingStdinClose = false;
      conn.closeStdin();
    }
    conn.release();
    this.health.start(live);
  }

  private async onExit(live: Live, conn: ShimConnection, info: ExitInfo): Promise<void> {
    if (live.conn !== conn) return;
    live.conn = undefined;
    live.proc = undefined;
    conn.close();
    this.health.stop(live);
    const rec = live.rec;
    rec.state = { ...rec.state, status: 'exited', pid: 0, shimPid: 0, exitCode: info.exitCode, finishedAt: info.finishedAt, oomKilled: !!info.oomKilled };
    try {
      this.save(live);
    } catch (e) {
      // A full disk (SQLITE_FULL) must not take berthd down: the exit is known here and is written with
      // the next state change; after a restart the shim's exit file tells it again.
      this.d.log.error({ err: e, id: rec.id }, 'could not record the container exit');
    }
    crashPoint('exit.after-save');
    for (const a of live.attachers) a.end();
    live.attachers.clear();
    // The three are independent (the processes are gone): the cgroup, the network (the kernel takes tens
    // of ms to delete a veth) and the file systems are released side by side.
    const settle = Promise.all([
      this.runtime.removeCgroup(this.cgroupPath(rec.id)).catch((e) => this.d.log.warn({ err: e, id: rec.id }, 'cgroup removal failed')),
      this.d.networks.teardown(rec).catch((e) => this.d.log.warn({ err: e, id: rec.id }, 'network teardown failed')),
      (async () => {
        await this.unmountVolumes(rec);
        await releaseNamespaces(rec, this.containerDir(rec.id)).catch((e) => this.d.log.warn({ err: e, id: rec.id }, 'shm unmount failed'));
        await this.unmountRootfs(live).catch((e) => this.d.log.warn({ err: e, id: rec.id }, 'unmount failed'));
      })(),
    ]).then(() => undefined);
    live.settling = settle;
    await settle;
    if (live.settling === settle) live.settling = undefined;
    if (info.oomKilled) this.emit(live, 'oom');
    this.emit(live, 'die', { exitCode: String(info.exitCode) });
    const waiters = live.exitWaiters.splice(0);
    for (const w of waiters) w();
    if (this.restarts.onExit(live)) return;
    if (rec.hostConfig.AutoRemove && !live.removed) {
      await this.remove(rec.id, { force: true }).catch((e) => this.d.log.warn({ err: e, id: rec.id }, 'auto-remove failed'));
    }
  }

  private async unmountRootfs(live: Live): Promise<void> {
    const merged = path.join(this.layerDir(live.rec), 'merged');
    if (live.mounted || this.host.isOwnMount(merged)) await this.runtime.unmount(merged);
    live.mounted = false;
  }

  // ---- signals, stop, wait -----------------------------------------------------------------------

  private isRunning(live: Live): boolean {
    return (live.rec.state.status === 'running' || live.rec.state.status === 'paused') && !!live.conn;
  }

  /** Resolves true when the container has exited, false on timeout (ms < 0: no timeout). */
  waitExit(live: Live, ms: number): Promise<boolean> {
    if (!this.isRunning(live)) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      live.exitWaiters.push(done);
      if (ms >= 0) {
        timer = setTimeout(() => {
          const i = live.exitWaiters.indexOf(done);
          if (i >= 0) live.exitWaiters.splice(i, 1);
          resolve(false);
        }, ms);
      }
    });
  }

  async kill(ref: string, signal?: string): Promise<void> {
    const live = this.lookup(ref);
    const sig = parseSignal(signal, 'SIGKILL');
    this.assertReachable(live);
    if (!this.isRunning(live)) throw conflict(`Cannot kill container: ${ref}: Container ${live.rec.id} is not running`);
    // As Docker: SIGKILL, or the container's stop signal (any signal when none is set), means "stay down":
    // no restart policy applies, and a paused container is thawed so that it can act on the signal.
    const stopSig = live.rec.config.StopSignal ? parseSignal(live.rec.config.StopSignal, 'SIGTERM') : 0;
    const final = sig === 9 || !stopSig || sig === stopSig;
    if (final) this.setManuallyStopped(live, true);
    live.conn!.signal(sig);
    crashPoint('kill.after-signal');
    this.emit(live, 'kill', { signal: String(sig) });
    if (final) await thaw(this, live).catch(() => {});
    if (sig === 9) await this.waitExit(live, 10_000);
  }

  async stop(ref: string, timeoutSec?: number, signal?: string): Promise<void> {
    const live = this.lookup(ref);
    await this.serial(live, async () => {
      if (live.rec.state.status === 'restarting' && !live.conn) {
        // Waiting out a restart back-off: the container stays down.
        this.restarts.cancel(live);
        this.setManuallyStopped(live, true);
        live.rec.state.status = 'exited';
        this.save(live);
        this.emit(live, 'stop');
        return;
      }
      this.assertReachable(live);
      if (!this.isRunning(live)) throw notModified();
      this.setManuallyStopped(live, true);
      await this.stopLive(live, timeoutSec, signal);
    });
  }

  private async stopLive(live: Live, timeoutSec?: number, signal?: string): Promise<void> {
    const sig = parseSignal(signal ?? live.rec.config.StopSignal, 'SIGTERM');
    const t = timeoutSec ?? live.rec.config.StopTimeout ?? 10;
    if (live.conn) {
      live.conn.signal(sig);
      crashPoint('stop.after-signal');
      this.emit(live, 'kill', { signal: String(sig) });
      await thaw(this, live).catch(() => {});
      if (!(await this.waitExit(live, t < 0 ? -1 : t * 1000))) {
        live.conn?.signal(9);
        this.emit(live, 'kill', { signal: '9' });
        await this.waitExit(live, 30_000);
      }
    }
    this.emit(live, 'stop');
  }

  async restart(ref: string, timeoutSec?: number, signal?: string): Promise<void> {
    const live = this.lookup(ref);
    await this.serial(live, async () => {
      this.restarts.cancel(live);
      this.assertReachable(live);
      if (this.isRunning(live)) {
        this.setManuallyStopped(live, true);
        await this.stopLive(live, timeoutSec, signal);
      }
      this.restarts.reset(live);
      this.setManuallyStopped(live, false);
      await this.doStart(live);
      this.emit(live, 'restart');
    });
  }

  /** POST /containers/{id}/wait: resolves with the exit code once the condition holds. */
  async wait(ref: string, condition: string | undefined, aborted: () => boolean): Promise<number> {
    const live = this.lookup(ref);
    const cond = condition || 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw invalid(`invalid condition: "${cond}"`);
    if (cond === 'removed') {
      if (!live.removed) await new Promise<void>((r) => live.removeWaiters.push(r));
      return live.rec.state.exitCode;
    }
    if (cond === 'next-exit' || this.isRunning(live) || live.rec.state.status === 'restarting') {
      await new Promise<void>((r) => live.exitWaiters.push(r));
    }
    void aborted;
    return live.rec.state.exitCode;
  }

  // ---- remove, rename ----------------------------------------------------------------------------

  async remove(ref: string, o: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const live = this.lookup(ref);
    await this.serial(live, async () => {
      if (live.removed) return;
      this.assertReachable(live);
      // A container waiting out its restart back-off counts as running, as in Docker (checked before the
      // pending restart is dropped).
      if (!o.force && (this.isRunning(live) || live.rec.state.status === 'restarting')) {
        throw conflict(`You cannot remove a ${live.rec.state.status} container ${live.rec.id}. Stop the container before attempting removal or force remove`);
      }
      this.restarts.cancel(live);
      if (this.isRunning(live)) {
        live.conn!.signal(9);
        this.emit(live, 'kill', { signal: '9' });
        // A frozen process dies of SIGKILL only once thawed (rm -f of a paused container waited for ever).
        await thaw(this, live).catch(() => {});
        await this.waitExit(live, 30_000);
      }
      await live.settling;
      // Unmounted while the row still names the container (a crash here leaves a stopped container that
      // can be removed again): a stopped container's root is mounted only while a cp or export uses it.
      await this.unmountRootfs(live).catch(() => {});
      crashPoint('rm.after-unmount');
      live.removed = true;
      // The container's row and its endpoint rows go together (a crash between them would leave endpoints,
      // and their addresses, that no container owns), with the mark that its files are still to go.
      this.d.db.transaction(() => {
        this.store.remove(live.rec.id, live.rec.layerId);
        this.d.networks.forget(live.rec.id);
      })();
      this.byId.delete(live.rec.id);
      if (this.byName.get(live.rec.name) === live.rec.id) this.byName.delete(live.rec.name);
      crashPoint('rm.after-row');
      this.d.images.releaseImage(live.rec.imageId);
      // Anonymous volumes go with the container on `rm -v` and `--rm`; named ones stay.
      if (o.volumes || live.rec.hostConfig.AutoRemove) {
        for (const m of live.rec.mounts ?? []) {
          if (m.Type === 'volume' && m.Anonymous && m.Name) {
            await this.d.volumes.remove(m.Name).catch((e) => this.d.log.info({ err: e, volume: m.Name }, 'anonymous volume kept'));
          }
        }
      }
      this.emit(live, 'destroy');
      for (const w of live.removeWaiters.splice(0)) w();
      for (const w of live.exitWaiters.splice(0)) w();
      // The container is gone from the API: its files (the read-write layer can be large, a recursive
      // delete takes as long as it has files) are deleted after the answer, as Docker's rm waits for them
      // and berth's need not. Nothing can reach them any more: ids are never reused and layer dirs are
      // named by a fresh random id.
      this.finishRemoval(live.rec.id, live.rec.layerId);
    });
  }

  /** Deletes a removed container's files, then its pending-removal mark; a failure leaves the mark, which
   *  the next start tries again. */
  private finishRemoval(id: string, layerId: string): Promise<void> {
    const done = (async () => {
      // After the answer has been written (the request's own microtasks come first).
      await new Promise((r) => setImmediate(r));
      crashPoint('rm.before-files');
      await this.removeFiles(id, layerId);
      this.store.removalDone(id);
    })().catch((e) => this.logWarn(e, id, 'deleting the files of a removed container failed; retried at the next start'))
      .finally(() => this.removing.delete(id));
    this.removing.set(id, done);
    return done;
  }

  /** Removals a killed berthd left half done (pending_removals): their files are deleted now. Their
   *  directories are named by no container, so anything still mounted there is unmounted first. */
  private async finishPendingRemovals(): Promise<void> {
    await Promise.all(this.store.pendingRemovals().map(async ({ id, layerId }) => {
      const layer = path.join(this.d.config.dataRoot, 'overlay2', layerId);
      for (const m of this.host.mountsUnder(layer).sort((a, b) => b.length - a.length)) {
        await this.runtime.unmount(m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))).catch(() => {});
      }
      this.d.log.info({ id }, 'finishing the removal of a container');
      await this.finishRemoval(id, layerId);
    }));
  }

  private async removeFiles(id: string, layerId: string): Promise<void> {
    const layer = path.join(this.d.config.dataRoot, 'overlay2', layerId);
    await Promise.all([
      rm(this.containerDir(id), { recursive: true, force: true }),
      rm(this.stateDir(id), { recursive: true, force: true }),
      rm(layer, { recursive: true, force: true }),
      rm(`${layer}-init`, { recursive: true, force: true }),
    ]);
  }

  async rename(ref: string, newName: string): Promise<void> {
    const live = this.lookup(ref);
    const { NAME_RE } = await import('./names');
    if (!newName || !NAME_RE.test(newName)) throw invalid(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const name = newName.startsWith('/') ? newName : `/${newName}`;
    if (name === live.rec.name) throw invalid(`Renaming a container with the same name as its current name`);
    const other = this.byName.get(name);
    if (other) throw conflict(`Error when allocating new name: Conflict. The container name "${name}" is already in use by container "${other}". You have to remove (or rename) that container to be able to reuse that name.`);
    const old = live.rec.name;
    this.store.rename(live.rec.id, name);
    this.byName.delete(old);
    this.byName.set(name, live.rec.id);
    live.rec.name = name;
    this.emit(live, 'rename', { oldName: old });
  }

  // ---- attach ------------------------------------------------------------------------------------

  addAttacher(live: Live, a: Attacher): () => void {
    live.attachers.add(a);
    if (live.attachers.size === 1) live.conn?.subscribe(true);
    return () => {
      if (live.attachers.delete(a) && live.attachers.size === 0) live.conn?.subscribe(false);
    };
  }

  sendStdin(live: Live, data: Buffer): void {
    if (live.conn) live.conn.stdin(data);
    else if (live.rec.state.status === 'created') live.pendingStdin.push(data);
  }

  closeStdin(live: Live): void {
    if (live.conn) live.conn.closeStdin();
    else if (live.rec.state.status === 'created') live.pendingStdinClose = true;
  }

  resize(ref: string, rows: number, cols: number): void {
    const live = this.lookup(ref);
    if (!this.isRunning(live)) throw conflict(`Container ${live.rec.id} is not running`);
    live.conn!.resize(rows, cols);
  }

  emitAttach(live: Live): void {
    this.emit(live, 'attach');
  }

  // ---- restore after a berthd start -----------------------------------------------------------------

  /** `liveRestore` false (daemon.json "live-restore": false): a container found running is not adopted but
   *  killed, as dockerd without live-restore does after a crash; its restart policy then applies. */
  async restore(liveRestore = true): Promise<void> {
    this.d.log.info({ resolver: inRootResolver() }, 'files in containers are reached beneath their roots');
    for (const rec of this.store.all()) {
      const live = newLive(rec);
      this.byId.set(rec.id, live);
      this.byName.set(rec.name, rec.id);
    }
    // One read of the mount table for all containers (isMounted per container reads it whole each time,
    // quadratic with hundreds of running containers).
    const mountedNow = new Set(this.host.mountsUnder(path.join(this.d.config.dataRoot, 'overlay2')));
    await Promise.all(this.all().map(async (live) => {
      const st = live.rec.state;
      const sd = this.stateDir(live.rec.id);
      if (st.status !== 'running' && st.status !== 'paused' && st.status !== 'restarting') {
        if (!this.runtime.shimAlive(sd, live.rec.id)) return;
        // berthd died between the shim's STARTED and saving the start: the container runs whatever the row
        // says. Adopted as running, so that nothing of it (netns, veth, state dir) is swept or reused.
        const pids = this.runtime.shimPids(sd);
        live.rec.state = {
          ...st, status: 'running', pid: pids?.pid ?? 0, shimPid: pids?.shimPid ?? 0, exitCode: 0, error: '',
          startedAt: rfc3339Nano(nowNs()), finishedAt: st.hasBeenStarted ? st.finishedAt : '0001-01-01T00:00:00Z', oomKilled: false, hasBeenStarted: true,
        };
        this.save(live);
        this.d.log.warn({ id: live.rec.id, pid: live.rec.state.pid }, 'adopted a container whose start berthd did not live to record');
      }
      live.mounted = mountedNow.has(escapeMountPath(path.join(this.layerDir(live.rec), 'merged')));
      let conn = await this.runtime.connect(sd);
      for (let i = 0; !conn && i < 20 && this.runtime.shimAlive(sd, live.rec.id); i++) {
        await new Promise((r) => setTimeout(r, 100));
        conn = await this.runtime.connect(sd);
      }
      if (conn) return this.adopt(live, conn, liveRestore);
      if (this.runtime.shimAlive(sd, live.rec.id)) {
        // Alive but not answering (a loaded host, a stopped shim): never declared dead, since removing its
        // cgroup would kill a running container. It stays running, is reported, and is tried again.
        this.unreachable.set(live.rec.id, Date.now());
        this.d.log.warn({ id: live.rec.id, shimPid: live.rec.state.shimPid }, 'the container supervisor does not answer; keeping the container and retrying');
        this.retryConnect(live, liveRestore);
        return;
      }
      await this.exitedWhileDown(live);
    }));
    await this.sweepStoppedMounts();
    await this.sweepCgroups();
    await this.finishPendingRemovals();
    await this.sweepOrphans();
    await sweepStaging(this.subpathStagingDir());
    // Restart policies apply again: containers that were stopped when berthd went down (or that exited
    // meanwhile and were not restarted above) and whose policy wants them running.
    for (const live of this.all()) {
      if (!this.restarts.wantsStartAfterDaemonStart(live)) continue;
      this.d.log.info({ id: live.rec.id }, 'starting container by its restart policy');
      this.start(live.rec.id).catch((e) => this.logWarn(e, live.rec.id, 'restart by policy failed'));
    }
  }

  /** A reached shim after a berthd start: wired, or (live-restore off) its container killed. */
  private async adopt(live: Live, conn: ShimConnection, liveRestore: boolean): Promise<void> {
    this.unreachable.delete(live.rec.id);
    live.proc = this.host.identify(live.rec.state.pid, live.rec.state.shimPid) ?? undefined;
    this.wire(live, conn);
    if (liveRestore) {
      this.d.log.info({ id: live.rec.id }, 're-attached to running container');
      return;
    }
    this.d.log.info({ id: live.rec.id }, 'live-restore is off: killing the container found running');
    await thaw(this, live).catch(() => {});
    live.conn?.signal(9);
    this.emit(live, 'kill', { signal: '9' });
    await this.waitExit(live, 10_000);
  }

  /** The shim is gone: its exit file tells how the container ended. */
  private async exitedWhileDown(live: Live): Promise<void> {
    this.unreachable.delete(live.rec.id);
    const info = this.runtime.exitStatus(this.stateDir(live.rec.id)) ?? { exitCode: 255, finishedAt: rfc3339Nano(nowNs()) };
    this.d.log.info({ id: live.rec.id, exitCode: info.exitCode }, 'container exited while berthd was down');
    const fake = { close() {} } as unknown as ShimConnection;
    live.conn = fake;
    await this.onExit(live, fake, info);
  }

  /** Tries an unanswering shim again with a bounded back-off (0.2 s doubling to 5 s) until it answers or its
   *  process is gone. */
  private retryConnect(live: Live, liveRestore: boolean, delay = 200): void {
    const t = setTimeout(() => {
      void (async () => {
        if (live.removed || !this.unreachable.has(live.rec.id)) return;
        const sd = this.stateDir(live.rec.id);
        const conn = await this.runtime.connect(sd);
        if (conn) {
          this.d.log.info({ id: live.rec.id }, 'the container supervisor answers again');
          return this.adopt(live, conn, liveRestore);
        }
        if (!this.runtime.shimAlive(sd, live.rec.id)) return this.exitedWhileDown(live);
        this.retryConnect(live, liveRestore, Math.min(delay * 2, 5000));
      })().catch((e) => this.logWarn(e, live.rec.id, 'reconnecting to the container supervisor failed'));
    }, delay);
    t.unref();
  }

  /** For docker info: containers whose supervisor does not answer (kept running, retried). */
  warnings(): string[] {
    return [...this.unreachable.keys()].map((id) => {
      const l = this.byId.get(id);
      return `WARNING: container ${l ? l.rec.name.slice(1) : id} (${id.slice(0, 12)}): its supervisor berth-shim (pid ${l?.rec.state.shimPid ?? '?'}) does not answer; the container is kept running and berthd keeps trying to reach it`;
    });
  }

  /** Refuses what needs the shim of a container that runs without an answering shim. */
  private assertReachable(live: Live): void {
    if (this.unreachable.has(live.rec.id)) {
      throw conflict(`container ${live.rec.id} is running but its supervisor (berth-shim pid ${live.rec.state.shimPid}) does not answer yet; try again later`);
    }
  }

  /** Cgroups under the parent that no running container owns: a crash between recording an exit (or a
   *  removal) and removing the cgroup leaves one behind. */
  private async sweepCgroups(): Promise<void> {
    const { readdir } = await import('node:fs/promises');
    const cg = this.runtime.cgroups;
    const roots = [...new Set([...Object.values(cg.controllers), cg.unified].filter(Boolean))];
    const names = new Set<string>();
    for (const r of roots) {
      for (const e of await readdir(path.join(r, this.d.config.cgroupParent), { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory() && /^[0-9a-f]{64}$/.test(e.name)) names.add(e.name);
      }
    }
    // Containers with a CgroupParent of their own (pods under the kubelet) live elsewhere.
    for (const live of this.all()) {
      if (!live.rec.hostConfig.CgroupParent || this.isRunningId(live.rec.id)) continue;
      let rel = '';
      try { rel = this.cgroupPath(live.rec.id); } catch { continue; }
      if (roots.some((r) => existsSync(path.join(r, rel)))) names.add(live.rec.id);
    }
    for (const id of names) {
      if (this.isRunningId(id)) continue;
      await this.runtime.removeCgroup(this.cgroupPath(id))
        .then(() => this.d.log.info({ id }, 'removed the cgroup of a container that is not running'))
        .catch((e) => this.logWarn(e, id, 'could not remove a leftover cgroup'));
    }
  }

  /** Mounts left by containers that are not running (one that exited while berthd was down, or a crash
   *  between recording an exit and unmounting): the overlay root, image mounts, shm and binds under its
   *  directories. A later start would stack a second overlay on the same upper and work directories. */
  private async sweepStoppedMounts(): Promise<void> {
    // The mount table read once (per container it was quadratic: a thousand running containers have
    // thousands of mounts); it is filtered below per stopped container.
    const table = this.host.mountPoints();
    for (const live of this.all()) {
      if (this.isRunningId(live.rec.id)) continue;
      const dirs = [this.layerDir(live.rec), this.containerDir(live.rec.id), ...(live.rec.mounts ?? []).filter((m) => m.Type === 'image' && m.Source).map((m) => m.Source)]
        .map(escapeMountPath);
      // Deepest first, so that a mount is never taken down from under another.
      const points = [...new Set(table.filter((m) => dirs.some((d) => m === d || m.startsWith(`${d}/`))))].sort((a, b) => b.length - a.length);
      for (const p of points) {
        const target = p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
        await this.runtime.unmount(target)
          .then(() => this.d.log.info({ id: live.rec.id, mount: target }, 'unmounted what a stopped container left mounted'))
          .catch((e) => this.logWarn(e, live.rec.id, `could not unmount ${target}`));
      }
      live.mounted = false;
    }
  }

  /** A restart policy's restart: starts again unless someone stopped or removed the container meanwhile. */
  async policyStart(live: Live): Promise<void> {
    await this.serial(live, async () => {
      if (live.removed || live.rec.state.status !== 'restarting' || live.conn) return;
      crashPoint('policy-restart.before-start');
      try {
        await this.doStart(live);
      } catch (e) {
        live.rec.state.status = 'exited';
        this.save(live);
        throw e;
      }
    });
  }

  setManuallyStopped(live: Live, v: boolean): void {
    if (!!live.rec.manuallyStopped === v) return;
    live.rec.manuallyStopped = v;
    if (!live.removed) this.store.setManuallyStopped(live.rec.id, v);
  }

  /** Runs fn with the container's merged root filesystem at hand. A stopped container's is mounted for the
   *  call and unmounted after it, under the container's lock so that a start cannot race. `mounts` (docker
   *  cp): with the container's volumes and binds where it sees them; without (the builder's COPY), the
   *  container's own layer only, as Docker's classic builder writes it. */
  async withRootfs<T>(live: Live, fn: (root: string, owner?: ProcessRef) => Promise<T>, o: { mounts?: boolean } = {}): Promise<T> {
    const merged = path.join(this.layerDir(live.rec), 'merged');
    // A running container with volumes or binds: its root as its own processes see it, mounts included;
    // whoever opens it checks that the pid is still the container's process (`owner`).
    if (o.mounts && this.isRunning(live) && live.rec.mounts?.length && live.rec.state.pid > 0) {
      const owner = this.processOf(live);
      return fn(`/proc/${owner.pid}/root`, owner);
    }
    if (this.isRunning(live) && this.host.isOwnMount(merged)) return fn(merged);
    return this.serial(live, async () => {
      if (live.removed) throw notFound(`No such container: ${live.rec.id}`);
      const wasMounted = live.mounted && this.host.isOwnMount(merged);
      const root = await this.mountRootfs(live);
      let unbind: (() => Promise<void>) | undefined;
      try {
        // Its volumes and binds too, where the container would see them.
        if (o.mounts && live.rec.mounts?.length && !this.isRunning(live)) unbind = await bindMountsInto(root, live.rec.mounts);
        return await fn(root);
      } finally {
        await unbind?.();
        if (!wasMounted && !this.isRunning(live)) await this.unmountRootfs(live).catch(() => {});
      }
    });
  }

  /** docker update: the stored HostConfig is replaced (the caller has applied it to the cgroup). */
  saveHostConfig(live: Live, hostConfig: ContainerRecord['hostConfig']): void {
    this.store.saveHostConfig(live.rec.id, hostConfig);
    live.rec.hostConfig = hostConfig;
  }

  logWarn(err: unknown, id: string, msg: string): void {
    this.d.log.warn({ err, id }, msg);
  }

  /** Container directories no row names (a crash during create, or in rm between the row and the files):
   *  the container's dirs, its read-write and init layers under overlay2 (told apart from image layers by
   *  the layers table), each unmounted first and left alone if that fails. */
  private async sweepOrphans(): Promise<void> {
    const { readdir } = await import('node:fs/promises');
    const known = new Set(this.byId.keys());
    const gone = async (p: string) => {
      for (const m of this.host.mountsUnder(p).sort((a, b) => b.length - a.length)) {
        await this.runtime.unmount(m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))).catch(() => {});
      }
      if (this.host.mountsUnder(p).length) return this.d.log.warn({ dir: p }, 'an orphaned container directory is still mounted; left in place');
      await rm(p, { recursive: true, force: true });
      this.d.log.info({ dir: p }, 'removed an orphaned container directory');
    };
    const dir = path.join(this.d.config.dataRoot, 'containers');
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!known.has(name)) await gone(path.join(dir, name));
    }
    // Endpoint rows of containers that are gone (a crash in an rm made before rows went together).
    const ownerless = new Set(this.d.networks.all().flatMap((n) => this.d.networks.endpointsOf(n.id)).map((e) => e.containerId).filter((id) => !known.has(id)));
    for (const id of ownerless) {
      this.d.networks.forget(id);
      this.d.log.info({ id }, 'removed the endpoints of a container that is gone');
    }
    const layers = new Set([...this.d.images.layers.all().map((l) => l.cacheId), ...this.containerLayerIds()]);
    const overlay = path.join(this.d.config.dataRoot, 'overlay2');
    for (const name of await readdir(overlay).catch(() => [] as string[])) {
      if (/^[0-9a-f]{64}(-init)?$/.test(name) && !layers.has(name)) await gone(path.join(overlay, name));
    }
    const execDir = path.join(this.d.config.execRoot, 'containers');
    for (const name of await readdir(execDir).catch(() => [] as string[])) {
      if (!known.has(name)) await rm(path.join(execDir, name), { recursive: true, force: true });
    }
  }

  /** Layer directories of containers (overlay2/<layerId> and -init): the image store must leave them. */
  containerLayerIds(): Set<string> {
    const s = new Set<string>();
    for (const l of this.byId.values()) {
      s.add(l.rec.layerId);
      s.add(`${l.rec.layerId}-init`);
    }
    return s;
  }

  /** berthd is stopping with live-restore off: every running container is stopped with its stop signal and
   *  timeout (at most `shutdownTimeout` seconds, -1 for no limit), all at once. They are not marked as stopped
   *  by the user, so that restart policies always/unless-stopped start them again at the next start. */
  async stopAllForShutdown(shutdownTimeout: number): Promise<void> {
    await Promise.all(this.all().filter((l) => this.isRunning(l)).map(async (live) => {
      this.restarts.cancel(live);
      live.shuttingDown = true;
      const own = live.rec.config.StopTimeout ?? 10;
      const t = shutdownTimeout < 0 ? own : own < 0 ? shutdownTimeout : Math.min(own, shutdownTimeout);
      await this.stopLive(live, t).catch((e) => this.logWarn(e, live.rec.id, 'stop at shutdown failed'));
    }));
  }

  /** berthd is stopping: drop the shim connections; the containers keep running. Deletions of removed
   *  containers' files still under way are finished first (else the next start does them). */
  async detachAll(): Promise<void> {
    await Promise.all(this.removing.values());
    for (const l of this.byId.values()) {
      const c = l.conn;
      l.conn = undefined;
      c?.close();
    }
  }
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

function containerEnv(rec: ContainerRecord, home: string): string[] {
  const env: string[] = [...(rec.config.Env ?? [])];
  const has = (k: string) => env.some((e) => e.startsWith(`${k}=`));
  if (!has('PATH')) env.unshift('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  if (!has('HOSTNAME')) env.push(`HOSTNAME=${rec.config.Hostname}`);
  if (!has('HOME')) env.push(`HOME=${home || '/'}`);
  if (rec.config.Tty && !has('TERM')) env.push('TERM=xterm');
  return env;
}


