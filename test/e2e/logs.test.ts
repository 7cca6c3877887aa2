// docker logs read back through the CLI: large logs streamed (all lines, in order, without the daemon
// holding the log in memory), --tail from the end across rotated files, -f across several rotations,
// and output with quotes, backslashes, control characters and non-ASCII text given back byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { berthdForFile } from '../helpers/file';
import { spawnDocker, show, sleep, waitFor } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });

// Not dockerOk: a failing read of the 64 MiB log must not put all of it in the assertion message.
async function ok(...args: string[]): Promise<string> {
  const r = await b.docker(args, { timeoutMs: 180000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}\n${show(r).slice(0, 4000)}`);
  return r.stdout;
}

/** The peak resident memory of berthd (kB), from /proc. */
function berthdPeakKb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${b.proc.pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

test('a 64 MiB log is read back whole and in order, streamed (berthd does not hold it in memory)', async () => {
  // 1,000,000 numbered lines of 64 bytes each: "000001 xxxx…\n".
  const pad = 'x'.repeat(56);
  await ok('run', '--name', 'big', 'busybox', 'sh', '-c', `seq -w 1 1000000 | sed 's/$/ ${pad}/'`);
  const before = berthdPeakKb();
  const r = await b.docker(['logs', 'big'], { timeoutMs: 240000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout.length, 1_000_000 * 65, 'every byte of the log comes back');
  const lines = r.stdout.split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, 1_000_000);
  for (let i = 0; i < lines.length; i += 9973) assert.equal(lines[i], `${String(i + 1).padStart(7, '0')} ${pad}`);
  assert.equal(lines[lines.length - 1], `1000000 ${pad}`);
  // Streaming: berthd's peak memory grows by far less than the 64 MiB of output (plus the JSON around it)
  // that a read-it-all-first implementation would hold, several times over, as strings.
  const grew = berthdPeakKb() - before;
  assert.ok(grew < 48 * 1024, `berthd's peak resident memory grew by ${grew} kB while reading the log`);

  // --tail reads from the end: the last lines, quickly, also from a large log.
  const t0 = Date.now();
  assert.equal(await ok('logs', '--tail', '3', 'big'), ['0999998', '0999999', '1000000'].map((n) => `${n} ${pad}\n`).join(''));
  assert.ok(Date.now() - t0 < 20000);
  assert.equal(await ok('logs', '--tail', '0', 'big'), '');
  await ok('rm', 'big');
});

test('output with quotes, backslashes, tabs, control characters and non-ASCII text comes back byte for byte', async () => {
  const text = 'say "hi" \\ back\\slash\ttab <tag> & amp\r\n' +
    'ünïcödé 日本語 😀 \u2028sep\n' +
    '\u0001\u001b[31mred\u001b[0m\n' +
    'no newline at the end';
  const r = await b.docker(['run', '-i', '--name', 'bytes', 'busybox', 'cat'], { input: text });
  assert.equal(r.code, 0, show(r));
  assert.equal(await ok('logs', 'bytes'), text);
  // -t and --details keep the text as it is after their prefixes.
  const ts = (await ok('logs', '-t', '--details', 'bytes')).split('\n');
  assert.match(ts[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z  say "hi" \\ back\\slash\ttab <tag> & amp\r$/);
  assert.match(ts[1], /^\S+  ünïcödé 日本語 😀 \u2028sep$/);
  assert.equal(await ok('logs', '--tail', '2', 'bytes'), '\u0001\u001b[31mred\u001b[0m\nno newline at the end');
  await ok('rm', 'bytes');
});

test('--tail N across rotated files, and --since with --tail', async () => {
  await ok('run', '--name', 'rot', '--log-opt', 'max-size=1k', '--log-opt', 'max-file=10', 'busybox', 'sh', '-c',
    'i=0; while [ $i -lt 200 ]; do echo "line number $i"; i=$((i+1)); done');
  const all = (await ok('logs', 'rot')).split('\n').slice(0, -1);
  assert.equal(all[all.length - 1], 'line number 199');
  // Many more lines than one 1 KiB file holds: the tail starts in an older file.
  const t40 = (await ok('logs', '--tail', '40', 'rot')).split('\n').slice(0, -1);
  assert.deepEqual(t40, Array.from({ length: 40 }, (_, i) => `line number ${160 + i}`));
  // More than the log holds: everything that is kept.
  assert.deepEqual((await ok('logs', '--tail', '100000', 'rot')).split('\n').slice(0, -1), all);
  const stamped = (await ok('logs', '-t', 'rot')).split('\n').slice(0, -1);
  const since = stamped[stamped.length - 5].split(' ')[0];
  assert.deepEqual((await ok('logs', '--since', since, 'rot')).split('\n').slice(0, -1), all.slice(-5));
  assert.deepEqual((await ok('logs', '--since', since, '--tail', '2', 'rot')).split('\n').slice(0, -1), all.slice(-2));
  await ok('rm', 'rot');
});

test('logs -f keeps every line in order while the log rotates many times under it', async () => {
  // About 25 entries per file: 1500 lines rotate some 60 times, faster than -f polls.
  await ok('run', '-d', '--name', 'frot', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=99', 'busybox', 'sh', '-c',
    'sleep 2; i=0; while [ $i -lt 1500 ]; do echo "entry $i"; i=$((i+1)); done; sleep 1');
  const child = spawnDocker(b, ['logs', '-f', 'frot']);
  try {
    const ex = await Promise.race([child.exited, sleep(60000).then(() => 'timeout' as const)]);
    assert.notEqual(ex, 'timeout', 'logs -f did not end when the container exited');
    const lines = child.stdout().split('\n').slice(0, -1);
    assert.equal(lines.length, 1500, `got ${lines.length} lines; first ${lines[0]} last ${lines[lines.length - 1]}`);
    lines.forEach((l, i) => assert.equal(l, `entry ${i}`));
  } finally {
    child.kill();
  }
  await ok('rm', '-f', 'frot');
});

test('logs -f --tail 0 of a TTY container gives only new output, raw', async () => {
  await ok('run', '-d', '-t', '--name', 'ttyf', 'busybox', 'sh', '-c', 'echo before; sleep 3; echo after; sleep 1');
  await waitFor('the first line in the log', async () => (await b.docker(['logs', 'ttyf'])).stdout.includes('before'));
  const child = spawnDocker(b, ['logs', '-f', '--tail', '0', 'ttyf']);
  try {
    const ex = await Promise.race([child.exited, sleep(30000).then(() => 'timeout' as const)]);
    assert.notEqual(ex, 'timeout');
    assert.equal(child.stdout(), 'after\r\n');
  } finally {
    child.kill();
  }
  assert.equal(await ok('logs', 'ttyf'), 'before\r\nafter\r\n');
  await ok('rm', '-f', 'ttyf');
});
