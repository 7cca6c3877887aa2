// Every bad request gets Docker's 4xx and changes nothing: create and update bodies sent raw (past the CLI's
// own checks) for each rule Docker and the kernel have, HEAD where Docker has no HEAD, and `docker load` /
// `docker import` of broken or hostile archives. Each refusal also checks that nothing was made: no
// container, no image, no tag, no layer directory, no temp file, and for update no changed setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { removalsSettled } from '../helpers/removals';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli, waitFor, type HttpResult } from '../helpers/clients';
import { packTar, type TarEntry } from '../fixtures/tar';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok, fails } = dockerCli(() => b);
const CPUS = os.availableParallelism();

/* eslint-disable @typescript-eslint/no-explicit-any */

function dirEntries(p: string): string[] {
  return existsSync(p) ? readdirSync(p).sort() : [];
}

/** Everything a refused request must leave as it was. Layers a failed load had committed are collected
 *  at its end: their directories are renamed del-* at once and removed in the background, so that removal
 *  is waited for (bounded). */
async function snapshot(): Promise<Record<string, unknown>> {
  // An earlier test's rm deletes its files after answering: compared once that is over.
  assert.deepEqual(await removalsSettled(b.dataRoot), [], 'removals finish');
  await waitFor('layer directories removed', () => !dirEntries(path.join(b.dataRoot, 'overlay2')).some((n) => n.startsWith('del-')), 10000);
  const ctrs = (await api(b, 'GET', '/containers/json?all=1')).json().map((c: any) => c.Id).sort();
  const imgs = (await api(b, 'GET', '/images/json?all=1')).json().map((i: any) => `${i.Id} ${(i.RepoTags ?? []).join(',')}`).sort();
  const vols = ((await api(b, 'GET', '/volumes')).json().Volumes ?? []).map((v: any) => v.Name).sort();
  return {
    ctrs, imgs, vols,
    ctrDirs: dirEntries(path.join(b.dataRoot, 'containers')),
    layerDirs: dirEntries(path.join(b.dataRoot, 'overlay2')),
    tmp: dirEntries(path.join(b.dataRoot, 'image', 'tmp')),
  };
}

function expectError(r: HttpResult, status: number, message: string | RegExp): void {
  assert.equal(r.status, status, r.body);
  assert.match(String(r.headers['content-type']), /^application\/json$/);
  const m = r.json().message;
  if (typeof message === 'string') assert.equal(m, message);
  else assert.match(m, message);
}

/** POST /containers/create with `hc` as HostConfig (or a whole body) must answer `status` and `message`
 *  and make nothing. */
async function refused(body: { HostConfig?: object; [k: string]: unknown }, message: string | RegExp, status = 400): Promise<void> {
  const before = await snapshot();
  const r = await api(b, 'POST', '/containers/create?name=v-refused', { body: { Image: 'busybox', Cmd: ['true'], ...body } });
  expectError(r, status, message);
  assert.deepEqual(await snapshot(), before, `nothing made by ${JSON.stringify(body)}`);
}

const hc = (h: object) => ({ HostConfig: h });

async function accepted(body: object): Promise<void> {
  const r = await api(b, 'POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['true'], ...body } });
  assert.equal(r.status, 201, `${JSON.stringify(body)}: ${r.body}`);
  const rm = await api(b, 'DELETE', `/containers/${r.json().Id}?force=1`);
  assert.equal(rm.status, 204, rm.body);
}

test('create: container ports 1-65535, protocols tcp/udp/sctp, host ports and ranges, host addresses', async () => {
  await refused(hc({ PortBindings: { '99999/tcp': [{ HostPort: '80' }] } }), 'invalid port specification: "99999"');
  await refused(hc({ PortBindings: { '0/tcp': [{ HostPort: '80' }] } }), 'invalid port specification: "0"');
  await refused(hc({ PortBindings: { 'abc/tcp': [] } }), 'invalid port specification: "abc"');
  await refused(hc({ PortBindings: { '-1/tcp': [] } }), 'invalid port specification: "-1"');
  await refused(hc({ PortBindings: { '8000-8001/tcp': [] } }), 'invalid port specification: "8000-8001"');
  await refused(hc({ PortBindings: { '80/icmp': [] } }), 'invalid proto: icmp');
  await refused(hc({ PortBindings: { '80/tcp': [{ HostPort: '65536' }] } }), 'invalid port specification: "65536"');
  await refused(hc({ PortBindings: { '80/tcp': [{ HostPort: '9000-8000' }] } }), 'invalid port specification: "9000-8000"');
  await refused(hc({ PortBindings: { '80/tcp': [{ HostPort: '8000-70000' }] } }), 'invalid port specification: "8000-70000"');
  await refused(hc({ PortBindings: { '80/tcp': [{ HostPort: 'http' }] } }), 'invalid port specification: "http"');
  await refused(hc({ PortBindings: { '80/tcp': [{ HostIp: 'not-an-ip', HostPort: '80' }] } }), 'invalid IP address: not-an-ip');
  await refused({ ExposedPorts: { '70000/tcp': {} } }, 'invalid port specification: "70000"');
  await refused({ ExposedPorts: { '80/bogus': {} } }, 'invalid proto: bogus');
  await refused({ ExposedPorts: { '90-80/tcp': {} } }, 'invalid port specification: "90-80"');
  // The edges are fine, in any case of protocol, as are host port ranges and "any port".
  await accepted({ ExposedPorts: { '1/tcp': {}, '65535/UDP': {}, '8000-8010/tcp': {}, '9/sctp': {} },
    HostConfig: { PortBindings: { '1/tcp': [{ HostPort: '' }], '65535/udp': [{ HostIp: '127.0.0.1', HostPort: '65535' }], '81': [{ HostPort: '8000-8100' }], '82/tcp': null } } });
});

test('create: CapAdd/CapDrop take Docker\'s known capabilities, ALL, any case, with or without CAP_', async () => {
  await refused(hc({ CapAdd: ['FOO'] }), 'invalid CapAdd: unknown capability: "CAP_FOO"');
  await refused(hc({ CapDrop: ['net_raw', 'cap_bogus'] }), 'invalid CapDrop: unknown capability: "CAP_BOGUS"');
  // "ALL" is the magic word only as itself: CAP_ALL is no capability.
  await refused(hc({ CapAdd: ['CAP_ALL'] }), 'invalid CapAdd: unknown capability: "CAP_ALL"');
  await accepted(hc({ CapAdd: ['net_admin', 'CAP_SYS_ADMIN', 'Sys_Ptrace'], CapDrop: ['all'] }));
  await accepted(hc({ CapAdd: ['ALL'], CapDrop: ['mknod'] }));
  // A capability the kernel has but this host does not give berthd (testing-here: no CAP_SYS_RESOURCE).
  const bnd = BigInt('0x' + /CapBnd:\s*([0-9a-f]+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))![1]);
  if (!((bnd >> 24n) & 1n)) {
    await refused(hc({ CapAdd: ['sys_resource'] }), 'invalid CapAdd: capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"');
  }
});

test('create: ulimit names are Docker\'s and soft <= hard', async () => {
  await refused(hc({ Ulimits: [{ Name: 'foo', Soft: 1, Hard: 1 }] }), 'invalid ulimit type: foo');
  await refused(hc({ Ulimits: [{ Name: 'as', Soft: 1, Hard: 1 }] }), 'invalid ulimit type: as');
  await refused(hc({ Ulimits: [{ Name: 'nofile', Soft: 2048, Hard: 1024 }] }), 'ulimit soft limit must be less than or equal to hard limit: 2048 > 1024');
  await refused(hc({ Ulimits: [{ Name: 'nofile', Soft: -1, Hard: 1024 }] }), 'ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 1024');
  await accepted(hc({ Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }, { Name: 'core', Soft: 0, Hard: -1 }] }));
});

test('create: CPUs (NanoCpus against the host, with CpuQuota/CpuPeriod, their ranges, cpusets)', async () => {
  const range = `range of CPUs is from 0.01 to ${CPUS}.00, as there are only ${CPUS} CPUs available`;
  await refused(hc({ NanoCpus: (CPUS + 1) * 1e9 }), range);
  await refused(hc({ NanoCpus: -1 }), range);
  await refused(hc({ NanoCpus: 5e8, CpuPeriod: 100000 }), 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  await refused(hc({ NanoCpus: 5e8, CpuQuota: 50000 }), 'Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  await refused(hc({ CpuPeriod: 999 }), 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  await refused(hc({ CpuPeriod: 1000001 }), 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  await refused(hc({ CpuQuota: 999 }), 'CPU cfs quota can not be less than 1ms (i.e. 1000)');
  await refused(hc({ CpusetCpus: '0-x' }), 'Invalid value 0-x for cpuset cpus: invalid format: 0-x');
  await refused(hc({ CpusetCpus: '1-0' }), 'Invalid value 1-0 for cpuset cpus: invalid format: 1-0');
  await refused(hc({ CpusetCpus: '0-9223372036854775807' }), /^Invalid value 0-9223372036854775807 for cpuset cpus: value of out range, maximum is \d+$/);
  await refused(hc({ CpusetCpus: '4000' }), /^Requested CPUs are not available - requested 4000, available: [0-9,-]+$/);
  await refused(hc({ CpusetMems: '1000' }), /^Requested memory nodes are not available - requested 1000, available: [0-9,-]+$/);
  await refused(hc({ BlkioWeight: 5 }), 'Range of blkio weight is from 10 to 1000');
  await refused(hc({ BlkioWeight: 1001 }), 'Range of blkio weight is from 10 to 1000');
  await refused(hc({ IOMaximumIOps: 10 }), 'Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps');
  await accepted(hc({ NanoCpus: CPUS * 1e9, CpusetCpus: '0', CpusetMems: '0' }));
  await accepted(hc({ CpuPeriod: 1000, CpuQuota: 1000 }));
});

test('create: memory minimum 6 MiB, swap not below memory, reservation, swappiness', async () => {
  const mib = 1024 * 1024;
  await refused(hc({ Memory: 6 * mib - 1 }), 'Minimum memory limit allowed is 6MB');
  await refused(hc({ Memory: -5 }), 'Minimum memory limit allowed is 6MB');
  await refused(hc({ Memory: 64 * mib, MemorySwap: 32 * mib }), 'Minimum memoryswap limit should be larger than memory limit, see usage');
  await refused(hc({ MemorySwap: 32 * mib }), 'You should always set the Memory limit when using Memoryswap limit, see usage');
  await refused(hc({ MemoryReservation: mib }), 'Minimum memory reservation allowed is 6MB');
  await refused(hc({ Memory: 16 * mib, MemoryReservation: 32 * mib }), 'Minimum memory limit can not be less than memory reservation limit, see usage');
  await refused(hc({ MemorySwappiness: 101 }), 'Invalid value: 101, valid memory swappiness range is 0-100');
  await accepted(hc({ Memory: 6 * mib, MemorySwap: -1, MemoryReservation: 6 * mib, MemorySwappiness: -1 }));
});

test('create: restart policy names, retry count only with on-failure, AutoRemove', async () => {
  await refused(hc({ RestartPolicy: { Name: 'sometimes' } }), 'invalid restart policy: unknown policy \'sometimes\'; use one of \'no\', \'always\', \'on-failure\', or \'unless-stopped\'');
  await refused(hc({ RestartPolicy: { Name: 'always', MaximumRetryCount: 3 } }), 'invalid restart policy: maximum retry count can only be used with \'on-failure\'');
  await refused(hc({ RestartPolicy: { Name: 'no', MaximumRetryCount: -1 } }), 'invalid restart policy: maximum retry count can only be used with \'on-failure\' and cannot be negative');
  await refused(hc({ RestartPolicy: { Name: 'on-failure', MaximumRetryCount: -2 } }), 'invalid restart policy: maximum retry count cannot be negative');
  await refused(hc({ AutoRemove: true, RestartPolicy: { Name: 'always' } }), 'can\'t create \'AutoRemove\' container with restart policy');
  await accepted(hc({ RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } }));
});

test('create: OomScoreAdj range, ShmSize, working dir, isolation, annotations', async () => {
  await refused(hc({ OomScoreAdj: 1001 }), 'Invalid value 1001, range for oom score adj is [-1000, 1000]');
  await refused(hc({ OomScoreAdj: -1001 }), 'Invalid value -1001, range for oom score adj is [-1000, 1000]');
  await refused(hc({ ShmSize: -1 }), 'SHM size can not be less than 0');
  await refused({ WorkingDir: 'relative/dir' }, 'the working directory \'relative/dir\' is invalid, it needs to be an absolute path');
  await refused(hc({ Isolation: 'hyperv' }), 'invalid isolation \'hyperv\' on linux');
  await refused(hc({ Annotations: { '': 'x' } }), 'invalid Annotations: the empty string is not permitted as an annotation key');
  await accepted(hc({ OomScoreAdj: 1000, ShmSize: 0, Isolation: 'default' }));
});

test('create: mount types and their fields', async () => {
  await refused(hc({ Mounts: [{ Type: 'nfs', Target: '/x' }] }), /^invalid mount config for type "nfs": mount type unknown$/);
  await refused(hc({ Mounts: [{ Type: 'bind', Target: '/x' }] }), /^invalid mount config for type "bind": field Source must not be empty$/);
  await refused(hc({ Mounts: [{ Type: 'bind', Source: '/nonexistent-berth-src', Target: '/x' }] }), /bind source path does not exist: \/nonexistent-berth-src/);
  await refused(hc({ Mounts: [{ Type: 'volume', Source: 'v-val', Target: 'relative' }] }), /mount path must be absolute/);
  await refused(hc({ Mounts: [{ Type: 'tmpfs', Source: '/tmp', Target: '/x' }] }), /^invalid mount config for type "tmpfs": field Source must not be specified$/);
  await refused(hc({ Mounts: [{ Type: 'volume', Source: 'v-val', Target: '/x', BindOptions: {} }] }), /^invalid mount config for type "volume": .*BindOptions/);
  await refused(hc({ Mounts: [{ Type: 'volume', Target: '/' }] }), /destination can't be '\/'/);
});

test('create: a body of the wrong shape is a 400 and makes nothing', async () => {
  await refused(hc({ Memory: 'lots' }), 'invalid JSON: json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Resources.Memory of type int64');
  await refused(hc({ CapAdd: 'NET_ADMIN' }), 'invalid JSON: json: cannot unmarshal string into Go struct field HostConfig.HostConfig.CapAdd of type []string');
  await refused(hc({ PortBindings: { '80/tcp': 'x' } }), 'invalid JSON: json: cannot unmarshal string into Go struct field HostConfig.HostConfig.PortBindings of type []nat.PortBinding');
});

test('update: the same rules, Docker\'s 409 for conflicts with what the container has, and nothing changes', async () => {
  const id = await ok('run', '-d', '--name', 'v-up', '--cpus', '0.5', '-m', '64m', '--memory-swap', '128m', 'busybox', 'sleep', '1000');
  const c2 = (await ok('create', '--name', 'v-up2', '--cpu-quota', '50000', '--rm', 'busybox', 'true')).trim();
  const state = async (ref: string) => (await api(b, 'GET', `/containers/${ref}/json`)).json().HostConfig;
  const up = async (ref: string, body: object, status: number, message: string | RegExp) => {
    const before = await state(ref);
    const r = await api(b, 'POST', `/containers/${ref}/update`, { body });
    expectError(r, status, message);
    assert.deepEqual(await state(ref), before, `${JSON.stringify(body)} changed nothing`);
  };
  await up('v-up', { Memory: 1024 }, 400, 'Minimum memory limit allowed is 6MB');
  await up('v-up', { NanoCpus: (CPUS + 1) * 1e9 }, 400, `range of CPUs is from 0.01 to ${CPUS}.00, as there are only ${CPUS} CPUs available`);
  await up('v-up', { NanoCpus: 1e9, CpuPeriod: 100000 }, 400, 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  await up('v-up', { CpuPeriod: 500 }, 400, 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  await up('v-up', { CpuQuota: 500 }, 400, 'CPU cfs quota can not be less than 1ms (i.e. 1000)');
  await up('v-up', { CpusetCpus: '4000' }, 400, /^Requested CPUs are not available - requested 4000/);
  await up('v-up', { BlkioWeight: 1 }, 400, 'Range of blkio weight is from 10 to 1000');
  await up('v-up', { MemoryReservation: 1024 }, 400, 'Minimum memory reservation allowed is 6MB');
  await up('v-up', { MemorySwap: 32 * 1024 * 1024 }, 400, 'Minimum memoryswap limit should be larger than memory limit, see usage');
  await up('v-up', { RestartPolicy: { Name: 'sometimes' } }, 400, /^invalid restart policy: unknown policy 'sometimes'/);
  await up('v-up', { RestartPolicy: { Name: 'always', MaximumRetryCount: 2 } }, 400, 'invalid restart policy: maximum retry count can only be used with \'on-failure\'');
  await up('v-up', { CpuQuota: 20000 }, 409, `Cannot update container ${id.trim()}: Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set`);
  await up('v-up', { CpuPeriod: 20000 }, 409, `Cannot update container ${id.trim()}: Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set`);
  await up('v-up', { Memory: 256 * 1024 * 1024 }, 409, `Cannot update container ${id.trim()}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time`);
  await up('v-up2', { NanoCpus: 1e9 }, 409, `Cannot update container ${c2}: Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set`);
  await up('v-up2', { RestartPolicy: { Name: 'always' } }, 409, `Cannot update container ${c2}: Restart policy cannot be updated because AutoRemove is enabled for the container`);
  // The CLI's own path still works.
  await ok('update', '--cpus', '1', '-m', '96m', '--memory-swap', '192m', 'v-up');
  await ok('rm', '-f', 'v-up', 'v-up2');
});

test('HEAD answers 404 on routes Docker has no HEAD for; /_ping and the archive keep theirs', async () => {
  await ok('create', '--name', 'v-head', 'busybox', 'true');
  for (const p of ['/containers/json', '/v1.47/containers/json', '/images/json', '/info', '/version', '/networks', '/volumes',
    '/containers/v-head/json', '/containers/v-head/logs?stdout=1', '/images/busybox/json', '/events?until=1', '/system/df']) {
    const r = await api(b, 'HEAD', p);
    assert.equal(r.status, 404, `HEAD ${p}`);
  }
  assert.equal((await api(b, 'HEAD', '/_ping')).status, 200);
  assert.equal((await api(b, 'HEAD', '/v1.47/_ping')).status, 200);
  assert.equal((await api(b, 'HEAD', '/containers/v-head/archive?path=/etc')).status, 200);
  assert.equal((await api(b, 'HEAD', '/containers/v-head/archive?path=/nonexistent')).status, 404);
  await ok('rm', 'v-head');
});

// ---- load and import of broken or hostile archives --------------------------------------------------

const sha = (buf: Buffer | string) => createHash('sha256').update(buf).digest('hex');

/** A docker-save archive of one or more images, each a config and its layer tars, with the manifest
 *  entries given (or derived). `tamper` changes the entries before they are packed. */
async function saveArchive(images: Array<{ tag: string; layers: Buffer[]; diffIds?: string[] }>, tamper?: (entries: TarEntry[], manifest: any[]) => void): Promise<Buffer> {
  const entries: TarEntry[] = [];
  const manifest: any[] = [];
  for (const img of images) {
    const layerNames = img.layers.map((l) => `${sha(l)}/layer.tar`);
    img.layers.forEach((l, i) => entries.push({ name: `${sha(l)}/`, type: 'directory' }, { name: layerNames[i], content: l }));
    const config = JSON.stringify({
      architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: img.diffIds ?? img.layers.map((l) => `sha256:${sha(l)}`) },
      history: img.layers.map(() => ({ created_by: img.tag })),
    });
    entries.push({ name: `${sha(config)}.json`, content: config });
    manifest.push({ Config: `${sha(config)}.json`, RepoTags: [img.tag], Layers: layerNames });
  }
  tamper?.(entries, manifest);
  entries.push({ name: 'manifest.json', content: JSON.stringify(manifest) });
  return packTar(entries);
}

const layer = (tag: string, extra: TarEntry[] = []) => packTar([{ name: 'etc/', type: 'directory' }, { name: `etc/${tag}`, content: `${tag}\n` }, ...extra]);
/** A layer big enough to be unpacked while the archive streams in (the spool keeps small ones whole). */
const bigLayer = (tag: string, extra: TarEntry[] = []) => layer(tag, [{ name: 'big', content: Buffer.alloc(200 * 1024, 7) }, ...extra]);

/** A refused archive: as Docker answers it, a 200 stream that ends with the error's errorDetail. */
function expectLoadError(r: HttpResult, message: string | RegExp): void {
  assert.equal(r.status, 200, r.body);
  const lines = r.body.trim().split(/\r?\n/).map((l) => JSON.parse(l));
  const m = lines[lines.length - 1].errorDetail?.message;
  assert.equal(typeof m, 'string', r.body);
  if (typeof message === 'string') assert.equal(m, message);
  else assert.match(m, message);
}

async function loadRefused(body: Buffer, message: string | RegExp): Promise<void> {
  const before = await snapshot();
  const r = await api(b, 'POST', '/images/load?quiet=1', { body, headers: { 'Content-Type': 'application/x-tar' } });
  expectLoadError(r, message);
  assert.deepEqual(await snapshot(), before, 'a refused load leaves nothing');
}

test('docker load: a body that is not a tar, and archives with escaping or missing members, end in errorDetail and load nothing', async () => {
  await loadRefused(Buffer.from('this is not a tar archive at all\n'), /archive|tar/);
  await loadRefused(gzipSync(Buffer.from('gzip, but of no tar'.repeat(50))), /archive|tar/);
  await loadRefused(Buffer.alloc(1024), /neither manifest\.json nor index\.json/);
  // The manifest names a config and layers outside the archive (the spool is rooted: they are simply not there).
  await loadRefused(await saveArchive([{ tag: 'v-esc:1', layers: [await layer('a')] }], (_e, m) => { m[0].Config = '../../../../etc/passwd'; }), /^the archive has no "(\.\.\/)*etc\/passwd"$/);
  await loadRefused(await saveArchive([{ tag: 'v-esc:2', layers: [await layer('b')] }], (_e, m) => { m[0].Layers = ['/etc/shadow']; }), /^the archive has no "\/etc\/shadow"$/);
  // A member that is a hard link out of the archive.
  await loadRefused(await saveArchive([{ tag: 'v-esc:3', layers: [await layer('c')] }], (e, m) => {
    e.push({ name: 'evil/layer.tar', type: 'link', linkname: '../../../../etc/passwd' });
    m[0].Layers = ['evil/layer.tar'];
  }), /the archive has no "evil\/layer\.tar"|the archive has no "etc\/passwd"/);
  // A layer missing from the archive.
  await loadRefused(await saveArchive([{ tag: 'v-miss:1', layers: [await layer('d'), await layer('e')] }], (e, m) => {
    const gone = m[0].Layers[1];
    e.splice(e.findIndex((x) => x.name === gone), 1);
  }), /the archive has no/);
  // diff ids that do not match the layers (a small layer, and one unpacked as it streamed in).
  await loadRefused(await saveArchive([{ tag: 'v-diff:1', layers: [await layer('f')], diffIds: [`sha256:${'0'.repeat(64)}`] }]), /^invalid diffID for layer/);
  await loadRefused(await saveArchive([{ tag: 'v-diff:2', layers: [await bigLayer('g')], diffIds: [`sha256:${'1'.repeat(64)}`] }]), /^invalid diffID for layer/);
  // Layers with a hard link escaping the layer, small and streamed.
  for (const mk of [layer, bigLayer]) {
    await loadRefused(await saveArchive([{ tag: 'v-hl:1', layers: [await mk('i', [{ name: 'etc/pw', type: 'link', linkname: '../../../etc/passwd' }])] }]), /hardlink target of "..\/..\/..\/etc\/passwd" points outside the layer/);
    await loadRefused(await saveArchive([{ tag: 'v-hl:2', layers: [await mk('j', [{ name: 'etc/pw', type: 'link', linkname: '/etc/passwd' }])] }]), /has an absolute path/);
    await loadRefused(await saveArchive([{ tag: 'v-hl:3', layers: [await mk('k', [{ name: 'x/../../y', content: 'y' }])] }]), /points outside the layer/);
    await loadRefused(await saveArchive([{ tag: 'v-hl:4', layers: [await mk('l', [{ name: 'etc', type: 'link', linkname: 'etc/l' }])] }]), /which is inside the directory it replaces/);
  }
});

test('docker load: a failure after the stream began ends it with errorDetail; the CLI exits non-zero; the broken image leaves nothing', async () => {
  const good = await layer('first');
  const archive = await saveArchive([{ tag: 'v-two:good', layers: [good] }, { tag: 'v-two:bad', layers: [await layer('second')], diffIds: [`sha256:${'2'.repeat(64)}`] }]);
  const before = await snapshot();
  const r = await api(b, 'POST', '/images/load', { body: archive, headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(r.status, 200, r.body);
  const lines = r.body.trim().split(/\r?\n/).map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.stream === 'Loaded image: v-two:good\n'), r.body);
  assert.match(lines[lines.length - 1].errorDetail?.message ?? '', /^invalid diffID for layer/);
  const after = await snapshot() as any;
  assert.equal(after.imgs.filter((i: string) => i.includes('v-two:bad')).length, 0);
  assert.equal(after.imgs.length, (before as any).imgs.length + 1, 'only the good image was added');
  assert.deepEqual(after.tmp, []);
  assert.equal(after.layerDirs.length, (before as any).layerDirs.length + 1, 'one layer: the good image\'s');
  await ok('rmi', 'v-two:good');
  assert.deepEqual(await snapshot(), before);

  // The CLI: a status a script sees in both cases.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-val-'));
  try {
    writeFileSync(path.join(dir, 'notar.tar'), 'not a tar\n');
    // As with Docker, a load's failure comes in the stream: the CLI prints it as it is and exits 1.
    await fails(/archive|tar/, 'load', '-i', path.join(dir, 'notar.tar'));
    writeFileSync(path.join(dir, 'two.tar'), archive);
    await fails(/invalid diffID for layer/, 'load', '-i', path.join(dir, 'two.tar'));
    await ok('rmi', 'v-two:good');
    writeFileSync(path.join(dir, 'hl.tar'), await packTar([{ name: 'a', content: 'a' }, { name: 'b', type: 'link', linkname: '../../../../etc/passwd' }]));
    await fails(/Error response from daemon: hardlink target of "..\/..\/..\/..\/etc\/passwd" points outside the layer/, 'import', path.join(dir, 'hl.tar'), 'v-imp:hl');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(await snapshot(), before);
});

test('docker load of an OCI layout whose blobs do not match their digests ends in errorDetail', async () => {
  const l = await layer('oci');
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${sha(l)}`] } });
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha(l)}`, size: l.length }] });
  const index = (d: string) => JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${d}`, size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/v-oci:1' } }] });
  const blobs = (cfg: string, lay: Buffer): TarEntry[] => [
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    { name: `blobs/sha256/${sha(config)}`, content: cfg },
    { name: `blobs/sha256/${sha(l)}`, content: lay },
    { name: `blobs/sha256/${sha(manifest)}`, content: manifest },
  ];
  await loadRefused(await packTar([...blobs(config.replace('amd64', 'arm64'), l), { name: 'index.json', content: index(sha(manifest)) }]), /does not match its digest/);
  await loadRefused(await packTar([...blobs(config, Buffer.concat([l.subarray(0, 512), Buffer.alloc(l.length - 512)])), { name: 'index.json', content: index(sha(manifest)) }]), /does not match its digest|invalid diffID/);
  await loadRefused(await packTar([...blobs(config, l), { name: 'index.json', content: index('3'.repeat(64)) }]), /the archive has no|does not match/);
});

test('docker import: not a tar, escaping hard links and names are 400 and leave no layer or temp file', async () => {
  const imp = async (body: Buffer, message: string | RegExp) => {
    const before = await snapshot();
    const r = await api(b, 'POST', '/images/create?fromSrc=-&repo=v-imp&tag=1', { body, headers: { 'Content-Type': 'application/x-tar' } });
    expectError(r, 400, message);
    assert.deepEqual(await snapshot(), before, 'a refused import leaves nothing');
  };
  await imp(Buffer.from('plain text, no tar'), /archive|tar/);
  await imp(Buffer.alloc(0), /empty/);
  await imp(await packTar([{ name: 'a', content: 'a' }, { name: 'b', type: 'link', linkname: '../../../etc/passwd' }]), /hardlink target of "..\/..\/..\/etc\/passwd" points outside the layer/);
  await imp(await packTar([{ name: 'a', content: 'a' }, { name: 'b', type: 'link', linkname: '/etc/passwd' }]), /has an absolute path/);
  await imp(await packTar([{ name: 'a', content: 'a' }, { name: 'b', type: 'link', linkname: 'etc/shadow' }]), /is a hardlink to "etc\/shadow", which is not in the layer/);
  await imp(await packTar([{ name: 'd', type: 'symlink', linkname: '/etc' }, { name: 'b', type: 'link', linkname: 'd/passwd' }]), /goes through the symlink "d"/);
  await imp(await packTar([{ name: '../escape', content: 'x' }]), /points outside the layer/);
  await imp(await packTar([{ name: 'big', content: Buffer.alloc(300 * 1024) }, { name: 'z', type: 'link', linkname: '../../z' }]), /points outside the layer/);
  // A link replacing the directory its target is in (was a 500 ENOENT with the data root's path in it).
  await imp(await packTar([{ name: 'd/', type: 'directory' }, { name: 'd/f', content: 'f' }, { name: 'd', type: 'link', linkname: 'd/f' }]),
    'archive entry "d" is a hardlink to "d/f", which is inside the directory it replaces');
  // A name the file system cannot hold.
  await imp(await packTar([{ name: `${'n'.repeat(300)}`, content: 'x' }]), `archive entry "${'n'.repeat(300)}" cannot be unpacked (ENAMETOOLONG)`);
  // The same archive with the body called JSON is still read as the archive (it was parsed as JSON and hung).
  const before = await snapshot();
  const r = await api(b, 'POST', '/images/create?fromSrc=-&repo=v-imp&tag=json', { body: await packTar([{ name: 'a', content: 'a' }]), headers: { 'Content-Type': 'application/json' }, timeoutMs: 10000 });
  assert.equal(r.status, 200, r.body);
  const load = await api(b, 'POST', '/images/load', { body: Buffer.from('{"not":"a tar"}'), headers: { 'Content-Type': 'application/json' }, timeoutMs: 10000 });
  expectLoadError(load, /archive|tar/);
  await ok('rmi', 'v-imp:json');
  assert.deepEqual(await snapshot(), before);
});
