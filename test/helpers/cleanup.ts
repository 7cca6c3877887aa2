// Unmounting from tests without the addon: util-linux's umount, lazily, one path at a time.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function umount2(target: string): void {
  try {
    execFileSync('umount', ['-l', target], { stdio: 'ignore' });
  } catch { /* not mounted */ }
}

/** Unmounts `dir` and everything mounted below it, deepest first (and nothing else). */
export function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]).filter((m) => m && (m === dir || m.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) umount2(m);
}
