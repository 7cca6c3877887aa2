// docker pause / unpause: the container's cgroup is frozen (v1 freezer.state, v2 cgroup.freeze) through the
// runtime; the state machine moves running ⇄ paused. Messages and status codes are Docker's: pausing a
// paused container is 409, unpausing one that is not paused is a plain 500.
import { conflict, systemError } from '../errors/errors';
import type { ContainerService, Live } from './service';

export async function pauseContainer(svc: ContainerService, ref: string): Promise<void> {
  const live = svc.lookup(ref);
  await svc.serial(live, async () => {
    const id = live.rec.id;
    const st = live.rec.state.status;
    if (st === 'paused') throw conflict(`Container ${id} is already paused`);
    if (st === 'restarting') throw conflict(`Container ${id} is restarting, wait until the container is running`);
    if (st !== 'running' || !live.conn) throw conflict(`Container ${id} is not running`);
    await svc.runtime.freezeCgroup(svc.cgroupPath(id), true);
    live.rec.state.status = 'paused';
    svc.save(live);
    svc.emit(live, 'pause');
  });
}

export async function unpauseContainer(svc: ContainerService, ref: string): Promise<void> {
  const live = svc.lookup(ref);
  await svc.serial(live, async () => {
    if (live.rec.state.status !== 'paused') throw systemError(`Container ${live.rec.id} is not paused`);
    await thaw(svc, live);
    svc.emit(live, 'unpause');
  });
}

/** Lets a paused container run again (stop and kill send their signal first, then thaw, as Docker does:
 *  a frozen process acts on a signal only once thawed). No event: the caller says what happened. */
export async function thaw(svc: ContainerService, live: Live): Promise<void> {
  if (live.rec.state.status !== 'paused') return;
  await svc.runtime.freezeCgroup(svc.cgroupPath(live.rec.id), false);
  if (live.rec.state.status === 'paused') {
    live.rec.state.status = 'running';
    svc.save(live);
  }
}
