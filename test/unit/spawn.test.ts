// runtime/spawn.ts: berthd's children started by the addon's posix_spawn, with real processes. What the
// child sees (argv, environment, only the fds it was given, its own session, no blocked or ignored
// signal), what its end reports (exit code, signal name), that every child is reaped (no zombie is left
// under this process), and what a binary that is not there says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProcess, runProcess, nativeSpawn, type HostProcess } from '../../daemon/runtime/spawn';

function exited(p: HostProcess): Promise<[number | null, string | null]> {
  return new Promise((resolve) => p.once('exit', (code, sig) => resolve([code, sig])));
}

/** This process's children that are zombies (exited, not reaped), from /proc/self/task/<tid>/children. */
function zombieChildren(): number[] {
  const out: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/self/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const pid of kids.trim().split(/\s+/).filter(Boolean)) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) out.push(Number(pid));
      } catch { /* gone meanwhile */ }
    }
  }
  return out;
}

test('the addon spawner is the one in use on this kernel', () => {
  assert.equal(nativeSpawn(), true);
});

test('argv and environment are exactly those given', async () => {
  const r = await runProcess('/bin/sh', ['-c', 'printf "%s|" "$0" "$@"; echo; env', 'arg zero', 'one', '', 'three  spaced'], {});
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n')[0], 'arg zero|one||three  spaced|');
  // The environment: the process's own unless given, then only what was given.
  const p = startProcess('/usr/bin/env', [], ['ignore', 'pipe', 'ignore'], { env: { BERTH_A: 'x=y', BERTH_B: '' } });
  let out = '';
  p.stdout!.on('data', (c: Buffer) => (out += c));
  const [code] = await exited(p);
  await new Promise((r) => (p.stdout!.readableEnded ? r(undefined) : p.stdout!.once('close', r)));
  assert.equal(code, 0);
  assert.deepEqual(out.trim().split('\n').sort(), ['BERTH_A=x=y', 'BERTH_B=']);
});

test('the child has only fds 0-3, in a session of its own, with no signal blocked or ignored', async () => {
  // berthd's own fds must not leak: open a few here that the child could otherwise inherit.
  const p = startProcess('/bin/sh', ['-c', '{ ' + [
    'ls /proc/self/fd',
    'readlink /proc/self/fd/0 /proc/self/fd/2',
    'cut -d" " -f6 /proc/self/stat',
    'grep -E "^Sig(Blk|Ign):" /proc/self/status',
    'echo pid $$',
  ].join('; ') + '; } >&3'], ['ignore', 'ignore', 'ignore', 'pipe'], { detached: true });
  let out = '';
  p.stdio[3]!.on('data', (c: Buffer) => (out += c));
  const [code] = await exited(p);
  await new Promise((r) => (p.stdio[3]!.readableEnded ? r(undefined) : p.stdio[3]!.once('close', r)));
  assert.equal(code, 0);
  const lines = out.trim().split('\n');
  // ls's own directory fd is the 5th entry (the one after 3): everything up to 3 and nothing above but it.
  const fds = lines.slice(0, lines.indexOf('/dev/null')).map(Number);
  assert.deepEqual(fds.slice(0, 4), [0, 1, 2, 3]);
  assert.ok(fds.length <= 5, `fds: ${fds.join(' ')}`);
  assert.deepEqual(lines.filter((l) => l === '/dev/null').length, 2, out);
  const sid = Number(lines[lines.indexOf('/dev/null') + 2]);
  const pid = Number(lines.find((l) => l.startsWith('pid '))!.slice(4));
  assert.equal(pid, p.pid);
  assert.equal(sid, p.pid, 'setsid: the shell leads its own session');
  assert.ok(lines.includes('SigBlk:\t0000000000000000'), out);
  // node ignores SIGPIPE; the child must not inherit that.
  assert.ok(lines.includes('SigIgn:\t0000000000000000'), out);
});

test('a child not detached stays in this session', async () => {
  const r = await runProcess('/bin/sh', ['-c', 'cut -d" " -f6 /proc/self/stat']);
  const ownSid = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[3];
  assert.equal(r.stdout.trim(), ownSid);
});

test('exit codes and signals are reported, and every child is reaped', async () => {
  const r = await runProcess('/bin/sh', ['-c', 'exit 7']);
  assert.deepEqual([r.code, r.signal], [7, null]);
  const p = startProcess('/bin/sleep', ['30'], ['ignore', 'ignore', 'ignore']);
  const gone = exited(p);
  assert.equal(p.kill('SIGKILL'), true);
  assert.deepEqual(await gone, [null, 'SIGKILL']);
  assert.equal(p.kill('SIGTERM'), false, 'a reaped child is not signalled again (its pid may be another\'s)');
  // Children that nobody waits for in JS (no 'exit' listener, not kept alive) are reaped all the same.
  const many = Array.from({ length: 20 }, () => startProcess('/bin/true', [], ['ignore', 'ignore', 'ignore'], { detached: true, keepAlive: false }));
  const pids = many.map((m) => m.pid!);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && pids.some((pid) => { try { readFileSync(`/proc/${pid}/stat`); return true; } catch { return false; } })) {
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.deepEqual(zombieChildren(), []);
  for (const pid of pids) assert.throws(() => readFileSync(`/proc/${pid}/stat`), 'reaped: the pid is gone');
});

test('input, stdout and stderr of a tool; its timeout and output bound', async () => {
  const r = await runProcess('/bin/sh', ['-c', 'cat; echo to-err >&2'], { input: 'from stdin\n' });
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'from stdin\n', 'to-err\n']);
  const slow = await runProcess('/bin/sleep', ['30'], { timeoutMs: 200 });
  assert.equal(slow.signal, 'SIGTERM');
  assert.match(String(slow.error?.message), /timed out after 200 ms/);
  const loud = await runProcess('/bin/sh', ['-c', 'yes | head -c 100000; sleep 30'], { maxBuffer: 1000 });
  assert.equal(loud.signal, 'SIGTERM');
  assert.match(String(loud.error?.message), /more than 1000 bytes/);
  assert.deepEqual(zombieChildren(), []);
});

test('a binary that is not there, or not executable, says so and leaves nothing running', async () => {
  const r = await runProcess('/nonexistent/berth-shim', ['--id', 'x']);
  assert.equal(r.code, null);
  assert.equal((r.error as NodeJS.ErrnoException).code, 'ENOENT');
  assert.match(String(r.error?.message), /^ENOENT: No such file or directory, spawn '\/nonexistent\/berth-shim'/);
  const byName = await runProcess('berth-no-such-tool', []);
  assert.equal((byName.error as NodeJS.ErrnoException).code, 'ENOENT');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-spawn-'));
  try {
    writeFileSync(path.join(dir, 'plain'), '#!/bin/sh\n', { mode: 0o644 });
    const notExec = await runProcess(path.join(dir, 'plain'), []);
    assert.equal((notExec.error as NodeJS.ErrnoException).code, 'EACCES');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // A start that failed reports it on 'error', after the caller could listen, and never 'exit'.
  const p = startProcess('/nonexistent/x', [], ['ignore', 'ignore', 'ignore', 'pipe']);
  assert.equal(p.pid, undefined);
  const err = await new Promise<Error>((res) => p.once('error', res));
  assert.match(err.message, /ENOENT/);
  assert.deepEqual(zombieChildren(), []);
});
