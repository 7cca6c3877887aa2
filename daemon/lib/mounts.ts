// Two host facts several services need: whether a path is a mount point now, and running a mount tool.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Whether `p` is the mount point of some mount in this namespace (/proc/self/mountinfo's fifth field). */
export function isMounted(p: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);
  } catch {
    return false;
  }
}

/** Whether a file system other than its parent's is mounted at `p`: a stat of each, so constant time, where
 *  isMounted reads the whole mount table (thousands of lines on a host with a thousand running containers,
 *  read on every start, rm and cp). Exact for mounts of their own device (overlay, tmpfs, proc); a bind mount
 *  from the same file system looks unmounted, so use it only where such a bind is never made. */
export function hasOwnMount(p: string): boolean {
  try {
    return statSync(p).dev !== statSync(path.dirname(p)).dev;
  } catch {
    return false;
  }
}

/** A path as /proc/self/mountinfo writes it (spaces, tabs, newlines and backslashes as octal escapes). */
export function escapeMountPath(p: string): string {
  return p.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** Every mount point of this namespace, escaped as mountinfo writes them. */
export function mountPoints(): string[] {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => m !== undefined);
  } catch {
    return [];
  }
}

/** Mount points at or below `dir` (mountinfo escapes spaces and the like as octal; so is `dir` here). */
export function mountsUnder(dir: string): string[] {
  const esc = escapeMountPath(dir);
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])
      .filter((m) => m !== undefined && (m === esc || m.startsWith(esc + '/')));
  } catch {
    return [];
  }
}
