// The container service: owns the containers and container_state tables, the container directories,
// and the live connections to every running container's shim. It is the facade the routes and the other
// services use: lookup and the state every verb shares are here; each verb lives in a file of its own
// (create-container.ts, start.ts, stop.ts, kill.ts, wait.ts, remove.ts, rename.ts, stdio.ts, restore.ts,
// with mounts.ts and monitor.ts under them), as functions of this service.
import path from 'node:path';
import type { ContainerDeps } from './deps';
import { conflict, notFound, BerthError } from '../errors/errors';
import { logReadPath, type LogContext } from '../logs';
import { isFullId } from '../lib/ids';
import type { ContainerRuntime, CgroupResources, HostTools } from '../runtime/types';
import { ContainerStore } from './store';
import type { ContainerRecord } from './model';
import { hostHasFile, type HasFile } from './resources';
import type { CreateBody } from './create';
import { RestartPolicies } from './restart';
import { HealthMonitors } from './health';
import { holdNamespace, ProcessGone, type ProcessRef, type HeldNamespace } from '../runtime/process';
import type { MountDefaults } from '../volumes/mounts';
import { hostTools } from '../runtime/host-tools';
import type { Remap } from '../runtime/userns';
import { create } from './create-container';
import { withRootfs } from './mounts';
import { start, resources, policyStart } from './start';
import { kill } from './kill';
import { stop, restart, stopAllForShutdown } from './stop';
import { waitExit, wait } from './wait';
import { remove } from './remove';
import { rename } from './rename';
import { addAttacher, sendStdin, closeStdin, resize, emitAttach } from './stdio';
import { restore, detachAll } from './restore';
import { type Live, runningProcess, type Attacher } from './live';

export type { Live, Attacher } from './live';

export class ContainerService {
  /** Which cgroup files this host offers containers (read when a setting asks, not per start). */
  get hasCgroupFile(): HasFile {
    return (this.hasFileCache ??= hostHasFile(this.runtime.cgroups));
  }
  private hasFileCache: HasFile | undefined;
  readonly restarts: RestartPolicies;
  readonly health: HealthMonitors;
  // The state below is read and changed by the verb files of this directory only (TypeScript has no
  // package-private members); everything else goes through the methods.
  readonly store: ContainerStore;
  readonly byId = new Map<string, Live>();
  readonly byName = new Map<string, string>(); // "/name" → id
  /** Running containers whose shim is alive but did not answer at restore (id → since when). */
  readonly unreachable = new Map<string, number>();
  /** Removed containers whose files are being deleted (after rm answered), by id. */
  readonly removing = new Map<string, Promise<void>>();

  /** `d`: the other services and settings, each as the narrow interface this one uses (deps.ts);
   *  `runtime`: the shims, cgroups and mounts (runtime/types.ts); `host`: the mount table and /proc. */
  constructor(readonly d: ContainerDeps, readonly runtime: ContainerRuntime, readonly host: HostTools = hostTools) {
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

  // ---- start -------------------------------------------------------------------------------------

  /** The daemon's --userns-remap when this container uses it (not `--userns host`). */
  remapOf(rec: ContainerRecord): Remap | undefined {
    return this.d.remap && rec.hostConfig.UsernsMode !== 'host' ? this.d.remap : undefined;
  }

  /** Where subpath mounts are staged during starts (volumes/subpath.ts): outside every directory that is
   *  ever removed recursively. */
  subpathStagingDir(): string {
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
  holdNamespace(donor: Live, kind: 'pid' | 'ipc' | 'net' | 'user', holder: Live | HeldNamespace[]): string {
    const list = Array.isArray(holder) ? holder : holder.startHolds;
    if (!list) throw new Error(`namespace of ${donor.rec.id} asked for outside a start`);
    const what = kind === 'net' ? 'network' : kind === 'user' ? 'user' : kind.toUpperCase();
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

  // ---- signals, stop, wait -----------------------------------------------------------------------

  isRunning(live: Live): boolean {
    return (live.rec.state.status === 'running' || live.rec.state.status === 'paused') && !!live.conn;
  }

  // ---- attach ------------------------------------------------------------------------------------

  // ---- restore after a berthd start -----------------------------------------------------------------

  /** For docker info: containers whose supervisor does not answer (kept running, retried). */
  warnings(): string[] {
    return [...this.unreachable.keys()].map((id) => {
      const l = this.byId.get(id);
      return `WARNING: container ${l ? l.rec.name.slice(1) : id} (${id.slice(0, 12)}): its supervisor berth-shim (pid ${l?.rec.state.shimPid ?? '?'}) does not answer; the container is kept running and berthd keeps trying to reach it`;
    });
  }

  /** Refuses what needs the shim of a container that runs without an answering shim. */
  assertReachable(live: Live): void {
    if (this.unreachable.has(live.rec.id)) {
      throw conflict(`container ${live.rec.id} is running but its supervisor (berth-shim pid ${live.rec.state.shimPid}) does not answer yet; try again later`);
    }
  }

  setManuallyStopped(live: Live, v: boolean): void {
    if (!!live.rec.manuallyStopped === v) return;
    live.rec.manuallyStopped = v;
    if (!live.removed) this.store.setManuallyStopped(live.rec.id, v);
  }

  /** docker update: the stored HostConfig is replaced (the caller has applied it to the cgroup). */
  saveHostConfig(live: Live, hostConfig: ContainerRecord['hostConfig']): void {
    this.store.saveHostConfig(live.rec.id, hostConfig);
    live.rec.hostConfig = hostConfig;
  }

  logWarn(err: unknown, id: string, msg: string): void {
    this.d.log.warn({ err, id }, msg);
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

  // ---- the verbs, one file each (create-container.ts, start.ts, stop.ts, ...) -------------------------

  create(nameParam: string | undefined, body: CreateBody, mountDefaults: MountDefaults = {}): Promise<{ Id: string; Warnings: string[] }> { return create(this, nameParam, body, mountDefaults); }
  withRootfs<T>(live: Live, fn: (root: string, owner?: ProcessRef) => Promise<T>, o: { mounts?: boolean } = {}): Promise<T> { return withRootfs(this, live, fn, o); }
  start(ref: string): Promise<void> { return start(this, ref); }
  resources(hc: ContainerRecord['hostConfig']): CgroupResources { return resources(this, hc); }
  policyStart(live: Live): Promise<void> { return policyStart(this, live); }
  kill(ref: string, signal?: string): Promise<void> { return kill(this, ref, signal); }
  stop(ref: string, timeoutSec?: number, signal?: string): Promise<void> { return stop(this, ref, timeoutSec, signal); }
  restart(ref: string, timeoutSec?: number, signal?: string): Promise<void> { return restart(this, ref, timeoutSec, signal); }
  stopAllForShutdown(shutdownTimeout: number): Promise<void> { return stopAllForShutdown(this, shutdownTimeout); }
  waitExit(live: Live, ms: number): Promise<boolean> { return waitExit(this, live, ms); }
  wait(ref: string, condition: string | undefined, aborted: () => boolean): Promise<number> { return wait(this, ref, condition, aborted); }
  remove(ref: string, o: { force?: boolean; volumes?: boolean } = {}): Promise<void> { return remove(this, ref, o); }
  rename(ref: string, newName: string): Promise<void> { return rename(this, ref, newName); }
  addAttacher(live: Live, a: Attacher): () => void { return addAttacher(this, live, a); }
  sendStdin(live: Live, data: Buffer): void { return sendStdin(this, live, data); }
  closeStdin(live: Live): void { return closeStdin(this, live); }
  resize(ref: string, rows: number, cols: number): void { return resize(this, ref, rows, cols); }
  emitAttach(live: Live): void { return emitAttach(this, live); }
  restore(liveRestore = true): Promise<void> { return restore(this, liveRestore); }
  detachAll(): Promise<void> { return detachAll(this); }
}
