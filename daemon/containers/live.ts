// A container's in-memory companion of its row, and who is attached to it.
import type { ShimConnection } from '../runtime/types';
import type { ContainerRecord } from './model';
import type { ProcessRef, HeldNamespace } from '../runtime/process';
import type { ContainerService } from './service';

/** Someone attached to a container's output (docker attach / run without -d). */
export interface Attacher {
  stdout: boolean;
  stderr: boolean;
  write(stream: number, data: Buffer): void;
  /** The container exited: flush and close. */
  end(): void;
}

/** The running container's process, or undefined when it is not running (or no longer that process). */
export function runningProcess(svc: ContainerService, live: Live): ProcessRef | undefined {
  try {
    return svc.processOf(live);
  } catch {
    return undefined;
  }
}

/** In-memory companion of a container row: its shim connection and who waits for what. */
export interface Live {
  rec: ContainerRecord;
  conn?: ShimConnection;
  attachers: Set<Attacher>;
  exitWaiters: Array<() => void>;
  removeWaiters: Array<() => void>;
  lock: Promise<unknown>;
  removed: boolean;
  mounted: boolean;
  /** The clean-up after an exit (cgroup, network, rootfs unmount) while it runs: a start or a removal
   *  that comes meanwhile (`docker wait` answers as soon as the exit is recorded) waits for it. */
  settling?: Promise<void>;
  /** stdin that arrived from an attach before the container's process existed. */
  pendingStdin: Buffer[];
  pendingStdinClose: boolean;
  /** Stopped by berthd's own shutdown (live-restore off): no restart policy applies until the next start. */
  shuttingDown?: boolean;
  /** The container's init process while it runs: its pid with its start time, so that a pid reused after
   *  it is gone is never taken for it (runtime/process.ts). */
  proc?: ProcessRef;
  /** During a start: what it holds of other containers until its shim runs (holdNamespace). */
  startHolds?: HeldNamespace[];
}

export function newLive(rec: ContainerRecord): Live {
  return {
    rec, attachers: new Set(), exitWaiters: [], removeWaiters: [], lock: Promise.resolve(), removed: false,
    mounted: false, pendingStdin: [], pendingStdinClose: false,
  };
}
