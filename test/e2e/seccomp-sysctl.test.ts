// Sysctls and the seccomp profile against a real berthd. Sysctls go through the raw API (the docker CLI
// refuses the non-namespaced ones itself): only those of the container's own namespaces are taken and
// applied inside it; the host's values are read before and after to prove they never change (the test
// never writes one itself). Seccomp: a static probe (build/seccomp-probe, and its i386 build), bind-mounted
// into containers, says what Docker's default profile, custom profiles and the opt-outs answer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli, show } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok, fails } = dockerCli(() => b);
const REPO = path.resolve(__dirname, '..', '..', '..');
const PROBE = path.join(REPO, 'build', 'seccomp-probe');
const PROBE32 = path.join(REPO, 'build', 'seccomp-probe32');
const work = mkdtempSync(path.join(os.tmpdir(), 'berth-seccomp-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Host kernel parameters a leaking sysctl would change: read, never written, by this test. */
const HOST_KEYS = [
  'vm/overcommit_ratio', 'kernel/core_pattern', 'kernel/msgmax', 'kernel/shmmni', 'fs/mqueue/msg_max',
  'net/core/somaxconn', 'net/ipv4/ip_unprivileged_port_start', 'kernel/domainname',
];
function hostValues(): Record<string, string> {
  return Object.fromEntries(HOST_KEYS.map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8')]));
}

async function create(name: string, hostConfig: object, cmd = ['true']) {
  return api(b, 'POST', `/v1.47/containers/create?name=${name}`, { body: { Image: 'busybox', Cmd: cmd, HostConfig: hostConfig } });
}

test('sysctls outside the container\'s own namespaces are refused at create with 400 and never stored', async () => {
  const before = hostValues();
  const refused: Array<[string, object, RegExp]> = [
    ['vm.overcommit_ratio', {}, /^sysctl "vm\.overcommit_ratio" is not in a separate kernel namespace$/],
    ['kernel.core_pattern', {}, /^sysctl "kernel\.core_pattern" is not in a separate kernel namespace$/],
    // Written with '/' it is the same parameter.
    ['vm/overcommit_ratio', {}, /^sysctl "vm\.overcommit_ratio" is not in a separate kernel namespace$/],
    // A net.* name that would lead out of /proc/sys/net.
    ['net/ipv4/../../vm/overcommit_ratio', {}, /is not a valid sysctl name/],
    ['net.core..somaxconn', {}, /is not a valid sysctl name/],
    ['kernel.msgmax', { IpcMode: 'host' }, /^sysctl "kernel\.msgmax" is not allowed in the hosts ipc namespace$/],
    ['fs.mqueue.msg_max', { IpcMode: 'host' }, /not allowed in the hosts ipc namespace/],
    ['net.core.somaxconn', { NetworkMode: 'host' }, /^sysctl "net\.core\.somaxconn" not allowed in host network namespace$/],
    ['kernel.domainname', { UTSMode: 'host' }, /^sysctl "kernel\.domainname" is not in a separate kernel namespace$/],
    ['kernel.hostname', {}, /conflicts with the OCI "hostname" field/],
  ];
  for (const [i, [key, hc, re]] of refused.entries()) {
    const r = await create(`sys-bad-${i}`, { ...hc, Sysctls: { [key]: '51' } });
    assert.equal(r.status, 400, `${key}: ${r.body}`);
    assert.match(r.json().message, re);
    assert.equal((await api(b, 'GET', `/containers/sys-bad-${i}/json`)).status, 404, `${key}: nothing was created`);
  }
  // A donor on the host's network is the host's network.
  await ok('create', '--name', 'sys-hostnet', '--network', 'host', 'busybox', 'true');
  const r = await create('sys-via-donor', { NetworkMode: 'container:sys-hostnet', Sysctls: { 'net.core.somaxconn': '51' } });
  assert.equal(r.status, 400, r.body);
  assert.match(r.json().message, /not allowed in host network namespace/);
  assert.deepEqual(hostValues(), before);
  await ok('rm', 'sys-hostnet');
});

test('namespaced sysctls are applied inside the container, and only there', async () => {
  const before = hostValues();
  const want: Record<string, string> = {
    'kernel.msgmax': '12345', 'kernel.shmmni': '2048', 'fs.mqueue.msg_max': '21', 'net.core.somaxconn': '777',
    'net/ipv4/ip_unprivileged_port_start': '99', 'kernel.domainname': 'sysctl.example',
  };
  const r = await create('sys-good', { Sysctls: want }, ['sh', '-c',
    'cat /proc/sys/kernel/msgmax /proc/sys/kernel/shmmni /proc/sys/fs/mqueue/msg_max /proc/sys/net/core/somaxconn '
    + '/proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/domainname']);
  assert.equal(r.status, 201, r.body);
  await ok('start', 'sys-good');
  assert.equal((await ok('wait', 'sys-good')).trim(), '0');
  assert.deepEqual((await ok('logs', 'sys-good')).trim().split('\n'), ['12345', '2048', '21', '777', '99', 'sysctl.example']);
  const inspect = JSON.parse(await ok('inspect', 'sys-good'))[0];
  assert.deepEqual(inspect.HostConfig.Sysctls, want);
  assert.deepEqual(hostValues(), before);
  await ok('rm', 'sys-good');
});

test('the shim refuses at start what create could not see: a donor that turned out to use the host\'s network', async () => {
  const before = hostValues();
  // The donor create saw used a network of its own; the one found at start, by the same name, uses the host's.
  await ok('create', '--name', 'sys-donor', 'busybox', 'sleep', '300');
  const r = await create('sys-late', { NetworkMode: 'container:sys-donor', Sysctls: { 'net.core.somaxconn': '52' } }, ['true']);
  assert.equal(r.status, 201, r.body);
  await ok('rm', 'sys-donor');
  await ok('run', '-d', '--name', 'sys-donor', '--network', 'host', 'busybox', 'sleep', '300');
  const s = await api(b, 'POST', '/containers/sys-late/start');
  assert.equal(s.status, 400, s.body);
  assert.match(s.json().message, /sysctl "net\.core\.somaxconn" not allowed in host network namespace/);
  assert.deepEqual(hostValues(), before);
  await ok('rm', '-f', 'sys-late', 'sys-donor');
});

/** Runs the probe (or its i386 build) in a new container with `opts`; its lines as name → answer. */
async function probe(opts: string[], calls: string[], binary = PROBE): Promise<Record<string, string>> {
  const out = await ok('run', '--rm', ...opts, '-v', `${binary}:/probe:ro`, 'busybox', '/probe', ...calls);
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split('=') as [string, string]));
}

const CALLS = ['getpid', 'io_uring_setup', 'keyctl', 'personality-linux32', 'personality-norandom', 'fchmodat2',
  'mseal', 'socket-unix', 'socket-vsock', 'unshare-uts'];

test('Docker\'s default profile: an allow list answering EPERM, ENOSYS for syscalls newer than it, conditioned rules', async () => {
  const got = await probe([], CALLS);
  assert.deepEqual(got, {
    'getpid': 'ok', 'io_uring_setup': 'EPERM', 'keyctl': 'EPERM', 'personality-linux32': 'ok', 'personality-norandom': 'EPERM',
    // fchmodat2 (Linux 6.6) is in the list; mseal (6.10) is numbered above every syscall the compiled
    // profile names (this libseccomp knows none after Linux 6.7), so libcs see ENOSYS and fall back.
    'fchmodat2': 'ENOENT', 'mseal': 'ENOSYS', 'socket-unix': 'ok', 'socket-vsock': 'EPERM', 'unshare-uts': 'EPERM', 'abi': '64',
  });
  // The compiled filter is kept per profile, in the exec root, for the next start.
  const dir = path.join(b.execRoot, 'seccomp');
  const files = readdirSync(dir).filter((f) => f.endsWith('.bpf'));
  assert.equal(files.length, 1, files.join(' '));
  const mtime = statSync(path.join(dir, files[0])).mtimeMs;
  await probe([], ['getpid']);
  assert.equal(statSync(path.join(dir, files[0])).mtimeMs, mtime, 'the second start read the cached filter');
  // Execs get the container's filter.
  await ok('run', '-d', '--name', 'sc-exec', '-v', `${PROBE}:/probe:ro`, 'busybox', 'sleep', '300');
  assert.equal(await ok('exec', 'sc-exec', '/probe', 'io_uring_setup', 'mseal', 'getpid'), 'io_uring_setup=EPERM\nmseal=ENOSYS\ngetpid=ok\nabi=64\n');
  await ok('rm', '-f', 'sc-exec');
});

test('a 32-bit (i386) static binary runs under the default profile, confined like a 64-bit one', async () => {
  const got = await probe([], ['getpid', 'io_uring_setup', 'keyctl', 'personality-norandom', 'unshare-uts', 'fchmodat2', 'mseal'], PROBE32);
  assert.deepEqual(got, {
    'getpid': 'ok', 'io_uring_setup': 'EPERM', 'keyctl': 'EPERM', 'personality-norandom': 'EPERM', 'unshare-uts': 'EPERM',
    'fchmodat2': 'ENOENT', 'mseal': 'ENOSYS', 'abi': '32',
  });
});

test('--cap-add SYS_ADMIN lets the rules conditioned on it through; seccomp=unconfined and --privileged run without a filter', async () => {
  const calls3 = ['unshare-uts', 'kcmp', 'io_uring_setup', 'keyctl'];
  assert.deepEqual(await probe([], calls3), { 'unshare-uts': 'EPERM', 'kcmp': 'EPERM', 'io_uring_setup': 'EPERM', 'keyctl': 'EPERM', 'abi': '64' });
  assert.deepEqual(await probe(['--cap-add', 'SYS_ADMIN'], calls3), { 'unshare-uts': 'ok', 'kcmp': 'EPERM', 'io_uring_setup': 'EPERM', 'keyctl': 'EPERM', 'abi': '64' });
  assert.deepEqual(await probe(['--cap-add', 'SYS_PTRACE'], calls3), { 'unshare-uts': 'EPERM', 'kcmp': 'ok', 'io_uring_setup': 'EPERM', 'keyctl': 'EPERM', 'abi': '64' });
  // Every capability (not --privileged): every conditioned rule at once still compiles and loads.
  assert.deepEqual(await probe(['--cap-add', 'ALL'], calls3), { 'unshare-uts': 'ok', 'kcmp': 'ok', 'io_uring_setup': 'EPERM', 'keyctl': 'EPERM', 'abi': '64' });
  const open = { 'io_uring_setup': 'ok', 'keyctl': 'ok', 'personality-norandom': 'ok', 'mseal': 'ok', 'socket-vsock': 'ok', 'abi': '64' };
  const calls = ['io_uring_setup', 'keyctl', 'personality-norandom', 'mseal', 'socket-vsock'];
  for (const opts of [['--security-opt', 'seccomp=unconfined'], ['--privileged']]) {
    const got = await probe(opts, calls);
    // AF_VSOCK may be missing from the kernel: what matters is that the filter did not answer.
    if (got['socket-vsock'] === 'EAFNOSUPPORT') got['socket-vsock'] = 'ok';
    assert.deepEqual(got, open, opts.join(' '));
  }
  assert.match(await ok('run', '--rm', '--privileged', 'busybox', 'grep', 'Seccomp:', '/proc/self/status'), /Seccomp:\s+0/);
});

test('a custom profile in Docker\'s format: includes and excludes by capability, architecture and kernel', async () => {
  const profile = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: ['io_uring_setup'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['keyctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, excludes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 14, includes: { arches: ['s390x'] } },
      { names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 14, includes: { minKernel: '99.0' } },
      { names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 2, includes: { minKernel: '4.0' } },
      // Names libseccomp does not know, or of another architecture, filter nothing here.
      { names: ['no_such_syscall', 's390_runtime_instr'], action: 'SCMP_ACT_ERRNO' },
    ],
  };
  const file = path.join(work, 'profile.json');
  writeFileSync(file, JSON.stringify(profile));
  const calls = ['getpid', 'io_uring_setup', 'keyctl', 'personality-norandom', 'unshare-uts'];
  assert.deepEqual(await probe(['--security-opt', `seccomp=${file}`], calls),
    { 'getpid': 'ok', 'io_uring_setup': 'ok', 'keyctl': 'EINVAL', 'personality-norandom': 'ok', 'unshare-uts': 'ENOENT', 'abi': '64' });
  assert.deepEqual(await probe(['--security-opt', `seccomp=${file}`, '--cap-add', 'SYS_ADMIN'], calls),
    { 'getpid': 'ok', 'io_uring_setup': 'EACCES', 'keyctl': 'ok', 'personality-norandom': 'ok', 'unshare-uts': 'ENOENT', 'abi': '64' });
  // --privileged runs without a filter, a custom profile included (as dockerd).
  assert.deepEqual(await probe(['--security-opt', `seccomp=${file}`, '--privileged'], ['keyctl', 'unshare-uts']),
    { 'keyctl': 'ok', 'unshare-uts': 'ok', 'abi': '64' });
});

test('a rule libseccomp cannot take fails the start with a message saying which; nothing is skipped silently', async () => {
  const file = path.join(work, 'bad.json');
  writeFileSync(file, JSON.stringify({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 7, value: 1, op: 'SCMP_CMP_EQ' }] }],
  }));
  const r = await b.docker(['run', '--rm', '--security-opt', `seccomp=${file}`, 'busybox', 'true']);
  assert.notEqual(r.code, 0, show(r));
  assert.match(r.stderr, /seccomp: the rule for read \(SCMP_ACT_ERRNO if arg7 EQ 1\) cannot be added/);
  writeFileSync(file, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: null }] }));
  await fails(/both 'architectures' and 'archMap' are specified/, 'run', '--rm', '--security-opt', `seccomp=${file}`, 'busybox', 'true');
});
