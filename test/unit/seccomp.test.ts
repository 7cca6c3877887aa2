import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seccompFor, defaultProfile, resolveProfile, type DockerSeccomp } from '../../daemon/containers/seccomp';
import { DEFAULT_CAPS } from '../../daemon/containers/spec';

/** The syscalls a profile lets through whatever their arguments. */
const allowed = (p: ReturnType<typeof defaultProfile>) =>
  new Set(p.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));

test('the default profile is Docker\'s allow list: what is not listed answers EPERM', () => {
  const p = defaultProfile(DEFAULT_CAPS);
  assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(p.defaultErrnoRet, 1);
  const a = allowed(p);
  for (const s of ['mount', 'umount2', 'unshare', 'setns', 'pivot_root', 'keyctl', 'add_key', 'reboot', 'init_module', 'bpf',
    'clock_settime', 'open_by_handle_at', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'clone', 'clone3', 'personality']) {
    assert.ok(!a.has(s), s);
  }
  for (const s of ['read', 'write', 'execve', 'setuid', 'capset', 'chdir', 'prctl', 'close_range', 'arch_prctl', 'modify_ldt']) assert.ok(a.has(s), s);
  // clone without a namespace flag, clone3 answering ENOSYS (libcs then use clone), personality's safe values.
  assert.ok(p.syscalls.some((r) => r.names.includes('clone') && r.args?.[0].op === 'SCMP_CMP_MASKED_EQ' && r.args[0].value === 0x7e020000));
  assert.ok(p.syscalls.some((r) => r.names.includes('clone3') && r.action === 'SCMP_ACT_ERRNO' && r.errnoRet === 38));
  assert.deepEqual(p.syscalls.filter((r) => r.names.includes('personality')).map((r) => r.args?.[0].value), [0, 8, 0x20000, 0x20008, 0xffffffff]);
});

test('capabilities open the syscalls they govern', () => {
  const p = defaultProfile([...DEFAULT_CAPS, 'CAP_SYS_ADMIN', 'CAP_SYS_TIME', 'CAP_SYS_PTRACE']);
  const a = allowed(p);
  for (const s of ['mount', 'unshare', 'setns', 'clone', 'clone3', 'clock_settime', 'kcmp', 'pidfd_getfd']) assert.ok(a.has(s), s);
  assert.ok(!a.has('reboot') && !a.has('keyctl') && !a.has('init_module'));
  // With CAP_SYS_ADMIN neither the clone mask nor clone3's ENOSYS is there.
  assert.ok(!p.syscalls.some((r) => r.names.includes('clone3') && r.action === 'SCMP_ACT_ERRNO'));
  assert.ok(!p.syscalls.some((r) => r.names.includes('clone') && r.args));
});

test('includes and excludes: capabilities (all of them), architectures, kernel versions; archMap picks the host\'s', () => {
  const prof: DockerSeccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { names: ['a'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_X', 'CAP_Y'] } },
      { names: ['b'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_X'] } },
      { names: ['c'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
      { names: ['d'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['arm64'] } },
      { names: ['e'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.10' } },
      { names: ['f'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5.10' } },
      { name: 'g', action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
    ],
  };
  const names = (p: ReturnType<typeof resolveProfile>) => p!.syscalls.flatMap((r) => r.names).join('');
  const amd = { arch: 'amd64', kernel: [5, 4, 0] as [number, number, number] };
  const arm = { arch: 'arm64', kernel: [6, 1, 0] as [number, number, number] };
  assert.equal(names(resolveProfile(prof, ['CAP_X'], amd)), 'dfg');
  assert.equal(names(resolveProfile(prof, ['CAP_X', 'CAP_Y'], amd)), 'adfg');
  assert.equal(names(resolveProfile(prof, [], arm)), 'bceg');
  assert.deepEqual(resolveProfile(prof, [], amd)!.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.deepEqual(resolveProfile(prof, [], arm)!.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.deepEqual(resolveProfile(prof, [], amd)!.syscalls.at(-1), { names: ['g'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  assert.throws(() => resolveProfile({ ...prof, architectures: ['SCMP_ARCH_X86_64'] }, [], amd), /both 'architectures' and 'archMap'/);
  assert.throws(() => resolveProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'a', names: ['b'], action: 'SCMP_ACT_ALLOW' }] }, [], amd), /both 'name' and 'names'/);
  assert.equal(resolveProfile({ defaultAction: '', syscalls: [] }, [], amd), undefined);
});

test('privileged and seccomp=unconfined run without a filter (a custom profile too); a custom profile is taken', () => {
  assert.equal(seccompFor(null, true, DEFAULT_CAPS), undefined);
  assert.equal(seccompFor(['seccomp=unconfined'], false, DEFAULT_CAPS), undefined);
  const text = JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] });
  const custom = seccompFor([`seccomp=${text}`], false, DEFAULT_CAPS)!;
  assert.equal(custom.defaultAction, 'SCMP_ACT_ERRNO');
  assert.deepEqual(custom.syscalls[0].names, ['read']);
  assert.equal(seccompFor([`seccomp=${text}`], true, DEFAULT_CAPS), undefined);
  assert.deepEqual(seccompFor(['seccomp=builtin'], false, DEFAULT_CAPS), defaultProfile(DEFAULT_CAPS));
  assert.throws(() => seccompFor(['seccomp={bad'], false, DEFAULT_CAPS), /Decoding seccomp profile failed/);
});
