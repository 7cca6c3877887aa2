// In-memory fakes of what the container service uses of the other services (daemon/containers/deps.ts):
// networks, volumes, images, events and the healthcheck probe. Each keeps just enough state to answer as
// the real service does (Docker's 404s included) and writes what it was asked to a shared journal, so
// that a test can check the order of steps across seams.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { notFound, conflict } from '../../daemon/errors/errors';
import type { ContainerRecord } from '../../daemon/containers/model';
import type { ImageRecord } from '../../daemon/images/model';
import type {
  ContainerImages, ContainerNetworking, ContainerVolumes, EndpointConfig, EventSink, NetSetup, RunProbe,
} from '../../daemon/containers/deps';
import type { Live } from '../../daemon/containers/service';
import type { DB } from '../../daemon/state/db';

/** Networks by name; a container gets one endpoint on its NetworkMode's network at create. */
export class FakeNetworks implements ContainerNetworking {
  readonly networks = new Map<string, { id: string; name: string }>();
  readonly endpoints: Array<{ networkId: string; containerId: string }> = [];
  /** Containers whose namespace is set up now (setup done, teardown not yet). */
  readonly up = new Set<string>();

  constructor(readonly journal: string[] = []) {
    for (const n of ['bridge', 'host', 'none']) this.networks.set(n, { id: `net-${n}`, name: n });
  }

  validateCreate(rec: ContainerRecord, _ep: Record<string, EndpointConfig> | undefined): void {
    if (!rec.hostConfig.NetworkMode || rec.hostConfig.NetworkMode === 'default') rec.hostConfig.NetworkMode = 'bridge';
    const mode: string = rec.hostConfig.NetworkMode;
    if (mode.startsWith('container:')) return;
    if (!this.networks.has(mode)) throw notFound(`network ${mode} not found`);
  }

  recordCreate(rec: ContainerRecord): void {
    const n = this.networks.get(rec.hostConfig.NetworkMode);
    if (n && n.name !== 'host' && n.name !== 'none') this.endpoints.push({ networkId: n.id, containerId: rec.id });
  }

  /** Resolves once the container's network changes have been made (the fake makes them at once). */
  async settled(): Promise<void> {}

  linkEnvironment(): string[] {
    return [];
  }

  async setup(rec: ContainerRecord): Promise<NetSetup> {
    if (this.up.has(rec.id)) throw new Error(`network of ${rec.id} set up twice`);
    this.up.add(rec.id);
    this.journal.push(`net-setup ${rec.id}`);
    const host = rec.hostConfig.NetworkMode === 'host';
    return {
      netns: host ? undefined : '',
      hosts: `127.0.0.1\tlocalhost\n`,
      resolvConf: 'nameserver 127.0.0.11\n',
    };
  }

  async teardown(rec: ContainerRecord): Promise<void> {
    this.up.delete(rec.id);
    this.journal.push(`net-teardown ${rec.id}`);
  }

  forget(containerId: string): void {
    for (let i = this.endpoints.length - 1; i >= 0; i--) if (this.endpoints[i].containerId === containerId) this.endpoints.splice(i, 1);
    this.journal.push(`net-forget ${containerId}`);
  }

  all(): Array<{ id: string }> {
    return [...this.networks.values()];
  }

  endpointsOf(networkId: string): Array<{ containerId: string }> {
    return this.endpoints.filter((e) => e.networkId === networkId);
  }

  settings(rec: ContainerRecord, running: boolean): Record<string, unknown> {
    return { Networks: Object.fromEntries(this.endpoints.filter((e) => e.containerId === rec.id).map((e) => [e.networkId.slice(4), { IPAddress: running ? '172.17.0.2' : '' }])) };
  }

  portList(): Array<Record<string, unknown>> {
    return [];
  }
}

/** Local volumes: a directory each under `root`, in use while a running container holds them. */
export class FakeVolumes implements ContainerVolumes {
  readonly volumes = new Map<string, { name: string; anonymous: boolean; held: number }>();
  private seq = 0;

  constructor(private readonly root: string, readonly journal: string[] = []) {}

  has(name: string): boolean {
    return this.volumes.has(name);
  }

  async create(o: { Name?: string }, anonymous = false): Promise<{ name: string; anonymous: boolean }> {
    const name = o.Name || `anon${String(++this.seq).padStart(60, '0')}`;
    const v = this.volumes.get(name) ?? { name, anonymous, held: 0 };
    this.volumes.set(name, v);
    mkdirSync(this.dataPath(name), { recursive: true });
    return { name: v.name, anonymous: v.anonymous };
  }

  dataPath(name: string): string {
    return path.join(this.root, name, '_data');
  }

  async remove(name: string, force = false): Promise<void> {
    const v = this.volumes.get(name);
    if (!v) throw notFound(`get ${name}: no such volume`);
    if (v.held > 0 && !force) throw conflict(`remove ${name}: volume is in use`);
    this.volumes.delete(name);
    this.journal.push(`volume-remove ${name}`);
  }

  async acquire(name: string): Promise<void> {
    const v = this.volumes.get(name);
    if (!v) throw notFound(`get ${name}: no such volume`);
    v.held++;
  }

  async release(name: string): Promise<void> {
    const v = this.volumes.get(name);
    if (v && v.held > 0) v.held--;
  }
}

/** Images by id and by name; each has one layer directory under `root`, and a row in the images table
 *  (containers rows reference it). */
export class FakeImages implements ContainerImages {
  readonly images = new Map<string, ImageRecord>();
  private readonly names = new Map<string, string>();
  readonly released: string[] = [];
  readonly layers = { all: (): Array<{ cacheId: string }> => [...this.images.values()].map((i) => ({ cacheId: i.id.slice(7) })) };

  constructor(private readonly root: string, private readonly db: DB) {}

  /** An image `name` (e.g. "busybox:latest", also found as "busybox") with the given config. */
  add(name: string, config: Record<string, unknown>): ImageRecord {
    const id = `sha256:${String(this.images.size + 1).padStart(64, 'a')}`;
    const img: ImageRecord = { id, config: { config }, size: 0, created: '2026-01-01T00:00:00Z', topChain: null, parent: '', lastTagTime: '' };
    this.images.set(id, img);
    this.db.prepare('INSERT INTO images (id, config, top_chain, size, created, loaded_at) VALUES (?, ?, NULL, 0, ?, ?)')
      .run(id, JSON.stringify(img.config), img.created, img.created);
    this.names.set(name, id);
    if (name.endsWith(':latest')) this.names.set(name.slice(0, -':latest'.length), id);
    mkdirSync(path.join(this.root, id.slice(7), 'diff'), { recursive: true });
    return img;
  }

  get(ref: string): ImageRecord {
    const img = this.images.get(ref) ?? this.images.get(this.names.get(ref) ?? '');
    if (!img) throw notFound(`No such image: ${ref}`);
    return img;
  }

  lowerDirs(img: ImageRecord): string[] {
    return [path.join(this.root, img.id.slice(7), 'diff')];
  }

  releaseImage(imageId: string): void {
    this.released.push(imageId);
  }
}

/** Events as GET /events would show them, kept in order. */
export class RecordingEvents implements EventSink {
  readonly events: Array<{ type: string; action: string; id: string; attributes: Record<string, string> }> = [];

  constructor(readonly journal: string[] = []) {}

  emit(type: string, action: string, id: string, attributes: Record<string, string> = {}): void {
    this.events.push({ type, action, id, attributes });
    this.journal.push(`event ${type} ${action}`);
  }

  /** The actions of `id`'s events, in order. */
  actions(id: string): string[] {
    return this.events.filter((e) => e.id === id).map((e) => e.action);
  }
}

/**
 * The healthcheck probe: answers from a script of results, one per run (the last one repeats), and
 * counts its runs. A result of 'hang' never resolves before the probe's timeout, as a stuck command.
 */
export class ScriptedProbe {
  runs = 0;
  private script: Array<number | 'hang'> = [0];
  /** Called at the start of each run: what the container looked like before it (the results of the
   *  runs before), so that a test sees every intermediate state without racing the timer. */
  observe: ((live: Live) => void) | undefined;

  set(results: Array<number | 'hang'>): void {
    this.script = results;
  }

  readonly run: RunProbe = async (live: Live, _cmd: string[], timeoutMs: number) => {
    this.observe?.(live);
    const r = this.script[Math.min(this.runs, this.script.length - 1)];
    this.runs++;
    if (r === 'hang') {
      await new Promise((res) => setTimeout(res, timeoutMs));
      return { exitCode: -2, output: '' };
    }
    return { exitCode: r, output: `probe ${this.runs}: exit ${r}\n` };
  };
}
