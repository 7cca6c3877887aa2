// Waiting for a container to exit or to be removed (docker wait, and the verbs that wait for an exit).
import { invalid } from '../errors/errors';
import type { Live } from './live';
import type { ContainerService } from './service';

/** Resolves true when the container has exited, false on timeout (ms < 0: no timeout). */
export function waitExit(svc: ContainerService, live: Live, ms: number): Promise<boolean> {
  if (!svc.isRunning(live)) return Promise.resolve(true);
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

/** POST /containers/{id}/wait: resolves with the exit code once the condition holds. */
export async function wait(svc: ContainerService, ref: string, condition: string | undefined, aborted: () => boolean): Promise<number> {
  const live = svc.lookup(ref);
  const cond = condition || 'not-running';
  if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw invalid(`invalid condition: "${cond}"`);
  if (cond === 'removed') {
    if (!live.removed) await new Promise<void>((r) => live.removeWaiters.push(r));
    return live.rec.state.exitCode;
  }
  if (cond === 'next-exit' || svc.isRunning(live) || live.rec.state.status === 'restarting') {
    await new Promise<void>((r) => live.exitWaiters.push(r));
  }
  void aborted;
  return live.rec.state.exitCode;
}
