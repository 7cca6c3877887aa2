// docker logs read back through the CLI: large logs streamed (all lines, in order, without the daemon
// holding the log in memory), --tail from the end across rotated files, -f across several rotations,
// and output with quotes, backslashes, control characters and non-ASCII text given back byte for byte.
// Following across rotations as clients see it: a client that takes nothing for seconds while the log
// rotates some 70 times under the follower (json-file, and local with its gzipped files) still gets every
// line once and in order; --tail, --since and --until with -f start in rotated files and go on (--until
// ends the stream at the first later entry, as Docker); clients that leave mid-follow, or stop reading and
// then leave, take berthd's descriptors on the log files with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
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

/** berthd's open descriptors, and those on files under `dir`. */
function berthdFds(dir = '\0'): { all: number; under: number } {
  let all = 0;
  let under = 0;
  for (const fd of readdirSync(`/proc/${b.proc.pid}/fd`)) {
    all++;
    try {
      if (readlinkSync(`/proc/${b.proc.pid}/fd/${fd}`).startsWith(dir)) under++;
    } catch { /* closed meanwhile */ }
  }
  return { all, under };
}

/**
 * GET /containers/{id}/logs?follow=1 as a raw HTTP client: the multiplexed stream decoded into text.
 * `pauseMs`: the client reads nothing for that long after the headers (its socket fills and berthd waits).
 */
function follow(id: string, query: string, pauseMs = 0): { text: Promise<string>; got: () => number; abort: () => void } {
  let req: http.ClientRequest;
  let n = 0;
  const text = new Promise<string>((resolve, reject) => {
    req = http.get({ socketPath: b.sock, path: `/containers/${id}/logs?follow=1&stdout=1&stderr=1&${query}` }, (res) => {
      assert.equal(res.statusCode, 200);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => { chunks.push(c); n += c.length; });
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const out: Buffer[] = [];
        for (let p = 0; p + 8 <= raw.length;) {
          const len = raw.readUInt32BE(p + 4);
          out.push(raw.subarray(p + 8, p + 8 + len));
          p += 8 + len;
        }
        resolve(Buffer.concat(out).toString());
      });
      res.on('error', reject);
      if (pauseMs > 0) {
        res.pause();
        setTimeout(() => res.resume(), pauseMs);
      }
    });
    req.on('error', reject);
  });
  return { text, got: () => n, abort: () => req.destroy() };
}

const entries = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `entry ${from + i}`);
// Each line ~100 bytes: 4000 of them are 400 kB of output, more than the socket's buffers hold.
const PAD = 'p'.repeat(88);

for (const driver of ['json-file', 'local']) {
  test(`${driver}: a client that takes nothing for 3 s while the log rotates ~70 times still gets every line, in order`, async () => {
    const name = `slow-${driver}`;
    await ok('run', '-d', '--name', name, '--log-driver', driver, '--log-opt', 'max-size=8k', '--log-opt', 'max-file=99',
      'busybox', 'sh', '-c', `sleep 1; i=0; while [ $i -lt 4000 ]; do echo "entry $i ${PAD}"; i=$((i+1)); done; sleep 1`);
    const id = (await ok('inspect', '-f', '{{.Id}}', name)).trim();
    const f = follow(id, '', 3000);
    const lines = (await Promise.race([f.text, sleep(90000).then(() => 'timeout')])).split('\n').slice(0, -1);
    assert.notEqual(lines[0], 'timeout', 'the follow did not end when the container exited');
    assert.equal(lines.length, 4000, `got ${lines.length} lines; first ${lines[0]?.slice(0, 12)} last ${lines[lines.length - 1]?.slice(0, 12)}`);
    lines.forEach((l, i) => assert.equal(l, `entry ${i} ${PAD}`));
    // It did rotate under the follower, many times.
    const logDir = driver === 'local' ? `${b.dataRoot}/containers/${id}/local-logs` : `${b.dataRoot}/containers/${id}`;
    assert.ok(readdirSync(logDir).filter((e) => /\.log\.\d+(\.gz)?$/.test(e)).length >= 40);
    await ok('rm', '-f', name);
  });
}

test('-f with --tail, --since and --until start in rotated files and go on across rotations; --until ends it', async () => {
  await ok('run', '-d', '--name', 'win', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=99', 'busybox', 'sh', '-c',
    'i=0; while [ $i -lt 300 ]; do echo "entry $i"; i=$((i+1)); done; sleep 4; ' +
    'while [ $i -lt 600 ]; do echo "entry $i"; i=$((i+1)); done; sleep 1');
  await waitFor('the first 300 lines', async () => (await b.docker(['logs', 'win'])).stdout.includes('entry 299\n'));
  const stamped = (await ok('logs', '-t', 'win')).split('\n');
  const ts = (k: number) => stamped[k].split(' ')[0];
  const tail = spawnDocker(b, ['logs', '-f', '--tail', '50', 'win']);
  const since = spawnDocker(b, ['logs', '-f', '--since', ts(100), 'win']);
  const until = spawnDocker(b, ['logs', '-f', '--until', ts(200), 'win']);
  try {
    // Entries after --until are already there: the stream ends now, not when the container does.
    const u = await Promise.race([until.exited, sleep(3000).then(() => 'timeout' as const)]);
    assert.notEqual(u, 'timeout', '--until did not end the follow');
    assert.equal(until.stdout(), entries(0, 201).join('\n') + '\n');
    for (const c of [tail, since]) {
      const ex = await Promise.race([c.exited, sleep(60000).then(() => 'timeout' as const)]);
      assert.notEqual(ex, 'timeout');
    }
    assert.equal(tail.stdout(), entries(250, 600).join('\n') + '\n');
    assert.equal(since.stdout(), entries(100, 600).join('\n') + '\n');
  } finally {
    for (const c of [tail, since, until]) c.kill();
  }
  await ok('rm', '-f', 'win');
});

test('clients that leave mid-follow, or stop reading and then leave, leave no descriptor open in berthd', async () => {
  await ok('run', '-d', '--name', 'chatty', '--log-opt', 'max-size=4k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c',
    `i=0; while true; do echo "entry $i ${PAD}"; i=$((i+1)); done`);
  const id = (await ok('inspect', '-f', '{{.Id}}', 'chatty')).trim();
  const dir = `${b.dataRoot}/containers/${id}`;
  await waitFor('a rotated file', () => readdirSync(dir).some((e) => e.endsWith('.log.2')));
  // One follower first: node's inotify descriptor (made once, kept for the process) is then counted.
  const warm = follow(id, 'tail=1');
  warm.text.catch(() => undefined);
  await waitFor('output', () => warm.got() > 0, 10000, 10);
  warm.abort();
  await waitFor('berthd to let go of the first follower\'s files', () => berthdFds(dir).under === 0, 10000, 50);
  await sleep(300);
  const before = berthdFds(dir);
  for (let k = 0; k < 12; k++) {
    // Half read along and leave; half read nothing (berthd waits on a full socket) and then leave.
    const f = follow(id, k % 3 === 0 ? 'tail=10' : '', k % 2 ? 60000 : 0);
    f.text.catch(() => undefined);
    if (k % 2 === 0) await waitFor('some output', () => f.got() > 20_000, 15000, 10);
    else await sleep(200);
    f.abort();
  }
  // The container keeps rotating its log meanwhile; berthd lets go of every file the followers held.
  const after = await waitFor('berthd to let go of the followers\' files', () => {
    const n = berthdFds(dir);
    return n.under === 0 && n.all <= before.all ? n : null;
  }, 15000, 100).catch((e) => {
    const now = berthdFds(dir);
    const links = readdirSync(`/proc/${b.proc.pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${b.proc.pid}/fd/${fd}`); } catch { return ''; } });
    throw new Error(`${(e as Error).message}: before ${JSON.stringify(before)} now ${JSON.stringify(now)}\n${links.join('\n')}`);
  });
  assert.equal(after.under, 0);
  await ok('rm', '-f', 'chatty');
});
