// A running container's shim connection: its output to attachers, its exit to the state machine.
import { nowNs, rfc3339Nano } from '../lib/time';
import type { ExitInfo, ShimConnection } from '../runtime/types';
import { releaseNamespaces } from './namespaces';
import { crashPoint } from '../lib/crash';
import { unmountVolumes, unmountRootfs } from './mounts';
import type { Live } from './live';
import type { ContainerService } from './service';

/** Connects a shim's events to the container: output to attachers, exit to the state machine. */
/** `subscribed`: the shim was started with --attach, so it already sends output on this connection. */
export function wire(svc: ContainerService, live: Live, conn: ShimConnection, subscribed = false): void {
  live.conn = conn;
  conn.on('output', (stream: number, data: Buffer) => {
    for (const a of live.attachers) a.write(stream, data);
  });
  conn.once('exited', (info: ExitInfo) => void onExit(svc, live, conn, info).catch((e) => svc.d.log.error({ err: e, id: live.rec.id }, 'exit handling failed')));
  conn.once('close', () => {
    if (conn.exitInfo || live.conn !== conn) return;
    // The shim went away without telling: it may have been killed. Read what it left.
    const info = svc.runtime.exitStatus(svc.stateDir(live.rec.id)) ?? { exitCode: 255, finishedAt: rfc3339Nano(nowNs()) };
    void onExit(svc, live, conn, info).catch((e) => svc.d.log.error({ err: e, id: live.rec.id }, 'exit handling failed'));
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
  svc.health.start(live);
}

export async function onExit(svc: ContainerService, live: Live, conn: ShimConnection, info: ExitInfo): Promise<void> {
  if (live.conn !== conn) return;
  live.conn = undefined;
  live.proc = undefined;
  conn.close();
  svc.health.stop(live);
  const rec = live.rec;
  rec.state = { ...rec.state, status: 'exited', pid: 0, shimPid: 0, exitCode: info.exitCode, finishedAt: info.finishedAt, oomKilled: !!info.oomKilled };
  try {
    svc.save(live);
  } catch (e) {
    // A full disk (SQLITE_FULL) must not take berthd down: the exit is known here and is written with
    // the next state change; after a restart the shim's exit file tells it again.
    svc.d.log.error({ err: e, id: rec.id }, 'could not record the container exit');
  }
  crashPoint('exit.after-save');
  for (const a of live.attachers) a.end();
  live.attachers.clear();
  // The three are independent (the processes are gone): the cgroup, the network (the kernel takes tens
  // of ms to delete a veth) and the file systems are released side by side.
  const settle = Promise.all([
    svc.runtime.removeCgroup(svc.cgroupPath(rec.id)).catch((e) => svc.d.log.warn({ err: e, id: rec.id }, 'cgroup removal failed')),
    svc.d.networks.teardown(rec).catch((e) => svc.d.log.warn({ err: e, id: rec.id }, 'network teardown failed')),
    (async () => {
      await unmountVolumes(svc, rec);
      await releaseNamespaces(rec, svc.containerDir(rec.id)).catch((e) => svc.d.log.warn({ err: e, id: rec.id }, 'shm unmount failed'));
      await unmountRootfs(svc, live).catch((e) => svc.d.log.warn({ err: e, id: rec.id }, 'unmount failed'));
    })(),
  ]).then(() => undefined);
  live.settling = settle;
  await settle;
  if (live.settling === settle) live.settling = undefined;
  if (info.oomKilled) svc.emit(live, 'oom');
  svc.emit(live, 'die', { exitCode: String(info.exitCode) });
  const waiters = live.exitWaiters.splice(0);
  for (const w of waiters) w();
  if (svc.restarts.onExit(live)) return;
  if (rec.hostConfig.AutoRemove && !live.removed) {
    await svc.remove(rec.id, { force: true }).catch((e) => svc.d.log.warn({ err: e, id: rec.id }, 'auto-remove failed'));
  }
}
