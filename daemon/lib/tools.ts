// Every host tool berthd runs as a child process for the daemon's own work (mounts, the firewall, syncfs,
// facts about a file system), in one place and typed per tool, as addon/index.d.ts types the addon: a caller
// says what it wants done (`tools.mount`, `tools.nft`), never which process to start. Two families, kept
// as they were when each caller ran its own:
//  - file systems (mount, umount, sync): no timeout (a mount of a slow device takes what it takes); a failure
//    is an Error saying `tool args: stderr`;
//  - the network (nft, iptables, ip): stdout is the answer, at most 30 s and 16 MiB; a failure is a
//    ToolError (a 500 in the API) with the same words.
// Not here (yet): berth-shim (runtime/supervisor.ts, seccomp-compile.ts), and tools with one caller each,
// run beside it: ps (docker top), apparmor_parser, useradd (userns-remap's default user), busctl.
// They start through runtime/spawn.ts (posix_spawn): a start runs nft, and node's fork would cost more
// with every running container (issue 17).
import { execFileSync } from 'node:child_process';
import { BerthError } from '../errors/errors';
import { runProcess, type RunResult } from '../runtime/spawn';

export class ToolError extends BerthError {
  constructor(readonly tool: string, readonly args: string[], readonly stderr: string) {
    super('system', `${tool} ${args.join(' ')}: ${stderr.trim() || 'failed'}`);
  }
}

export interface HostToolRunner {
  /** mount(8) with these arguments. */
  mount(args: string[]): Promise<void>;
  /** umount(8) with these arguments (`-l` for a lazy unmount). */
  umount(args: string[]): Promise<void>;
  /** syncfs(2) of the file system holding dir (coreutils `sync -f`). */
  syncFs(dir: string): Promise<void>;
  /** xfs_info's report of the xfs file system holding dir; undefined when it cannot say (not installed,
   *  2 s passed). */
  xfsInfo(dir: string): string | undefined;
  /** nft(8): stdout; `input` goes to its stdin (`nft -f -` applies a whole script atomically). */
  nft(args: string[], input?: string): Promise<string>;
  /** iptables, ip6tables or one of their variants (iptables-nft, …: which one a host uses is found at run
   *  time, firewall/iptables.ts), or its -restore companion (input on stdin): stdout. */
  iptables(tool: string, args: string[], input?: string): Promise<string>;
  /** ip(8) of iproute2 (read-only uses: `ip -j route`, `ip -j addr`): stdout. */
  ip(args: string[]): Promise<string>;
}

/** Why a run failed, when stderr does not say: as execFile words it. */
function failure(tool: string, args: string[], r: RunResult): string {
  if (r.error) return r.error.message;
  return `Command failed: ${tool} ${args.join(' ')}${r.signal ? ` (killed by ${r.signal})` : ` (exit code ${r.code})`}`;
}

/** A file-system tool: resolves when it succeeded, rejects with its stderr. */
async function runFsTool(cmd: string, args: string[]): Promise<void> {
  const r = await runProcess(cmd, args);
  if (r.error || r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || failure(cmd, args, r)}`);
}

/** A network tool: its stdout, within 30 s. stdin is always closed, so a tool that reads it never waits. */
async function runNetTool(tool: string, args: string[], input?: string): Promise<string> {
  const r = await runProcess(tool, args, { input, timeoutMs: 30_000, maxBuffer: 16 * 1024 * 1024 });
  if (r.error || r.code !== 0) throw new ToolError(tool, args, r.stderr || failure(tool, args, r));
  return r.stdout;
}

export const tools: HostToolRunner = {
  mount: (args) => runFsTool('mount', args),
  umount: (args) => runFsTool('umount', args),
  syncFs: (dir) => runFsTool('sync', ['-f', dir]),
  xfsInfo(dir) {
    try {
      return execFileSync('xfs_info', [dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 });
    } catch {
      return undefined;
    }
  },
  nft: (args, input) => runNetTool('nft', args, input),
  iptables: (tool, args, input) => runNetTool(tool, args, input),
  ip: (args) => runNetTool('ip', args),
};
