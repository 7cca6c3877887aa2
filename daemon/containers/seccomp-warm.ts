// Docker's default seccomp profile compiled at berthd's start, into the cache the shims read
// (<exec-root>/seccomp/<hash>.bpf, see seccomp.ts), so that the first `docker run` after a start (or
// after a reboot emptied /run) loads a compiled filter instead of spending 40–90 ms compiling it.
// Containers with other capability sets or profiles still compile theirs on their first start.
import { existsSync } from 'node:fs';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_CAPS } from './spec';
import { defaultProfile, seccompCachePath } from './seccomp';
import { compileSeccompProfile } from '../runtime/seccomp-compile';

/** 'cached' when the compiled default profile was there already, 'compiled' when this made it. */
export async function warmDefaultSeccomp(shimPath: string, execRoot: string): Promise<'cached' | 'compiled'> {
  const dir = path.join(execRoot, 'seccomp');
  const profile = defaultProfile(DEFAULT_CAPS);
  const cache = seccompCachePath(dir, profile);
  if (existsSync(cache)) return 'cached';
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The shim reads the profile as it reads an exec's process.json: the process is never started.
  const file = path.join(dir, `.warm-${process.pid}.json`);
  await writeFile(file, JSON.stringify({ process: { args: ['true'] }, linux: { seccomp: profile, seccompCache: cache } }));
  try {
    await compileSeccompProfile(shimPath, file);
  } finally {
    await rm(file, { force: true });
  }
  return 'compiled';
}
