// One berthd per data root, exec root, unix socket and default bridge. Two daemons on one data root would
// corrupt each other's state (SQLite rows, layers, container directories); on one exec root, their shims'
// sockets and namespace files; on one socket, the second removes the first's and takes its clients; on
// one bridge, the second rewrites the addresses and the firewall table of the first.
//
// Each is held with an exclusive flock(2) on a lock file, for the life of the process: the kernel lets go
// when the process ends, by a crash or kill -9 too, so there is never a stale lock to clean up (a pidfile
// can name a pid that a new process has since taken). The file says who holds it, for the error of the
// next daemon that tries.
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync, constants } from 'node:fs';
import path from 'node:path';
import { flockTry } from '../runtime/lock';

/** What a lock guards, as the error says it. */
export interface LockSpec {
  what: string;   // "data root /var/lib/berth"
  file: string;   // the lock file
}

export class InstanceLockError extends Error {}

/** The lock files of an instance: in its data root and exec root, next to each unix socket, and for the
 *  default bridge under /run/lock/berth, per network namespace (bridge names are per namespace). */
export function lockSpecs(o: { dataRoot: string; execRoot: string; sockets: string[]; bridge: string }, lockDir = '/run/lock/berth'): LockSpec[] {
  let netns = 'host';
  try { netns = `netns-${statSync('/proc/self/ns/net').ino}`; } catch { /* no procfs: one namespace */ }
  return [
    { what: `data root ${o.dataRoot}`, file: path.join(o.dataRoot, 'berthd.lock') },
    { what: `exec root ${o.execRoot}`, file: path.join(o.execRoot, 'berthd.lock') },
    ...o.sockets.map((s) => ({ what: `socket ${s}`, file: `${s}.lock` })),
    { what: `bridge ${o.bridge}`, file: path.join(lockDir, netns, `${o.bridge}.lock`) },
  ];
}

/** Takes every lock, or throws naming the first one another process holds (and takes none). The fds stay
 *  open (close-on-exec, so shims do not inherit them) until the process ends. */
export function lockInstance(specs: LockSpec[], holder: string): void {
  const held: number[] = [];
  try {
    for (const s of specs) {
      mkdirSync(path.dirname(s.file), { recursive: true });
      const fd = openSync(s.file, constants.O_RDWR | constants.O_CREAT, 0o644);
      if (!flockTry(fd)) {
        let who = '';
        try { who = readFileSync(s.file, 'utf8').trim(); } catch { /* unreadable */ }
        closeSync(fd);
        throw new InstanceLockError(`${s.what} is in use by another berthd (${who || 'holder unknown'}); lock file ${s.file}`);
      }
      held.push(fd);
      // Who holds it is for the next daemon's message only: a full disk does not stop this one.
      try {
        ftruncateSync(fd, 0);
        writeSync(fd, `${holder}\n`, 0);
      } catch { /* ENOSPC, EDQUOT */ }
    }
  } catch (e) {
    for (const fd of held) closeSync(fd);
    throw e;
  }
}

/** berthd's start: the locks of its configuration, or a message on stderr and exit status 1. */
export function lockOrExit(cfg: { dataRoot: string; execRoot: string; hosts: readonly string[]; bridge: string }): void {
  const sockets = cfg.hosts.filter((h) => h.startsWith('unix://')).map((h) => h.slice('unix://'.length));
  try {
    lockInstance(lockSpecs({ dataRoot: cfg.dataRoot, execRoot: cfg.execRoot, sockets, bridge: cfg.bridge }),
      `pid ${process.pid}, ${cfg.hosts.join(' ')}, data root ${cfg.dataRoot}, exec root ${cfg.execRoot}, bridge ${cfg.bridge}`);
  } catch (e) {
    process.stderr.write(`berthd: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
