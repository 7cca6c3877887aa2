// Unmounting from tests without the addon: util-linux's umount, lazily, one path at a time.
import { execFileSync } from 'node:child_process';

export function umount2(target: string): void {
  try {
    execFileSync('umount', ['-l', target], { stdio: 'ignore' });
  } catch { /* not mounted */ }
}
