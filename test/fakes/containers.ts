// A ContainerService on the fakes: the real service, its real SQLite store (in a temporary data root)
// and its real rules, with the runtime, the host, the other services and the probe in memory
// (runtime.ts, services.ts). restart() is a berthd restart over the same database and the same
// (fake) shims; close() removes everything it made.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { openDb, type DB } from '../../daemon/state/db';
import { validateBody } from '../../daemon/api/validate';
import { ContainerService } from '../../daemon/containers/service';
import type { ContainerConfig, ContainerDeps } from '../../daemon/containers/deps';
import { FakeRuntime } from './runtime';
import { FakeImages, FakeNetworks, FakeVolumes, RecordingEvents, ScriptedProbe } from './services';

export interface FakeEngine {
  svc: ContainerService;
  rt: FakeRuntime;
  net: FakeNetworks;
  volumes: FakeVolumes;
  images: FakeImages;
  events: RecordingEvents;
  probe: ScriptedProbe;
  db: DB;
  config: ContainerConfig;
  /** One row of a query on the state database. */
  row(sql: string, ...args: unknown[]): Record<string, unknown>;
  /** Every step of every fake, in order. */
  journal: string[];
  /** berthd goes away (live-restore: the shims live on); its timers end with it. */
  detach(): Promise<void>;
  /** berthd stops (live-restore: the shims live on) and starts again on the same state. */
  restart(o?: { liveRestore?: boolean }): Promise<ContainerService>;
  close(): Promise<void>;
}

export function fakeEngine(): FakeEngine {
  // On tmpfs when there is one: the state database is real SQLite with synchronous=FULL and 4 MiB of
  // headroom written at open, which costs ~200 ms per engine on a busy disk and nothing in memory.
  const root = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'berth-unit-'));
  const journal: string[] = [];
  const config: ContainerConfig = {
    dataRoot: path.join(root, 'data'), execRoot: path.join(root, 'exec'), shimPath: path.join(root, 'bin', 'berth-shim'),
    cgroupParent: 'berth', logDriver: 'json-file', logOpts: {},
    defaultCgroupnsMode: 'private', defaultIpcMode: 'private', defaultShmSize: 64 * 1024 * 1024, defaultUlimits: [],
  };
  const db = openDb(path.join(root, 'state.db'));
  const rt = new FakeRuntime(root, journal);
  const net = new FakeNetworks(journal);
  const volumes = new FakeVolumes(path.join(root, 'volumes'), journal);
  const images = new FakeImages(path.join(config.dataRoot, 'overlay2'), db);
  images.add('busybox:latest', { Cmd: ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] });
  const events = new RecordingEvents(journal);
  const probe = new ScriptedProbe();
  const deps: ContainerDeps = {
    config, db, log: pino({ level: 'silent' }), events, images, networks: net, volumes, validateBody, runProbe: probe.run,
  };
  const e: FakeEngine = {
    svc: new ContainerService(deps, rt, rt.host),
    rt, net, volumes, images, events, probe, db, config, journal,
    row: (sql, ...args) => db.prepare(sql).get(...args) as Record<string, unknown>,
    async detach() {
      // The old berthd's timers (probes, pending restarts) end with it.
      for (const l of e.svc.all()) {
        e.svc.health.stop(l);
        e.svc.restarts.cancel(l);
      }
      await e.svc.detachAll();
    },
    async restart(o = {}) {
      await e.detach();
      e.svc = new ContainerService(deps, rt, rt.host);
      await e.svc.restore(o.liveRestore ?? true);
      return e.svc;
    },
    async close() {
      for (const l of e.svc.all()) await e.svc.remove(l.rec.id, { force: true }).catch(() => {});
      await e.svc.detachAll();
      db.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return e;
}
