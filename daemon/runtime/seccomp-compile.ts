// `berth-shim seccomp-compile FILE`: the shim's own compiler (libseccomp, the ENOSYS prelude, the cache
// file format its starts check) run once, outside any container start. Here because only daemon/runtime/
// starts shims.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Compiles the seccomp profile of FILE (linux.seccomp) into its linux.seccompCache; rejects with the
 *  shim's reason. */
export async function compileSeccompProfile(shimPath: string, file: string): Promise<void> {
  try {
    await run(shimPath, ['seccomp-compile', file], { timeout: 60000 });
  } catch (e) {
    throw new Error((e as { stderr?: string }).stderr?.trim() || (e as Error).message);
  }
}
