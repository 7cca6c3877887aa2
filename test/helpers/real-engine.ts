// A ContainerService on the real runtime (berth-shim, overlay mounts, cgroups under a parent of its own)
// and the real host, with the other services faked in memory (test/fakes/services.ts): the runtime
// contract (test/fakes/contract.ts) runs on it. Its image is a busybox root made from /bin/busybox.
// close() kills, unmounts and removes everything it made (cleanupRoot), also after a failed test; a signal
// that ends the test process first does the same (reaper.ts).
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { openDb } from '../../daemon/state/db';
import { validateBody } from '../../daemon/api/validate';
import { ContainerService } from '../../daemon/containers/service';
import type { ContainerConfig, ContainerDeps } from '../../daemon/containers/deps';
import { Runtime } from '../../daemon/runtime/runtime';
import { hostTools } from '../../daemon/runtime/host-tools';
import { FakeImages, FakeNetworks, FakeVolumes, RecordingEvents, ScriptedProbe } from '../fakes/services';
import type { ContractEngine, Program } from '../fakes/contract';
import { cleanupRoot } from './berthd';
import { reapOnExit } from './reaper';

const REPO = path.resolve(__dirname, '..', '..', '..');

function busyboxRoot(dir: string): void {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) mkdirSync(path.join(dir, d), { recursive: true });
  chmodSync(path.join(dir, 'tmp'), 0o1777);
  copyFileSync('/bin/busybox', path.join(dir, 'bin', 'busybox'));
  chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'sleep', 'true', 'false']) symlinkSync('busybox', path.join(dir, 'bin', a));
  writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\n');
}

function program(p: Program): string[] {
  switch (p.kind) {
    case 'sleeper': return ['sleep', '1000'];
    // sh runs a trap once its foreground command ends: short sleeps keep it prompt.
    case 'handlesTerm': return ['sh', '-c', 'trap "exit 143" TERM; touch /trap-set; while :; do sleep 0.05; done'];
    case 'exit': return ['sh', '-c', `exit ${p.code}`];
    case 'exitAfter': return ['sh', '-c', `sleep ${p.ms / 1000}; exit ${p.code}`];
    case 'missing': return ['/missing/cmd'];
  }
}

export async function realEngine(): Promise<ContractEngine> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-contract-'));
  const cgroupParent = `berth-contract-${randomBytes(4).toString('hex')}`;
  const config: ContainerConfig = {
    dataRoot: path.join(root, 'data'), execRoot: path.join(root, 'exec'), shimPath: path.join(REPO, 'build', 'berth-shim'),
    cgroupParent, logDriver: 'json-file', logOpts: {},
    defaultCgroupnsMode: 'private', defaultIpcMode: 'private', defaultShmSize: 64 * 1024 * 1024, defaultUlimits: [],
  };
  const reap = reapOnExit(`contract engine in ${root}`, () => cleanupRoot(root, config.execRoot, cgroupParent));
  const db = openDb(path.join(root, 'state.db'));
  const log = pino({ level: 'silent' });
  const runtime = new Runtime({ cgroupDriver: 'cgroupfs', cgroupParent });
  mkdirSync(config.dataRoot, { recursive: true });
  await runtime.probeKernel(path.join(config.dataRoot, '.kernel-probe'));
  const images = new FakeImages(path.join(config.dataRoot, 'overlay2'), db);
  const img = images.add('busybox:latest', { Cmd: ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] });
  busyboxRoot(images.lowerDirs(img)[0]);
  const probe = new ScriptedProbe();
  const deps: ContainerDeps = {
    config, db, log, events: new RecordingEvents(), images, networks: new FakeNetworks(), volumes: new FakeVolumes(path.join(root, 'volumes')),
    validateBody, runProbe: probe.run,
  };
  // berthd's listening socket keeps its event loop alive; the shims' connections do not (they are unref'd
  // so that berthd can exit with containers running). This stands in for the socket while the engine is open.
  const keepAlive = setInterval(() => {}, 60_000);
  let svc = new ContainerService(deps, runtime, hostTools);
  await svc.restore(true);
  let attached = true;
  const detach = async () => {
    if (!attached) return;
    attached = false;
    for (const l of svc.all()) {
      svc.health.stop(l);
      svc.restarts.cancel(l);
    }
    await svc.detachAll();
  };
  const cg = runtime.cgroups;
  const hierarchies = [...new Set([...Object.values(cg.controllers), cg.unified].filter(Boolean))];
  return {
    get svc() { return svc; },
    program,
    mounted: (p) => hostTools.isMounted(p),
    // pid 1 ignores a SIGTERM that comes before its trap is set: wait for the program to say it is set.
    async ready(merged) {
      for (let i = 0; i < 200 && !existsSync(path.join(merged, 'trap-set')); i++) await new Promise((r) => setTimeout(r, 25));
    },
    cgroupExists: (id) => hierarchies.some((h) => existsSync(path.join(h, cgroupParent, id))),
    detach,
    async restart(o = {}) {
      await detach();
      svc = new ContainerService(deps, runtime, hostTools);
      await svc.restore(o.liveRestore ?? true);
      attached = true;
      return svc;
    },
    async close() {
      for (const l of svc.all()) await svc.remove(l.rec.id, { force: true }).catch(() => {});
      await detach();
      db.close();
      reap.run();
      clearInterval(keepAlive);
    },
  };
}
