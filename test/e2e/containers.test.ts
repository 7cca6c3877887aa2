// The docker CLI 28.2.2 against a real berthd: system endpoints, the container lifecycle, what a
// container sees inside, bad input, and containers that outlive the daemon (issue 2).
// One berthd per file, on its own socket, data root, exec root and cgroup parent; destroy() removes every
// process, mount, cgroup and file it made, also when a test fails.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunResult } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli, spawnDocker, waitFor, sleep, nsOf, alive, show } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox', 'layered'] });

// ---- helpers ---------------------------------------------------------------------------------------

const docker = (...args: string[]) => b.docker(args);
const dockerIn = (input: string | Buffer, ...args: string[]) => b.docker(args, { input });


const { ok } = dockerCli(() => b);

/** Asserts a non-zero exit with exactly `code` and stderr matching `re`, and that the CLI did not print a
 *  raw JSON body (dockerCli's `fails` checks neither). */
async function fails(code: number, re: RegExp, ...args: string[]): Promise<RunResult> {
  const r = await b.docker(args);
  assert.equal(r.code, code, `docker ${args.join(' ')} should exit ${code}\n${show(r)}`);
  assert.match(r.stderr, re, `docker ${args.join(' ')}\n${show(r)}`);
  // The CLI parses {"message"} only when Content-Type is exactly application/json; otherwise it prints the
  // raw body.
  assert.ok(!r.stderr.includes('{"message"'), `the CLI printed a raw JSON error body:\n${r.stderr}`);
  return r;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function inspect(ref: string): Promise<any> {
  const out = await ok('inspect', '--type', 'container', ref);
  const arr = JSON.parse(out);
  assert.equal(arr.length, 1);
  return arr[0];
}

async function allIds(): Promise<string[]> {
  return (await ok('ps', '-a', '-q', '--no-trunc')).split('\n').filter(Boolean).sort();
}

async function rmf(...refs: string[]): Promise<void> {
  await b.docker(['rm', '-f', ...refs]);
}

/** Waits until `docker logs ref` (stdout) matches. */
function logsMatch(ref: string, re: RegExp, timeoutMs = 15000): Promise<string> {
  return waitFor(`logs of ${ref} to match ${re}`, async () => {
    const r = await b.docker(['logs', ref]);
    return re.test(r.stdout) ? r.stdout : undefined;
  }, timeoutMs, 100);
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(dir + '/')));
}

const HEX64 = /^[0-9a-f]{64}$/;
const RFC3339NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
const ZERO_TIME = '0001-01-01T00:00:00Z';

function hostCgroupVersion(): '1' | '2' {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1';
}

// ---- system ----------------------------------------------------------------------------------------

describe('system', () => {
  test('docker version shows the server, API 1.52 and the kernel', async () => {
    const v = JSON.parse(await ok('version', '--format', '{{json .}}'));
    assert.ok(v.Server, `no Server section: ${JSON.stringify(v)}`);
    assert.equal(v.Server.ApiVersion, '1.52');
    assert.equal(v.Server.MinAPIVersion, '1.24');
    assert.equal(v.Server.Os, 'linux');
    assert.equal(v.Server.KernelVersion, os.release());
    assert.equal(v.Server.Arch, process.arch === 'x64' ? 'amd64' : process.arch);
    assert.ok(v.Server.Version, 'server version is empty');
    const engine = (v.Server.Components ?? []).find((c: { Name: string }) => c.Name === 'Engine');
    assert.ok(engine, 'no Engine component');
    assert.equal(engine.Details.ApiVersion, '1.52');
    // The text form, as a person reads it.
    const text = await ok('version');
    assert.match(text, /Server:/);
    assert.match(text, /API version:\s+1\.52/);
  });

  test('docker info gives real figures', async () => {
    await ok('run', '-d', '--name', 'info-running', 'busybox', 'sleep', '1000');
    await ok('create', '--name', 'info-created', 'busybox', 'true');
    try {
      const info = JSON.parse(await ok('info', '--format', '{{json .}}'));
      const all = await allIds();
      const running = (await ok('ps', '-q')).split('\n').filter(Boolean);
      const images = new Set((await ok('images', '-q', '--no-trunc')).split('\n').filter(Boolean));
      assert.equal(info.Containers, all.length);
      assert.ok(info.Containers >= 2);
      assert.equal(info.ContainersRunning, running.length);
      assert.ok(info.ContainersRunning >= 1);
      assert.equal(info.ContainersStopped, all.length - running.length);
      assert.equal(info.Images, images.size);
      assert.equal(info.Images, 2, 'busybox and layered were loaded');
      assert.equal(info.Driver, 'overlay2');
      assert.equal(info.CgroupDriver, 'cgroupfs');
      assert.equal(info.CgroupVersion, hostCgroupVersion());
      assert.equal(info.KernelVersion, os.release());
      assert.equal(info.NCPU, os.cpus().length);
      assert.ok(Math.abs(info.MemTotal - os.totalmem()) <= os.totalmem() * 0.01, `MemTotal ${info.MemTotal} vs ${os.totalmem()}`);
      assert.equal(info.DockerRootDir, b.dataRoot);
      assert.equal(info.OSType, 'linux');
      assert.equal(info.Swarm.LocalNodeState, 'inactive');
      assert.equal(info.LoggingDriver, 'json-file');

      const text = await ok('info');
      assert.match(text, /Storage Driver: overlay2/);
      assert.match(text, /Cgroup Driver: cgroupfs/);
      assert.match(text, new RegExp(`Cgroup Version: ${hostCgroupVersion()}`));
      assert.ok(text.includes(`Docker Root Dir: ${b.dataRoot}`), text);

      // The counts follow the containers.
      await rmf('info-running', 'info-created');
      const after = JSON.parse(await ok('info', '--format', '{{json .}}'));
      assert.equal(after.Containers, info.Containers - 2);
      assert.equal(after.ContainersRunning, info.ContainersRunning - 1);
    } finally {
      await rmf('info-running', 'info-created');
    }
  });

  test('HEAD and GET /_ping answer with Docker\'s headers, with and without a version prefix', async () => {
    for (const p of ['/_ping', '/v1.24/_ping', '/v1.41/_ping', '/v1.52/_ping']) {
      for (const method of ['HEAD', 'GET']) {
        const r = await api(b, method, p);
        assert.equal(r.status, 200, `${method} ${p}: ${r.status} ${r.body}`);
        assert.equal(r.headers['api-version'], '1.52', `${method} ${p}`);
        assert.equal(r.headers['ostype'], 'linux', `${method} ${p}`);
        assert.equal(r.headers['docker-experimental'], 'false', `${method} ${p}`);
        assert.equal(r.headers['builder-version'], '1', `${method} ${p}`);
        assert.match(String(r.headers['cache-control']), /no-cache/);
        assert.equal(r.body, method === 'GET' ? 'OK' : '', `${method} ${p}`);
      }
    }
  });

  test('API versions outside 1.24–1.52 get 400 with a JSON message', async () => {
    for (const p of ['/v1.99/_ping', '/v1.99/version', '/v1.53/containers/json']) {
      const r = await api(b, 'GET', p);
      assert.equal(r.status, 400, `${p}: ${r.status} ${r.body}`);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.match(r.json().message, /too new/);
    }
    const old = await api(b, 'GET', '/v1.12/version');
    assert.equal(old.status, 400);
    assert.match(old.json().message, /too old/);
    // Every version in range, and none at all, works.
    for (const p of ['/version', '/v1.24/version', '/v1.44/version', '/v1.52/version']) {
      const r = await api(b, 'GET', p);
      assert.equal(r.status, 200, `${p}: ${r.status} ${r.body}`);
      assert.equal(r.json().ApiVersion, '1.52');
      assert.equal(r.headers['api-version'], '1.52');
    }
    const list = await api(b, 'GET', '/v1.24/containers/json?all=1');
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(list.json()));
  });
});

// ---- docker run ------------------------------------------------------------------------------------

describe('docker run', () => {
  test('run --rm busybox echo hello prints hello and leaves nothing behind', async () => {
    const idsBefore = await allIds();
    const ctrDir = path.join(b.dataRoot, 'containers');
    const dirsBefore = existsSync(ctrDir) ? readdirSync(ctrDir).sort() : [];
    const mountsBefore = mountsUnder(b.root).length;
    const r = await docker('run', '--rm', '--name', 'rm-hello', 'busybox', 'echo', 'hello');
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.stderr, '');
    // With --rm the CLI waits for condition=removed: the container is gone when it returns.
    await fails(1, /No such container: rm-hello/, 'inspect', '--type', 'container', 'rm-hello');
    assert.deepEqual(await allIds(), idsBefore);
    assert.deepEqual(existsSync(ctrDir) ? readdirSync(ctrDir).sort() : [], dirsBefore, 'container directory left behind');
    assert.equal(mountsUnder(b.root).length, mountsBefore, 'a mount was left behind');
  });

  test('the exit code comes back: run busybox sh -c "exit 3" exits 3', async () => {
    const r = await docker('run', '--name', 'exit3', 'busybox', 'sh', '-c', 'exit 3');
    assert.equal(r.code, 3, show(r));
    const c = await inspect('exit3');
    assert.equal(c.State.Status, 'exited');
    assert.equal(c.State.Running, false);
    assert.equal(c.State.ExitCode, 3);
    assert.equal(c.State.Pid, 0);
    assert.match(c.State.FinishedAt, RFC3339NANO);
    assert.notEqual(c.State.FinishedAt, ZERO_TIME);
    // exit3 stays for the ps tests below.
  });

  test('stdout and stderr stay apart', async () => {
    const r = await docker('run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; echo out2; echo err2 >&2');
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'out\nout2\n');
    assert.equal(r.stderr, 'err\nerr2\n');
    // Attached to stdout only: stderr is not sent.
    const o = await docker('run', '--rm', '-a', 'stdout', 'busybox', 'sh', '-c', 'echo out; echo err >&2');
    assert.equal(o.code, 0, show(o));
    assert.equal(o.stdout, 'out\n');
    assert.equal(o.stderr, '');
  });

  test('stdin is passed with -i: echo hi | docker run -i --rm busybox cat', async () => {
    const r = await dockerIn('hi\n', 'run', '-i', '--rm', 'busybox', 'cat');
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'hi\n');
    // A larger input arrives whole, and its end reaches the container.
    const big = Buffer.alloc(300_000, 'x');
    const w = await dockerIn(big, 'run', '-i', '--rm', 'busybox', 'wc', '-c');
    assert.equal(w.code, 0, show(w));
    assert.equal(w.stdout.trim(), '300000');
    // The image's Cmd (busybox: ["sh"]) runs when none is given.
    const sh = await dockerIn('echo from-default-cmd\n', 'run', '-i', '--rm', 'busybox');
    assert.equal(sh.code, 0, show(sh));
    assert.equal(sh.stdout, 'from-default-cmd\n');
  });
});

// ---- detached containers, ps, inspect, names -------------------------------------------------------

describe('detached containers', () => {
  let webId = '';

  test('run -d --name web prints the full id and the container runs', async () => {
    const out = await ok('run', '-d', '--name', 'web', 'busybox', 'sleep', '1000');
    webId = out.trim();
    assert.match(webId, HEX64);
    const c = await inspect('web');
    assert.equal(c.Id, webId);
    assert.equal(c.State.Running, true);
    assert.ok(alive(c.State.Pid), `pid ${c.State.Pid} is not a live process`);
  });

  test('ps lists running containers, ps -a all of them, ps -q short ids', async () => {
    const exit3 = (await inspect('exit3')).Id as string;
    const table = await ok('ps');
    assert.match(table.split('\n')[0], /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES/);
    const webLine = table.split('\n').find((l) => l.startsWith(webId.slice(0, 12)));
    assert.ok(webLine, `web not in ps:\n${table}`);
    assert.match(webLine, /\bbusybox\b.*"sleep 1000".*\bUp (Less than a second|\d+ seconds?|About a minute|\d+ minutes)\b.*\bweb$/);
    assert.ok(!table.includes('exit3'), `ps shows an exited container:\n${table}`);

    const fmt = '{{.ID}}|{{.Names}}|{{.Status}}|{{.State}}';
    const rows = (await ok('ps', '-a', '--format', fmt)).split('\n').filter(Boolean).map((l) => l.split('|'));
    const web = rows.find((r) => r[1] === 'web');
    const ex = rows.find((r) => r[1] === 'exit3');
    assert.ok(web && ex, `ps -a:\n${rows.join('\n')}`);
    assert.equal(web[0], webId.slice(0, 12));
    assert.equal(web[3], 'running');
    assert.equal(ex[0], exit3.slice(0, 12));
    assert.match(ex[2], /^Exited \(3\) (Less than a second|\d+ seconds?|About a minute|\d+ minutes) ago$/);
    assert.equal(ex[3], 'exited');

    const q = (await ok('ps', '-q')).split('\n').filter(Boolean);
    for (const id of q) assert.match(id, /^[0-9a-f]{12}$/);
    assert.ok(q.includes(webId.slice(0, 12)));
    assert.ok(!q.includes(exit3.slice(0, 12)));
    const qa = (await ok('ps', '-a', '-q')).split('\n').filter(Boolean);
    assert.ok(qa.includes(webId.slice(0, 12)) && qa.includes(exit3.slice(0, 12)));
    const full = await allIds();
    assert.ok(full.includes(webId) && full.includes(exit3));
  });

  test('inspect web gives Docker\'s shapes: State, Config, HostConfig, GraphDriver, Mounts, NetworkSettings', async () => {
    const c = await inspect('web');
    assert.equal(c.Id, webId);
    assert.equal(c.Name, '/web');
    assert.match(c.Created, RFC3339NANO);
    assert.equal(c.Path, 'sleep');
    assert.deepEqual(c.Args, ['1000']);
    assert.match(c.Image, /^sha256:[0-9a-f]{64}$/);
    assert.equal(c.Driver, 'overlay2');
    assert.equal(c.Platform, 'linux');
    assert.equal(c.RestartCount, 0);
    // State
    assert.equal(c.State.Status, 'running');
    assert.equal(c.State.Running, true);
    assert.equal(c.State.Paused, false);
    assert.equal(c.State.Restarting, false);
    assert.equal(c.State.OOMKilled, false);
    assert.equal(c.State.Dead, false);
    assert.ok(Number.isInteger(c.State.Pid) && c.State.Pid > 0, `Pid ${c.State.Pid}`);
    assert.equal(c.State.ExitCode, 0);
    assert.match(c.State.StartedAt, RFC3339NANO);
    assert.equal(c.State.FinishedAt, ZERO_TIME);
    // The pid is the container's sleep, seen from the host.
    assert.equal(readFileSync(`/proc/${c.State.Pid}/cmdline`, 'utf8'), 'sleep\u00001000\u0000');
    // Config
    assert.equal(c.Config.Hostname, webId.slice(0, 12));
    assert.equal(c.Config.Image, 'busybox');
    assert.deepEqual(c.Config.Cmd, ['sleep', '1000']);
    assert.equal(c.Config.Tty, false);
    assert.equal(c.Config.OpenStdin, false);
    assert.ok(Array.isArray(c.Config.Env) && c.Config.Env.some((e: string) => e.startsWith('PATH=')), `Env ${JSON.stringify(c.Config.Env)}`);
    // HostConfig
    assert.equal(c.HostConfig.LogConfig.Type, 'json-file');
    assert.deepEqual(c.HostConfig.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
    assert.equal(c.HostConfig.AutoRemove, false);
    assert.equal(c.HostConfig.ShmSize, 67108864);
    assert.equal(c.HostConfig.IpcMode, 'private');
    assert.equal(c.HostConfig.Privileged, false);
    assert.ok(Array.isArray(c.HostConfig.MaskedPaths) && c.HostConfig.MaskedPaths.includes('/proc/kcore'));
    assert.ok(Array.isArray(c.HostConfig.ReadonlyPaths) && c.HostConfig.ReadonlyPaths.includes('/proc/sys'));
    // GraphDriver: real directories on the host.
    assert.equal(c.GraphDriver.Name, 'overlay2');
    for (const k of ['UpperDir', 'MergedDir', 'WorkDir']) {
      assert.ok(path.isAbsolute(c.GraphDriver.Data[k]), `${k} ${c.GraphDriver.Data[k]}`);
      assert.ok(c.GraphDriver.Data[k].startsWith(b.dataRoot + '/'), `${k} outside the data root`);
      assert.ok(existsSync(c.GraphDriver.Data[k]), `${k} ${c.GraphDriver.Data[k]} does not exist`);
    }
    const lowers = String(c.GraphDriver.Data.LowerDir).split(':');
    assert.ok(lowers.length >= 2, `LowerDir ${c.GraphDriver.Data.LowerDir}`);
    for (const l of lowers) assert.ok(existsSync(l), `lower dir ${l} does not exist`);
    assert.ok(mountsUnder(c.GraphDriver.Data.MergedDir).length >= 1, 'MergedDir is not mounted while running');
    // The merged dir shows the image.
    assert.ok(existsSync(path.join(c.GraphDriver.Data.MergedDir, 'bin', 'busybox')));
    // Log and the files Docker keeps per container.
    assert.ok(path.isAbsolute(c.LogPath) && existsSync(c.LogPath), `LogPath ${c.LogPath}`);
    assert.equal(path.basename(c.LogPath), `${webId}-json.log`);
    assert.ok(existsSync(c.HostnamePath), `HostnamePath ${c.HostnamePath}`);
    assert.equal(readFileSync(c.HostnamePath, 'utf8').trim(), webId.slice(0, 12));
    // Mounts and NetworkSettings: present with Docker's types.
    assert.ok(Array.isArray(c.Mounts));
    assert.equal(typeof c.NetworkSettings, 'object');
    assert.equal(typeof c.NetworkSettings.Networks, 'object');
    assert.equal(typeof c.NetworkSettings.Ports, 'object');
    assert.equal(typeof c.NetworkSettings.SandboxKey, 'string');
  });

  test('full ids, short id prefixes and names all resolve', async () => {
    for (const ref of [webId, webId.slice(0, 12), webId.slice(0, 6), 'web']) {
      const c = await inspect(ref);
      assert.equal(c.Id, webId, `inspect ${ref}`);
    }
    const r = await api(b, 'GET', `/v1.52/containers/${webId.slice(0, 8)}/json`);
    assert.equal(r.status, 200);
    assert.equal(r.json().Id, webId);
    const byslash = await api(b, 'GET', '/v1.52/containers/%2Fweb/json');
    assert.equal(byslash.status, 200, byslash.body);
    assert.equal(byslash.json().Id, webId);
    await ok('logs', webId.slice(0, 12));
    await ok('kill', '-s', 'CONT', webId.slice(0, 7));
  });

  test('generated names look like Docker\'s (adjective_surname) and differ', async () => {
    const ids: string[] = [];
    try {
      for (let i = 0; i < 4; i++) ids.push((await ok('create', 'busybox', 'true')).trim());
      const names = [];
      for (const id of ids) {
        const c = await inspect(id);
        assert.match(c.Name, /^\/[a-z]+_[a-z]+\d*$/);
        names.push(c.Name);
        // The name resolves too.
        assert.equal((await inspect(c.Name.slice(1))).Id, id);
      }
      assert.equal(new Set(names).size, names.length, `duplicate generated names: ${names}`);
      const listed = (await ok('ps', '-a', '--format', '{{.Names}}')).split('\n');
      for (const n of names) assert.ok(listed.includes(n.slice(1)), `${n} not in ps -a`);
    } finally {
      if (ids.length) await rmf(...ids);
    }
  });

  test('names are unique: a second --name web is a 409 "is already in use", exit 125, nothing created', async () => {
    const before = await allIds();
    const r = await fails(125, /is already in use/, 'run', '-d', '--name', 'web', 'busybox', 'true');
    assert.match(r.stderr, new RegExp(webId));
    // `docker create` exits 1 on a daemon error (only `run` maps them to 125).
    await fails(1, /is already in use/, 'create', '--name', 'web', 'busybox', 'true');
    const raw = await api(b, 'POST', '/v1.52/containers/create?name=web', { body: { Image: 'busybox', Cmd: ['true'] } });
    assert.equal(raw.status, 409, raw.body);
    assert.equal(raw.headers['content-type'], 'application/json');
    assert.equal(raw.json().message,
      `Conflict. The container name "/web" is already in use by container "${webId}". You have to remove (or rename) that container to be able to reuse that name.`);
    assert.deepEqual(await allIds(), before);
  });

  test('start of a running container prints its name (304 on the wire)', async () => {
    const pid = (await inspect('web')).State.Pid;
    assert.equal((await ok('start', 'web')), 'web\n');
    const raw = await api(b, 'POST', '/v1.52/containers/web/start');
    assert.equal(raw.status, 304);
    assert.equal(raw.body, '');
    assert.equal((await inspect('web')).State.Pid, pid, 'start of a running container changed its process');
  });

  test('rm of a running container is a 409; rm -f removes it with its process, mounts and cgroups', async () => {
    const c = await inspect('web');
    await fails(1, /You cannot remove a running container/, 'rm', 'web');
    const raw = await api(b, 'DELETE', '/v1.52/containers/web');
    assert.equal(raw.status, 409);
    assert.match(raw.json().message, new RegExp(`You cannot remove a running container ${webId}`));
    assert.equal((await inspect('web')).State.Running, true);

    assert.equal(await ok('rm', '-f', 'web'), 'web\n');
    await fails(1, /No such container: web/, 'inspect', '--type', 'container', 'web');
    await waitFor('the container process to be gone', () => !alive(c.State.Pid), 5000);
    assert.equal(mountsUnder(c.GraphDriver.Data.MergedDir).length, 0, 'merged dir still mounted');
    assert.ok(!existsSync(c.GraphDriver.Data.UpperDir), 'upper dir left behind');
    assert.ok(!existsSync(path.dirname(c.LogPath)), 'container directory left behind');
    for (const ctl of ['memory', 'pids', 'cpu', 'unified']) {
      const dir = path.join('/sys/fs/cgroup', ctl, b.cgroupParent, webId);
      assert.ok(!existsSync(dir), `cgroup ${dir} left behind`);
    }
    // A stopped container is removed by plain rm.
    assert.equal(await ok('rm', 'exit3'), 'exit3\n');
  });
});

// ---- logs ------------------------------------------------------------------------------------------

describe('docker logs', () => {
  before(async () => {
    const r = await docker('run', '--name', 'logs1', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo out$i; echo err$i >&2; done');
    assert.equal(r.code, 0, show(r));
  });
  after(async () => {
    await rmf('logs1', 'tail1', 'follow', 'ticker');
  });

  const seq = (p: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${p}${from + i}\n`).join('');

  test('logs keeps stdout and stderr apart', async () => {
    const r = await docker('logs', 'logs1');
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, seq('out', 1, 10));
    assert.equal(r.stderr, seq('err', 1, 10));
  });

  test('logs --tail N gives the last N entries of the log (both streams counted together, as Docker does)', async () => {
    const one = await docker('run', '--name', 'tail1', 'busybox', 'sh', '-c', 'for i in $(seq 1 10); do echo n$i; done');
    assert.equal(one.code, 0, show(one));
    const t3 = await docker('logs', '--tail', '3', 'tail1');
    assert.equal(t3.code, 0, show(t3));
    assert.equal(t3.stdout, seq('n', 8, 10));
    assert.equal(t3.stderr, '');

    // Mixed streams: the last N entries in the log file's order, then split by stream.
    const c = await inspect('logs1');
    const entries = readFileSync(c.LogPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
    assert.equal(entries.length, 20, 'the json-file log does not hold one entry per line');
    const last = entries.slice(-4);
    const r = await docker('logs', '--tail', '4', 'logs1');
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, last.filter((e) => e.stream === 'stdout').map((e) => e.log).join(''));
    assert.equal(r.stderr, last.filter((e) => e.stream === 'stderr').map((e) => e.log).join(''));
    const z = await docker('logs', '--tail', '0', 'logs1');
    assert.equal(z.code, 0, show(z));
    assert.equal(z.stdout + z.stderr, '');
    const big = await docker('logs', '--tail', '100', 'logs1');
    assert.equal(big.stdout, seq('out', 1, 10));
    assert.equal(big.stderr, seq('err', 1, 10));
  });

  test('logs -t prefixes RFC3339 times with 9 fractional digits', async () => {
    const c = await inspect('logs1');
    const r = await docker('logs', '-t', 'logs1');
    assert.equal(r.code, 0, show(r));
    const lines = r.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 10);
    const started = Date.parse(c.State.StartedAt) - 1000;
    const finished = Date.parse(c.State.FinishedAt) + 1000;
    let prev = 0;
    lines.forEach((l, i) => {
      const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z (out\d+)$/.exec(l);
      assert.ok(m, `bad timestamped line ${JSON.stringify(l)}`);
      assert.equal(m[3], `out${i + 1}`);
      const t = Date.parse(`${m[1]}.${m[2].slice(0, 3)}Z`);
      assert.ok(t >= started && t <= finished, `time ${l} outside the container's run`);
      assert.ok(t >= prev, 'times go backwards');
      prev = t;
    });
    assert.match(r.stderr.split('\n')[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z err1$/);
  });

  test('logs -f follows new output and ends when the container exits', async () => {
    await ok('run', '-d', '--name', 'follow', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo f$i; sleep 0.3; done; echo bye >&2');
    const r = await b.docker(['logs', '-f', 'follow'], { timeoutMs: 30000 });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, seq('f', 1, 5));
    assert.equal(r.stderr, 'bye\n');
    assert.equal((await inspect('follow')).State.Status, 'exited');

    // On a long-running container: lines written after logs -f started arrive, and the stream ends at exit.
    await ok('run', '-d', '--name', 'ticker', 'busybox', 'sh', '-c', 'i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.2; done');
    await logsMatch('ticker', /tick1\n/);
    const child = spawnDocker(b, ['logs', '-f', '--tail', '1', 'ticker']);
    try {
      const first = (await child.waitForStdout(/tick\d+\n/)).match(/tick(\d+)/)![1];
      const later = await child.waitForStdout(new RegExp(`tick${Number(first) + 3}\\n`));
      const nums = [...later.matchAll(/tick(\d+)/g)].map((m) => Number(m[1]));
      nums.forEach((n, i) => assert.equal(n, Number(first) + i, `lines out of order or lost: ${later}`));
      await ok('kill', 'ticker');
      const ex = await Promise.race([child.exited, sleep(15000).then(() => 'timeout' as const)]);
      assert.notEqual(ex, 'timeout', 'logs -f did not end when the container exited');
      assert.equal((ex as { code: number }).code, 0);
    } finally {
      child.kill();
    }
  });
});

// ---- stop, kill, start, wait ----------------------------------------------------------------------

describe('stop, kill, start, wait', () => {
  after(async () => {
    await rmf('stopper', 'trapper', 'sigstop', 'kt', 'w7');
  });

  test('stop: sh as pid 1 ignores TERM, so -t 1 ends with SIGKILL (137)', async () => {
    await ok('run', '-d', '--name', 'stopper', 'busybox', 'sh', '-c', 'while :; do sleep 1; done');
    const before = await inspect('stopper');
    assert.equal(await ok('stop', '-t', '1', 'stopper'), 'stopper\n');
    const c = await inspect('stopper');
    assert.equal(c.State.Status, 'exited');
    assert.equal(c.State.Running, false);
    assert.equal(c.State.ExitCode, 137);
    assert.equal(c.State.Pid, 0);
    assert.notEqual(c.State.FinishedAt, ZERO_TIME);
    assert.ok(Date.parse(c.State.FinishedAt) >= Date.parse(before.State.StartedAt));
    assert.ok(!alive(before.State.Pid), 'the process survived docker stop');
  });

  test('stop of a stopped container succeeds and prints the name (304 on the wire)', async () => {
    assert.equal(await ok('stop', 'stopper'), 'stopper\n');
    const raw = await api(b, 'POST', '/v1.52/containers/stopper/stop');
    assert.equal(raw.status, 304);
  });

  test('a container with a TERM handler stops at once with its own exit code', async () => {
    await ok('run', '-d', '--name', 'trapper', 'busybox', 'sh', '-c', "trap 'exit 0' TERM; echo ready; while :; do sleep 0.1; done");
    await logsMatch('trapper', /ready/);
    const t0 = Date.now();
    assert.equal(await ok('stop', '-t', '30', 'trapper'), 'trapper\n');
    const took = Date.now() - t0;
    const c = await inspect('trapper');
    assert.equal(c.State.ExitCode, 0, 'TERM was not delivered to the handler');
    assert.ok(took < 20000, `stop waited ${took} ms although the container exited on TERM`);
  });

  test('stop uses the container\'s StopSignal', async () => {
    await ok('run', '-d', '--stop-signal', 'USR1', '--name', 'sigstop', 'busybox', 'sh', '-c', "trap 'exit 5' USR1; echo ready; while :; do sleep 0.1; done");
    assert.equal((await inspect('sigstop')).Config.StopSignal, 'USR1');
    await logsMatch('sigstop', /ready/);
    await ok('stop', '-t', '30', 'sigstop');
    assert.equal((await inspect('sigstop')).State.ExitCode, 5);
  });

  test('kill -s delivers the signal; a bad signal is a 400 "Invalid signal"', async () => {
    await ok('run', '-d', '--name', 'kt', 'busybox', 'sh', '-c', "trap 'echo got-USR1' USR1; trap 'echo got-HUP' HUP; echo ready; while :; do sleep 0.1; done");
    await logsMatch('kt', /ready/);
    assert.equal(await ok('kill', '-s', 'USR1', 'kt'), 'kt\n');
    await logsMatch('kt', /got-USR1/);
    await ok('kill', '-s', 'SIGHUP', 'kt');
    await logsMatch('kt', /got-HUP/);
    await ok('kill', '-s', '10', 'kt'); // USR1 by number
    await logsMatch('kt', /got-USR1\n(.*\n)*got-USR1/);
    assert.equal((await inspect('kt')).State.Running, true);

    await fails(1, /Invalid signal: NOSUCHSIG/, 'kill', '-s', 'NOSUCHSIG', 'kt');
    const raw = await api(b, 'POST', '/v1.52/containers/kt/kill?signal=NOSUCHSIG');
    assert.equal(raw.status, 400);
    assert.equal(raw.json().message, 'Invalid signal: NOSUCHSIG');
    assert.equal((await inspect('kt')).State.Running, true);

    assert.equal(await ok('kill', 'kt'), 'kt\n');
    assert.equal(await ok('wait', 'kt'), '137\n');
    await fails(1, /is not running/, 'kill', 'kt');
    const again = await api(b, 'POST', '/v1.52/containers/kt/kill');
    assert.equal(again.status, 409);
    assert.match(again.json().message, /is not running/);
  });

  test('start runs a stopped container again', async () => {
    const before = await inspect('stopper');
    assert.equal(await ok('start', 'stopper'), 'stopper\n');
    const c = await inspect('stopper');
    assert.equal(c.State.Running, true);
    assert.ok(c.State.Pid > 0 && c.State.Pid !== before.State.Pid);
    assert.ok(Date.parse(c.State.StartedAt) >= Date.parse(before.State.FinishedAt), 'StartedAt not renewed');
    assert.equal(c.State.ExitCode, 0);
    assert.ok(alive(c.State.Pid));
    await ok('kill', 'stopper');
  });

  test('wait prints the exit code, at exit and afterwards', async () => {
    await ok('run', '-d', '--name', 'w7', 'busybox', 'sh', '-c', 'sleep 1; exit 7');
    assert.equal(await ok('wait', 'w7'), '7\n');
    assert.equal(await ok('wait', 'w7'), '7\n');
    await fails(1, /No such container: nosuch-w/, 'wait', 'nosuch-w');
  });
});

// ---- create, start -a, attach ----------------------------------------------------------------------

describe('create, start -a, attach', () => {
  after(async () => {
    await rmf('ca', 'att', 'catter');
  });

  test('create then start -a: output, streams apart, and the exit code', async () => {
    const id = (await ok('create', '--name', 'ca', 'busybox', 'sh', '-c', 'echo created-out; echo created-err >&2; exit 4')).trim();
    assert.match(id, HEX64);
    const c = await inspect('ca');
    assert.equal(c.State.Status, 'created');
    assert.equal(c.State.Running, false);
    assert.equal(c.State.Pid, 0);
    assert.equal(c.State.StartedAt, ZERO_TIME);
    assert.ok(!(await ok('ps', '--format', '{{.Names}}')).split('\n').includes('ca'));
    const row = (await ok('ps', '-a', '--format', '{{.Names}}|{{.Status}}')).split('\n').find((l) => l.startsWith('ca|'));
    assert.equal(row, 'ca|Created');
    const r = await docker('start', '-a', 'ca');
    assert.equal(r.code, 4, show(r));
    assert.equal(r.stdout, 'created-out\n');
    assert.equal(r.stderr, 'created-err\n');
    assert.equal((await inspect('ca')).State.ExitCode, 4);
    // Again, now that it has exited: the attach made before the start waits for this run (Docker's too).
    const again = await docker('start', '-a', 'ca');
    assert.equal(again.code, 4, show(again));
    assert.equal(again.stdout, 'created-out\n');
    assert.equal(again.stderr, 'created-err\n');
  });

  test('attach to a running container shows its new output and ends with its exit code', async () => {
    await ok('run', '-d', '--name', 'att', 'busybox', 'sh', '-c', 'i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.2; done');
    await logsMatch('att', /tick0/);
    const child = spawnDocker(b, ['attach', 'att']);
    try {
      const out = await child.waitForStdout(/tick\d+\n(.|\n)*tick\d+\n(.|\n)*tick\d+\n/);
      const nums = [...out.matchAll(/tick(\d+)/g)].map((m) => Number(m[1]));
      assert.ok(nums[0] > 0, 'attach replayed old output');
      nums.forEach((n, i) => assert.equal(n, nums[0] + i, `lost or reordered output: ${out}`));
      await ok('kill', 'att');
      const ex = await Promise.race([child.exited, sleep(15000).then(() => 'timeout' as const)]);
      assert.notEqual(ex, 'timeout', 'attach did not end when the container exited');
      assert.equal((ex as { code: number }).code, 137);
    } finally {
      child.kill();
    }
  });

  test('attach forwards stdin to a container started with -i', async () => {
    await ok('run', '-d', '-i', '--name', 'catter', 'busybox', 'cat');
    const child = spawnDocker(b, ['attach', 'catter'], { stdin: 'pipe' });
    try {
      // The attach may take a moment: keep sending until the echo comes back.
      await waitFor('cat to echo stdin sent through attach', async () => {
        child.proc.stdin!.write('ping\n');
        await sleep(200);
        return /ping\n/.test(child.stdout());
      }, 15000, 0);
      assert.equal((await inspect('catter')).State.Running, true);
    } finally {
      child.kill();
    }
  });
});

// ---- inside the container --------------------------------------------------------------------------

describe('inside the container', () => {
  after(async () => {
    await rmf('hn', 'wr', 'lay-default');
  });

  test('the command is pid 1', async () => {
    const r = await docker('run', '--rm', 'busybox', 'sh', '-c', 'echo $$');
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, '1\n');
    const ps = await docker('run', '--rm', 'busybox', 'ps', '-o', 'pid,comm');
    assert.equal(ps.code, 0, show(ps));
    const procs = ps.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(procs, [['1', 'ps']], `the container sees other processes:\n${ps.stdout}`);
  });

  test('the default seccomp profile and capabilities confine the container; --privileged lifts them', async () => {
    const r = await docker('run', '--rm', 'busybox', 'sh', '-c', 'grep -E "^(Seccomp|CapEff):" /proc/self/status; unshare -n true 2>/dev/null; echo unshare=$?');
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /Seccomp:\s+2/);
    assert.match(r.stdout, /CapEff:\s+00000000a80425fb/);
    assert.match(r.stdout, /unshare=1/);
    const p = await docker('run', '--rm', '--privileged', 'busybox', 'sh', '-c', 'grep -E "^Seccomp:" /proc/self/status; unshare -n true; echo unshare=$?');
    assert.equal(p.code, 0, show(p));
    assert.match(p.stdout, /Seccomp:\s+0/);
    assert.match(p.stdout, /unshare=0/);
  });

  test('the hostname is the short id', async () => {
    const r = await docker('run', '--name', 'hn', 'busybox', 'sh', '-c', 'hostname; cat /etc/hostname; echo $HOSTNAME');
    assert.equal(r.code, 0, show(r));
    const id = (await inspect('hn')).Id as string;
    const s = id.slice(0, 12);
    assert.equal(r.stdout, `${s}\n${s}\n${s}\n`);
  });

  test('new pid, mount, uts, ipc and net namespaces', async () => {
    const kinds = ['pid', 'mnt', 'uts', 'ipc', 'net'];
    const r = await docker('run', '--rm', 'busybox', 'sh', '-c', kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; '));
    assert.equal(r.code, 0, show(r));
    const inside = r.stdout.trim().split('\n');
    assert.equal(inside.length, kinds.length, r.stdout);
    const mine = nsOf('self', kinds);
    // The host's init too, where this sandbox lets us read it (it may refuse with EACCES).
    let init: Record<string, string> | undefined;
    try {
      init = nsOf(1, kinds);
    } catch { /* not readable here; berthd runs in our namespaces, which are compared above */ }
    kinds.forEach((k, i) => {
      assert.match(inside[i], new RegExp(`^${k}:\\[\\d+\\]$`));
      assert.notEqual(inside[i], mine[k], `${k} namespace shared with the test process (and berthd)`);
      if (init) assert.notEqual(inside[i], init[k], `${k} namespace shared with the host's init`);
    });
  });

  test('with --network none the network namespace has only a loopback, and it is up', async () => {
    // The default is the bridge network (test/e2e/network.test.ts); `none` keeps the loopback-only namespace.
    const r = await docker('run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'cat /proc/net/dev; echo ---; cat /sys/class/net/lo/flags');
    assert.equal(r.code, 0, show(r));
    const [dev, flags] = r.stdout.split('---\n');
    const ifaces = dev.trim().split('\n').slice(2).map((l) => l.trim().split(':')[0]);
    assert.deepEqual(ifaces, ['lo']);
    assert.equal(Number(flags.trim()) & 1, 1, `lo is down (flags ${flags.trim()})`);
  });

  test('/sys is read-only', async () => {
    const r = await docker('run', '--rm', 'busybox', 'touch', '/sys/berth-test');
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /Read-only file system/);
    const m = await docker('run', '--rm', 'busybox', 'cat', '/proc/mounts');
    const sys = m.stdout.split('\n').map((l) => l.split(' ')).find((f) => f[1] === '/sys');
    assert.ok(sys, `no /sys mount:\n${m.stdout}`);
    assert.equal(sys[2], 'sysfs');
    assert.ok(sys[3].split(',').includes('ro'), `/sys is mounted ${sys[3]}`);
  });

  test('/proc has Docker\'s masked and read-only paths', async () => {
    // /proc/kcore does not exist on this kernel: absent or masked (empty) both pass.
    const k = await docker('run', '--rm', 'busybox', 'sh', '-c', 'if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo absent; fi');
    assert.equal(k.code, 0, show(k));
    assert.match(k.stdout.trim(), /^(absent|0)$/);
    // Masked files that do exist here read as empty; masked directories list empty.
    for (const f of ['/proc/keys', '/proc/timer_list'].filter((p) => existsSync(p))) {
      assert.ok(readFileSync(f).length > 0 || f === '/proc/keys', `host ${f} is empty; the check would prove nothing`);
      const r = await docker('run', '--rm', 'busybox', 'sh', '-c', `wc -c < ${f}`);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout.trim(), '0', `${f} is not masked`);
    }
    if (existsSync('/sys/firmware') && readdirSync('/sys/firmware').length > 0) {
      const r = await docker('run', '--rm', 'busybox', 'ls', '-A', '/sys/firmware');
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout, '', '/sys/firmware is not masked');
    }
    // /proc/sys is read-only.
    const w = await docker('run', '--rm', 'busybox', 'sh', '-c', 'echo berth > /proc/sys/kernel/hostname');
    assert.notEqual(w.code, 0, show(w));
    assert.match(w.stderr, /Read-only file system/);
  });

  test('/dev is a tmpfs with the standard nodes, plus /dev/pts, /dev/shm and /dev/mqueue', async () => {
    const r = await docker('run', '--rm', 'busybox', 'sh', '-c', 'cat /proc/mounts; echo ---; ls -A /dev; echo ---; head -c 5 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok');
    assert.equal(r.code, 0, show(r));
    const [mounts, devs, rest] = r.stdout.split('---\n');
    const fstype = (mp: string) => mounts.split('\n').map((l) => l.split(' ')).find((f) => f[1] === mp)?.[2];
    assert.equal(fstype('/'), 'overlay');
    assert.equal(fstype('/proc'), 'proc');
    assert.equal(fstype('/dev'), 'tmpfs');
    assert.equal(fstype('/dev/pts'), 'devpts');
    assert.equal(fstype('/dev/shm'), 'tmpfs');
    assert.equal(fstype('/dev/mqueue'), 'mqueue');
    const entries = devs.split('\n').filter(Boolean);
    for (const n of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'pts', 'shm', 'fd', 'stdin', 'stdout', 'stderr']) {
      assert.ok(entries.includes(n), `/dev/${n} missing: ${entries.join(' ')}`);
    }
    const hostDisks = entries.filter((e) => /^(sd|vd|xvd|nvme|loop|mem$|kmsg$|port$)/.test(e));
    assert.deepEqual(hostDisks, [], 'host devices visible in the container');
    assert.equal(rest, '5\nnull-ok\n');
  });

  test('a file written in the container lands in its upper dir, not in the image', async () => {
    const r = await docker('run', '--name', 'wr', 'busybox', 'sh', '-c', 'echo data > /tmp/written.txt');
    assert.equal(r.code, 0, show(r));
    const c = await inspect('wr');
    assert.equal(readFileSync(path.join(c.GraphDriver.Data.UpperDir, 'tmp', 'written.txt'), 'utf8'), 'data\n');
    for (const l of String(c.GraphDriver.Data.LowerDir).split(':')) {
      assert.ok(!existsSync(path.join(l, 'tmp', 'written.txt')), `written into lower dir ${l}`);
    }
    const other = await docker('run', '--rm', 'busybox', 'cat', '/tmp/written.txt');
    assert.notEqual(other.code, 0, `another container sees the file: ${show(other)}`);
  });

  test('the layered image\'s Env, Cmd, Entrypoint, WorkingDir and User are applied', async () => {
    const img = JSON.parse(await ok('image', 'inspect', 'layered'))[0];
    const ic = img.Config;
    assert.ok(ic.Env.includes('GREETING=hello-from-image'), `image Env ${JSON.stringify(ic.Env)}`);
    assert.equal(ic.WorkingDir, '/app');
    assert.ok(Array.isArray(ic.Entrypoint) && ic.Entrypoint.length > 0, 'the fixture image has no Entrypoint');
    assert.ok(Array.isArray(ic.Cmd) && ic.Cmd.length > 0, 'the fixture image has no Cmd');

    // The defaults: the container runs Entrypoint + Cmd with the image's Env, WorkingDir and User.
    const r = await docker('run', '--name', 'lay-default', 'layered');
    const c = await inspect('lay-default');
    assert.equal(c.Path, ic.Entrypoint[0]);
    assert.deepEqual(c.Args, [...ic.Entrypoint.slice(1), ...ic.Cmd]);
    assert.deepEqual(c.Config.Entrypoint, ic.Entrypoint);
    assert.deepEqual(c.Config.Cmd, ic.Cmd);
    assert.equal(c.Config.WorkingDir, '/app');
    assert.equal(c.Config.User, ic.User);
    assert.ok(c.Config.Env.includes('GREETING=hello-from-image'));
    assert.equal(r.code, 0, show(r));
    assert.equal(c.State.ExitCode, 0);
    // The fixture's entrypoint is /app/run.sh: echo "$GREETING from run.sh: $*".
    assert.equal(r.stdout, `hello-from-image from run.sh: ${ic.Cmd.join(' ')}\n`);

    // What the process sees.
    const probe = 'id -u; id -un; pwd; echo "$GREETING"; echo "$HOME"';
    const p = await docker('run', '--rm', '--entrypoint', 'sh', 'layered', '-c', probe);
    assert.equal(p.code, 0, show(p));
    assert.equal(p.stdout, '1000\napp\n/app\nhello-from-image\n/home/app\n');

    // Cmd replaced, Entrypoint kept.
    const args = await docker('run', '--rm', 'layered', 'replaced', 'args');
    assert.equal(args.code, 0, show(args));
    assert.equal(args.stdout, 'hello-from-image from run.sh: replaced args\n');
    const cmdOnly = await docker('create', 'layered', 'replaced-arg');
    assert.equal(cmdOnly.code, 0, show(cmdOnly));
    const cc = await inspect(cmdOnly.stdout.trim());
    assert.equal(cc.Path, ic.Entrypoint[0]);
    assert.deepEqual(cc.Args, [...ic.Entrypoint.slice(1), 'replaced-arg']);
    await rmf(cc.Id);

    // The root is the union of the image's layers: files deleted by a later layer (a whiteout) and the old
    // content of a directory replaced by a later layer (an opaque directory) are gone.
    const fsr = await docker('run', '--rm', '--entrypoint', 'sh', 'layered', '-c',
      'ls -A /app/cache; cat /app/hello.txt; test -e /app/remove-me && echo remove-me-still-there; ls /bin/busybox');
    assert.equal(fsr.code, 0, show(fsr));
    assert.equal(fsr.stdout, 'new.txt\nhello from layer 2\n/bin/busybox\n');
  });

  test('overrides: -u, -w, -e and --entrypoint', async () => {
    const run = async (...args: string[]) => {
      const r = await docker('run', '--rm', ...args);
      assert.equal(r.code, 0, `run ${args.join(' ')}\n${show(r)}`);
      return r.stdout;
    };
    assert.equal(await run('-u', '0', '--entrypoint', 'id', 'layered', '-u'), '0\n');
    assert.equal(await run('-u', '1234:4321', '--entrypoint', 'sh', 'layered', '-c', 'id -u; id -g'), '1234\n4321\n');
    assert.equal(await run('-w', '/tmp', '--entrypoint', 'pwd', 'layered'), '/tmp\n');
    assert.equal(await run('-w', '/new/dir', 'busybox', 'pwd'), '/new/dir\n');
    assert.equal(await run('-e', 'GREETING=override', '-e', 'EXTRA=1', '--entrypoint', 'sh', 'layered', '-c', 'echo $GREETING $EXTRA; id -u'), 'override 1\n1000\n');
    assert.equal(await run('-e', 'GREETING=hi', 'layered'), 'hi from run.sh: default-arg\n');
    assert.equal(await run('--entrypoint', 'echo', 'layered', 'a', 'b'), 'a b\n');
    const env = await run('busybox', 'env');
    assert.match(env, /^PATH=\/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin$/m);
    assert.match(env, /^HOME=\/root$/m);
  });
});

// ---- cgroups ----------------------------------------------------------------------------------------

describe('cgroups', () => {
  after(async () => {
    await rmf('limited');
  });

  test('one cgroup per container under the cgroup parent, with the memory and pids limits from HostConfig', async () => {
    const id = (await ok('run', '-d', '--name', 'limited', '-m', '64m', '--pids-limit', '50', 'busybox', 'sleep', '1000')).trim();
    const c = await inspect('limited');
    assert.equal(c.HostConfig.Memory, 67108864);
    assert.equal(c.HostConfig.PidsLimit, 50);
    const rel = `/${b.cgroupParent}/${id}`;
    const procCgroups = readFileSync(`/proc/${c.State.Pid}/cgroup`, 'utf8');
    let dirs: string[];
    if (hostCgroupVersion() === '1') {
      assert.match(procCgroups, new RegExp(`^\\d+:memory:${rel}$`, 'm'), procCgroups);
      assert.match(procCgroups, new RegExp(`^\\d+:pids:${rel}$`, 'm'), procCgroups);
      const mem = path.join('/sys/fs/cgroup/memory', rel);
      const pids = path.join('/sys/fs/cgroup/pids', rel);
      assert.equal(readFileSync(path.join(mem, 'memory.limit_in_bytes'), 'utf8').trim(), '67108864');
      assert.equal(readFileSync(path.join(pids, 'pids.max'), 'utf8').trim(), '50');
      assert.ok(readFileSync(path.join(pids, 'cgroup.procs'), 'utf8').split('\n').includes(String(c.State.Pid)));
      dirs = [mem, pids];
    } else {
      assert.match(procCgroups, new RegExp(`^0::${rel}$`, 'm'), procCgroups);
      const dir = path.join('/sys/fs/cgroup', rel);
      assert.equal(readFileSync(path.join(dir, 'memory.max'), 'utf8').trim(), '67108864');
      assert.equal(readFileSync(path.join(dir, 'pids.max'), 'utf8').trim(), '50');
      dirs = [dir];
    }
    // berthd itself is not in the container's cgroup.
    const own = readFileSync(`/proc/${b.proc.pid}/cgroup`, 'utf8');
    assert.ok(!own.includes(id), `berthd is in the container's cgroup:\n${own}`);
    // Removing the container removes its cgroups.
    await ok('rm', '-f', 'limited');
    for (const d of dirs) await waitFor(`${d} to be removed`, () => !existsSync(d), 5000);
  });
});

// ---- bad input -------------------------------------------------------------------------------------

describe('bad input gets Docker\'s status and a JSON message, and creates nothing', () => {
  let before: string[] = [];
  test('setup: remember the containers', async () => {
    before = await allIds();
  });

  const isJsonError = (r: { status: number; headers: Record<string, unknown>; json(): { message?: unknown } }, status: number, what: string) => {
    assert.equal(r.status, status, what);
    assert.equal(r.headers['content-type'], 'application/json', what);
    const m = r.json().message;
    assert.equal(typeof m, 'string', what);
    assert.ok((m as string).length > 0, what);
    return m as string;
  };

  test('malformed JSON: 400', async () => {
    for (const p of ['/v1.52/containers/create', '/containers/create', '/v1.41/containers/create?name=badjson']) {
      const r = await api(b, 'POST', p, { body: '{"Image": "busybox",', headers: { 'Content-Type': 'application/json' } });
      isJsonError(r, 400, `POST ${p}`);
    }
    assert.deepEqual(await allIds(), before);
  });

  test('wrong field types: 400', async () => {
    const bodies = [
      { Image: 'busybox', Cmd: 5 },
      { Image: ['busybox'] },
      { Image: 'busybox', Env: 'A=1' },
      { Image: 'busybox', Tty: 'yes' },
      { Image: 'busybox', HostConfig: { Memory: 'lots' } },
      { Image: 'busybox', HostConfig: 'none' },
      [],
    ];
    for (const body of bodies) {
      const r = await api(b, 'POST', '/v1.52/containers/create?name=badtype', { body });
      isJsonError(r, 400, JSON.stringify(body));
    }
    assert.deepEqual(await allIds(), before);
    await fails(1, /No such container: badtype/, 'inspect', '--type', 'container', 'badtype');
  });

  test('unknown image: the CLI says "Unable to find image", then fails with 125, nothing created', async () => {
    const r = await fails(125, /Unable to find image 'nosuch-image-xyz:latest' locally/, 'run', 'nosuch-image-xyz');
    // Then the failed pull: "docker: <why>" (Docker says "docker: Error response from daemon: …").
    assert.match(r.stderr, /locally\n(.|\n)*^docker: \S.*nosuch-image-xyz/m);
    const raw = await api(b, 'POST', '/v1.52/containers/create', { body: { Image: 'nosuch-image-xyz', Cmd: ['true'] } });
    assert.match(isJsonError(raw, 404, 'create with an unknown image'), /No such image: nosuch-image-xyz/);
    assert.deepEqual(await allIds(), before);
  });

  test('bad names: 400 "Invalid container name"', async () => {
    await fails(125, /Invalid container name/, 'run', '--name', 'bad name!', 'busybox', 'true');
    for (const name of ['a', 'bad name', '_x', 'x/y', '-x', 'dollar$', 'ünï']) {
      const r = await api(b, 'POST', `/v1.52/containers/create?name=${encodeURIComponent(name)}`, { body: { Image: 'busybox', Cmd: ['true'] } });
      assert.match(isJsonError(r, 400, `name ${name}`), /Invalid container name/);
    }
    assert.deepEqual(await allIds(), before);
  });

  test('unknown endpoints: 404 {"message":"page not found"}', async () => {
    for (const [method, p] of [['GET', '/nosuch'], ['GET', '/v1.52/nosuch'], ['POST', '/v1.52/containers/x/nosuchverb'],
      ['GET', '/v1.24/containers'], ['GET', '/v1.52/containers/x/nosuch'], ['POST', '/v1.52/nosuch/create']] as const) {
      const r = await api(b, method, p);
      assert.equal(r.status, 404, `${method} ${p}: ${r.status} ${r.body}`);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.deepEqual(r.json(), { message: 'page not found' });
    }
  });

  test('unknown containers: 404 "No such container", and docker inspect fails', async () => {
    await fails(1, /No such object: nosuch/, 'inspect', 'nosuch');
    await fails(1, /No such container: nosuch/, 'inspect', '--type', 'container', 'nosuch');
    for (const args of [['logs', 'nosuch'], ['stop', 'nosuch'], ['start', 'nosuch'], ['kill', 'nosuch'], ['rm', 'nosuch'], ['attach', 'nosuch']]) {
      await fails(1, /No such container: nosuch/, ...args);
    }
    const r = await api(b, 'GET', '/v1.52/containers/nosuch/json');
    assert.deepEqual(r.json(), { message: 'No such container: nosuch' });
    assert.equal(r.status, 404);
    assert.deepEqual(await allIds(), before);
  });
});

// ---- containers outlive berthd ---------------------------------------------------------------------

describe('containers outlive berthd', () => {
  after(async () => {
    await rmf('live', 'exit7', 'live2');
  });

  test('kill -9 berthd: web keeps running and logging; after a restart ps, logs and stop work, and an exit while down is kept', async () => {
    await ok('run', '-d', '--name', 'live', 'busybox', 'sh', '-c', 'i=0; while :; do echo line $i; i=$((i+1)); sleep 0.2; done');
    await logsMatch('live', /line 2\n/);
    await ok('run', '-d', '--name', 'exit7', 'busybox', 'sh', '-c', 'sleep 1; exit 7');
    const live = await inspect('live');
    const exit7 = await inspect('exit7');
    const shimPidFile = path.join(b.execRoot, 'containers', live.Id, 'shim.pid');
    const shimPid = Number(readFileSync(shimPidFile, 'utf8').trim());
    assert.ok(alive(shimPid), 'no live shim for the container');
    const logLines = () => readFileSync(live.LogPath, 'utf8').split('\n').filter(Boolean).length;

    await b.kill9();
    const downAt = Date.now();
    const linesAtKill = logLines();
    // While berthd is down: the container and its shim live on, the log keeps growing, exit7 exits.
    await sleep(1000);
    await waitFor('exit7 to exit while berthd is down', () => !alive(exit7.State.Pid), 10000);
    assert.ok(alive(live.State.Pid), 'the container died with berthd');
    assert.ok(alive(shimPid), 'the shim died with berthd');
    await waitFor('the log to grow while berthd is down', () => logLines() >= linesAtKill + 3, 10000);
    const upAt = Date.now();
    await b.restart();

    // docker ps still shows live running, with the same process.
    const ps = (await ok('ps', '--format', '{{.Names}}|{{.Status}}')).split('\n');
    assert.ok(ps.some((l) => /^live\|Up /.test(l)), `ps after restart:\n${ps.join('\n')}`);
    const again = await inspect('live');
    assert.equal(again.State.Running, true);
    assert.equal(again.State.Pid, live.State.Pid);
    assert.equal(again.State.StartedAt, live.State.StartedAt);

    // docker logs includes what it wrote while berthd was down, in order, with nothing lost.
    const logs = await docker('logs', '-t', 'live');
    assert.equal(logs.code, 0, show(logs));
    const entries = logs.stdout.split('\n').filter(Boolean).map((l) => {
      const m = /^(\S+)Z line (\d+)$/.exec(l);
      assert.ok(m, `bad line ${l}`);
      return { t: Date.parse(`${m[1].slice(0, 23)}Z`), n: Number(m[2]) };
    });
    entries.forEach((e, i) => assert.equal(e.n, i, 'a line is missing or out of order'));
    const whileDown = entries.filter((e) => e.t > downAt && e.t < upAt);
    assert.ok(whileDown.length >= 3, `only ${whileDown.length} lines time-stamped while berthd was down`);
    assert.ok(entries.length >= linesAtKill + whileDown.length);

    // The container that exited while berthd was down shows its real exit code.
    const e7 = await inspect('exit7');
    assert.equal(e7.State.Status, 'exited');
    assert.equal(e7.State.ExitCode, 7);
    assert.equal(e7.State.Running, false);
    const fin = Date.parse(e7.State.FinishedAt);
    assert.ok(fin >= downAt - 1000 && fin <= upAt + 1000, `FinishedAt ${e7.State.FinishedAt} is not the time it exited`);
    const row = (await ok('ps', '-a', '--format', '{{.Names}}|{{.Status}}')).split('\n').find((l) => l.startsWith('exit7|'));
    assert.match(String(row), /^exit7\|Exited \(7\) /);
    assert.equal(await ok('wait', 'exit7'), '7\n');

    // logs -f and stop work on the re-attached container.
    const follow = spawnDocker(b, ['logs', '-f', '--tail', '0', 'live']);
    try {
      await follow.waitForStdout(/line \d+\n(.|\n)*line \d+\n/);
      assert.equal(await ok('stop', '-t', '1', 'live'), 'live\n');
      const ex = await Promise.race([follow.exited, sleep(15000).then(() => 'timeout' as const)]);
      assert.notEqual(ex, 'timeout', 'logs -f did not end when the re-attached container stopped');
    } finally {
      follow.kill();
    }
    const stopped = await inspect('live');
    assert.equal(stopped.State.Status, 'exited');
    assert.equal(stopped.State.ExitCode, 137);
    assert.ok(!alive(live.State.Pid), 'the container survived docker stop');
    await waitFor('the shim to exit', () => !alive(shimPid), 5000);
  });

  test('a clean stop of berthd (SIGTERM) leaves containers running too', async () => {
    await ok('run', '-d', '--name', 'live2', 'busybox', 'sleep', '1000');
    const c = await inspect('live2');
    await b.stop();
    await sleep(300);
    assert.ok(alive(c.State.Pid), 'the container died when berthd stopped');
    await b.restart();
    const again = await inspect('live2');
    assert.equal(again.State.Running, true);
    assert.equal(again.State.Pid, c.State.Pid);
    await ok('rm', '-f', 'live2');
    await waitFor('the container process to be gone', () => !alive(c.State.Pid), 5000);
  });
});
