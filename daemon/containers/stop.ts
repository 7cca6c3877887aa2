// docker stop and docker restart, and the stop of every container at a shutdown without live-restore.
import { notModified } from '../errors/errors';
import { parseSignal } from '../lib/signals';
import { thaw } from './pause';
import { crashPoint } from '../lib/crash';
import { doStart } from './start';
import type { Live } from './live';
import type { ContainerService } from './service';

export async function stop(svc: ContainerService, ref: string, timeoutSec?: number, signal?: string): Promise<void> {
  const live = svc.lookup(ref);
  await svc.serial(live, async () => {
    if (live.rec.state.status === 'restarting' && !live.conn) {
      // Waiting out a restart back-off: the container stays down.
      svc.restarts.cancel(live);
      svc.setManuallyStopped(live, true);
      live.rec.state.status = 'exited';
      svc.save(live);
      svc.emit(live, 'stop');
      return;
    }
    svc.assertReachable(live);
    if (!svc.isRunning(live)) throw notModified();
    svc.setManuallyStopped(live, true);
    await stopLive(svc, live, timeoutSec, signal);
  });
}

export async function stopLive(svc: ContainerService, live: Live, timeoutSec?: number, signal?: string): Promise<void> {
  const sig = parseSignal(signal ?? live.rec.config.StopSignal, 'SIGTERM');
  const t = timeoutSec ?? live.rec.config.StopTimeout ?? 10;
  if (live.conn) {
    live.conn.signal(sig);
    crashPoint('stop.after-signal');
    svc.emit(live, 'kill', { signal: String(sig) });
    await thaw(svc, live).catch(() => {});
    if (!(await svc.waitExit(live, t < 0 ? -1 : t * 1000))) {
      live.conn?.signal(9);
      svc.emit(live, 'kill', { signal: '9' });
      await svc.waitExit(live, 30_000);
    }
  }
  svc.emit(live, 'stop');
}

export async function restart(svc: ContainerService, ref: string, timeoutSec?: number, signal?: string): Promise<void> {
  const live = svc.lookup(ref);
  await svc.serial(live, async () => {
    svc.restarts.cancel(live);
    svc.assertReachable(live);
    if (svc.isRunning(live)) {
      svc.setManuallyStopped(live, true);
      await stopLive(svc, live, timeoutSec, signal);
    }
    svc.restarts.reset(live);
    svc.setManuallyStopped(live, false);
    await doStart(svc, live);
    svc.emit(live, 'restart');
  });
}

/** berthd is stopping with live-restore off: every running container is stopped with its stop signal and
 *  timeout (at most `shutdownTimeout` seconds, -1 for no limit), all at once. They are not marked as stopped
 *  by the user, so that restart policies always/unless-stopped start them again at the next start. */
export async function stopAllForShutdown(svc: ContainerService, shutdownTimeout: number): Promise<void> {
  await Promise.all(svc.all().filter((l) => svc.isRunning(l)).map(async (live) => {
    svc.restarts.cancel(live);
    live.shuttingDown = true;
    const own = live.rec.config.StopTimeout ?? 10;
    const t = shutdownTimeout < 0 ? own : own < 0 ? shutdownTimeout : Math.min(own, shutdownTimeout);
    await stopLive(svc, live, t).catch((e) => svc.logWarn(e, live.rec.id, 'stop at shutdown failed'));
  }));
}
