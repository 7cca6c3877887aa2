import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seccompFor, defaultProfile } from '../../daemon/containers/seccomp';
import { DEFAULT_CAPS } from '../../daemon/containers/spec';

const denied = (p: ReturnType<typeof defaultProfile>) => new Set(p.syscalls.filter((r) => !r.args).flatMap((r) => r.names));

test('the default profile refuses what Docker refuses to a default container', () => {
  const p = defaultProfile(DEFAULT_CAPS);
  assert.equal(p.defaultAction, 'SCMP_ACT_ALLOW');
  const d = denied(p);
  for (const s of ['mount', 'umount2', 'unshare', 'setns', 'pivot_root', 'keyctl', 'add_key', 'reboot', 'init_module', 'bpf', 'clock_settime', 'open_by_handle_at']) {
    assert.ok(d.has(s), s);
  }
  for (const s of ['read', 'write', 'execve', 'setuid', 'capset', 'chdir', 'clone']) assert.ok(!d.has(s), s);
  assert.ok(p.syscalls.some((r) => r.names.includes('clone') && r.args?.[0].value === 0x40000000), 'clone(CLONE_NEWNET) refused');
  assert.ok(p.syscalls.some((r) => r.names.includes('clone3') && r.errnoRet === 38), 'clone3 answers ENOSYS');
});

test('capabilities open the syscalls they govern', () => {
  const d = denied(defaultProfile([...DEFAULT_CAPS, 'CAP_SYS_ADMIN', 'CAP_SYS_TIME']));
  assert.ok(!d.has('mount') && !d.has('unshare') && !d.has('clock_settime'));
  assert.ok(d.has('reboot') && d.has('keyctl'));
});

test('privileged and seccomp=unconfined run without a filter; a custom profile is taken', () => {
  assert.equal(seccompFor(null, true, DEFAULT_CAPS), undefined);
  assert.equal(seccompFor(['seccomp=unconfined'], false, DEFAULT_CAPS), undefined);
  const custom = seccompFor([`seccomp=${JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] })}`], false, DEFAULT_CAPS)!;
  assert.equal(custom.defaultAction, 'SCMP_ACT_ERRNO');
  assert.deepEqual(custom.syscalls[0].names, ['read']);
  assert.throws(() => seccompFor(['seccomp={bad'], false, DEFAULT_CAPS), /Decoding seccomp profile failed/);
});
