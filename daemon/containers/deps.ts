// What the container service needs from the rest of berthd, each as the narrow interface it uses: the
// other services are reached through these and nothing else (daemon.ts wires the real ones; the unit tests
// wire the fakes of test/fakes/). The runtime, the other seam, is runtime/types.ts's ContainerRuntime.
import type { Remap } from '../runtime/userns';
import type { AppArmor } from './apparmor';
import type { Logger } from 'pino';
import type { Config } from '../config/config';
import type { DB } from '../state/db';
import type { ContainerRecord } from './model';
import type { ImageRecord } from '../images/model';
import type { NetSetup, EndpointConfig } from '../network/service';
import type { RunProbe } from './health';

export type { NetSetup, EndpointConfig, RunProbe };

/** The daemon settings the container service reads. */
export type ContainerConfig = Pick<Config,
  'dataRoot' | 'execRoot' | 'shimPath' | 'cgroupParent' | 'logDriver' | 'logOpts'
  | 'defaultCgroupnsMode' | 'defaultIpcMode' | 'defaultShmSize' | 'defaultUlimits'>;

/** GET /events: who publishes does not wait for who listens. */
export interface EventSink {
  emit(type: string, action: string, id: string, attributes?: Record<string, string>): void;
}

/** The images a container is made from and runs on. */
export interface ContainerImages {
  /** By id, name or digest, hidden images (rmi -f of an image in use) included; 404 otherwise. */
  get(ref: string): ImageRecord;
  /** The image's layer directories for an overlay, topmost first. */
  lowerDirs(img: ImageRecord): string[];
  /** A container of the image is gone: a hidden image whose last container it was goes too. */
  releaseImage(imageId: string): void;
  /** Image layers (their cacheId is their overlay2 directory): the orphan sweep leaves them alone. */
  readonly layers: { all(): Array<{ cacheId: string }> };
}

/** The container's side of the network service: endpoints at create, the namespace at start. */
export interface ContainerNetworking {
  /** Checks NetworkMode and the endpoints asked for (400/404 in Docker's words); sets the default mode. */
  validateCreate(rec: ContainerRecord, epConfigs: Record<string, EndpointConfig> | undefined): void;
  /** Writes the container's endpoint rows (called inside the create, after its row). */
  recordCreate(rec: ContainerRecord, epConfigs: Record<string, EndpointConfig> | undefined): void;
  /** The legacy --link environment variables of a container about to start. */
  linkEnvironment(rec: ContainerRecord): string[];
  /** The container's namespace and endpoints, and its /etc/hosts and resolv.conf contents. */
  setup(rec: ContainerRecord): Promise<NetSetup>;
  /** Undoes setup() (the container exited, or its start failed). */
  teardown(rec: ContainerRecord): Promise<void>;
  /** Drops a removed container's endpoint rows (inside the removal's transaction). */
  forget(containerId: string): void;
  all(): Array<{ id: string }>;
  endpointsOf(networkId: string): Array<{ containerId: string }>;
  /** Inspect's NetworkSettings (addresses only while `running`). */
  settings(rec: ContainerRecord, running: boolean): Record<string, unknown>;
  /** The list view's Ports. */
  portList(rec: ContainerRecord, running: boolean): Array<Record<string, unknown>>;
}

/** Named and anonymous volumes as containers use them. */
export interface ContainerVolumes {
  has(name: string): boolean;
  /** Makes a volume (or returns the existing one of that name); `anonymous` names it. */
  create(o: { Name?: string; DriverOpts?: Record<string, string> | null; Labels?: Record<string, string> | null }, anonymous?: boolean): Promise<{ name: string; anonymous: boolean }>;
  /** The directory a container mounts. */
  dataPath(name: string): string;
  /** 409 when a container uses it, unless `force`. */
  remove(name: string, force?: boolean): Promise<void>;
  /** A starting container mounts it (driver options mounted on first use) … */
  acquire(name: string): Promise<void>;
  /** … and lets it go when it exits. */
  release(name: string): Promise<void>;
}

/** Everything ContainerService is given at construction (besides the runtime). */
export interface ContainerDeps {
  readonly config: ContainerConfig;
  readonly db: DB;
  readonly log: Logger;
  readonly events: EventSink;
  readonly images: ContainerImages;
  readonly networks: ContainerNetworking;
  readonly volumes: ContainerVolumes;
  /** The API's JSON Schema check of a request body (400 in Docker's words): create and update check their
   *  bodies in Docker's order, after the lookup, so the check is handed in rather than imported. */
  readonly validateBody: (schemaId: string, body: unknown) => void;
  /** Runs a healthcheck command in a running container (an exec, in berthd). */
  readonly runProbe: RunProbe;
  /** --userns-remap resolved (runtime/userns.ts); undefined when off. */
  readonly remap?: Remap;
  /** AppArmor where the host has it (apparmor.ts); absent = never used. */
  readonly apparmor?: Pick<AppArmor, 'used' | 'ensureDefault'>;
}
