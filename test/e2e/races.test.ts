// Path races and stale pids against a real berthd. A container flips a directory between a real one and a
// symlink to a host directory holding a sentinel (or to /) in a tight, bounded loop while docker cp runs
// in both directions, subpath mounts are made and empty volumes are filled from the image: the sentinel
// directory and the host's / must never be read, written, chmod'ed or mounted (berthd resolves every path
// beneath an fd of the root, runtime/inroot.ts). Then containers whose process has died are refused with
// a clear error instead of their pid being used, and a pid with another start time is never joined.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, lstatSync, rmSync, existsSync, chmodSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar-stream';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli, waitFor } from '../helpers/clients';
import type { Berthd } from '../helpers/berthd';
import { Root } from '../../daemon/runtime/inroot';
import { holdNamespace, identify, stillSame, ProcessGone } from '../../daemon/runtime/process';

const TAG = `berth-race-${process.pid}`;
const SECRET = `HOST-SECRET-${process.pid}`;
let hostDir: string;

/** Everything about the sentinel directory that a stray read-modify would change. */
function snapshot(dir: string): string {
  const st = lstatSync(dir);
  const parts = [`. ${st.mode} ${st.mtimeMs} ${st.uid}`];
  for (const n of readdirSync(dir).sort()) {
    const s = lstatSync(path.join(dir, n));
    parts.push(`${n} ${s.mode} ${s.size} ${s.mtimeMs} ${s.uid}:${s.gid} ${s.isFile() ? readFileSync(path.join(dir, n), 'utf8') : ''}`);
  }
  return parts.join('\n');
}

/** Names a stray write through a symlink to / would make in the host's root: none may appear there. */
function assertNoStrays(n: number): void {
  for (let i = 0; i < n; i++) assert.ok(!existsSync(`/${TAG}-${i}`), `/${TAG}-${i} appeared on the host`);
  assert.equal(existsSync('/f'), hostHadF, 'no /f made on the host');
}
let hostHadF = false;

before(() => {
  hostHadF = existsSync('/f');
  hostDir = mkdtempSync(path.join(os.tmpdir(), 'berth-race-host-'));
  writeFileSync(path.join(hostDir, 'f'), `${SECRET}\n`);
  chmodSync(path.join(hostDir, 'f'), 0o640);
  writeFileSync(path.join(hostDir, `${TAG}-sentinel`), 'do not touch\n');
});

after(() => {
  if (hostDir) rmSync(hostDir, { recursive: true, force: true });
});

function tarOf(files: Array<{ name: string; body: string; mode: number }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<Buffer>((resolve) => pack.on('end', () => resolve(Buffer.concat(chunks))));
  for (const f of files) pack.entry({ name: f.name, mode: f.mode, mtime: new Date(0) }, f.body);
  pack.finalize();
  return done;
}

/** The flip loop, bounded: /r/d is, by renames, a real directory holding `f` (for a moment longer, so
 *  that copies also get through), then nothing, a symlink to the sentinel directory, nothing, a symlink
 *  to /, over and over. */
function flipLoop(count: number): string {
  return `mkdir -p /r/real && echo inside > /r/real/f && ln -s ${hostDir} /r/lnkH && ln -s / /r/lnkR && i=0; ` +
    `while [ $i -lt ${count} ]; do mv /r/real /r/d; usleep 10000; mv /r/d /r/real; mv /r/lnkH /r/d; mv /r/d /r/lnkH; ` +
    `mv /r/lnkR /r/d; mv /r/d /r/lnkR; i=$((i+1)); done; sleep 3600`;
}

/** GETs and PUTs through the flipping directory; the sentinel directory and / stay as they were. */
async function raceCp(b: Berthd, ctr: string, rounds: number): Promise<{ got: number; put: number }> {
  const before = snapshot(hostDir);
  let got = 0;
  let put = 0;
  const body = await tarOf([{ name: 'f', body: 'from-cp\n', mode: 0o4777 }]);
  for (let i = 0; i < rounds; i++) {
    const g = await api(b, 'GET', `/containers/${ctr}/archive?path=${encodeURIComponent('/r/d/f')}`);
    assert.ok(!g.body.includes(SECRET), `GET read the host's file (round ${i})`);
    if (g.status === 200 && /inside|from-cp/.test(g.body)) got++;
    const h = await api(b, 'HEAD', `/containers/${ctr}/archive?path=${encodeURIComponent('/r/d/f')}`);
    assert.ok([200, 404, 400].includes(h.status), `HEAD ${h.status}`);
    const named = await tarOf([{ name: `${TAG}-${i}`, body: 'stray\n', mode: 0o600 }]);
    for (const tarBody of [body, named]) {
      const p = await api(b, 'PUT', `/containers/${ctr}/archive?path=${encodeURIComponent('/r/d')}`, { body: tarBody, headers: { 'Content-Type': 'application/x-tar' } });
      if (p.status === 200) put++;
      else assert.ok([404, 400, 500].includes(p.status), `PUT ${p.status} ${p.body}`);
    }
  }
  // GETs alone until one went through the real directory (its `f`, or the one a PUT put there), bounded:
  // the race is only shown to be run if copies also get through.
  for (let i = 0; i < 200 && got === 0; i++) {
    const g = await api(b, 'GET', `/containers/${ctr}/archive?path=${encodeURIComponent('/r/d/f')}`);
    assert.ok(!g.body.includes(SECRET), `GET read the host's file (extra round ${i})`);
    if (g.status === 200 && /inside|from-cp/.test(g.body)) got++;
  }
  assert.equal(snapshot(hostDir), before, 'the sentinel directory is unchanged');
  assertNoStrays(rounds);
  return { got, put };
}

describe('with openat2', () => {
  const b = berthdForFile({ fixtures: ['busybox'] });
  const { ok } = dockerCli(() => b);

  test('docker cp both ways while a directory flips to a symlink to the host (root and /proc/PID/root)', async () => {
    // One container reached through its merged root, one with a volume (reached through /proc/PID/root).
    await ok('run', '-d', '--name', 'race-cp', 'busybox', 'sh', '-c', flipLoop(40000));
    await ok('run', '-d', '--name', 'race-cpv', '-v', 'racevol:/vol', 'busybox', 'sh', '-c', flipLoop(40000));
    try {
      for (const ctr of ['race-cp', 'race-cpv']) {
        await waitFor('the flip loop', async () => (await b.docker(['exec', ctr, 'test', '-e', '/r'])).code === 0);
        const r = await raceCp(b, ctr, 60);
        // The race was real: copies went through the directory in both directions.
        assert.ok(r.got > 0 && r.put > 0, `copies got through (${JSON.stringify(r)})`);
      }
      // The CLI, both directions, through the same flipping directory.
      const out = mkdtempSync(path.join(os.tmpdir(), 'berth-race-out-'));
      try {
        writeFileSync(path.join(out, `${TAG}-cli`), 'cli\n');
        for (let i = 0; i < 5; i++) {
          const got = await b.docker(['cp', 'race-cpv:/r/d/.', path.join(out, `copy-${i}`)]);
          if (got.code === 0) for (const n of readdirSync(path.join(out, `copy-${i}`))) assert.notEqual(readFileSync(path.join(out, `copy-${i}`, n), 'utf8'), `${SECRET}\n`);
          await b.docker(['cp', path.join(out, `${TAG}-cli`), 'race-cpv:/r/d/']);
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      assert.ok(!existsSync(path.join(hostDir, `${TAG}-cli`)) && !existsSync(`/${TAG}-cli`), 'the CLI copy landed inside the container only');
    } finally {
      await b.docker(['rm', '-f', 'race-cp', 'race-cpv']);
      await b.docker(['volume', 'rm', '-f', 'racevol']);
    }
  });

  test('PUT refuses a tar whose path or hard link leaves the target with 400, writing nothing outside', async () => {
    await ok('run', '-d', '--name', 'race-tar', 'busybox', 'sh', '-c', 'mkdir -p /t/in && echo keep > /t/keep && sleep 3600');
    try {
      await waitFor('/t/in', async () => (await b.docker(['exec', 'race-tar', 'test', '-f', '/t/keep'])).code === 0);
      const cases: Array<{ entries: Array<Partial<tar.Header> & { name: string; body?: string }>; re: RegExp }> = [
        { entries: [{ name: '../escaped', body: 'x' }], re: /"\.\.\/escaped" is outside of "\/t\/in"/ },
        { entries: [{ name: 'a/../../escaped2', body: 'x' }], re: /is outside of/ },
        { entries: [{ name: 'ok', body: 'x' }, { name: 'hl', type: 'link', linkname: '../keep' }], re: /invalid hardlink/ },
        { entries: [{ name: 'hl2', type: 'link', linkname: '../../../../etc/passwd' }], re: /invalid hardlink/ },
      ];
      for (const c of cases) {
        const pack = tar.pack();
        const chunks: Buffer[] = [];
        pack.on('data', (x: unknown) => chunks.push(x as Buffer));
        const done = new Promise<void>((r) => pack.on('end', () => r()));
        for (const e of c.entries) pack.entry({ mode: 0o644, ...e } as tar.Header, e.body ?? '');
        pack.finalize();
        await done;
        const r = await api(b, 'PUT', `/containers/race-tar/archive?path=${encodeURIComponent('/t/in')}`, { body: Buffer.concat(chunks), headers: { 'Content-Type': 'application/x-tar' } });
        assert.equal(r.status, 400, r.body);
        assert.match(r.json().message, c.re);
      }
      const ls = await ok('exec', 'race-tar', 'sh', '-c', 'ls -a /t /t/in; cat /t/keep');
      assert.doesNotMatch(ls, /escaped|hl/);
      assert.match(ls, /keep\n$/);
    } finally {
      await b.docker(['rm', '-f', 'race-tar']);
    }
  });

  test('subpath mounts while the subpath flips to a symlink to the host', async () => {
    // The racer shares the volume and flips `sub` between a directory and a symlink to the sentinel dir.
    await ok('run', '-d', '--name', 'race-sub', '-v', 'subrace:/w', 'busybox', 'sh', '-c',
      `mkdir /w/real && echo inside > /w/real/inside && ln -s ${hostDir} /w/lnk && i=0; while [ $i -lt 40000 ]; do ` +
      `mv /w/real /w/sub; usleep 500; mv /w/sub /w/real; mv /w/lnk /w/sub; mv /w/sub /w/lnk; i=$((i+1)); done; sleep 3600`);
    const before = snapshot(hostDir);
    let mounted = 0;
    try {
      for (let i = 0; i < 12; i++) {
        const r = await b.docker(['run', '--rm', '--mount', 'type=volume,src=subrace,dst=/m,volume-subpath=sub', 'busybox', 'sh', '-c', 'ls -a /m; grep " /m " /proc/self/mountinfo']);
        assert.ok(!r.stdout.includes(`${TAG}-sentinel`) && !r.stdout.includes(path.basename(hostDir)), `the host directory was mounted: ${r.stdout}`);
        if (r.code === 0) {
          mounted++;
          // The volume's own directory (under whichever name the renames gave it at the time).
          assert.match(r.stdout, /\/volumes\/subrace\/_data\/(sub|real) \/m /, r.stdout);
        } else {
          // Caught between renames: refused, or the shim finds the staged directory moved away.
          assert.match(r.stderr, /subpath sub does not exist in the volume|no such file or directory|not a directory/i);
        }
      }
      assert.ok(mounted > 0, 'some subpath mounts were made');
      assert.equal(snapshot(hostDir), before);
      // No staging mount is left on the host.
      assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(b.execRoot, 'subpaths')), 'staging mounts are gone');
    } finally {
      await b.docker(['rm', '-f', 'race-sub']);
      await b.docker(['volume', 'rm', '-f', 'subrace']);
    }
  });

  test('copy-up into a new volume while a container sharing it plants symlinks to the host', async () => {
    // The racer keeps putting symlinks where the image's /etc files will be copied, and removing them.
    await ok('run', '-d', '--name', 'race-up', '-v', 'uprace:/v', 'busybox', 'sh', '-c',
      `i=0; while [ $i -lt 40000 ]; do ln -s ${hostDir}/f /v/passwd; ln -s ${hostDir} /v/group; rm -f /v/passwd /v/group; usleep 40000; i=$((i+1)); done; sleep 3600`);
    const before = snapshot(hostDir);
    let copied = 0;
    const outcomes: string[] = [];
    try {
      // Until a few copies were made (the volume must be empty when the start looks): bounded.
      for (let i = 0; i < 25 && copied < 3; i++) {
        await b.docker(['exec', 'race-up', 'sh', '-c', 'rm -rf /v/* /v/.[!.]*']);
        const r = await b.docker(['run', '--rm', '-v', 'uprace:/etc', 'busybox', 'cat', '/etc/passwd']);
        assert.ok(!r.stdout.includes(SECRET), 'the host file was copied');
        if (r.code === 0 && /root:x:0:0/.test(r.stdout)) copied++;
        else outcomes.push(r.stderr.trim());
      }
      assert.ok(copied > 0, `some copies were made: ${outcomes.join(' | ')}`);
      assert.equal(snapshot(hostDir), before);
      assertNoStrays(0);
    } finally {
      await b.docker(['rm', '-f', 'race-up']);
      await b.docker(['volume', 'rm', '-f', 'uprace']);
    }
  });

  test('a container whose process died meanwhile: cp, exec and --pid/--ipc container: fail clearly', async () => {
    await ok('run', '-d', '--name', 'race-dead', '--ipc', 'shareable', '-v', 'deadvol:/vol', 'busybox', 'sleep', '3600');
    const pid = Number(await ok('inspect', '-f', '{{.State.Pid}}', 'race-dead'));
    const shim = Number(readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ')[1]);
    // The shim is stopped so that it cannot reap or report: berthd still thinks the container runs, and
    // its pid is a zombie's.
    process.kill(shim, 'SIGSTOP');
    try {
      process.kill(pid, 'SIGKILL');
      await waitFor('the zombie', () => readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].startsWith('Z'));
      const cp = await api(b, 'GET', `/containers/race-dead/archive?path=${encodeURIComponent('/etc/hostname')}`);
      assert.equal(cp.status, 409, cp.body);
      assert.match(cp.json().message, /is not running/);
      const ex = await b.docker(['exec', 'race-dead', 'true']);
      assert.notEqual(ex.code, 0);
      assert.match(ex.stdout + ex.stderr, /not running/);
      const join = await b.docker(['run', '--rm', '--pid', 'container:race-dead', 'busybox', 'true']);
      assert.notEqual(join.code, 0);
      assert.match(join.stderr, /cannot join PID of a non running container/);
      const ipc = await b.docker(['run', '--rm', '--ipc', 'container:race-dead', 'busybox', 'true']);
      assert.notEqual(ipc.code, 0);
      assert.match(ipc.stderr, /cannot join IPC of a non running container/);
    } finally {
      process.kill(shim, 'SIGCONT');
    }
    await waitFor('the exit', async () => (await ok('inspect', '-f', '{{.State.Status}}', 'race-dead')).trim() === 'exited');
    await ok('rm', '-f', 'race-dead');
    await b.docker(['volume', 'rm', '-f', 'deadvol']);
  });
});

test('a pid with another start time is never joined or entered (the runtime seam)', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await waitFor('the child', () => existsSync(`/proc/${child.pid}/stat`));
    const ref = identify(child.pid!, process.pid);
    assert.ok(ref, 'a child of this process is identified');
    assert.ok(stillSame(ref));
    assert.equal(identify(child.pid!, 1), null, 'the parent must match');
    // The same pid under another start time: what a reused pid looks like.
    const reused = { pid: ref.pid, startTime: String(Number(ref.startTime) + 1) };
    assert.equal(stillSame(reused), false);
    assert.throws(() => holdNamespace(reused, 'net'), ProcessGone);
    await assert.rejects(Root.open(`/proc/${reused.pid}/root`, reused), (e: NodeJS.ErrnoException) => e.code === 'ESRCH');
    const held = holdNamespace(ref, 'net');
    assert.match(held.path, new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
    held.release();
    const root = await Root.open(`/proc/${ref.pid}/root`, ref);
    await root.close();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(stillSame(ref), false, 'a process that is gone is not the same');
    assert.throws(() => holdNamespace(ref, 'net'), ProcessGone);
  } finally {
    child.kill('SIGKILL');
  }
});

describe('with the O_PATH walk (no openat2)', () => {
  const b = berthdForFile({ fixtures: ['busybox'], start: { env: { BERTH_INROOT_WALK: '1' } } });
  const { ok } = dockerCli(() => b);

  test('docker cp both ways while a directory flips to a symlink to the host', async () => {
    assert.match(readFileSync(path.join(b.root, 'berthd.log'), 'utf8'), /"resolver":"walk"/);
    await ok('run', '-d', '--name', 'race-walk', '-v', 'walkvol:/vol', 'busybox', 'sh', '-c', flipLoop(40000));
    try {
      await waitFor('the flip loop', async () => (await b.docker(['exec', 'race-walk', 'test', '-e', '/r'])).code === 0);
      const r = await raceCp(b, 'race-walk', 60);
      assert.ok(r.got > 0 && r.put > 0, `copies got through (${JSON.stringify(r)})`);
    } finally {
      await b.docker(['rm', '-f', 'race-walk']);
      await b.docker(['volume', 'rm', '-f', 'walkvol']);
    }
  });
});
