// The addon's flock, for daemon/lib/instance-lock.ts (every use of the addon lives in runtime/).
import { native } from './native';

/** An exclusive flock on `fd` without waiting: true when held now, false when another process holds it. */
export function flockTry(fd: number): boolean {
  return native.flockTry(fd);
}
