// docker logs -f across rotations, as clients see it: a client that takes nothing for seconds while the
// log rotates some 70 times under the follower (json-file, and local with its gzipped files) still gets
// every line once and in order; --tail, --since and --until with -f start in rotated files and go on
// (--until ends the stream at the first later entry, as Docker); clients that leave mid-follow, or stop
// reading and then leave, take berthd's descriptors on the log files with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readdirSync, readlinkSync } from 'node:fs';
import { berthdForFile } from '../helpers/file';
import { show, sleep, spawnDocker, waitFor } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });

async function ok(...args: string[]): Promise<string> {
  const r = await b.docker(args, { timeoutMs: 60000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}\n${show(r).slice(0, 4000)}`);
  return r.stdout;
}

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
