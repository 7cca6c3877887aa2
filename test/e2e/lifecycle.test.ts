// The docker CLI 28.2.2 against a real berthd: pause/unpause, restart policies (also across a berthd
// restart), docker update applied to the cgroup, top, wait conditions, kill signals, prune, --rm -d.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { api, waitFor, sleep, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });

const cli = dockerCli(() => b);
const { fails } = cli;
/** The command's output, trimmed. */
const ok = async (...args: string[]): Promise<string> => (await cli.ok(...args)).trim();

const fmt = (f: string, ref: string) => ok('inspect', '-f', f, ref);

/** Waits until the container has written `ready` n times (its traps are set: a signal sent earlier could
 *  reach the shell before it has them, and kill it instead). */
async function ready(name: string, n = 1): Promise<void> {
  await waitFor(`${name} ready`, async () => {
    const r = await b.docker(['logs', name]);
    return (r.stdout.match(/^ready$/gm) ?? []).length >= n ? 1 : undefined;
  }, 15000, 50);
}

/** The v1 or v2 cgroup file of a container. */
function cgroupFile(id: string, v1Controller: string, file: string): string | undefined {
  const v1 = path.join('/sys/fs/cgroup', v1Controller, b.cgroupParent, id, file);
  if (existsSync(v1)) return readFileSync(v1, 'utf8').trim();
  const v2 = path.join('/sys/fs/cgroup', b.cgroupParent, id, file);
  return existsSync(v2) ? readFileSync(v2, 'utf8').trim() : undefined;
}

test('pause and unpause: state, ps, errors, stop and kill of a paused container', async () => {
  const id = await ok('run', '-d', '--name', 'lc-p', 'busybox', 'sh', '-c', 'trap "exit 3" TERM; echo ready; while true; do sleep 0.1; done');
  await ready('lc-p');
  await ok('pause', 'lc-p');
  assert.equal(await fmt('{{.State.Status}} {{.State.Paused}} {{.State.Running}}', 'lc-p'), 'paused true true');
  assert.match(await ok('ps', '--filter', 'name=lc-p', '--format', '{{.Status}}'), /^Up .* \(Paused\)$/);
  const again = await api(b, 'POST', '/containers/lc-p/pause');
  assert.equal(again.status, 409);
  assert.equal(again.json().message, `Container ${id} is already paused`);
  await ok('unpause', 'lc-p');
  assert.equal(await fmt('{{.State.Status}}', 'lc-p'), 'running');
  const un = await api(b, 'POST', '/containers/lc-p/unpause');
  assert.equal(un.status, 500);
  assert.equal(un.json().message, `Container ${id} is not paused`);
  // A paused container can be stopped: the signal is sent, then it is thawed and acts on it.
  await ok('pause', 'lc-p');
  await ok('stop', '-t', '5', 'lc-p');
  assert.equal(await fmt('{{.State.Status}} {{.State.ExitCode}}', 'lc-p'), 'exited 3');
  await ok('start', 'lc-p');
  await ok('pause', 'lc-p');
  await ok('kill', 'lc-p');
  assert.equal(await fmt('{{.State.Status}} {{.State.ExitCode}}', 'lc-p'), 'exited 137');
  await fails(/is not running/, 'pause', 'lc-p');
  await ok('rm', 'lc-p');
  // The events of it all (`--until 0s` is sent as whole seconds by the CLI, as Docker's: wait for the next one).
  await sleep(1100);
  const ev = await ok('events', '--since', '2m', '--until', '0s', '--filter', `container=${id}`, '--format', '{{.Action}}');
  for (const a of ['create', 'start', 'pause', 'unpause', 'kill', 'die', 'stop', 'destroy']) assert.ok(ev.split('\n').includes(a), `${a} in\n${ev}`);
});

test('restart policy on-failure:2 restarts twice with back-off; always is not restarted after docker stop', async () => {
  await ok('run', '-d', '--name', 'lc-of', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 5');
  await waitFor('two restarts, then exited', async () => {
    const s = await fmt('{{.RestartCount}} {{.State.Status}}', 'lc-of');
    return s === '2 exited' ? s : undefined;
  }, 15000, 100);
  await sleep(500);
  assert.equal(await fmt('{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}', 'lc-of'), '2 exited 5');

  await ok('run', '-d', '--name', 'lc-ok', '--restart', 'on-failure', 'busybox', 'true');
  await waitFor('exited', async () => ((await fmt('{{.State.Status}}', 'lc-ok')) === 'exited' ? 1 : undefined));
  await sleep(300);
  assert.equal(await fmt('{{.RestartCount}} {{.State.Status}}', 'lc-ok'), '0 exited');

  await ok('run', '-d', '--name', 'lc-al', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.3; exit 1');
  await waitFor('restarted', async () => (Number(await fmt('{{.RestartCount}}', 'lc-al')) >= 1 ? 1 : undefined), 15000, 100);
  await ok('stop', '-t', '1', 'lc-al');
  const count = await fmt('{{.RestartCount}}', 'lc-al');
  await sleep(1500);
  assert.equal(await fmt('{{.State.Status}} {{.RestartCount}}', 'lc-al'), `exited ${count}`);
  await ok('rm', '-f', 'lc-of', 'lc-ok', 'lc-al');
});

test('restart policies apply again after berthd restarts', async () => {
  await ok('run', '-d', '--name', 'lc-us', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000');
  await ok('run', '-d', '--name', 'lc-us-stopped', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000');
  await ok('stop', '-t', '0', 'lc-us-stopped');
  const pid = Number(await fmt('{{.State.Pid}}', 'lc-us'));
  await b.stop();
  process.kill(pid, 'SIGKILL'); // exits while berthd is down
  await b.restart();
  await waitFor('lc-us running again', async () => {
    const s = await fmt('{{.State.Status}} {{.State.Pid}}', 'lc-us');
    return s.startsWith('running') && !s.endsWith(` ${pid}`) ? s : undefined;
  }, 15000, 100);
  assert.equal(await fmt('{{.State.Status}}', 'lc-us-stopped'), 'exited');
  await ok('rm', '-f', 'lc-us', 'lc-us-stopped');
});

test('docker update changes the cgroup and inspect; restart policy too', async () => {
  const id = await ok('run', '-d', '--name', 'lc-up', 'busybox', 'sleep', '1000');
  await ok('update', '-m', '64m', '--memory-swap', '128m', '--cpus', '0.5', '--pids-limit', '50', '--restart', 'on-failure:3', 'lc-up');
  assert.equal(await fmt('{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.PidsLimit}}', 'lc-up'),
    '67108864 134217728 500000000 on-failure:3 50');
  const mem = cgroupFile(id, 'memory', 'memory.limit_in_bytes') ?? cgroupFile(id, 'memory', 'memory.max');
  assert.equal(mem, '67108864');
  const quota = cgroupFile(id, 'cpu', 'cpu.cfs_quota_us') ?? cgroupFile(id, 'cpu', 'cpu.max')?.split(' ')[0];
  assert.equal(quota, '50000');
  assert.equal(cgroupFile(id, 'pids', 'pids.max'), '50');
  const r = await api(b, 'POST', '/containers/lc-up/update', { body: { Memory: 1024 } });
  assert.equal(r.status, 400, r.body);
  const good = await api(b, 'POST', '/containers/lc-up/update', { body: { CpuShares: 512 } });
  assert.equal(good.status, 200);
  assert.deepEqual(good.json(), { Warnings: null });
  await fails(/No such container: lc-nosuch/, 'update', '--pids-limit', '5', 'lc-nosuch');
  // A stopped container's update is kept and applied at its next start.
  await ok('stop', '-t', '0', 'lc-up');
  await ok('update', '-m', '32m', '--memory-swap', '64m', 'lc-up');
  await ok('start', 'lc-up');
  assert.equal(cgroupFile(id, 'memory', 'memory.limit_in_bytes') ?? cgroupFile(id, 'memory', 'memory.max'), String(32 * 1024 * 1024));
  await ok('rm', '-f', 'lc-up');
});

test('top lists the container processes with default and custom ps args; 409 when not running', async () => {
  await ok('run', '-d', '--name', 'lc-top', 'busybox', 'sh', '-c', 'sleep 1000 & sleep 999');
  // sh runs the last command of -c in its own place (exec), so two processes remain once the background
  // child has exec'd its sleep (a loaded machine may show its fork still as `sh -c …` for a moment).
  const top = await waitFor('both sleeps in top', async () => {
    const r = await api(b, 'GET', '/containers/lc-top/top');
    assert.equal(r.status, 200);
    const t = r.json();
    const cmds = t.Processes.map((p: string[]) => p[7]).sort();
    return cmds.join(',') === 'sleep 1000,sleep 999' ? t : undefined;
  });
  assert.deepEqual(top.Titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
  const out = await ok('top', 'lc-top', '-o', 'pid,comm');
  assert.match(out, /^\s*PID\s+COMMAND/);
  assert.equal(out.split('\n').length, 3, out);
  await ok('stop', '-t', '0', 'lc-top');
  const nr = await api(b, 'GET', '/containers/lc-top/top');
  assert.equal(nr.status, 409);
  assert.match(nr.json().message, /is not running/);
  await ok('rm', 'lc-top');
});

test('wait conditions, kill with signal names and numbers, STOPSIGNAL, --rm with -d, prune', async () => {
  const bad = await api(b, 'POST', '/v1.43/containers/nosuch/wait?condition=bogus');
  assert.ok(bad.status === 400 || bad.status === 404, bad.body);
  await ok('run', '-d', '--name', 'lc-k', 'busybox', 'sh', '-c', 'trap "exit 10" USR1; trap "exit 12" HUP; echo ready; while true; do sleep 0.1; done');
  await ready('lc-k');
  await ok('kill', '-s', 'USR1', 'lc-k');
  assert.equal(await ok('wait', 'lc-k'), '10');
  await ok('start', 'lc-k');
  await ready('lc-k', 2);
  await ok('kill', '-s', '1', 'lc-k');
  assert.equal(await ok('wait', 'lc-k'), '12');
  await ok('rm', 'lc-k');

  // --stop-signal (the image's STOPSIGNAL arrives the same way, through Config.StopSignal)
  await ok('run', '-d', '--name', 'lc-ss', '--stop-signal', 'USR2', 'busybox', 'sh', '-c', 'trap "exit 22" USR2; echo ready; while true; do sleep 0.1; done');
  await ready('lc-ss');
  await ok('stop', 'lc-ss');
  assert.equal(await fmt('{{.State.ExitCode}}', 'lc-ss'), '22');

  // --rm -d: gone after it exits
  const rmId = await ok('run', '-d', '--rm', 'busybox', 'true');
  await waitFor('auto-removed', async () => ((await api(b, 'GET', `/containers/${rmId}/json`)).status === 404 ? 1 : undefined));

  // wait next-exit on a running container; removed
  await ok('run', '-d', '--name', 'lc-w', 'busybox', 'sh', '-c', 'sleep 0.5; exit 4');
  const w = await api(b, 'POST', '/containers/lc-w/wait?condition=next-exit');
  assert.deepEqual(w.json(), { Error: null, StatusCode: 4 });
  const removed = api(b, 'POST', '/containers/lc-w/wait?condition=removed');
  await sleep(100);
  await ok('rm', 'lc-w');
  assert.equal((await removed).json().StatusCode, 4);

  // prune: only stopped containers matching the label filter
  await ok('create', '--name', 'lc-pr1', '--label', 'prune=yes', 'busybox', 'true');
  await ok('create', '--name', 'lc-pr2', '--label', 'prune=no', 'busybox', 'true');
  await ok('run', '-d', '--name', 'lc-pr3', '--label', 'prune=yes', 'busybox', 'sleep', '1000');
  const pr = await api(b, 'POST', `/containers/prune?filters=${encodeURIComponent(JSON.stringify({ label: ['prune=yes'] }))}`);
  assert.equal(pr.status, 200, pr.body);
  const body = pr.json();
  assert.equal(body.ContainersDeleted.length, 1, pr.body); // lc-pr1 only
  assert.equal(typeof body.SpaceReclaimed, 'number');
  const names = await ok('ps', '-a', '--format', '{{.Names}}');
  assert.ok(!names.includes('lc-pr1') && names.includes('lc-pr2') && names.includes('lc-pr3'), names);
  await ok('container', 'prune', '-f', '--filter', 'until=0s');
  assert.ok(!(await ok('ps', '-a', '--format', '{{.Names}}')).includes('lc-pr2'));
  await ok('rm', '-f', 'lc-pr3');
});

test('healthcheck: starting, unhealthy after retries, healthy once the probe passes; events; --no-healthcheck', async () => {
  await ok('run', '-d', '--name', 'lc-h', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '300ms', '--health-retries', '2',
    '--health-timeout', '2s', 'busybox', 'sleep', '1000');
  assert.equal(await fmt('{{.State.Health.Status}}', 'lc-h'), 'starting');
  assert.match(await ok('ps', '--filter', 'name=lc-h', '--format', '{{.Status}}'), /\(health: starting\)$/);
  await waitFor('unhealthy', async () => ((await fmt('{{.State.Health.Status}}', 'lc-h')) === 'unhealthy' ? 1 : undefined), 20000, 100);
  const h = JSON.parse(await fmt('{{json .State.Health}}', 'lc-h'));
  assert.ok(h.FailingStreak >= 2, JSON.stringify(h));
  assert.ok(h.Log.length >= 2 && h.Log.every((e: { ExitCode: number }) => e.ExitCode === 1), JSON.stringify(h));
  // Make the probe pass: a file copied in with docker cp.
  await api(b, 'PUT', '/containers/lc-h/archive?path=%2Ftmp', { body: tarOf('ok', 'yes\n'), headers: { 'Content-Type': 'application/x-tar' } });
  await waitFor('healthy', async () => ((await fmt('{{.State.Health.Status}}', 'lc-h')) === 'healthy' ? 1 : undefined), 20000, 100);
  assert.equal(await fmt('{{.State.Health.FailingStreak}}', 'lc-h'), '0');
  assert.match(await ok('ps', '--filter', 'name=lc-h', '--format', '{{.Status}}'), /\(healthy\)$/);
  await sleep(1100);
  const ev = await ok('events', '--since', '1m', '--until', '0s', '--filter', 'container=lc-h', '--filter', 'event=health_status', '--format', '{{.Action}}');
  assert.deepEqual(ev.split('\n'), ['health_status: unhealthy', 'health_status: healthy']);
  await ok('rm', '-f', 'lc-h');

  await ok('run', '-d', '--name', 'lc-nh', '--no-healthcheck', 'busybox', 'sleep', '1000');
  assert.equal(await fmt('{{json .State.Health}}', 'lc-nh'), 'null');
  await ok('rm', '-f', 'lc-nh');
});

/** A one-file tar (ustar), enough for PUT /archive. */
function tarOf(name: string, content: string): Buffer {
  const body = Buffer.from(content);
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write(Math.floor(Date.now() / 1000).toString(8).padStart(11, '0') + '\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([h, body, pad, Buffer.alloc(1024)]);
}

test('logs: json-file rotation with max-size/max-file, --since/--until, --details', async () => {
  const id = await ok('run', '-d', '--name', 'lc-log', '--log-opt', 'max-size=1k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c',
    'i=0; while [ $i -lt 300 ]; do echo "line number $i"; i=$((i+1)); done');
  assert.equal(await ok('wait', 'lc-log'), '0');
  const logPath = await fmt('{{.LogPath}}', 'lc-log');
  assert.ok(existsSync(`${logPath}.1`), 'rotated once at least');
  assert.ok(!existsSync(`${logPath}.3`), 'no more than max-file files');
  const lines = (await ok('logs', 'lc-log')).split('\n');
  assert.equal(lines[lines.length - 1], 'line number 299');
  // Oldest kept first, in order, without gaps.
  const nums = lines.map((l) => Number(l.split(' ')[2]));
  nums.forEach((n, i) => i && assert.equal(n, nums[i - 1] + 1));
  assert.ok(nums[0] > 0, 'the oldest lines were rotated away');
  const all = await ok('logs', '-t', 'lc-log');
  const last = all.split('\n').pop()!;
  const ts = last.split(' ')[0];
  assert.equal(await ok('logs', '--since', ts, 'lc-log'), 'line number 299');
  const until = await ok('logs', '--until', ts, 'lc-log');
  assert.equal(until.split('\n').pop(), 'line number 299');
  assert.equal((await ok('logs', '--until', '2000-01-01T00:00:00Z', 'lc-log')), '');
  const det = await b.docker(['logs', '--details', '--tail', '1', 'lc-log']);
  assert.equal(det.stdout, ' line number 299\n');
  await ok('rm', id);
});

test('--init: berth-init is pid 1, forwards signals and reaps', async () => {
  assert.ok(existsSync(path.join(b0Repo(), 'build', 'berth-init')), 'build/berth-init is built by make build');
  const ps = await ok('run', '--rm', '--init', 'busybox', 'ps', '-o', 'pid,comm');
  assert.match(ps, /^\s*1\s+docker-init$/m);
  await ok('run', '-d', '--name', 'lc-init', '--init', 'busybox', 'sleep', '1000');
  const t0 = Date.now();
  await ok('stop', '-t', '8', 'lc-init');
  assert.ok(Date.now() - t0 < 5000, 'SIGTERM reached sleep through the init');
  assert.equal(await fmt('{{.State.ExitCode}}', 'lc-init'), '143');
  await ok('rm', 'lc-init');
});

function b0Repo(): string {
  return path.resolve(__dirname, '..', '..', '..');
}
