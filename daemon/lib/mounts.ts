// Two host facts several services need: whether a path is a mount point now, and running a mount tool.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Whether `p` is the mount point of some mount in this namespace (/proc/self/mountinfo's fifth field). */
export function isMounted(p: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);
  } catch {
    return false;
  }
}

/** Mount points at or below `dir` (mountinfo escapes spaces and the like as octal; so is `dir` here). */
export function mountsUnder(dir: string): string[] {
  const esc = dir.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])
      .filter((m) => m !== undefined && (m === esc || m.startsWith(esc + '/')));
  } catch {
    return [];
  }
}

/** Runs a host tool (mount, umount); rejects with its stderr. */
export function runTool(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve()));
  });
}
