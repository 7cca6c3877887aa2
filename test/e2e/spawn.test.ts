// berthd's children as a user's containers leave them (runtime/spawn.ts: posix_spawn and a pidfd per
// child): a running container's shim in a session of its own with /dev/null as stdio and berthd's
// descriptors closed, exit codes still reported, and no zombie under berthd after containers that ran
// to their end, one with a published port (an `nft` run) and an exec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { dockerOk, waitFor } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });

/** stat fields of a pid: [state, ppid, pgrp, session]. */
function stat(pid: number): string[] {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ').slice(0, 4);
}

/** berthd's children that are zombies (exited and not reaped). */
function zombies(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const k of kids.trim().split(/\s+/).filter(Boolean)) {
      try {
        if (stat(Number(k))[0] === 'Z') out.push(Number(k));
      } catch { /* reaped meanwhile */ }
    }
  }
  return out;
}

test('a running container\'s shim: its own session, stdio on /dev/null, none of berthd\'s descriptors', async () => {
  const id = (await dockerOk(b, ['run', '-d', '--name', 'sp-run', 'busybox', 'sleep', '1000'])).trim();
  const shimPid = Number(readFileSync(path.join(b.execRoot, 'containers', id, 'shim.pid'), 'utf8').trim());
  const [, , , sid] = stat(shimPid);
  assert.equal(Number(sid), shimPid, 'setsid: the shim leads its own session');
  for (const fd of [0, 1, 2]) assert.equal(readlinkSync(`/proc/${shimPid}/fd/${fd}`), '/dev/null');
  // It holds the socket pair berthd started it with (moved where the shim keeps it); nothing berthd holds
  // (its database, its log, other containers' files) reached it.
  assert.ok(readdirSync(`/proc/${shimPid}/fd`).some((f) => { try { return readlinkSync(`/proc/${shimPid}/fd/${f}`).startsWith('socket:'); } catch { return false; } }));
  const berthdFds = new Set(readdirSync(`/proc/${b.proc.pid}/fd`).map((f) => { try { return readlinkSync(`/proc/${b.proc.pid}/fd/${f}`); } catch { return ''; } })
    .filter((l) => l.startsWith('/') && !l.startsWith('/dev/')));
  for (const f of readdirSync(`/proc/${shimPid}/fd`)) {
    let target = '';
    try { target = readlinkSync(`/proc/${shimPid}/fd/${f}`); } catch { continue; }
    assert.ok(!berthdFds.has(target) || target.startsWith(path.join(b.dataRoot, 'containers', id)), `shim fd ${f} → ${target} is one of berthd's`);
  }
  await dockerOk(b, ['rm', '-f', 'sp-run']);
});

test('exit codes are reported and berthd leaves no zombie behind', async () => {
  const r = await b.docker(['run', '--rm', 'busybox', 'sh', '-c', 'exit 42']);
  assert.equal(r.code, 42, r.stderr);
  await dockerOk(b, ['run', '--rm', '-p', '127.0.0.1::80', 'busybox', 'true']);
  await dockerOk(b, ['run', '-d', '--name', 'sp-exec', 'busybox', 'sleep', '1000']);
  assert.equal((await dockerOk(b, ['exec', 'sp-exec', 'echo', 'hi'])).trim(), 'hi');
  await dockerOk(b, ['kill', 'sp-exec']);
  assert.equal((await dockerOk(b, ['wait', 'sp-exec'])).trim(), '137', 'killed by SIGKILL: 128 + 9');
  await dockerOk(b, ['rm', '-f', 'sp-exec']);
  // The shims of those containers have exited: each was reaped by berthd (briefly a zombie at most).
  await waitFor('no zombie children of berthd', () => zombies(b.proc.pid!).length === 0 || undefined, 10_000);
});
