// Nomad's docker driver, replayed against a real berthd in the order the driver makes its calls: the
// fingerprint, loading the task's image (`load`), creating the task container with the fields the driver
// sets (init, pids_limit, cpuset, cpu_shares, logging, ulimits, labels, ports, health check), starting it,
// waiting on it, stats as the driver asks for them, `nomad alloc exec` with a TTY, the log follower, a
// signal, the stop, and a restart that finds the stopped container under its name (docs/nomad.md lists each
// call with the fields it sets and reads back). A second test replays group networking (`network { mode =
// "bridge" }`): the pause container `nomad_init_<alloc>` with NetworkMode none, whose SandboxKey the Nomad
// client hands to its CNI bridge plugin, and a task joining it with container:<pause id>.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, existsSync, readlinkSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { berthdForFile, scratchDir } from '../helpers/file';
import { waitFor, httpGet } from '../helpers/clients';
import { FIXTURES } from '../helpers/berthd';
import { hijack } from '../helpers/hijack';
import { TestNetns } from '../helpers/netns';
import { freePort } from '../helpers/registry';
import { cgroupDir, filters, pinnedApi } from '../helpers/replay';

const b = berthdForFile({ fixtures: [] });
// The client node's side of the group network (its CNI bridge), as the node's root namespace would hold it.
const hostNs = new TestNetns('berth-nomad');
after(() => hostNs.remove());
const work = scratchDir('berth-nomad-');
const allocId = randomUUID();
const NAME = `web-${allocId}`;

const { call, json } = pinnedApi(b, '1.44');
const v2 = () => existsSync('/sys/fs/cgroup/cgroup.controllers');

test('nomad docker driver: fingerprint, load, create, start, stats, exec, logs, signal, stop, restart by name, destroy', { timeout: 180000 }, async () => {
  // ---- fingerprint ------------------------------------------------------------------------------------
  const ver = await json('GET', '/version');
  assert.match(ver.Version, /^\d+\.\d+/);
  assert.ok(ver.ApiVersion && ver.MinAPIVersion && ver.Os === 'linux' && ver.Arch, JSON.stringify(ver));
  const nets = await json('GET', '/networks');
  const bridge = nets.find((n: { Name: string }) => n.Name === 'bridge');
  assert.equal(bridge.IPAM.Config[0].Gateway, b.net.gateway, 'driver.docker.bridge_ip');
  const info = await json('GET', '/info');
  assert.ok(Object.keys(info.Runtimes).length > 0);
  assert.equal(info.OSType, 'linux');
  assert.match(info.CgroupDriver, /^(cgroupfs|systemd)$/);

  // ---- image: the task's `load` (quiet), then inspect by the name the task gives ------------------------
  const load = await call('POST', '/images/load?quiet=1', readFileSync(path.join(FIXTURES, 'busybox.tar')), { 'Content-Type': 'application/x-tar' });
  assert.equal(load.status, 200, load.body);
  const image = await json('GET', '/images/busybox:latest/json');
  assert.match(image.Id, /^sha256:[0-9a-f]{64}$/);

  // ---- create ---------------------------------------------------------------------------------------------
  const allocDir = path.join(work, 'alloc', allocId);
  for (const d of ['alloc', 'web/local', 'web/secrets']) mkdirSync(path.join(allocDir, d), { recursive: true });
  writeFileSync(path.join(allocDir, 'web/local/index.html'), 'nomad-ok\n');
  const port = await freePort();
  const labels = {
    'com.hashicorp.nomad.alloc_id': allocId, 'com.hashicorp.nomad.job_name': 'web', 'com.hashicorp.nomad.task_name': 'web',
    'com.hashicorp.nomad.task_group_name': 'web', 'com.hashicorp.nomad.namespace': 'default', team: 'infra',
  };
  const script = "trap 'echo got-hup' HUP; trap 'echo bye; exit 0' TERM; i=0; while [ $i -lt 30 ]; do echo \"log line $i from the nomad task, padded out\"; i=$((i+1)); done; "
    + 'echo warn >&2; httpd -p 8080 -h /local; touch /tmp/ready; while :; do sleep 1; done';
  const body = (hostPort: number) => ({
    Image: image.Id, Entrypoint: null, Hostname: '', User: '', Tty: false, OpenStdin: false, WorkingDir: '/',
    Cmd: ['sh', '-c', script], Labels: labels, Env: [`NOMAD_ALLOC_ID=${allocId}`, 'NOMAD_TASK_NAME=web', 'NOMAD_PORT_http=8080'],
    ExposedPorts: { '8080/tcp': {} },
    Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/ready'], Interval: 500e6, Timeout: 2e9, Retries: 2, StartPeriod: 0 },
    HostConfig: {
      CgroupnsMode: '', OomScoreAdj: 500, Binds: [`${allocDir}/alloc:/alloc`, `${allocDir}/web/local:/local`, `${allocDir}/web/secrets:/secrets`],
      Runtime: '', GroupAdd: [], Memory: 64 << 20, MemoryReservation: 32 << 20, MemorySwap: 64 << 20,
      CpuShares: 300, CpusetCpus: '0', PidsLimit: 64, Init: true,
      LogConfig: { Type: 'json-file', Config: { 'max-file': '2', 'max-size': '1k' } },
      Privileged: false, IpcMode: '', PidMode: '', UTSMode: '', UsernsMode: '', ExtraHosts: ['nomad.local:10.0.0.1'],
      SecurityOpt: ['no-new-privileges'], Sysctls: { 'net.core.somaxconn': '512' }, Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      ReadonlyRootfs: false, NetworkMode: 'default', CapAdd: [], CapDrop: ['NET_RAW', 'MKNOD'],
      PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }] },
    },
    NetworkingConfig: null,
  });
  const created = await json('POST', `/containers/create?name=${NAME}`, body(port), [201]);
  // containerByName: the whole list, matched on Names.
  const all = await json('GET', '/containers/json?all=1');
  const found = all.find((c: { Names: string[] }) => c.Names.includes(`/${NAME}`));
  assert.equal(found.Id, created.Id);
  assert.equal(found.Labels['com.hashicorp.nomad.alloc_id'], allocId);
  const id: string = created.Id;

  // ---- start, inspect for the driver network, wait --------------------------------------------------------
  await json('POST', `/containers/${id}/start`, undefined, [204]);
  assert.equal((await call('POST', `/containers/${id}/start`)).status, 304, 'a second start: 304 Not Modified');
  let ci = await json('GET', `/containers/${id}/json`);
  assert.equal(ci.State.Running, true);
  assert.match(ci.NetworkSettings.Networks.bridge.IPAddress, /^10\.213\./);
  assert.equal(ci.NetworkSettings.Ports['8080/tcp'][0].HostPort, String(port));
  assert.equal(ci.HostConfig.Cgroup, '');
  const waiting = call('POST', `/containers/${id}/wait?condition=not-running`);

  // The pause containers of group networking are found by label and name prefix (none here).
  const running = await json('GET', `/containers/json?filters=${filters({ label: ['com.hashicorp.nomad.alloc_id'] })}`);
  assert.deepEqual(running.map((c: { Id: string }) => c.Id), [id]);

  // ---- what the fields did ---------------------------------------------------------------------------
  const pid: number = ci.State.Pid;
  assert.equal(ci.HostConfig.Init, true);
  assert.equal(ci.HostConfig.PidsLimit, 64);
  assert.equal(ci.HostConfig.CpuShares, 300);
  assert.equal(ci.HostConfig.CpusetCpus, '0');
  assert.deepEqual(ci.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-file': '2', 'max-size': '1k' } });
  assert.deepEqual(ci.HostConfig.Ulimits, [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]);
  assert.equal(ci.HostConfig.OomScoreAdj, 500);
  assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /docker-init|init/, '--init: pid 1 of the container is the init');
  assert.equal(readFileSync(path.join(cgroupDir(pid, 'pids'), 'pids.max'), 'utf8').trim(), '64');
  if (!v2()) {
    assert.equal(readFileSync(path.join(cgroupDir(pid, 'cpu'), 'cpu.shares'), 'utf8').trim(), '300');
    assert.equal(readFileSync(path.join(cgroupDir(pid, 'cpuset'), 'cpuset.cpus'), 'utf8').trim(), '0');
    assert.equal(readFileSync(path.join(cgroupDir(pid, 'memory'), 'memory.soft_limit_in_bytes'), 'utf8').trim(), String(32 << 20));
  }
  assert.match(readFileSync(`/proc/${pid}/limits`, 'utf8'), /^Max open files\s+1024\s+2048\s+files/m);
  assert.equal(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim(), '500');

  // ---- health check, the published port -----------------------------------------------------------------
  await waitFor('healthy', async () => (await json('GET', `/containers/${id}/json`)).State.Health?.Status === 'healthy' || undefined, 20000, 200);
  ci = await json('GET', `/containers/${id}/json`);
  assert.equal(ci.State.Health.Log.at(-1).ExitCode, 0);
  const page = await httpGet(`http://127.0.0.1:${port}/index.html`, 5000);
  assert.equal(page.body, 'nomad-ok\n');

  // ---- stats as the driver collects them: stream=0 with the previous sample --------------------------
  const st = await json('GET', `/containers/${id}/stats?stream=0`);
  assert.ok(st.precpu_stats.cpu_usage.total_usage > 0, 'precpu_stats filled from a sample a second earlier');
  assert.ok(st.precpu_stats.system_cpu_usage > 0);
  assert.ok(st.cpu_stats.system_cpu_usage > st.precpu_stats.system_cpu_usage);
  assert.ok(st.cpu_stats.cpu_usage.total_usage >= st.precpu_stats.cpu_usage.total_usage);
  for (const k of ['usage_in_kernelmode', 'usage_in_usermode']) assert.equal(typeof st.cpu_stats.cpu_usage[k], 'number', k);
  for (const k of ['periods', 'throttled_periods', 'throttled_time']) assert.equal(typeof st.cpu_stats.throttling_data[k], 'number', k);
  assert.ok(st.memory_stats.usage > 0);
  for (const k of v2() ? ['anon', 'file'] : ['cache', 'rss']) assert.equal(typeof st.memory_stats.stats[k], 'number', k);
  assert.equal(st.pids_stats.limit, 64);

  // ---- nomad alloc exec -t: create, hijacked start, resize, inspect ------------------------------------
  const ex = await json('POST', `/containers/${id}/exec`, { Cmd: ['/bin/sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true, User: '' }, [201]);
  const es = await hijack(b.sock, `/v1.44/exec/${ex.Id}/start`, { Detach: false, Tty: true });
  assert.equal((await call('POST', `/exec/${ex.Id}/resize?h=24&w=132`)).status, 200);
  es.write('stty size; ulimit -n; cat /alloc/../local/index.html; grep nomad.local /etc/hosts; exit 7\n');
  const out = await es.closed(15000);
  assert.match(out, /24 132/);
  assert.match(out, /\b1024\b/);
  assert.match(out, /nomad-ok/);
  assert.match(out, /10\.0\.0\.1\s+nomad\.local/);
  const exi = await json('GET', `/exec/${ex.Id}/json`);
  assert.equal(exi.ExitCode, 7);
  assert.equal(exi.Running, false);

  // ---- the docker logger: follow stdout+stderr since the task started ---------------------------------
  const since = Math.floor(Date.parse(ci.State.StartedAt) / 1000) - 1;
  const logs = await followLogs(`/v1.44/containers/${id}/logs?follow=1&stdout=1&stderr=1&since=${since}`, /got-hup/, async () => {
    await json('POST', `/containers/${id}/kill?signal=SIGHUP`, undefined, [204]); // Signal: `nomad alloc signal`
  });
  assert.match(logs.out, /got-hup/);
  assert.match(logs.err, /^warn$/m);
  ci = await json('GET', `/containers/${id}/json`);
  assert.ok(existsSync(`${ci.LogPath}.1`), 'json-file max-size/max-file from LogConfig rotate');

  // ---- stop (kill_timeout) and the wait's answer -------------------------------------------------------
  await json('POST', `/containers/${id}/stop?t=5`, undefined, [204]);
  const w = await waiting;
  assert.equal(w.status, 200);
  assert.deepEqual(w.json(), { StatusCode: 0, Error: null });
  ci = await json('GET', `/containers/${id}/json`);
  assert.equal(ci.State.OOMKilled, false);
  assert.equal(ci.State.ExitCode, 0);
  assert.equal((await call('POST', `/containers/${id}/kill?signal=SIGTERM`)).status, 409, 'signalling a stopped task');

  // ---- restart: the client creates the task again under the same name; the stopped one is in the way --
  const port2 = await freePort();
  const clash = await call('POST', `/containers/create?name=${NAME}`, body(port2));
  assert.equal(clash.status, 409);
  assert.match(clash.json().message, new RegExp(`Conflict\\. The container name "/${NAME}" is already in use by container "${id}"\\. You have to remove \\(or rename\\) that container to be able to reuse that name\\.`));
  const again = (await json('GET', '/containers/json?all=1')).find((c: { Names: string[] }) => c.Names.includes(`/${NAME}`));
  assert.equal(again.State, 'exited');
  await json('DELETE', `/containers/${id}?force=1`, undefined, [204]);
  const second = await json('POST', `/containers/create?name=${NAME}`, body(port2), [201]);
  await json('POST', `/containers/${second.Id}/start`, undefined, [204]);
  await waitFor('healthy again', async () => (await json('GET', `/containers/${second.Id}/json`)).State.Health?.Status === 'healthy' || undefined, 20000, 200);
  assert.equal((await httpGet(`http://127.0.0.1:${port2}/index.html`, 5000)).body, 'nomad-ok\n');

  // A stopped task container started again in place (a client restart that recovers its handle).
  await json('POST', `/containers/${second.Id}/stop?t=5`, undefined, [204]);
  await json('POST', `/containers/${second.Id}/start`, undefined, [204]);
  ci = await json('GET', `/containers/${second.Id}/json`);
  assert.equal(ci.State.Running, true);
  assert.equal(ci.RestartCount, 0);
  assert.equal(readFileSync(path.join(cgroupDir(ci.State.Pid, 'pids'), 'pids.max'), 'utf8').trim(), '64');

  // ---- DestroyTask: stop with no grace, remove forced --------------------------------------------------
  await json('POST', `/containers/${second.Id}/stop?t=0`, undefined, [204]);
  await json('DELETE', `/containers/${second.Id}?force=1`, undefined, [204]);
  assert.equal((await call('GET', `/containers/${second.Id}/json`)).status, 404);
});

/** Follows a logs stream (stdcopy frames) until `re` is seen in stdout, calling `meanwhile` once the
 *  stream is open; the stream is then closed by us, as the logger does when the task stops. */
function followLogs(url: string, re: RegExp, meanwhile: () => Promise<void>): Promise<{ out: string; err: string }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`logs: ${re} not seen: ${buf.toString()}`)); }, 20000);
    const req = http.get({ socketPath: b.sock, path: url }, (res) => {
      meanwhile().catch(reject);
      res.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        let out = '';
        let err = '';
        for (let i = 0; i + 8 <= buf.length;) {
          const n = buf.readUInt32BE(i + 4);
          if (i + 8 + n > buf.length) break;
          const s = buf.subarray(i + 8, i + 8 + n).toString('utf8');
          if (buf[i] === 2) err += s; else out += s;
          i += 8 + n;
        }
        if (re.test(out)) {
          clearTimeout(timer);
          req.destroy();
          resolve({ out, err });
        }
      });
    });
    req.on('error', (e) => { if (!/socket hang up|aborted/.test(e.message)) reject(e); });
  });
}

test('nomad group network: the nomad_init_ pause container, CNI on its SandboxKey, a task joining it', { timeout: 120000 }, async () => {
  const alloc = randomUUID();
  if ((await call('GET', '/images/busybox:latest/json')).status === 404) {
    const load = await call('POST', '/images/load?quiet=1', readFileSync(path.join(FIXTURES, 'busybox.tar')), { 'Content-Type': 'application/x-tar' });
    assert.equal(load.status, 200, load.body);
  }
  // CreateNetwork: inspect the infra image, look for an existing pause container by name, create, start, inspect.
  const infra = await json('GET', '/images/busybox:latest/json');
  const before = await json('GET', '/containers/json?all=1');
  assert.equal(before.some((c: { Names: string[] }) => c.Names.includes(`/nomad_init_${alloc}`)), false);
  const pause = await json('POST', `/containers/create?name=nomad_init_${alloc}`, {
    Image: infra.Id, Hostname: 'grp', Cmd: ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"],
    Labels: { 'com.hashicorp.nomad.alloc_id': alloc },
    HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'unless-stopped' } },
  }, [201]);
  await json('POST', `/containers/${pause.Id}/start`, undefined, [204]);
  const pi = await json('GET', `/containers/${pause.Id}/json`);
  const key: string = pi.NetworkSettings.SandboxKey;
  assert.ok(key && existsSync(key), `the isolation spec's Path (SandboxKey) exists: ${key}`);
  assert.equal(pi.HostConfig.RestartPolicy.Name, 'unless-stopped');
  // findPauseContainer (recovery): running containers with the alloc label, name prefix /nomad_init_.
  const found = await json('GET', `/containers/json?filters=${filters({ label: ['com.hashicorp.nomad.alloc_id'] })}`);
  assert.ok(found.some((c: { Id: string; Names: string[] }) => c.Id === pause.Id && c.Names[0].startsWith('/nomad_init_')));

  // The client's network hook: its CNI bridge plugin against the spec's Path.
  await hostNs.make();
  const groupNet = hostNs.cniBridge({ name: `nomad-${b.net.slot}`, bridge: `nmd-b${b.net.slot}`, subnet: `10.223.${b.net.slot}.0/24`, dataDir: path.join(work, 'ipam') });
  const { ip } = await groupNet.add(pause.Id, key);

  // The task: NetworkMode container:<pause id> from the isolation spec's label.
  const task = await json('POST', `/containers/create?name=api-${alloc}`, {
    Image: infra.Id, Cmd: ['sh', '-c', 'mkdir -p /w && echo group-ok > /w/index.html && exec httpd -f -p 9090 -h /w'],
    Labels: { 'com.hashicorp.nomad.alloc_id': alloc },
    HostConfig: { NetworkMode: `container:${pause.Id}`, Init: true, PidsLimit: 32, LogConfig: { Type: 'json-file', Config: {} } },
  }, [201]);
  await json('POST', `/containers/${task.Id}/start`, undefined, [204]);
  const ti = await json('GET', `/containers/${task.Id}/json`);
  assert.equal(readlinkSync(`/proc/${ti.State.Pid}/ns/net`), readlinkSync(`/proc/${pi.State.Pid}/ns/net`));
  const got = await waitFor('the task answering on the group network', async () => {
    const r = await hostNs.run('socat', ['-', `TCP4:${ip}:9090,connect-timeout=3`], 10000, 'GET / HTTP/1.0\r\n\r\n');
    return /group-ok/.test(r.stdout) ? r.stdout : undefined;
  }, 15000, 200);
  assert.match(got, /^HTTP\/1\.[01] 200/);

  // StopTask, DestroyTask, then the hook's CNI DEL and DestroyNetwork (stop t=1, remove forced).
  await json('POST', `/containers/${task.Id}/stop?t=5`, undefined, [204]);
  await json('DELETE', `/containers/${task.Id}?force=1`, undefined, [204]);
  await groupNet.del(pause.Id, key);
  await json('POST', `/containers/${pause.Id}/stop?t=1`, undefined, [204]);
  assert.equal(existsSync(key), false, 'the namespace file goes with the pause container');
  await json('DELETE', `/containers/${pause.Id}?force=1`, undefined, [204]);
});
