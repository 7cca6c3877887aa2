// The host tools berth drives for networking: iproute2 (`ip`, links, addresses, routes), util-linux
// (`unshare --net=FILE` makes a bind-mounted network namespace, `nsenter --net=FILE` runs `ip` inside one)
// and `nft`. They are run with execFile (no shell) and never block the event loop. Why tools, not netlink
// from the addon: `nft -f` applies a whole table atomically from text, which is what firewall/ generates;
// and each step here is one exec whose failure message is the tool's own, which is the message Docker users
// know. The cost is a few ms per exec; a container start does three.
import { execFile } from 'node:child_process';
import { BerthError } from '../errors/errors';

export class ToolError extends BerthError {
  constructor(readonly tool: string, readonly args: string[], readonly stderr: string) {
    super('system', `${tool} ${args.join(' ')}: ${stderr.trim() || 'failed'}`);
  }
}

export function run(tool: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(tool, args, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new ToolError(tool, args, stderr || err.message));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** `ip -batch -` with one command per line, in the host's namespace or inside `netns` (a file path). */
export function ipBatch(lines: string[], netns?: string): Promise<string> {
  if (lines.length === 0) return Promise.resolve('');
  const input = lines.join('\n') + '\n';
  return netns ? run('nsenter', [`--net=${netns}`, 'ip', '-batch', '-'], input) : run('ip', ['-batch', '-'], input);
}

export async function linkExists(name: string): Promise<boolean> {
  try {
    await run('ip', ['-o', 'link', 'show', 'dev', name]);
    return true;
  } catch {
    return false;
  }
}

/** Host link names, from `ip -o link`. */
export async function hostLinks(): Promise<Array<{ name: string; master: string; kind: string }>> {
  const out = await run('ip', ['-o', '-d', 'link', 'show']);
  return out.split('\n').filter(Boolean).map((l) => {
    const name = (/^\d+:\s+([^:@\s]+)/.exec(l) ?? [])[1] ?? '';
    const master = (/ master (\S+)/.exec(l) ?? [])[1] ?? '';
    const kind = / veth /.test(l) ? 'veth' : / bridge /.test(l) ? 'bridge' : '';
    return { name, master, kind };
  });
}

/** Steps of a setup, each with its undo: run in order, and on a failure undo the done ones in reverse. */
export interface Step {
  name: string;
  do: () => Promise<void>;
  undo: () => Promise<void>;
}

export async function runSteps(steps: Step[]): Promise<() => Promise<void>> {
  const done: Step[] = [];
  const undoAll = async () => {
    for (const s of done.reverse()) await s.undo().catch(() => {});
  };
  try {
    for (const s of steps) {
      await s.do();
      done.push(s);
    }
  } catch (e) {
    await undoAll();
    throw e;
  }
  return undoAll;
}
