// The test harness under the ways a test file really ends early: node's test runner ends a file that
// overruns --test-timeout with SIGTERM to the file's process (its after() hooks never run), and Ctrl-C on
// `make test` sends SIGINT to the whole process group. A small test file, written here, starts what the
// helpers make (a berthd with a running container that publishes a port, a docker-registry, a network
// namespace, a scratch directory), records it, and hangs; it is run by a real `node --test` and ended in
// both ways. Afterwards none of it may be left: no process, mount, cgroup, bridge, nftables table, network
// namespace or directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanupRoot, runCmd, type TestNet } from '../helpers/berthd';
import { waitFor } from '../helpers/clients';
import { reapDir, reapOnExit } from '../helpers/reaper';

const HELPERS = path.join(__dirname, '..', 'helpers');

interface Made {
  pid: number;
  berthd: number;
  registry: number;
  container: number;
  root: string;
  cgroupParent: string;
  net: TestNet;
  netns: string;
  scratch: string;
  readyMs: number;
}

/** The file under test: it makes everything, writes what it made to `state`, and waits for ever. Its one
 *  test has a timeout of its own, so that only the runner's file-level --test-timeout can end it. */
function hangingFile(dir: string, state: string): string {
  const file = path.join(dir, 'hang.test.js');
  const req = (m: string) => `require(${JSON.stringify(path.join(HELPERS, m))})`;
  writeFileSync(file, `
const { test, after } = require('node:test');
const { writeFileSync, appendFileSync } = require('node:fs');
const { berthdForFile, scratchDir } = ${req('file.js')};
const { TestNetns } = ${req('netns.js')};
const { startRegistry } = ${req('registry.js')};
const started = Date.now();
const b = berthdForFile({ fixtures: ['busybox'] });
const ns = new TestNetns('berth-hx');
after(() => ns.remove());
const scratch = scratchDir('berth-hx-');
after(() => appendFileSync(${JSON.stringify(`${state}.after`)}, 'after ran\\n'));
test('makes everything, then hangs', { timeout: 3600000 }, async () => {
  await ns.make();
  const reg = await startRegistry(scratch, 'hx');
  const run = await b.docker(['run', '-d', '-p', '127.0.0.1::80', 'busybox', 'sleep', '3600']);
  if (run.code !== 0) throw new Error(run.stderr);
  const c = JSON.parse((await b.docker(['inspect', run.stdout.trim()])).stdout)[0];
  writeFileSync(${JSON.stringify(state)}, JSON.stringify({ pid: process.pid, berthd: b.proc.pid, registry: reg.proc.pid,
    container: c.State.Pid, root: b.root, cgroupParent: b.cgroupParent, net: b.net, netns: ns.name, scratch, readyMs: Date.now() - started }));
  setInterval(() => {}, 1000);
  await new Promise(() => {});
});
`);
  return file;
}

/** A process is gone, or a zombie nobody has reaped yet (it holds nothing any more). */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function cgroupDirs(parent: string): string[] {
  const out: string[] = [];
  for (const h of ['', ...readdirSync('/sys/fs/cgroup')]) if (existsSync(path.join('/sys/fs/cgroup', h, parent))) out.push(path.join('/sys/fs/cgroup', h, parent));
  return out;
}

/** What is left of `m`, named. */
async function leftovers(m: Made): Promise<string[]> {
  const left: string[] = [];
  for (const [what, pid] of [['the test file', m.pid], ['berthd', m.berthd], ['docker-registry', m.registry], ['the container', m.container]] as const) {
    if (!gone(pid)) left.push(`${what} (pid ${pid})`);
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((p) => p && p.startsWith(`${m.root}/`));
  if (mounts.length) left.push(`mounts ${mounts.join(', ')}`);
  for (const d of [m.root, m.scratch, `/run/netns/${m.netns}`]) if (existsSync(d)) left.push(d);
  if ((await runCmd('ip', ['netns', 'list'])).stdout.split('\n').some((l) => l.split(' ')[0] === m.netns)) left.push(`netns ${m.netns}`);
  for (const d of cgroupDirs(m.cgroupParent)) left.push(d);
  if ((await runCmd('ip', ['link', 'show', 'dev', m.net.bridge])).code === 0) left.push(`bridge ${m.net.bridge}`);
  if ((await runCmd('nft', ['list', 'table', 'ip', m.net.table])).code === 0) left.push(`nft table ${m.net.table}`);
  return left;
}

/** Removes whatever the file left, so that a failure here leaves nothing either. */
async function sweep(m: Made): Promise<void> {
  for (const pid of [m.registry, m.berthd, m.pid]) {
    // Only those still running what the file started (pids are checked against their command line).
    try {
      if (/docker-registry|berthd|hang\.test\.js/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) process.kill(pid, 'SIGKILL');
    } catch { /* gone */ }
  }
  cleanupRoot(m.root, path.join(m.root, 'exec'), m.cgroupParent, m.net);
  await runCmd('ip', ['netns', 'del', m.netns]);
  rmSync(m.scratch, { recursive: true, force: true });
}

/** Runs the hanging file under `node --test` in a process group of its own; `end` ends it once it has made
 *  everything. Returns what it made, the runner's output and what was left once the runner had ended (then
 *  removed, so that a failure leaves nothing behind either). */
async function runAndEnd(args: string[], end: (runner: number) => void, readyWithinMs: number): Promise<{ made: Made; out: string; left: string[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-harness-'));
  const dirReap = reapDir(dir);
  const state = path.join(dir, 'made.json');
  let made: Made | undefined;
  try {
    // Without NODE_TEST_CONTEXT, which this file's own runner set: with it, `node --test` runs as a
    // runner's child instead of as the runner.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const runner = spawn(process.execPath, ['--test', '--test-concurrency=1', ...args, hangingFile(dir, state)], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    runner.stdout!.on('data', (c) => { out += c; });
    runner.stderr!.on('data', (c) => { out += c; });
    const stopRun = reapOnExit('the hanging node --test run', () => {
      try { process.kill(-runner.pid!, 'SIGTERM'); } catch { /* gone */ }
    });
    let ended: { code: number | null; signal: string | null } | undefined;
    runner.on('close', (code, signal) => { ended = { code, signal }; });
    try {
      made = await waitFor('the file to have made everything', () => {
        if (existsSync(state)) return JSON.parse(readFileSync(state, 'utf8')) as Made;
        if (runner.exitCode !== null || runner.signalCode !== null) throw new Error(`node --test ended first: ${out}`);
        return undefined;
      }, readyWithinMs, 100);
      end(runner.pid!);
      await waitFor('node --test to end', () => ended, 120_000, 100);
      // On SIGINT the runner itself ends at once; the file's process, which got the signal too, may still be
      // cleaning up.
      await waitFor('the file\'s process to end', () => gone(made!.pid), 60_000, 100);
      assert.equal(existsSync(`${state}.after`), false, 'the file\'s after() hooks ran: the file did not end the way under test');
      return { made, out, left: await leftovers(made) };
    } finally {
      // A failure here (or this process being ended) must not leave the run hanging: SIGTERM lets the
      // file clean up after itself, as under test; SIGKILL only if it does not end.
      if (!ended) {
        try { process.kill(-runner.pid!, 'SIGTERM'); } catch { /* gone */ }
        await waitFor('node --test to end', () => ended, 60_000, 100).catch(() => {
          try { process.kill(-runner.pid!, 'SIGKILL'); } catch { /* gone */ }
        });
      }
      stopRun.dispose();
    }
  } finally {
    if (made) {
      const left = await leftovers(made);
      if (left.length) await sweep(made);
    }
    dirReap.run();
  }
}

let readyMs = 0;

test('Ctrl-C on make test (SIGINT to the process group): everything the file made is gone', { timeout: 240_000 }, async () => {
  const r = await runAndEnd(['--test-timeout=3600000'], (runner) => process.kill(-runner, 'SIGINT'), 90_000);
  readyMs = r.made.readyMs;
  // A live container and its published port were there to be removed.
  assert.ok(r.made.container > 0);
  assert.deepEqual(r.left, [], r.out);
});

test('a file ended by --test-timeout (SIGTERM from the runner): everything it made is gone', { timeout: 240_000 }, async () => {
  // Long enough for the file to make everything (it took readyMs the first time; a loaded machine varies),
  // short for the suite.
  const timeout = Math.max(15_000, 3 * readyMs + 10_000);
  const r = await runAndEnd([`--test-timeout=${timeout}`], () => {}, timeout);
  assert.match(r.out, new RegExp(`test timed out after ${timeout}ms`), r.out);
  assert.deepEqual(r.left, [], r.out);
});
