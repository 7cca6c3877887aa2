// The Daemon holds berth's services for one data root, and wires them: each service is given, at
// construction, the narrow interfaces it uses of the others (containers/deps.ts, network/deps.ts, …) and
// the runtime (runtime/types.ts), never the Daemon itself. Routes get the Daemon and call services.
// Services that use each other are handed getters, so that construction order does not matter.
import type { Logger } from 'pino';
import type { Config } from './config/config';
import type { DB } from './state/db';
import { ImageService } from './images/service';
import { ContainerService } from './containers/service';
import { NetworkService } from './network/service';
import { VolumeService } from './volumes/service';
import { EventBus } from './events/bus';
import { HostInfo, probeHost } from './lib/host';
import { Runtime } from './runtime/runtime';
import { execProbe } from './containers/probe';
import { validateBody } from './api/validate';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Remap } from './runtime/userns';
import { warmDefaultSeccomp } from './containers/seccomp-warm';
import { AppArmor } from './containers/apparmor';

function engineId(dataRoot: string): string {
  const f = path.join(dataRoot, 'engine-id');
  try {
    return readFileSync(f, 'utf8').trim();
  } catch {
    const id = randomUUID();
    writeFileSync(`${f}.tmp`, id);
    renameSync(`${f}.tmp`, f);
    return id;
  }
}

export class Daemon {
  readonly images: ImageService;
  readonly containers: ContainerService;
  readonly networks: NetworkService;
  readonly volumes: VolumeService;
  readonly events = new EventBus();
  readonly host: HostInfo;
  readonly startedAt = new Date();
  /** A stable identity for /info, made on the first start of a data root. */
  readonly engineId: string;
  /** --userns-remap resolved to its id ranges (main.ts, before restore); undefined when off. */
  remap: Remap | undefined;
  /** Whether containers get AppArmor profiles here, and berth-default's loading. */
  readonly apparmor: AppArmor;

  constructor(readonly config: Config, readonly db: DB, readonly log: Logger) {
    this.host = probeHost();
    this.engineId = engineId(config.dataRoot);
    this.apparmor = new AppArmor(config.execRoot);
    this.images = new ImageService(db, config.dataRoot, log.child({ svc: 'images' }), {
      imageInUse: (imageId) => this.containers.containersUsingImage(imageId),
      emit: (type, action, id, attrs) => this.events.emit(type, action, id, attrs),
      containerRunning: (id) => this.containers.isRunningId(id),
    });
    const runtime = new Runtime({
      cgroupDriver: config.cgroupDriver, cgroupParent: config.cgroupParent,
      warn: (msg, err) => log.warn({ err }, msg),
    });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const base = { config, db, log, events: this.events };
    this.containers = new ContainerService({
      ...base,
      images: this.images,
      get networks() { return self.networks; },
      get volumes() { return self.volumes; },
      validateBody,
      runProbe: (live, cmd, ms) => execProbe(this, live, cmd, ms),
      get remap() { return self.remap; },
      apparmor: this.apparmor,
    }, runtime);
    this.networks = new NetworkService({ ...base, engineId: this.engineId, containers: this.containers });
    this.volumes = new VolumeService({ ...base, containers: this.containers, get remap() { return self.remap; } });
  }

  /** Brings the state in line with the host after a start: sweeps half-done work, re-attaches shims. */
  async restore(): Promise<void> {
    // Docker's default seccomp profile is compiled meanwhile, so that the first start finds it compiled.
    const seccomp = warmDefaultSeccomp(this.config.shimPath, this.config.execRoot)
      .then((how) => this.log.debug({ how }, 'default seccomp profile ready'))
      .catch((err) => this.log.warn({ err }, 'could not compile the default seccomp profile ahead (the first start compiles it)'));
    // Before anything is mounted: the probe also settles how overlays are mounted on this kernel.
    const kernel = await this.containers.runtime.probeKernel(path.join(this.config.dataRoot, `.kernel-probe-${process.pid}`));
    kernel.log(this.log);
    await this.images.cleanup();
    await this.networks.init();
    await this.containers.restore(this.config.liveRestore);
    await this.networks.sweep();
    await this.volumes.sweep((name) => this.containers.all()
      .filter((l) => this.containers.isRunningId(l.rec.id) && (l.rec.mounts ?? []).some((m) => m.Type === 'volume' && m.Name === name)).length);
    await seccomp;
    await this.apparmor.ensureDefault().catch((err) => {
      this.log.error({ err }, 'AppArmor: the default profile could not be loaded');
      this.apparmor.refuse((err as Error).message);
    });
    this.log.info({ apparmor: this.apparmor.used }, this.apparmor.reason);
  }

  async shutdown(): Promise<void> {
    if (!this.config.liveRestore) await this.containers.stopAllForShutdown(this.config.shutdownTimeout);
    await this.containers.detachAll();
    await this.networks.shutdown().catch((err) => this.log.warn({ err }, 'network clean-up at shutdown'));
    this.db.close();
  }
}
