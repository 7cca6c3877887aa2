// docker top: the host's `ps` run with the client's ps_args (default -ef), its rows filtered to the pids
// of the container's cgroup, as Docker does it. The command column may hold spaces: every field past the
// second-to-last title belongs to it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { conflict, systemError } from '../errors/errors';
import type { ContainerService } from './service';

const run = promisify(execFile);

export interface TopResult { Titles: string[]; Processes: string[][] }

export async function topContainer(svc: ContainerService, ref: string, psArgs: string | undefined): Promise<TopResult> {
  const live = svc.lookup(ref);
  const st = live.rec.state.status;
  if ((st !== 'running' && st !== 'paused') || !live.conn) throw conflict(`Container ${live.rec.id} is not running`);
  const pids = new Set<number>(await svc.runtime.cgroupPids(svc.cgroupPath(live.rec.id)));
  const args = (psArgs && psArgs.trim() ? psArgs : '-ef').trim().split(/\s+/);
  let out: string;
  try {
    out = (await run('ps', args, { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw systemError(`ps: ${(err.stderr || err.message).trim()}`);
  }
  return parsePs(out, pids);
}

export function parsePs(out: string, pids: Set<number>): TopResult {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return { Titles: [], Processes: [] };
  const titles = lines[0].trim().split(/\s+/);
  const pidIdx = titles.indexOf('PID');
  if (pidIdx < 0) throw systemError(`Couldn't find PID field in ps output`);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    const pid = Number(fields[pidIdx]);
    if (!Number.isInteger(pid) || !pids.has(pid)) continue;
    const row = fields.slice(0, titles.length - 1);
    const rest = fields.slice(titles.length - 1);
    // The last column keeps its inner spacing collapsed to single spaces (as Docker joins the fields).
    row.push(rest.join(' '));
    processes.push(row);
  }
  return { Titles: titles, Processes: processes };
}
