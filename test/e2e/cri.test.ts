// cri-dockerd's calls, replayed against a real berthd in the order cri-dockerd makes them when the kubelet
// runs a pod of two containers, execs into it, attaches, reads its logs, port-forwards to it, resizes it and
// deletes it (docs/cri-dockerd.md lists each call with the fields it sets and reads back). The pod's
// network is made as cri-dockerd's CNI plugin manager makes it: Debian's real `bridge` and `host-local`
// plugins run with CNI_NETNS set to the sandbox's SandboxKey, their bridge and subnet private to this test,
// the bridge's side in a network namespace of the test's own (the plugins set ip_forward where they run).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, readFileSync, rmdirSync, readdirSync, existsSync, statSync, readlinkSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { berthdForFile, scratchDir } from '../helpers/file';
import { api, waitFor, show } from '../helpers/clients';
import { runCmd } from '../helpers/berthd';
import { hijack } from '../helpers/hijack';
import { TestNetns } from '../helpers/netns';
import { startRegistry, type Registry } from '../helpers/registry';
import { cgroupDir, filters, pinnedApi } from '../helpers/replay';

// Docker's daemon.json as the Kubernetes docs suggest it for cri-dockerd (json-file, size-bounded), made
// small here so that the pod's output rotates.
const b = berthdForFile({ fixtures: ['busybox'], start: { daemonJson: { 'log-driver': 'json-file', 'log-opts': { 'max-size': '1k', 'max-file': '3' } } } });

// The host side of the pod network, as the node's root namespace would hold it.
const hostNs = new TestNetns('berth-cri');
let registry: Registry | undefined;
const uid = `${randomBytes(4).toString('hex')}-${randomBytes(2).toString('hex')}-4000-8000-${randomBytes(6).toString('hex')}`;
const POD = 'web-0';
const NS = 'default';
const PAUSE = 'registry.k8s.io/pause:3.10';
// The kubelet gives sandboxes -998; a value below the current one needs CAP_SYS_RESOURCE, which some hosts
// (this VM among them) leave out of every process's bounding set, so that Docker there refuses it too.
const capBnd = BigInt(`0x${/^CapBnd:\s+(\w+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
const SANDBOX_OOM = (capBnd >> 24n) & 1n ? -998 : 998;

after(async () => {
  registry?.stop();
  await hostNs.remove();
});
const work = scratchDir('berth-cri-');

const { call, json } = pinnedApi(b, '1.43');

/** The frames of a non-TTY logs/attach stream (stdcopy), joined per stream. */
function demux(buf: Buffer): { out: string; err: string } {
  let out = '';
  let err = '';
  for (let i = 0; i + 8 <= buf.length;) {
    const n = buf.readUInt32BE(i + 4);
    const s = buf.subarray(i + 8, i + 8 + n).toString('utf8');
    if (buf[i] === 2) err += s; else out += s;
    i += 8 + n;
  }
  return { out, err };
}


test('cri-dockerd: start-up, image pull with X-Registry-Auth, a pod of two containers through to its removal', { timeout: 240000 }, async () => {
  // ---- start-up: NewDockerService and the version checks -------------------------------------------------
  assert.equal((await api(b, 'GET', '/_ping')).status, 200);
  const ver = await json('GET', '/version');
  assert.ok(ver.ApiVersion >= '1.41', ver.ApiVersion);
  const info = await json('GET', '/info');
  assert.equal(info.DockerRootDir, b.dataRoot);
  assert.equal(info.CgroupDriver, 'cgroupfs', 'what the test daemon runs with (--exec-opt native.cgroupdriver=cgroupfs)');
  assert.equal(info.CgroupVersion, existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1');
  assert.ok(info.Runtimes.runc, JSON.stringify(info.Runtimes));

  // ---- PullImage of the sandbox image from a registry that wants credentials --------------------------
  // cri-dockerd sends the kubelet's credentials as X-Registry-Auth (URL-safe base64 of the AuthConfig
  // JSON) and reads the JSON progress stream message by message.
  const pw = path.join(work, 'htpasswd');
  assert.equal((await runCmd('htpasswd', ['-Bbc', pw, 'kube', 'pullsecret'])).code, 0);
  registry = await startRegistry(work, 'cri', pw);
  const reg = `127.0.0.1:${registry.port}`;
  const auth = Buffer.from(JSON.stringify({ username: 'kube', password: 'pullsecret', serveraddress: reg })).toString('base64url');
  // The pause stand-in: a busybox image whose command waits and ends on SIGTERM, as pause does.
  const base = await json('POST', '/containers/create?name=pause-base', { Image: 'busybox', Cmd: ['true'] }, [201]);
  await json('POST', `/commit?container=${base.Id}&repo=${encodeURIComponent(`${reg}/pause`)}&tag=3.10`,
    { Cmd: ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"] }, [201]);
  await json('DELETE', `/containers/${base.Id}`, undefined, [204]);
  const push = await call('POST', `/images/${encodeURIComponent(`${reg}/pause`)}/push?tag=3.10`, undefined, { 'X-Registry-Auth': auth });
  assert.equal(push.status, 200, push.body);
  assert.doesNotMatch(push.body, /"error"/, push.body);
  await json('DELETE', `/images/${encodeURIComponent(`${reg}/pause:3.10`)}`);

  const denied = await call('POST', `/images/create?fromImage=${encodeURIComponent(`${reg}/pause`)}&tag=3.10`, undefined,
    { 'X-Registry-Auth': Buffer.from(JSON.stringify({ username: 'kube', password: 'wrong', serveraddress: reg })).toString('base64url') });
  assert.ok(denied.status !== 200 || /"error"/.test(denied.body), `a wrong password must not pull: ${denied.status} ${denied.body}`);
  const pull = await call('POST', `/images/create?fromImage=${encodeURIComponent(`${reg}/pause`)}&tag=3.10`, undefined, { 'X-Registry-Auth': auth });
  assert.equal(pull.status, 200, pull.body);
  const msgs = pull.body.trim().split(/\r?\n/).map((l) => JSON.parse(l) as { status?: string; id?: string; error?: string; progressDetail?: object });
  assert.ok(msgs.every((m) => !m.error), pull.body);
  assert.ok(msgs.some((m) => m.id && m.status), 'per-layer progress messages (id + status)');
  assert.match(msgs[msgs.length - 1].status ?? '', /^Status: (Downloaded newer image|Image is up to date) for /);
  // ensureSandboxImageExists and the kubelet's image status: inspect by reference, RepoDigests for the ref.
  const pulled = await json('GET', `/images/${encodeURIComponent(`${reg}/pause:3.10`)}/json`);
  assert.ok(pulled.RepoTags.includes(`${reg}/pause:3.10`), JSON.stringify(pulled.RepoTags));
  assert.match(pulled.RepoDigests[0], new RegExp(`^${reg.replace(/\./g, '\\.')}/pause@sha256:[0-9a-f]{64}$`));
  await json('POST', `/images/${pulled.Id}/tag?repo=registry.k8s.io/pause&tag=3.10`, undefined, [201]);
  const listed = await json('GET', `/images/json?filters=${filters({ reference: [PAUSE] })}`);
  assert.deepEqual(listed.map((i: { Id: string }) => i.Id), [pulled.Id]);
  // ImageFsInfo: every image with its shared size (the pause stand-in shares busybox's layer).
  const fs = await json('GET', '/images/json?all=1&shared-size=1');
  const busy = fs.find((i: { RepoTags: string[] }) => i.RepoTags?.includes('busybox:latest'));
  const pauseRow = fs.find((i: { Id: string }) => i.Id === pulled.Id);
  assert.ok(busy.SharedSize > 0 && busy.SharedSize === pauseRow.SharedSize && pauseRow.SharedSize <= pauseRow.Size, JSON.stringify(fs));
  assert.equal((await json('GET', '/images/json')).every((i: { SharedSize: number }) => i.SharedSize === -1), true, 'not asked: -1');
  const hist = await json('GET', `/images/${pulled.Id}/history`);
  assert.ok(Array.isArray(hist) && hist.length >= 1);

  // ---- RunPodSandbox ------------------------------------------------------------------------------------
  const cgroupParent = `/${b.cgroupParent}/kubepods/burstable/pod${uid}`; // kubelet --cgroup-root=/<parent>
  const podLabels = { 'io.kubernetes.pod.name': POD, 'io.kubernetes.pod.namespace': NS, 'io.kubernetes.pod.uid': uid, app: 'web' };
  const sb = await json('POST', `/containers/create?name=k8s_POD_${POD}_${NS}_${uid}_0`, {
    Hostname: POD, Image: PAUSE,
    Labels: { ...podLabels, 'io.kubernetes.docker.type': 'podsandbox', 'io.kubernetes.container.name': 'POD', 'annotation.kubernetes.io/config.source': 'api' },
    HostConfig: {
      IpcMode: 'shareable', NetworkMode: 'none', OomScoreAdj: SANDBOX_OOM, CpuShares: 2, MemorySwap: 0, CgroupParent: cgroupParent,
      SecurityOpt: ['no-new-privileges'], Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' }, PortBindings: {},
    },
  }, [201]);
  const sid: string = sb.Id;
  await json('POST', `/containers/${sid}/start`, undefined, [204]);
  let sbi = await json('GET', `/containers/${sid}/json`);
  assert.equal(sbi.State.Running, true);
  // rewriteResolvFile: cri-dockerd writes the pod's DNS into ResolvConfPath on the host, in place.
  assert.ok(statSync(sbi.ResolvConfPath).isFile(), sbi.ResolvConfPath);
  writeFileSync(sbi.ResolvConfPath, 'nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n');
  const key: string = sbi.NetworkSettings.SandboxKey;
  assert.ok(key, 'a --network none sandbox has a SandboxKey');
  assert.ok(existsSync(key), `SandboxKey ${key} exists`);
  // cri-dockerd's GetNetNS hands /proc/<State.Pid>/ns/net to the plugins: the same namespace.
  assert.equal(statSync(key).ino, statSync(`/proc/${sbi.State.Pid}/ns/net`).ino, 'SandboxKey is the namespace of the sandbox process');
  assert.equal(sbi.HostConfig.NetworkMode, 'none');
  assert.equal(sbi.HostConfig.IpcMode, 'shareable');
  assert.equal(sbi.HostConfig.OomScoreAdj, SANDBOX_OOM);
  assert.deepEqual(sbi.HostConfig.SecurityOpt, ['no-new-privileges']);
  assert.equal(readFileSync(`/proc/${sbi.State.Pid}/oom_score_adj`, 'utf8').trim(), String(SANDBOX_OOM));
  assert.ok(cgroupDir(sbi.State.Pid, 'cpu').endsWith(`${cgroupParent}/${sid}`), cgroupDir(sbi.State.Pid, 'cpu'));

  // The CNI plugin manager's SetUpPod: bridge + host-local against the SandboxKey.
  await hostNs.make();
  const subnet = `10.222.${b.net.slot}`;
  const podNet = hostNs.cniBridge({ name: `berth-cri-${b.net.slot}`, bridge: `cni-b${b.net.slot}`, subnet: `${subnet}.0/24`, dataDir: path.join(work, 'ipam') });
  const { ip: podIp } = await podNet.add(sid, key);
  assert.ok(podIp.startsWith(`${subnet}.`), podIp);

  // PodSandboxStatus: inspect, and the sandbox found by its labels.
  const sandboxes = await json('GET', `/containers/json?all=1&filters=${filters({ label: ['io.kubernetes.docker.type=podsandbox', `io.kubernetes.pod.uid=${uid}`] })}`);
  assert.deepEqual(sandboxes.map((c: { Id: string }) => c.Id), [sid]);
  assert.equal(sandboxes[0].Labels['io.kubernetes.pod.name'], POD);

  // ---- CreateContainer + StartContainer: the app and a sidecar -------------------------------------------
  const podDir = path.join(work, 'pods', uid);
  const etcHosts = path.join(podDir, 'etc-hosts');
  const termLog = path.join(podDir, 'containers', 'web', 'termination-log');
  const logDir = path.join(work, 'var-log-pods', `${NS}_${POD}_${uid}`);
  for (const d of [path.dirname(termLog), path.join(logDir, 'web'), path.join(logDir, 'sidecar')]) mkdirP(d);
  writeFileSync(etcHosts, `127.0.0.1\tlocalhost\n${podIp}\t${POD}\n`);
  writeFileSync(termLog, '');
  const sbAgain = await json('GET', `/containers/${sid}/json`); // CreateContainer inspects the sandbox (Runtime)
  const appHost = (name: string) => ({
    Mounts: [
      { Type: 'bind', Source: etcHosts, Target: '/etc/hosts', BindOptions: { CreateMountpoint: true } },
      ...(name === 'web' ? [{ Type: 'bind', Source: termLog, Target: '/dev/termination-log', BindOptions: { CreateMountpoint: true } }] : []),
    ],
    RestartPolicy: { Name: 'no' }, Runtime: sbAgain.HostConfig.Runtime,
    NetworkMode: `container:${sid}`, IpcMode: `container:${sid}`, PidMode: `container:${sid}`, UTSMode: '',
    CgroupParent: cgroupParent, Memory: 64 << 20, MemorySwap: 64 << 20, CpuShares: 256, CpuQuota: 50000, CpuPeriod: 100000,
    OomScoreAdj: 999, SecurityOpt: ['seccomp=unconfined', 'no-new-privileges'], GroupAdd: ['1234'], CapDrop: ['NET_RAW'],
    MaskedPaths: ['/proc/kcore', '/proc/keys'], ReadonlyPaths: ['/proc/sys'],
  });
  const ctrLabels = (name: string) => ({
    ...podLabels, 'io.kubernetes.container.name': name, 'io.kubernetes.docker.type': 'container',
    'io.kubernetes.container.logpath': path.join(logDir, name, '0.log'), 'io.kubernetes.sandbox.id': sid,
  });
  const script = 'echo started > /dev/termination-log; i=0; while [ $i -lt 40 ]; do echo "line $i of the web container, padded to rotate"; i=$((i+1)); done; '
    + 'echo to-stderr >&2; mkdir -p /www; echo pod-ok > /www/index.html; echo shm-from-web > /dev/shm/shared; exec httpd -f -p 8080 -h /www';
  const web = await json('POST', `/containers/create?name=k8s_web_${POD}_${NS}_${uid}_0`, {
    Entrypoint: ['sh', '-c'], Cmd: [script], Env: ['POD_NAME=web-0', 'KUBERNETES_SERVICE_HOST=10.96.0.1'], Image: 'busybox', WorkingDir: '/',
    Labels: ctrLabels('web'), OpenStdin: false, StdinOnce: false, Tty: false, Healthcheck: { Test: ['NONE'] }, HostConfig: appHost('web'),
  }, [201]);
  await json('POST', `/containers/${web.Id}/start`, undefined, [204]);
  // createContainerLogSymlink: the kubelet's path points at inspect's LogPath.
  let wi = await json('GET', `/containers/${web.Id}/json`);
  symlinkSync(wi.LogPath, path.join(logDir, 'web', '0.log'));
  const side = await json('POST', `/containers/create?name=k8s_sidecar_${POD}_${NS}_${uid}_0`, {
    Entrypoint: ['sh'], Image: 'busybox', Labels: ctrLabels('sidecar'), OpenStdin: true, StdinOnce: false, Tty: true,
    Healthcheck: { Test: ['NONE'] }, HostConfig: appHost('sidecar'),
  }, [201]);
  await json('POST', `/containers/${side.Id}/start`, undefined, [204]);

  // ListContainers as cri-dockerd asks: its type label, the sandbox's id label, a state.
  const inPod = await json('GET', `/containers/json?all=1&filters=${filters({ label: ['io.kubernetes.docker.type=container', `io.kubernetes.sandbox.id=${sid}`], status: ['running'] })}`);
  assert.deepEqual(inPod.map((c: { Id: string }) => c.Id).sort(), [web.Id, side.Id].sort());

  // ContainerStatus: the fields cri-dockerd converts.
  await waitFor('the web container serving', async () => (await readLogFile(wi.LogPath)).includes('to-stderr') || undefined);
  wi = await json('GET', `/containers/${web.Id}/json`);
  assert.equal(wi.State.Running, true);
  assert.match(wi.State.StartedAt, /^\d{4}-\d\d-\d\dT/);
  assert.equal(wi.Config.Labels['io.kubernetes.sandbox.id'], sid);
  assert.equal(wi.Config.Image, 'busybox');
  assert.equal(wi.HostConfig.NetworkMode, `container:${sid}`);
  assert.equal(wi.HostConfig.PidMode, `container:${sid}`);
  assert.equal(wi.HostConfig.IpcMode, `container:${sid}`);
  assert.equal(wi.HostConfig.OomScoreAdj, 999);
  assert.deepEqual(wi.HostConfig.SecurityOpt, ['seccomp=unconfined', 'no-new-privileges']);
  const mounts = Object.fromEntries(wi.Mounts.map((m: { Destination: string; Source: string }) => [m.Destination, m.Source]));
  assert.equal(mounts['/etc/hosts'], etcHosts);
  assert.equal(mounts['/dev/termination-log'], termLog);
  assert.equal(readFileSync(termLog, 'utf8'), 'started\n');
  const img = await json('GET', `/images/${wi.Image}/json`); // ContainerStatus's InspectImageByID
  assert.equal(img.Id, wi.Image);
  const webPid: number = wi.State.Pid;
  assert.equal(readFileSync(`/proc/${webPid}/oom_score_adj`, 'utf8').trim(), '999');
  assert.ok(cgroupDir(webPid, 'cpu').endsWith(`${cgroupParent}/${web.Id}`));
  assert.equal(readFileSync(path.join(cgroupDir(webPid, 'cpu'), 'cpu.shares'), 'utf8').trim(), '256');
  assert.equal(readFileSync(path.join(cgroupDir(webPid, 'cpu'), 'cpu.cfs_quota_us'), 'utf8').trim(), '50000');
  const status = readFileSync(`/proc/${webPid}/status`, 'utf8');
  assert.match(status, /^NoNewPrivs:\s+1$/m);
  assert.match(status, /^Seccomp:\s+0$/m);
  assert.equal((BigInt(`0x${/^CapBnd:\s+(\w+)$/m.exec(status)![1]}`) >> 13n) & 1n, 0n, 'NET_RAW dropped');
  assert.match(/^Groups:\s*(.*)$/m.exec(status)![1], /\b1234\b/);

  // The pod's namespaces: one network (the CNI's eth0), one IPC with the sandbox's /dev/shm, one PID.
  const nsOf = (pid: number, kind: string) => readlinkSync(`/proc/${pid}/ns/${kind}`);
  const sidePid: number = (await json('GET', `/containers/${side.Id}/json`)).State.Pid;
  for (const kind of ['net', 'ipc', 'pid']) {
    assert.equal(nsOf(webPid, kind), nsOf(sbi.State.Pid, kind), `web shares the sandbox's ${kind}`);
    assert.equal(nsOf(sidePid, kind), nsOf(sbi.State.Pid, kind), `sidecar shares the sandbox's ${kind}`);
  }
  assert.notEqual(nsOf(webPid, 'uts'), readlinkSync('/proc/self/ns/uts'));

  // ---- ExecSync / Exec with a TTY (kubectl exec -it): create, hijacked start, resize, inspect ------------
  const ex = await json('POST', `/containers/${side.Id}/exec`, { Cmd: ['sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true }, [201]);
  const es = await hijack(b.sock, `/v1.43/exec/${ex.Id}/start`, { Detach: false, Tty: true });
  assert.match(es.head, /^HTTP\/1\.1 101/);
  assert.equal((await call('POST', `/exec/${ex.Id}/resize?h=40&w=100`)).status, 200);
  es.write('stty size; cat /dev/shm/shared /etc/resolv.conf; ip -o -4 addr show dev eth0; ps -o comm; exit 3\n');
  const exOut = await es.closed(15000);
  assert.match(exOut, /40 100/);
  assert.match(exOut, /shm-from-web/, 'the sidecar reads what the web container wrote to the pod\'s /dev/shm');
  assert.match(exOut, /nameserver 10\.96\.0\.10/, 'resolv.conf rewritten by cri-dockerd on the host is the pod\'s');
  assert.ok(exOut.includes(`inet ${podIp}/24`), `eth0 from the CNI plugins seen in the pod: ${exOut}`);
  assert.match(exOut, /httpd/, 'one PID namespace: the web container\'s httpd is listed');
  const exi = await json('GET', `/exec/${ex.Id}/json`);
  assert.equal(exi.Running, false);
  assert.equal(exi.ExitCode, 3);

  // ---- Attach (kubectl attach -it) with a container resize ----------------------------------------------
  const at = await hijack(b.sock, `/v1.43/containers/${side.Id}/attach?stream=1&stdin=1&stdout=1&stderr=1`);
  assert.equal((await call('POST', `/containers/${side.Id}/resize?h=30&w=90`)).status, 200);
  at.write('stty size\n');
  await at.until(/30 90/);
  at.destroy();

  // ---- the pod from the host side of the CNI bridge, and port-forward by the sandbox's pid ---------------
  const fromBridge = await hostNs.run('socat', ['-', `TCP4:${podIp}:8080,connect-timeout=5`], 20000, 'GET / HTTP/1.0\r\n\r\n');
  assert.match(fromBridge.stdout, /^HTTP\/1\.[01] 200[^]*\r\n\r\npod-ok\n$/, `from the bridge side: ${show(fromBridge)}`);
  sbi = await json('GET', `/containers/${sid}/json`);
  assert.equal(sbi.State.Running, true);
  const pf = await runCmd('nsenter', ['-t', String(sbi.State.Pid), '-n', 'socat', '-', 'TCP4:localhost:8080'],
    { input: 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n', timeoutMs: 20000 });
  assert.equal(pf.code, 0, pf.stderr);
  assert.match(pf.stdout, /^HTTP\/1\.[01] 200[^]*\r\n\r\npod-ok\n$/);

  // ---- logs: the kubelet reads LogPath (through its symlink); kubectl logs goes through the API ---------
  wi = await json('GET', `/containers/${web.Id}/json`);
  assert.equal(wi.LogPath, path.join(b.dataRoot, 'containers', web.Id, `${web.Id}-json.log`));
  assert.ok(existsSync(`${wi.LogPath}.1`), 'rotated as Docker names it: <id>-json.log.1');
  const lines = (await readLogFile(path.join(logDir, 'web', '0.log'))).trim().split('\n');
  for (const l of lines) {
    const o = JSON.parse(l);
    assert.deepEqual(Object.keys(o), ['log', 'stream', 'time'], l);
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z$/);
    assert.ok(o.log.endsWith('\n'));
  }
  assert.ok(lines.some((l) => l === `{"log":"to-stderr\\n","stream":"stderr","time":"${JSON.parse(l).time}"}`), lines.join('\n'));
  assert.match(readFileSync(`${wi.LogPath}.1`, 'utf8').split('\n')[0], /^\{"log":"line \d+ of the web container, padded to rotate\\n","stream":"stdout","time":"[^"]+"\}$/);
  const raw = await rawGet(`/v1.43/containers/${web.Id}/logs?stdout=1&stderr=1&since=0&timestamps=1&tail=5`);
  const dm = demux(raw);
  assert.equal(dm.err, dm.err.match(/^\S+Z to-stderr\n$/)?.[0], dm.err);
  assert.equal((dm.out + dm.err).split('\n').filter(Boolean).length, 5);

  // ---- stats as the kubelet's summary asks: one-shot, and the writable layer's size ----------------------
  const st = await json('GET', `/containers/${web.Id}/stats?stream=0&one-shot=1`);
  assert.ok(st.cpu_stats.cpu_usage.total_usage > 0, JSON.stringify(st.cpu_stats));
  assert.ok(st.memory_stats.usage > 0, JSON.stringify(st.memory_stats));
  assert.ok(st.precpu_stats && typeof st.precpu_stats === 'object', 'precpu_stats is there (zero for one-shot, as Docker)');
  assert.equal(st.id, web.Id);
  const sized = await json('GET', `/containers/${web.Id}/json?size=1`);
  assert.equal(typeof sized.SizeRw, 'number');
  assert.ok(sized.SizeRw > 0, 'the web container wrote /www');

  // ---- UpdateContainerResources -----------------------------------------------------------------------
  await json('POST', `/containers/${web.Id}/update`, { CpuShares: 512, CpuPeriod: 100000, CpuQuota: 20000, Memory: 96 << 20, MemorySwap: 96 << 20 });
  assert.equal(readFileSync(path.join(cgroupDir(webPid, 'cpu'), 'cpu.shares'), 'utf8').trim(), '512');
  assert.equal(readFileSync(path.join(cgroupDir(webPid, 'cpu'), 'cpu.cfs_quota_us'), 'utf8').trim(), '20000');

  // ---- StopContainer x2, StopPodSandbox (CNI DEL, then the sandbox), RemovePodSandbox --------------------
  await json('POST', `/containers/${web.Id}/stop?t=30`, undefined, [204]);
  await json('POST', `/containers/${side.Id}/stop?t=2`, undefined, [204]);
  sbi = await json('GET', `/containers/${sid}/json`);
  await podNet.del(sid, `/proc/${sbi.State.Pid}/ns/net`);
  const t0 = Date.now();
  await json('POST', `/containers/${sid}/stop?t=10`, undefined, [204]);
  assert.ok(Date.now() - t0 < 8000, 'the pause stand-in ends on SIGTERM');
  sbi = await json('GET', `/containers/${sid}/json`);
  assert.equal(sbi.State.Running, false);
  assert.equal(sbi.NetworkSettings.SandboxKey, '');
  assert.equal(existsSync(key), false, 'the namespace file goes with the sandbox');
  const exited = await json('GET', `/containers/json?all=1&filters=${filters({ label: [`io.kubernetes.sandbox.id=${sid}`], status: ['exited'] })}`);
  assert.equal(exited.length, 2);
  for (const id of [web.Id, side.Id, sid]) await json('DELETE', `/containers/${id}?v=1&force=1`, undefined, [204]);
  assert.deepEqual(await json('GET', `/containers/json?all=1&filters=${filters({ label: [`io.kubernetes.pod.uid=${uid}`] })}`), []);
});

test('a --network none container: its SandboxKey is a namespace with lo only, usable by ip netns exec tools, gone at the exit', async () => {
  const c = await json('POST', '/containers/create?name=none-ns', { Image: 'busybox', Cmd: ['sleep', '1000'], HostConfig: { NetworkMode: 'none' } }, [201]);
  await json('POST', `/containers/${c.Id}/start`, undefined, [204]);
  const i = await json('GET', `/containers/${c.Id}/json`);
  const key: string = i.NetworkSettings.SandboxKey;
  assert.equal(statSync(key).ino, statSync(`/proc/${i.State.Pid}/ns/net`).ino);
  const links = await runCmd('nsenter', [`--net=${key}`, 'ip', '-o', 'link', 'show']);
  assert.deepEqual(links.stdout.trim().split('\n').map((l) => l.split(':')[1].trim()), ['lo']);
  assert.match(links.stdout, /LOOPBACK,UP/);
  // A restart of berthd keeps the running container's namespace file.
  await b.stop();
  await b.restart();
  assert.ok(existsSync(key));
  assert.equal((await json('GET', `/containers/${c.Id}/json`)).NetworkSettings.SandboxKey, key);
  await json('POST', `/containers/${c.Id}/kill`, undefined, [204]);
  await waitFor('the container to exit', async () => (await json('GET', `/containers/${c.Id}/json`)).State.Running === false || undefined);
  await waitFor('the namespace file to go', () => !existsSync(key) || undefined);
  await json('DELETE', `/containers/${c.Id}`, undefined, [204]);
});

function mkdirP(d: string): void {
  mkdirSync(d, { recursive: true });
}

async function readLogFile(p: string): Promise<string> {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** A GET whose body is kept as bytes (stdcopy frames). */
function rawGet(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: b.sock, path: url }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    }).on('error', reject);
  });
}

test('cgroupfs: a slice-named CgroupParent (cri-dockerd under --cgroup-driver=systemd) takes systemd\'s path; `..` stays inside', async () => {
  const prefix = `berthcri${randomBytes(4).toString('hex')}`;
  const podUid = randomBytes(8).toString('hex');
  const slice = `${prefix}-burstable-pod${podUid}.slice`;
  const made: string[] = [];
  try {
    const c = await json('POST', '/containers/create', { Image: 'busybox', Cmd: ['sleep', '1000'], HostConfig: { CgroupParent: slice } }, [201]);
    made.push(c.Id);
    await json('POST', `/containers/${c.Id}/start`, undefined, [204]);
    const pid = (await json('GET', `/containers/${c.Id}/json`)).State.Pid;
    for (const ctl of ['cpu', 'memory']) {
      assert.ok(cgroupDir(pid, ctl).endsWith(`/${prefix}.slice/${prefix}-burstable.slice/${slice}/${c.Id}`), cgroupDir(pid, ctl));
    }
    const e = await json('POST', '/containers/create', { Image: 'busybox', Cmd: ['sleep', '1000'], HostConfig: { CgroupParent: `/${b.cgroupParent}/../../${b.cgroupParent}/esc` } }, [201]);
    made.push(e.Id);
    await json('POST', `/containers/${e.Id}/start`, undefined, [204]);
    const epid = (await json('GET', `/containers/${e.Id}/json`)).State.Pid;
    assert.ok(cgroupDir(epid, 'cpu').endsWith(`/sys/fs/cgroup/${existsSync('/sys/fs/cgroup/cpu') ? 'cpu/' : ''}${b.cgroupParent}/esc/${e.Id}`), cgroupDir(epid, 'cpu'));
  } finally {
    for (const id of made) await call('DELETE', `/containers/${id}?force=1`);
    // The slice directories are outside the test daemon's parent: removed here, deepest first.
    for (const h of ['', ...readdirSync('/sys/fs/cgroup')]) {
      const top = path.join('/sys/fs/cgroup', h, `${prefix}.slice`);
      for (const d of [path.join(top, `${prefix}-burstable.slice`, slice), path.join(top, `${prefix}-burstable.slice`), top]) {
        try { rmdirSync(d); } catch { /* not in this hierarchy, or gone */ }
      }
    }
  }
});
