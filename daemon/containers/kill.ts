// docker kill.
import { conflict } from '../errors/errors';
import { parseSignal } from '../lib/signals';
import { thaw } from './pause';
import { crashPoint } from '../lib/crash';
import type { ContainerService } from './service';

export async function kill(svc: ContainerService, ref: string, signal?: string): Promise<void> {
  const live = svc.lookup(ref);
  const sig = parseSignal(signal, 'SIGKILL');
  svc.assertReachable(live);
  if (!svc.isRunning(live)) throw conflict(`Cannot kill container: ${ref}: Container ${live.rec.id} is not running`);
  // As Docker: SIGKILL, or the container's stop signal (any signal when none is set), means "stay down":
  // no restart policy applies, and a paused container is thawed so that it can act on the signal.
  const stopSig = live.rec.config.StopSignal ? parseSignal(live.rec.config.StopSignal, 'SIGTERM') : 0;
  const final = sig === 9 || !stopSig || sig === stopSig;
  if (final) svc.setManuallyStopped(live, true);
  live.conn!.signal(sig);
  crashPoint('kill.after-signal');
  svc.emit(live, 'kill', { signal: String(sig) });
  if (final) await thaw(svc, live).catch(() => {});
  if (sig === 9) await svc.waitExit(live, 10_000);
}
