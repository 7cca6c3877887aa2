// A second berthd on the same host (issue 11): it refuses to start on a data root, exec root, socket or
// bridge that a running berthd holds (a flock held for the first one's life, so not a pidfile that a crash
// leaves behind), saying which daemon holds it; the first one goes on untouched. Instances with roots,
// sockets and bridges of their own run side by side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, runCmd, startBerthd, type Berthd } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { show } from '../helpers/clients';

const first = berthdForFile({ fixtures: ['busybox'] });

/** Runs a second berthd with the first one's setting for `what` and its own for the rest; it must exit
 *  on its own (bounded: a daemon that started after all is killed by the timeout). */
async function second(what: 'data-root' | 'exec-root' | 'socket' | 'bridge'): Promise<{ code: number; stderr: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-second-'));
  try {
    const own = { sock: path.join(dir, 'b.sock'), data: path.join(dir, 'data'), exec: path.join(dir, 'exec') };
    const cfg = path.join(dir, 'daemon.json');
    // Its own bridge is one no test daemon uses (and it never gets that far when the lock works).
    writeFileSync(cfg, JSON.stringify({ bridge: what === 'bridge' ? first.net.bridge : 'berth-lk0', bip: '10.213.251.1/24' }));
    const args = [path.join(REPO, 'bin', 'berthd'),
      '-H', `unix://${what === 'socket' ? first.sock : own.sock}`,
      '--data-root', what === 'data-root' ? first.dataRoot : own.data,
      '--exec-root', what === 'exec-root' ? first.execRoot : own.exec,
      '--pidfile', path.join(dir, 'b.pid'), '--config-file', cfg, '--cgroup-parent', 'berth-test-lock'];
    const r = await runCmd(process.execPath, args, { timeoutMs: 15000 });
    return { code: r.code, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a second berthd refuses a data root, exec root, socket or bridge the first holds, naming it; the first is intact', async () => {
  await first.docker(['run', '-d', '--name', 'keeps', 'busybox', 'sleep', '300']);
  const pid = first.proc.pid;
  const cases: Array<['data-root' | 'exec-root' | 'socket' | 'bridge', RegExp]> = [
    ['data-root', new RegExp(`data root ${first.dataRoot} is in use by another berthd \\(pid ${pid},`)],
    ['exec-root', new RegExp(`exec root ${first.execRoot} is in use by another berthd \\(pid ${pid},`)],
    ['socket', new RegExp(`socket ${first.sock} is in use by another berthd \\(pid ${pid},`)],
    ['bridge', new RegExp(`bridge ${first.net.bridge} is in use by another berthd \\(pid ${pid},`)],
  ];
  for (const [what, message] of cases) {
    const r = await second(what);
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    assert.match(r.stderr, message, what);
  }
  // The first one: its socket still there and answering, its container running, its bridge in place.
  assert.ok(existsSync(first.sock));
  const ps = await first.docker(['ps', '--format', '{{.Names}}']);
  assert.equal(ps.stdout.trim(), 'keeps', show(ps));
  const ip = await first.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'keeps']);
  assert.match(ip.stdout, new RegExp(`^10\\.213\\.${first.net.slot}\\.`), show(ip));
  assert.equal((await first.docker(['run', '--rm', 'busybox', 'ping', '-c', '1', '-W', '3', ip.stdout.trim()])).code, 0);
  await first.docker(['rm', '-f', 'keeps']);
});

test('after kill -9 the locks are gone with the process: the same roots start again at once', async () => {
  await first.kill9();
  await first.restart();
  assert.equal((await first.docker(['version', '--format', '{{.Server.Version}}'])).code, 0);
});

test('instances with their own roots, sockets and bridges run side by side', async () => {
  let other: Berthd | undefined;
  try {
    other = await startBerthd();
    assert.notEqual(other.net.bridge, first.net.bridge);
    for (const b of [first, other]) {
      const r = await b.docker(['info', '--format', '{{.Name}}']);
      assert.equal(r.code, 0, show(r));
    }
  } finally {
    await other?.destroy();
  }
});
