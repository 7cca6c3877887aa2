import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalSysctl, checkSysctls, sysctlRefusal } from '../../daemon/containers/sysctls';

const own = { hostIpc: false, hostNet: false, hostUts: false };
const host = { hostIpc: true, hostNet: true, hostUts: true };

test('namespaced sysctls are taken in namespaces of the container\'s own, refused in the host\'s (runc\'s words)', () => {
  for (const k of ['kernel.msgmax', 'kernel.sem', 'kernel.shm_rmid_forced', 'fs.mqueue.msg_max', 'net.ipv4.ip_forward', 'kernel.domainname']) {
    assert.equal(sysctlRefusal(k, own), null, k);
  }
  assert.equal(sysctlRefusal('kernel.msgmax', host), 'sysctl "kernel.msgmax" is not allowed in the hosts ipc namespace');
  assert.equal(sysctlRefusal('net.core.somaxconn', host), 'sysctl "net.core.somaxconn" not allowed in host network namespace');
  assert.equal(sysctlRefusal('kernel.domainname', host), 'sysctl "kernel.domainname" is not in a separate kernel namespace');
  assert.match(sysctlRefusal('kernel.hostname', own)!, /conflicts with the OCI "hostname" field/);
  for (const k of ['vm.overcommit_ratio', 'kernel.core_pattern', 'kernel.msgmaxx', 'fs.file-max', 'kernel.modprobe']) {
    assert.equal(sysctlRefusal(k, own), `sysctl "${k}" is not in a separate kernel namespace`, k);
  }
});

test('names written with slashes are the same parameters; names that would leave /proc/sys are refused', () => {
  assert.equal(canonicalSysctl('net/ipv4/conf/eth0.100/forwarding'), 'net.ipv4.conf.eth0/100.forwarding');
  assert.equal(canonicalSysctl('net.ipv4.ip_forward'), 'net.ipv4.ip_forward');
  assert.equal(sysctlRefusal('net/ipv4/conf/eth0.100/forwarding', own), null);
  assert.match(sysctlRefusal('vm/overcommit_ratio', own)!, /"vm\.overcommit_ratio" is not in a separate/);
  for (const k of ['net/ipv4/../../vm/overcommit_ratio', 'net.ipv4..x', 'net.', '.net.x', 'net.a/../b', '']) {
    assert.match(sysctlRefusal(k, own)!, /is not a valid sysctl name/, k);
  }
});

test('checkSysctls reads the modes: host, a donor on the host\'s network, string values only', () => {
  assert.doesNotThrow(() => checkSysctls({ Sysctls: { 'net.core.somaxconn': '1' }, NetworkMode: 'bridge' }));
  assert.throws(() => checkSysctls({ Sysctls: { 'net.core.somaxconn': '1' }, NetworkMode: 'host' }), /host network namespace/);
  assert.throws(() => checkSysctls({ Sysctls: { 'net.core.somaxconn': '1' }, NetworkMode: 'container:d' }, () => 'host'), /host network namespace/);
  assert.doesNotThrow(() => checkSysctls({ Sysctls: { 'net.core.somaxconn': '1' }, NetworkMode: 'container:d' }, () => 'bridge'));
  assert.throws(() => checkSysctls({ Sysctls: { 'kernel.sem': '1' }, IpcMode: 'host' }), /hosts ipc namespace/);
  assert.throws(() => checkSysctls({ Sysctls: { 'kernel.sem': 1 } }), /must be a string/);
});
