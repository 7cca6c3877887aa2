// Container processes named for good: a pid alone can be reused by another process once the first is
// gone, so berth keeps the pid with its start time (field 22 of /proc/PID/stat, clock ticks after boot),
// taken when the process is known to be ours (a child of its shim). Anything opened through /proc/PID is
// checked afterwards: a process that still has that start time was alive all along, so what was opened
// is its own and not that of whoever got the pid since.
import { closeSync, openSync, constants as FS, readFileSync } from 'node:fs';

export interface ProcessRef {
  pid: number;
  startTime: string;
}

/** ppid and start time of `pid`, or null when there is no such process. */
export function procStat(pid: number): { state: string; ppid: number; startTime: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so fields are counted from the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); ppid is field 4, the start time field 22.
  if (f.length < 20) return null;
  return { state: f[0], ppid: Number(f[1]), startTime: f[19] };
}

/** The process `pid` as a ProcessRef, when it exists (and is a child of `parent`, when given). */
export function identify(pid: number, parent?: number): ProcessRef | null {
  if (!(pid > 0)) return null;
  const st = procStat(pid);
  if (!st || st.state === 'Z' || (parent && st.ppid !== parent)) return null;
  return { pid, startTime: st.startTime };
}

/** Whether `ref` still names a live process: its pid not reused, and not exited (a zombie keeps its pid
 *  and start time until it is reaped, but has no namespaces or root any more). */
export function stillSame(ref: ProcessRef): boolean {
  const st = procStat(ref.pid);
  return !!st && st.startTime === ref.startTime && st.state !== 'Z' && st.state !== 'X';
}

/** A namespace of a process, held open: `path` (/proc/<berthd>/fd/N) leads to that namespace for as long
 *  as it is held, whatever happens to the process or its pid. */
export interface HeldNamespace {
  path: string;
  release(): void;
}

export class ProcessGone extends Error {}

/** Opens /proc/PID/ns/<kind> of `ref` and checks, once it is open, that the pid is still that process. */
export function holdNamespace(ref: ProcessRef, kind: 'pid' | 'ipc' | 'net' | 'uts' | 'mnt' | 'cgroup' | 'user'): HeldNamespace {
  let fd: number;
  try {
    fd = openSync(`/proc/${ref.pid}/ns/${kind}`, FS.O_RDONLY);
  } catch {
    throw new ProcessGone(`process ${ref.pid} is not running`);
  }
  if (!stillSame(ref)) {
    closeSync(fd);
    throw new ProcessGone(`process ${ref.pid} is not running (its pid belongs to another process now)`);
  }
  let open = true;
  return {
    path: `/proc/${process.pid}/fd/${fd}`,
    release: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
