// In a VM guest of the fixture booted with systemd as PID 1 on cgroup v2 (test/vm/vm.sh, systemd mode),
// berth as a user installs it: `make install`, the units of systemd/, socket activation, Type=notify; then
// the systemd cgroup driver: a transient berth-<id>.scope per container with the limits as unit
// properties and in the files, --cgroup-parent slices, shims outside berth.service, restart/stop/start
// keeping containers with no warnings from systemd, and no scope left after rm. Registers its tests only
// inside such a guest (BERTH_VM_GUEST=systemd, set by test/vm/suite.sh): it installs into /usr/local and
// /etc, which only a throw-away guest may have done to it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO, DOCKER } from '../helpers/berthd';
import { waitFor } from '../helpers/clients';

interface Out { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], timeoutMs = 120000): Promise<Out> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8', cwd: REPO, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 255) : 0, stdout, stderr });
    });
  });
}

async function must(cmd: string, ...args: string[]): Promise<string> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

/** The docker CLI on the installed daemon's socket (/run/berth.sock, made by berth.socket). */
const docker = (...args: string[]) => must(DOCKER, '-H', 'unix:///run/berth.sock', ...args);
const dockerRun = (...args: string[]) => run(DOCKER, ['-H', 'unix:///run/berth.sock', ...args]);

/** `systemctl show -p P1,P2 unit` as an object. */
async function show(unit: string, ...props: string[]): Promise<Record<string, string>> {
  const out = await must('systemctl', 'show', unit, '-p', props.join(','));
  return Object.fromEntries(out.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const cg = (rel: string, f: string) => readFileSync(path.join('/sys/fs/cgroup', rel, f), 'utf8').trim();

/** Every pid in a cgroup and the cgroups below it. */
function pidsUnder(dir: string): number[] {
  const out = readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...pidsUnder(path.join(dir, e.name)));
  return out;
}

const comm = (pid: number) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return '?'; } };

if (process.env.BERTH_VM_GUEST === 'systemd') {
  let since = '';

  before(async () => {
    since = (await must('date', '+%s')).trim();
  });

  test('make install and the units: socket activation, then Type=notify', async () => {
    await must('make', 'install');
    assert.ok(existsSync('/usr/local/bin/berthd'));
    await must('systemctl', 'daemon-reload');
    await must('systemctl', 'enable', '--now', 'berth.socket');
    assert.equal((await show('berth.service', 'ActiveState')).ActiveState, 'inactive', 'nothing started berthd yet');
    // The first connection starts the service through the socket; the CLI's request is answered by it.
    const version = JSON.parse(await docker('version', '--format', '{{json .Server}}'));
    assert.ok(version.Version);
    const svc = await show('berth.service', 'ActiveState', 'SubState', 'Type', 'MainPID', 'TriggeredBy');
    assert.equal(svc.ActiveState, 'active', 'Type=notify: active only once berthd said READY=1');
    assert.equal(svc.Type, 'notify');
    assert.match(svc.TriggeredBy, /berth\.socket/);
    assert.equal(comm(Number(svc.MainPID)), 'node');
    await docker('load', '-i', path.join(REPO, 'build', 'fixtures', 'busybox.tar'));
  });

  test('docker info: the systemd driver on cgroup v2, the default when systemd is PID 1', async () => {
    const info = JSON.parse(await docker('info', '--format', '{{json .}}'));
    assert.equal(info.CgroupDriver, 'systemd');
    assert.equal(info.CgroupVersion, '2');
  });

  let id = '';
  test('a container is a transient scope in system.slice, with its limits as unit properties and in its files', async () => {
    id = await docker('run', '-d', '--name', 'sd1', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '33', '--cpu-shares', '512', 'busybox', 'sleep', '1000');
    const unit = `berth-${id}.scope`;
    const p = await show(unit, 'ActiveState', 'Slice', 'ControlGroup', 'Delegate', 'MemoryMax', 'TasksMax', 'CPUQuotaPerSecUSec', 'CPUWeight');
    assert.equal(p.ActiveState, 'active');
    assert.equal(p.Slice, 'system.slice');
    assert.equal(p.ControlGroup, `/system.slice/${unit}`);
    assert.equal(p.Delegate, 'yes');
    assert.equal(p.MemoryMax, String(64 << 20));
    assert.equal(p.TasksMax, '33');
    assert.equal(p.CPUQuotaPerSecUSec, '500ms');
    assert.equal(p.CPUWeight, String(1 + Math.floor(((512 - 2) * 9999) / 262142)));
    const rel = `system.slice/${unit}`;
    assert.equal(cg(rel, 'memory.max'), String(64 << 20));
    assert.equal(cg(rel, 'pids.max'), '33');
    assert.equal(cg(rel, 'cpu.max'), '50000 100000');
    const pid = Number(await docker('inspect', '--format', '{{.State.Pid}}', 'sd1'));
    assert.deepEqual(pidsUnder(path.join('/sys/fs/cgroup', rel)), [pid], 'the container alone: no holder, no shim');
    // systemd re-applies what it knows on a daemon-reload: the limits survive it because it knows them.
    await must('systemctl', 'daemon-reload');
    assert.equal(cg(rel, 'memory.max'), String(64 << 20));
    assert.equal(cg(rel, 'pids.max'), '33');
    // docker update reaches both.
    await docker('update', '--memory', '128m', '--memory-swap', '256m', '--pids-limit', '44', 'sd1');
    const u = await show(unit, 'MemoryMax', 'TasksMax');
    assert.equal(u.MemoryMax, String(128 << 20));
    assert.equal(u.TasksMax, '44');
    assert.equal(cg(rel, 'memory.max'), String(128 << 20));
    assert.equal(cg(rel, 'pids.max'), '44');
  });

  test('--cgroup-parent names a slice in systemd form; anything else is refused', async () => {
    const kid = await docker('run', '-d', '--name', 'sd-kube', '--cgroup-parent', 'kubepods-besteffort.slice', 'busybox', 'sleep', '1000');
    const p = await show(`berth-${kid}.scope`, 'Slice', 'ControlGroup');
    assert.equal(p.Slice, 'kubepods-besteffort.slice');
    assert.equal(p.ControlGroup, `/kubepods.slice/kubepods-besteffort.slice/berth-${kid}.scope`);
    const bad = await dockerRun('run', '--rm', '--cgroup-parent', 'not-a-slice', 'busybox', 'true');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /cgroup-parent for systemd cgroup should be a valid slice named as "xxx\.slice"/);
    await docker('rm', '-f', 'sd-kube');
  });

  test('berth.service holds berthd alone: every shim is in a scope of its own', async () => {
    const main = Number((await show('berth.service', 'MainPID')).MainPID);
    const pids = pidsUnder('/sys/fs/cgroup/system.slice/berth.service');
    assert.deepEqual(pids, [main], `in berth.service: ${pids.map((p) => `${p} ${comm(p)}`).join(', ')}`);
    const shimPid = Number(readFileSync(`/run/berth/containers/${id}/shim.pid`, 'utf8'));
    assert.match(readFileSync(`/proc/${shimPid}/cgroup`, 'utf8'), new RegExp(`^0::/system\\.slice/berth-shim-${id}-${shimPid}\\.scope$`, 'm'));
    // An exec's shim too, while it runs, and the shim berthd keeps waiting for the next exec.
    await docker('exec', '-d', 'sd1', 'sleep', '300');
    await docker('exec', 'sd1', 'true');
    await new Promise((r) => setTimeout(r, 1500)); // the next waiting shim starts about 50 ms after an exec
    await waitFor('the exec shims out of the service', () => {
      const left = pidsUnder('/sys/fs/cgroup/system.slice/berth.service').filter((p) => p !== main);
      return left.length === 0 ? true : undefined;
    }, 10000, 100);
  });

  test('systemctl restart, stop and start keep the container; systemd finds nothing left over', async () => {
    const pid = await docker('inspect', '--format', '{{.State.Pid}}', 'sd1');
    await must('systemctl', 'restart', 'berth');
    assert.equal(await docker('inspect', '--format', '{{.State.Status}} {{.State.Pid}}', 'sd1'), `running ${pid}`);
    await must('systemctl', 'stop', 'berth.service');
    assert.ok(existsSync(`/proc/${pid}`), 'the container runs on while berthd is stopped');
    await must('systemctl', 'start', 'berth.service');
    assert.equal(await docker('inspect', '--format', '{{.State.Status}} {{.State.Pid}}', 'sd1'), `running ${pid}`);
    // A restart after berthd had started an exec and containers: the journal has no warning about the service.
    const journal = await must('journalctl', '--no-pager', '-o', 'cat', '-p', 'warning', '--since', `@${since}`, '-u', 'berth.service', '-u', 'berth.socket');
    assert.equal(journal.replace(/^-- No entries --$/m, '').trim(), '', 'warnings of berth.service / berth.socket in the journal');
    const all = await must('journalctl', '--no-pager', '-o', 'cat', '--since', `@${since}`);
    assert.doesNotMatch(all, /left-over process/i);
  });

  test('docker stop ends the scope; docker rm -f leaves no scope and no cgroup', async () => {
    await docker('stop', '-t', '1', 'sd1');
    await waitFor('the stopped container\'s scope gone', async () => ((await show(`berth-${id}.scope`, 'LoadState')).LoadState === 'not-found' ? true : undefined), 15000, 100);
    await docker('start', 'sd1');
    assert.equal((await show(`berth-${id}.scope`, 'ActiveState')).ActiveState, 'active');
    assert.equal(cg(`system.slice/berth-${id}.scope`, 'memory.max'), String(128 << 20), 'a new scope with the updated limits');
    await docker('rm', '-f', 'sd1');
    await waitFor('no berth scopes', async () => {
      const units = await must('systemctl', 'list-units', '--all', '--no-legend', '--plain', 'berth-*.scope');
      return units === '' ? true : undefined;
    }, 15000, 100);
    assert.equal(existsSync(`/sys/fs/cgroup/system.slice/berth-${id}.scope`), false);
  });
}
