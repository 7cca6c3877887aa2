// docker info tells what the host is, measured: the data root's file system, IP forwarding, what the cgroup
// controllers can enforce, and Docker's warnings for what is missing. Compared with the kernel's own files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { api } from '../helpers/clients';

const b = berthdForFile();

async function info(): Promise<Record<string, any>> {
  const r = await api(b, 'GET', '/v1.50/info');
  assert.equal(r.status, 200);
  return JSON.parse(r.body);
}

const memoryMount = (): string | undefined => {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep > 0 && f[sep + 1] === 'cgroup' && f[sep + 3]?.split(',').includes('memory')) return f[4];
  }
  return undefined;
};

test('DriverStatus names the data root\'s file system as stat -f does', async () => {
  const i = await info();
  const status = Object.fromEntries(i.DriverStatus as [string, string][]);
  // stat -f %T prints "ext2/ext3" for every ext family member; Docker calls them all "extfs".
  const kind = execFileSync('stat', ['-f', '-c', '%T', b.dataRoot], { encoding: 'utf8' }).trim();
  const expected: Record<string, string> = { 'ext2/ext3': 'extfs', xfs: 'xfs', btrfs: 'btrfs', tmpfs: 'tmpfs', overlayfs: 'overlayfs', v9fs: 'v9fs' };
  assert.equal(status['Backing Filesystem'], expected[kind] ?? status['Backing Filesystem'], `stat says ${kind}`);
  assert.notEqual(status['Backing Filesystem'], '<unknown>');
  assert.equal(status['Supports d_type'], 'true');
});

test('IPv4Forwarding, SwapLimit, OomKillDisable and the warnings follow the kernel\'s files', async () => {
  const i = await info();
  assert.equal(i.IPv4Forwarding, readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1');
  const warnings: string[] = i.Warnings ?? [];
  assert.equal(warnings.includes('WARNING: IPv4 forwarding is disabled'), !i.IPv4Forwarding);
  if (i.CgroupVersion === '1') {
    const mem = memoryMount();
    assert.ok(mem, 'a v1 memory hierarchy is mounted');
    assert.equal(i.SwapLimit, existsSync(path.join(mem!, 'memory.memsw.limit_in_bytes')));
    assert.equal(i.OomKillDisable, existsSync(path.join(mem!, 'memory.oom_control')));
    assert.equal(i.KernelMemoryTCP, existsSync(path.join(mem!, 'memory.kmem.tcp.limit_in_bytes')));
  } else {
    assert.equal(i.OomKillDisable, false, 'cgroup v2 has no OOM-kill disable');
  }
  assert.equal(warnings.includes('WARNING: No swap limit support'), !i.SwapLimit);
  const nf = '/proc/sys/net/bridge/bridge-nf-call-iptables';
  if (existsSync(nf)) assert.equal(i.BridgeNfIptables, readFileSync(nf, 'utf8').trim() === '1');
  assert.ok(i.Warnings === null || warnings.length > 0, 'Warnings is null when there is nothing to warn about');
});

test('the docker CLI prints the measured facts', async () => {
  const r = await b.docker(['info', '--format', '{{json .DriverStatus}} {{.IPv4Forwarding}} {{.SwapLimit}}']);
  assert.equal(r.code, 0, r.stderr);
  const i = await info();
  assert.equal(r.stdout.trim(), `${JSON.stringify(i.DriverStatus)} ${i.IPv4Forwarding} ${i.SwapLimit}`);
});
