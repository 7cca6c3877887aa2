// docker exec against a real berthd (issue 4): the docker CLI 28 and dockerode, raw API for the exec
// inspect shape and events. The exec process must be inside the container in every respect: all of its
// namespaces, its cgroups, its environment, users and capabilities.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { RunResult } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { api, dockerode, dockerOk, waitFor, sleep, nsOf, alive, show } from '../helpers/clients';

let initPid = 0;
let cid = '';

const b = berthdForFile({
  fixtures: ['busybox'],
  setup: async (d) => {
    const r = await d.docker(['run', '-d', '--name', 'ex', '-e', 'CV=from-container', '-w', '/etc', 'busybox', 'sleep', '3600']);
    assert.equal(r.code, 0, show(r));
    cid = r.stdout.trim();
    initPid = (await api(d, 'GET', `/containers/${cid}/json`)).json().State.Pid;
    assert.ok(initPid > 0);
  },
});

async function exec(...args: string[]): Promise<RunResult> {
  return b.docker(['exec', ...args]);
}

/** `docker exec …`, which must succeed; its stdout. */
const ok = (...args: string[]) => dockerOk(b, ['exec', ...args]);

/** Creates and starts a detached exec through the API; returns its id. */
async function detachedExec(cmd: string[]): Promise<string> {
  const c = await api(b, 'POST', `/containers/${cid}/exec`, { body: { Cmd: cmd } });
  assert.equal(c.status, 201, c.body);
  const id = c.json().Id;
  const s = await api(b, 'POST', `/exec/${id}/start`, { body: { Detach: true, Tty: false } });
  assert.equal(s.status, 200, s.body);
  assert.equal(s.body, '');
  return id;
}

describe('docker exec', () => {
  test('output, separate stdout and stderr, exit code', async () => {
    assert.match(await ok('ex', 'ls', '/etc'), /passwd/);
    const r = await exec('ex', 'sh', '-c', 'echo o; echo e >&2; exit 3');
    assert.equal(r.code, 3, show(r));
    assert.equal(r.stdout, 'o\n');
    assert.equal(r.stderr, 'e\n');
  });

  test('stdin is piped and its end closes the process stdin', async () => {
    const r = await b.docker(['exec', '-i', 'ex', 'cat'], { input: 'hi\n' });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'hi\n');
    const big = 'x'.repeat(300_000) + '\n';
    const w = await b.docker(['exec', '-i', 'ex', 'wc', '-c'], { input: big });
    assert.equal(w.stdout.trim(), String(big.length));
  });

  test('joins every namespace of the container init', async () => {
    const kinds = ['mnt', 'pid', 'uts', 'ipc', 'net', 'cgroup'];
    const out = await ok('ex', 'sh', '-c', kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; '));
    assert.deepEqual(out.trim().split('\n'), Object.values(nsOf(initPid, kinds)));
    // And it sees the container's root and processes, not the host's.
    assert.equal((await ok('ex', 'cat', '/proc/1/comm')).trim(), 'sleep');
    assert.equal((await ok('ex', 'hostname')).trim(), cid.slice(0, 12));
  });

  test('is placed in the container cgroups', async () => {
    const id = await detachedExec(['sleep', '30']);
    const pid = await waitFor('exec pid', async () => (await api(b, 'GET', `/exec/${id}/json`)).json().Pid);
    const cg = (p: number) => readFileSync(`/proc/${p}/cgroup`, 'utf8').split('\n').filter(Boolean).sort();
    assert.deepEqual(cg(pid), cg(initPid));
    assert.ok(cg(initPid).some((l) => l.includes(cid)), 'the init is in cgroups of the container');
    // Inside, the cgroup namespace is the container's: its own cgroup is the root.
    assert.match(await ok('ex', 'cat', '/proc/self/cgroup'), /:\/\n/);
    process.kill(pid, 'SIGKILL');
    await waitFor('exec ended', async () => (await api(b, 'GET', `/exec/${id}/json`)).json().ExitCode === 137);
  });

  test('environment, -e, -w, -u', async () => {
    const env = await ok('-e', 'FOO=bar', 'ex', 'env');
    assert.match(env, /^CV=from-container$/m);
    assert.match(env, /^FOO=bar$/m);
    assert.match(env, /^PATH=\/usr\/local\/sbin:/m);
    assert.match(env, /^HOME=\/root$/m);
    assert.equal((await ok('ex', 'pwd')).trim(), '/etc', 'the container WorkingDir by default');
    assert.equal((await ok('-w', '/tmp', 'ex', 'pwd')).trim(), '/tmp');
    assert.equal((await ok('-u', 'nobody', 'ex', 'id', '-u')).trim(), '65534');
    assert.equal((await ok('-u', '1234:5678', 'ex', 'sh', '-c', 'echo $(id -u):$(id -g)')).trim(), '1234:5678');
    const r = await exec('-u', 'nosuchuser', 'ex', 'true');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /unable to find user nosuchuser/);
  });

  test('-u names are looked up in the container root, through its own symlinks, never the host files', async () => {
    const r = await b.docker(['run', '-d', '--name', 'pwlink', 'busybox', 'sh', '-c',
      'echo "evil:x:4242:4243::/evilhome:/bin/sh" > /tmp/pw; echo "evilgrp:x:4243:" > /tmp/gr; ' +
      'ln -sf /tmp/pw /etc/passwd; ln -sf ../tmp/gr /etc/group; touch /tmp/ready; sleep 3600']);
    assert.equal(r.code, 0, show(r));
    await waitFor('the links', async () => (await exec('pwlink', 'test', '-e', '/tmp/ready')).code === 0 || undefined);
    assert.equal((await ok('-u', 'evil', 'pwlink', 'sh', '-c', 'echo $(id -u):$(id -g):$HOME')).trim(), '4242:4243:/evilhome');
    assert.equal((await ok('-u', 'evil:evilgrp', 'pwlink', 'id', '-g')).trim(), '4243');
    await b.docker(['rm', '-f', 'pwlink']);
  });

  test('capabilities: the container set, all with --privileged; no_new_privs as the container', async () => {
    const capEff = (s: string) => /CapEff:\s*([0-9a-f]+)/.exec(s)![1];
    const plain = capEff(await ok('ex', 'cat', '/proc/self/status'));
    assert.equal(plain, capEff(readFileSync(`/proc/${initPid}/status`, 'utf8')));
    assert.equal(plain, '00000000a80425fb');
    const priv = capEff(await ok('--privileged', 'ex', 'cat', '/proc/self/status'));
    assert.notEqual(priv, plain);
    assert.equal(BigInt(`0x${priv}`) & BigInt(`0x${plain}`), BigInt(`0x${plain}`));
    assert.match(await ok('ex', 'cat', '/proc/self/status'), /NoNewPrivs:\s*0/);
    const r = await b.docker(['run', '-d', '--name', 'nnp', '--security-opt', 'no-new-privileges', 'busybox', 'sleep', '3600']);
    assert.equal(r.code, 0, show(r));
    assert.match(await ok('nnp', 'cat', '/proc/self/status'), /NoNewPrivs:\s*1/);
    await b.docker(['rm', '-f', 'nnp']);
  });

  test('the container seccomp filter confines every exec: compiled by the first, kept for the next, anew after a restart', async () => {
    const cache = path.join(b.execRoot, 'containers', cid, 'seccomp.bpf');
    const confined = 'grep -E "^Seccomp:" /proc/self/status; unshare -n true 2>/dev/null; echo unshare=$?';
    rmSync(cache, { force: true });
    for (let i = 0; i < 2; i++) {
      const out = await ok('ex', 'sh', '-c', confined);
      assert.match(out, /Seccomp:\s+2/);
      assert.match(out, /unshare=1/);
      assert.ok(existsSync(cache), 'the compiled filter is kept in the container state directory');
    }
    // A damaged cache is compiled again, never loaded as it is.
    writeFileSync(cache, 'not a filter');
    assert.match(await ok('ex', 'sh', '-c', confined), /unshare=1/);
    assert.notEqual(readFileSync(cache, 'latin1'), 'not a filter');
    // --privileged keeps the container's filter, as runc applies it to every process of the container.
    assert.match(await ok('--privileged', 'ex', 'sh', '-c', 'grep -E "^Seccomp:" /proc/self/status'), /Seccomp:\s+2/);
    const r = await b.docker(['run', '-d', '--name', 'unconf', '--security-opt', 'seccomp=unconfined', 'busybox', 'sleep', '3600']);
    assert.equal(r.code, 0, show(r));
    assert.match(await ok('unconf', 'sh', '-c', 'grep -E "^Seccomp:" /proc/self/status'), /Seccomp:\s+0/);
    await b.docker(['rm', '-f', 'unconf']);
  });

  test('-d returns at once and the process runs on', async () => {
    const r = await exec('-d', 'ex', 'sh', '-c', 'sleep 0.3; echo done > /tmp/detached');
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, '');
    await waitFor('detached exec wrote its file', async () => (await exec('ex', 'cat', '/tmp/detached')).stdout === 'done\n');
  });

  test('a missing or unrunnable command: message in the stream, 127 / 126 as Docker', async () => {
    let r = await exec('ex', '/no/such/bin');
    assert.equal(r.code, 127, show(r));
    assert.equal(r.stdout, 'OCI runtime exec failed: exec failed: unable to start container process: exec: "/no/such/bin": stat /no/such/bin: no such file or directory: unknown\r\n');
    r = await exec('ex', 'nosuchcmd');
    assert.equal(r.code, 127, show(r));
    assert.match(r.stdout, /exec: "nosuchcmd": executable file not found in \$PATH: unknown/);
    r = await exec('ex', '/etc/passwd');
    assert.equal(r.code, 126, show(r));
    assert.match(r.stdout, /permission denied/);
  });

  test('inspect: Running, ExitCode, Pid, ProcessConfig; the exit code is final when the stream ends', async () => {
    const c = await api(b, 'POST', `/containers/ex/exec`, { body: { Cmd: ['sh', '-c', 'sleep 0.5; exit 4'], AttachStdout: true, AttachStderr: true, User: 'nobody' } });
    assert.equal(c.status, 201);
    const id = c.json().Id;
    assert.match(id, /^[0-9a-f]{64}$/);
    let j = (await api(b, 'GET', `/exec/${id}/json`)).json();
    assert.equal(j.Running, false);
    assert.equal(j.ExitCode, null);
    assert.equal(j.Pid, 0);
    await api(b, 'POST', `/exec/${id}/start`, { body: { Detach: true } });
    j = (await api(b, 'GET', `/exec/${id}/json`)).json();
    assert.equal(j.Running, true);
    assert.ok(j.Pid > 0 && alive(j.Pid));
    assert.deepEqual(j.ProcessConfig, { tty: false, entrypoint: 'sh', arguments: ['-c', 'sleep 0.5; exit 4'], privileged: false, user: 'nobody' });
    assert.equal(j.ContainerID, cid);
    assert.ok((await api(b, 'GET', `/containers/${cid}/json`)).json().ExecIDs.includes(id), 'container inspect lists the running exec');
    assert.deepEqual(Object.keys(j).sort(), ['CanRemove', 'ContainerID', 'DetachKeys', 'ExitCode', 'ID', 'OpenStderr', 'OpenStdin', 'OpenStdout', 'Pid', 'ProcessConfig', 'Running'].sort());
    await waitFor('exit 4', async () => (await api(b, 'GET', `/exec/${id}/json`)).json().ExitCode === 4);
    assert.equal((await api(b, 'GET', `/exec/${id}/json`)).json().Running, false);
    assert.ok(!((await api(b, 'GET', `/containers/${cid}/json`)).json().ExecIDs ?? []).includes(id));
    const again = await api(b, 'POST', `/exec/${id}/start`, { body: { Detach: true } });
    assert.equal(again.status, 409);
    assert.equal((await api(b, 'GET', '/exec/nope/json')).status, 404);
    assert.equal((await api(b, 'POST', `/containers/ex/exec`, { body: { Cmd: [] } })).status, 400);
    // Many execs in a row all report their own code at the moment the CLI asks.
    for (let i = 0; i < 5; i++) assert.equal((await exec('ex', 'sh', '-c', `exit ${i + 10}`)).code, i + 10);
  });

  test('events exec_create, exec_start, exec_die', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await exec('ex', 'true');
    await sleep(100);
    const until = Math.floor(Date.now() / 1000) + 1;
    const ev = await api(b, 'GET', `/events?since=${since}&until=${until}`);
    const actions = ev.body.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.Actor?.ID === cid && String(e.Action).startsWith('exec_'));
    const names = actions.map((e) => e.Action);
    assert.ok(names.includes('exec_create: true '), names.join('|'));
    assert.ok(names.includes('exec_start: true '), names.join('|'));
    // The last one: `since` has whole seconds, and an earlier test's `exec -u nosuchuser ex true` (which never
    // ran, so never died) may fall in the same second.
    const created = actions.filter((e) => e.Action === 'exec_create: true ').pop();
    const die = actions.find((e) => e.Action === 'exec_die' && e.Actor.Attributes.execID === created.Actor.Attributes.execID);
    assert.ok(die, names.join('|'));
    assert.equal(die.Actor.Attributes.exitCode, '0');
    assert.match(die.Actor.Attributes.execID, /^[0-9a-f]{64}$/);
  });

  test('dockerode: exec with a multiplexed stream and inspect', async () => {
    const dd = dockerode(b);
    const ctr = dd.getContainer('ex');
    const ex = await ctr.exec({ Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 6'], AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({ hijack: true, stdin: false });
    const out = new PassThrough();
    const err = new PassThrough();
    let so = '';
    let se = '';
    out.on('data', (c: Buffer) => { so += c.toString(); });
    err.on('data', (c: Buffer) => { se += c.toString(); });
    dd.modem.demuxStream(stream, out, err);
    await new Promise((r) => stream.on('end', r));
    assert.equal(so, 'out\n');
    assert.equal(se, 'err\n');
    const info = await ex.inspect();
    assert.equal(info.ExitCode, 6);
    assert.equal(info.Running, false);
  });

  test('exec into a stopped or missing container fails as Docker', async () => {
    let r = await b.docker(['run', '-d', '--name', 'stopped', 'busybox', 'true']);
    assert.equal(r.code, 0, show(r));
    const id = r.stdout.trim();
    await waitFor('stopped', async () => (await api(b, 'GET', `/containers/${id}/json`)).json().State.Status === 'exited');
    r = await exec('stopped', 'true');
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, new RegExp(`Error response from daemon: Container ${id} is not running`));
    const c = await api(b, 'POST', `/containers/${id}/exec`, { body: { Cmd: ['true'] } });
    assert.equal(c.status, 409);
    assert.deepEqual(c.json(), { message: `Container ${id} is not running` });
    r = await exec('nosuchcontainer', 'true');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No such container: nosuchcontainer/);
  });

  test('an exec dies with its container', async () => {
    const r = await b.docker(['run', '-d', '--name', 'short', 'busybox', 'sleep', '3600']);
    const id = r.stdout.trim();
    const c = await api(b, 'POST', `/containers/${id}/exec`, { body: { Cmd: ['sleep', '3600'] } });
    const eid = c.json().Id;
    await api(b, 'POST', `/exec/${eid}/start`, { body: { Detach: true } });
    const pid = await waitFor('pid', async () => (await api(b, 'GET', `/exec/${eid}/json`)).json().Pid);
    assert.ok(alive(pid));
    await b.docker(['kill', 'short']);
    await waitFor('exec gone', async () => (await api(b, 'GET', `/exec/${eid}/json`)).json().Running === false);
    assert.equal((await api(b, 'GET', `/exec/${eid}/json`)).json().ExitCode, 137);
    assert.ok(!alive(pid));
  });
});

test('exec create and start bodies are checked against api-spec before any work: a wrong type is a 400 naming the field', async () => {
  await dockerOk(b, ['run', '-d', '--name', 'exec-schema', 'busybox', 'sleep', '300']);
  for (const [body, field] of [[{ Cmd: ['true'], User: 7 }, 'number into Go struct field ExecOptions.User of type string'], [{ Cmd: ['true'], AttachStdout: 'yes' }, 'string into Go struct field ExecOptions.AttachStdout of type bool'], [{ Cmd: ['true'], WorkingDir: [1] }, 'array into Go struct field ExecOptions.WorkingDir of type string'], [{ Cmd: [1] }, 'number into Go struct field ExecOptions.Cmd of type string']] as const) {
    const r = await api(b, 'POST', '/v1.50/containers/exec-schema/exec', { body });
    assert.equal(r.status, 400, r.body);
    assert.equal(r.json().message, `invalid JSON: json: cannot unmarshal ${field}`);
  }
  const made = await api(b, 'POST', '/v1.50/containers/exec-schema/exec', { body: { Cmd: ['true'], User: null, Env: null } });
  assert.equal(made.status, 201, made.body);
  const bad = await api(b, 'POST', `/v1.50/exec/${made.json().Id}/start`, { body: { Detach: 'true' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json().message, 'invalid JSON: json: cannot unmarshal string into Go struct field ExecStartOptions.Detach of type bool');
  await dockerOk(b, ['rm', '-f', 'exec-schema']);
});
