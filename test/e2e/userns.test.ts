// --userns-remap against a real berthd (daemon.json "userns-remap": "default"): the dockremap user and its
// ranges are made (in a private /etc: BERTH_USERNS_ROOT, so the machine's users are left alone), container
// root is the range's first uid on the host, the image's layers are shown through idmapped mounts (owned
// by 0 inside, the same inodes as the layer files on the host: nothing copied), volumes belong to the
// remapped root, `--userns host` opts out, and Docker's refusals of host namespaces hold. A container that
// shares another's PID, IPC or network namespace joins that one's user namespace, as Docker does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, mkdtempSync, mkdirSync, copyFileSync, writeFileSync, readFileSync, readlinkSync, rmSync, statSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { startBerthd, DOCKER, FIXTURES } from '../helpers/berthd';
import { execFileSync } from 'node:child_process';
import { api, dockerCli } from '../helpers/clients';

let etcRoot: string;
function makeEtc(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-userns-etc-'));
  mkdirSync(path.join(root, 'etc'));
  for (const f of ['passwd', 'group']) copyFileSync(`/etc/${f}`, path.join(root, 'etc', f));
  for (const f of ['shadow', 'gshadow']) writeFileSync(path.join(root, 'etc', f), '', { mode: 0o600 });
  // A range someone else has already: dockremap's must come after it.
  writeFileSync(path.join(root, 'etc', 'subuid'), 'someone:100000:65536\n');
  writeFileSync(path.join(root, 'etc', 'subgid'), 'someone:100000:65536\n');
  return root;
}

const BASE = 165536;

const b = berthdForFile({
  fixtures: ['busybox'],
  start: () => {
    etcRoot = makeEtc();
    return { daemonJson: { 'userns-remap': 'default' }, env: { BERTH_USERNS_ROOT: etcRoot } };
  },
  teardown: () => { if (etcRoot) rmSync(etcRoot, { recursive: true, force: true }); },
});
const { ok, fails } = dockerCli(() => b);

function hostIds(pid: number): { uid: number; gid: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(st)![1]), gid: Number(/^Gid:\s+(\d+)/m.exec(st)![1]) };
}

async function pidOf(name: string): Promise<number> {
  return Number((await ok('inspect', '-f', '{{.State.Pid}}', name)).trim());
}

test('default makes dockremap with a free range; docker info shows name=userns', async () => {
  const passwd = readFileSync(path.join(etcRoot, 'etc', 'passwd'), 'utf8');
  assert.match(passwd, /^dockremap:x:\d+:\d+:/m);
  assert.match(readFileSync(path.join(etcRoot, 'etc', 'subuid'), 'utf8'), new RegExp(`^dockremap:${BASE}:65536$`, 'm'));
  assert.match(readFileSync(path.join(etcRoot, 'etc', 'subgid'), 'utf8'), new RegExp(`^dockremap:${BASE}:65536$`, 'm'));
  const info = JSON.parse(await ok('info', '--format', '{{json .SecurityOptions}}'));
  assert.ok(info.includes('name=userns'), JSON.stringify(info));
  // No AppArmor on this kernel: not listed (Docker lists name=apparmor first where it applies it).
  if (!existsSync('/sys/module/apparmor')) assert.ok(!info.includes('name=apparmor'));
});

test('container root is the range base on the host; id says 0; exec too', async () => {
  await ok('run', '-d', '--name', 'u1', 'busybox', 'sleep', '1000');
  const pid = await pidOf('u1');
  assert.deepEqual(hostIds(pid), { uid: BASE, gid: BASE });
  assert.equal(readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).join(' '), `0 ${BASE} 65536`);
  assert.match(await ok('exec', 'u1', 'id'), /^uid=0\(root\) gid=0\(root\)/);
  assert.equal((await ok('exec', 'u1', 'cat', '/proc/self/uid_map')).trim().split(/\s+/).join(' '), `0 ${BASE} 65536`);
  // The container's root may write its own /etc files and its root directory.
  await ok('exec', 'u1', 'sh', '-c', 'echo 10.9.9.9 extra >> /etc/hosts && touch /made-by-root && mkdir /tmp/d');
  assert.match(await ok('exec', 'u1', 'ls', '-ln', '/made-by-root'), / 0 +0 /);
  const upper = (await ok('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', 'u1')).trim();
  assert.equal(statSync(path.join(upper, 'made-by-root')).uid, BASE, 'a file the container made is the remapped root\'s on the host');
  assert.equal(statSync(path.join(upper, 'tmp', 'd')).uid, BASE);
  await ok('rm', '-f', 'u1');
});

test('image files read as owned by 0 inside, and are the layer files themselves (no copy)', async () => {
  await ok('run', '-d', '--name', 's1', 'busybox', 'sleep', '1000');
  await ok('run', '-d', '--name', 's2', 'busybox', 'sleep', '1000');
  const st1 = (await ok('exec', 's1', 'stat', '-c', '%u:%g %i', '/bin/busybox')).trim();
  const st2 = (await ok('exec', 's2', 'stat', '-c', '%u:%g %i', '/bin/busybox')).trim();
  assert.match(st1, /^0:0 \d+$/);
  assert.equal(st1, st2, 'both containers see one and the same file');
  assert.equal((await ok('exec', 's1', 'stat', '-c', '%u:%g', '/', '/etc/passwd')).trim(), '0:0\n0:0');
  assert.match(await ok('exec', 's1', 'cat', '/etc/passwd'), /^root:/);
  // The inode is the image layer's file on the host, owned by root there (not a chowned copy).
  const lower = (await ok('inspect', '-f', '{{.GraphDriver.Data.LowerDir}}', 's1')).trim().split(':');
  const ino = Number(st1.split(' ')[1]);
  const found = lower.map((d) => { try { return statSync(path.join(d, 'bin', 'busybox')); } catch { return undefined; } }).find(Boolean);
  assert.ok(found, `busybox in one of ${lower.join(', ')}`);
  assert.equal(found!.ino, ino);
  assert.equal(found!.uid, 0);
  await ok('rm', '-f', 's1', 's2');
});

test('a volume belongs to the remapped root; a file made in it is the remapped uid on the host', async () => {
  await ok('run', '--rm', '-v', 'uvol:/data', 'busybox', 'sh', '-c', 'echo hi > /data/f && stat -c %u /data/f /data');
  const data = (await ok('volume', 'inspect', '-f', '{{.Mountpoint}}', 'uvol')).trim();
  assert.equal(statSync(data).uid, BASE);
  assert.equal(statSync(path.join(data, 'f')).uid, BASE);
  assert.equal(statSync(path.join(data, 'f')).gid, BASE);
  // A bind of a host directory owned by root shows it as unmapped (nobody), as with Docker.
  const hostDir = mkdtempSync(path.join(os.tmpdir(), 'berth-userns-bind-'));
  try {
    assert.equal((await ok('run', '--rm', '-v', `${hostDir}:/h`, 'busybox', 'stat', '-c', '%u', '/h')).trim(), '65534');
  } finally {
    rmSync(hostDir, { recursive: true, force: true });
  }
});

test('docker cp speaks the container\'s ids both ways', async () => {
  await ok('run', '-d', '--name', 'c1', 'busybox', 'sleep', '1000');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-userns-cp-'));
  try {
    writeFileSync(path.join(dir, 'in.txt'), 'in\n');
    await ok('cp', path.join(dir, 'in.txt'), 'c1:/tmp/');
    assert.match(await ok('exec', 'c1', 'ls', '-ln', '/tmp/in.txt'), / 0 +0 /);
    const upper = (await ok('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', 'c1')).trim();
    assert.equal(statSync(path.join(upper, 'tmp', 'in.txt')).uid, BASE);
    // Out: the image's files and the container's own are root's in the archive, as the container sees them.
    const list = execFileSync('sh', ['-c', `${DOCKER} cp c1:/etc/passwd - | tar -tvf - --numeric-owner`],
      { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: b.host } });
    assert.match(list, / 0\/0 /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await ok('rm', '-f', 'c1');
  }
});

test('commit, export and build give the container\'s own ids, not the range\'s', async () => {
  await ok('run', '--name', 'k1', 'busybox', 'sh', '-c', 'mkdir /made && echo x > /made/f && chown 7:8 /made/f');
  await ok('commit', 'k1', 'userns-committed');
  assert.equal((await ok('run', '--rm', '--userns', 'host', 'userns-committed', 'stat', '-c', '%u:%g', '/made', '/made/f')).trim(), '0:0\n7:8');
  assert.equal((await ok('run', '--rm', 'userns-committed', 'stat', '-c', '%u:%g', '/made/f')).trim(), '7:8');
  const list = execFileSync('sh', ['-c', `${DOCKER} export k1 | tar -tvf - --numeric-owner made etc/passwd`],
    { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: b.host } });
  assert.match(list, /^drwx\S+ 0\/0 .* made\/$/m);
  assert.match(list, /^-\S+ 7\/8 .* made\/f$/m);
  assert.match(list, /^-\S+ 0\/0 .* etc\/passwd$/m);
  await ok('rm', 'k1');
  const ctx = mkdtempSync(path.join(os.tmpdir(), 'berth-userns-build-'));
  try {
    writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN mkdir /built && touch /built/f\n');
    await ok('build', '-q', '-t', 'userns-built', ctx);
    assert.equal((await ok('run', '--rm', '--userns', 'host', 'userns-built', 'stat', '-c', '%u:%g', '/built/f')).trim(), '0:0');
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
});

test('an image mount (--mount type=image) shows the image\'s files as root\'s, as the root does, subpath too', async () => {
  assert.equal((await ok('run', '--rm', '--mount', 'type=image,source=busybox,target=/img', 'busybox', 'stat', '-c', '%u:%g', '/img/bin/busybox', '/img/etc')).trim(), '0:0\n0:0');
  assert.equal((await ok('run', '--rm', '--mount', 'type=image,source=busybox,target=/img,image-subpath=etc', 'busybox', 'stat', '-c', '%u:%g', '/img/passwd')).trim(), '0:0');
  // The layers on disk are untouched: root's on the host.
  const lower = (await ok('image', 'inspect', '-f', '{{.GraphDriver.Data.UpperDir}}:{{.GraphDriver.Data.LowerDir}}', 'busybox')).trim().split(':').filter((d) => d && d !== '<no value>');
  const withBusybox = lower.map((d) => path.join(d, 'bin', 'busybox')).filter((f) => existsSync(f));
  assert.ok(withBusybox.length > 0);
  assert.equal(statSync(withBusybox[0]).uid, 0);
});

test('--userns host opts out', async () => {
  assert.equal((await ok('run', '--rm', '--userns', 'host', 'busybox', 'cat', '/proc/self/uid_map')).trim().split(/\s+/).join(' '), '0 0 4294967295');
  await ok('run', '--rm', '--userns', 'host', '-v', 'hvol:/data', 'busybox', 'touch', '/data/g');
  const data = (await ok('volume', 'inspect', '-f', '{{.Mountpoint}}', 'hvol')).trim();
  assert.equal(statSync(path.join(data, 'g')).uid, 0);
  // privileged, host network and host pid are allowed once the container opts out
  assert.equal((await ok('run', '--rm', '--userns', 'host', '--privileged', '--pid', 'host', 'busybox', 'id', '-u')).trim(), '0');
});

test('Docker refuses host namespaces and --privileged under the remap, with 400', async () => {
  const cases: Array<[object, RegExp]> = [
    [{ Privileged: true }, /^privileged mode is incompatible with user namespaces\.  You must run the container in the host namespace when running privileged mode$/],
    [{ NetworkMode: 'host' }, /^cannot share the host's network namespace when user namespaces are enabled$/],
    [{ PidMode: 'host' }, /^cannot share the host PID namespace when user namespaces are enabled$/],
    [{ UsernsMode: 'bogus' }, /invalid USER mode/],
  ];
  for (const [hc, re] of cases) {
    const r = await api(b, 'POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['true'], HostConfig: hc } });
    assert.equal(r.status, 400, JSON.stringify(hc));
    assert.match(r.json<{ message: string }>().message, re);
  }
  const list = await api(b, 'GET', '/containers/json?all=1');
  assert.equal(list.json<unknown[]>().length, 0, 'nothing was created');
  await fails(/privileged mode is incompatible/, 'run', '--rm', '--privileged', 'busybox', 'true');
});

test('--ipc host is allowed as Docker allows it: the host\'s IPC namespace and /dev/shm, no mqueue mount of its own', async () => {
  const marker = `/dev/shm/berth-userns-${process.pid}`;
  writeFileSync(marker, 'x');
  try {
    const out = (await ok('run', '--rm', '--ipc', 'host', 'busybox', 'sh', '-c',
      `readlink /proc/self/ns/ipc; ls ${marker}; grep -c ' /dev/mqueue ' /proc/self/mountinfo; id -u`)).trim().split('\n');
    assert.equal(out[0], readlinkSync('/proc/self/ns/ipc'));
    assert.equal(out[1], marker);
    // The host's queues where it has them mounted, none otherwise (never a mount of the host's namespace).
    assert.equal(out[2], existsSync('/dev/mqueue') ? '1' : '0');
    assert.equal(out[3], '0');
  } finally {
    rmSync(marker, { force: true });
  }
  // IPC sysctls stay refused in the host's namespace.
  const r = await api(b, 'POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['true'], HostConfig: { IpcMode: 'host', Sysctls: { 'kernel.shmmni': '100' } } } });
  assert.equal(r.status, 400);
  assert.match(r.json<{ message: string }>().message, /not allowed in the hosts ipc namespace/);
});

/** A static probe for SysV shared memory (busybox has no ipcmk): `shm make KEY TEXT` makes a segment
 *  and writes TEXT in it, `shm read KEY` prints what the segment holds. */
function shmProbe(dir: string): void {
  const src = path.join(dir, 'shm.c');
  writeFileSync(src, `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int make = strcmp(argv[1], "make") == 0;
  int id = shmget((key_t)atoi(argv[2]), 4096, make ? IPC_CREAT | IPC_EXCL | 0600 : 0);
  if (id < 0) { perror("shmget"); return 1; }
  char *p = shmat(id, NULL, 0);
  if (p == (void *)-1) { perror("shmat"); return 1; }
  if (make && argc > 3) strncpy(p, argv[3], 4095);
  else printf("%s\\n", p);
  return 0;
}
`);
  execFileSync('gcc', ['-static', '-O2', '-o', path.join(dir, 'shm'), src]);
}

test('--pid container:X joins X\'s user namespace: X\'s processes are seen, ids map to the range, exec works', async () => {
  await ok('run', '-d', '--name', 'pdonor', 'busybox', 'sleep', '4242');
  try {
    const donorPid = await pidOf('pdonor');
    const out = (await ok('run', '--rm', '--pid', 'container:pdonor', 'busybox', 'sh', '-c',
      'ps -o pid,user,args; readlink /proc/self/ns/user; readlink /proc/self/ns/pid; cat /proc/self/uid_map; id -u')).trim();
    assert.match(out, /^\s*1 root\s+sleep 4242$/m, out);
    const lines = out.split('\n');
    assert.equal(lines.pop(), '0');
    assert.equal(lines.pop()!.trim().split(/\s+/).join(' '), `0 ${BASE} 65536`);
    assert.equal(lines.pop(), readlinkSync(`/proc/${donorPid}/ns/pid`));
    assert.equal(lines.pop(), readlinkSync(`/proc/${donorPid}/ns/user`));

    // A joined container that keeps running: its process is the remapped root on the host, what it makes
    // is the range's, exec enters it, and it is a separate container in every other way.
    await ok('run', '-d', '--name', 'pjoin', '--pid', 'container:pdonor', 'busybox', 'sh', '-c', 'touch /made-joined; mkdir /tmp/jd; chown 1000:1000 /tmp/jd; exec sleep 4343');
    const pid = await pidOf('pjoin');
    assert.deepEqual(hostIds(pid), { uid: BASE, gid: BASE });
    assert.equal(readlinkSync(`/proc/${pid}/ns/user`), readlinkSync(`/proc/${donorPid}/ns/user`));
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/mnt`), readlinkSync(`/proc/${donorPid}/ns/mnt`));
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/uts`), readlinkSync(`/proc/${donorPid}/ns/uts`));
    const upper = (await ok('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', 'pjoin')).trim();
    for (let i = 0; i < 50 && !existsSync(path.join(upper, 'tmp', 'jd')); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(statSync(path.join(upper, 'made-joined')).uid, BASE);
    assert.equal(statSync(path.join(upper, 'tmp', 'jd')).uid, BASE + 1000);
    assert.match(await ok('exec', 'pjoin', 'ps', '-o', 'args'), /sleep 4242[\s\S]*sleep 4343/);
    assert.match(await ok('exec', 'pjoin', 'id'), /^uid=0\(root\) gid=0\(root\)/);
    // The donor sees the joined container's process as well (one PID namespace).
    assert.match(await ok('exec', 'pdonor', 'ps', '-o', 'args'), /sleep 4343/);
    // The init is the shim's own child, and the process that made it is gone (reaped, no zombie).
    const ppid = (p: number) => Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    const shim = ppid(pid);
    const children = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
      try { return ppid(Number(d)) === shim; } catch { return false; }
    });
    assert.deepEqual(children, [String(pid)]);
    // berthd adopts it again after a restart, as any other container.
    await b.stop();
    await b.restart();
    assert.equal(await pidOf('pjoin'), pid);
    assert.match(await ok('exec', 'pjoin', 'id', '-u'), /^0$/m);
    // A command that cannot be run is reported as for any container (the error from the init itself).
    await fails(/exec: "no-such-command": executable file not found in \$PATH/, 'run', '--rm', '--pid', 'container:pdonor', 'busybox', 'no-such-command');
    await ok('stop', '-t', '1', 'pjoin');
    assert.equal((await ok('inspect', '-f', '{{.State.Status}}', 'pdonor')).trim(), 'running');
  } finally {
    await ok('rm', '-f', 'pjoin', 'pdonor');
  }
});

test('--ipc container:X shares X\'s SysV shared memory and queues, with a PID namespace of its own', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-userns-shm-'));
  try {
    chmodSync(dir, 0o755);  // the remapped root is another user on the host
    shmProbe(dir);
    await ok('run', '-d', '--name', 'idonor', '--ipc', 'shareable', '-v', `${dir}:/probe:ro`, 'busybox', 'sleep', '1000');
    await ok('exec', 'idonor', '/probe/shm', 'make', '4711', 'hello from the donor');
    const donorPid = await pidOf('idonor');
    const out = (await ok('run', '--rm', '--ipc', 'container:idonor', '-v', `${dir}:/probe:ro`, 'busybox', 'sh', '-c',
      '/probe/shm read 4711; readlink /proc/self/ns/ipc; readlink /proc/self/ns/user; grep -c " /dev/mqueue " /proc/self/mountinfo; ps -o args | grep -c ^sleep || true')).trim().split('\n');
    assert.deepEqual(out, ['hello from the donor', readlinkSync(`/proc/${donorPid}/ns/ipc`), readlinkSync(`/proc/${donorPid}/ns/user`), '1', '0']);
    // A segment the joined container makes is the donor's to read, owned by the same (remapped) root.
    await ok('run', '--rm', '--ipc', 'container:idonor', '-v', `${dir}:/probe:ro`, 'busybox', '/probe/shm', 'make', '4712', 'back from the joined one');
    assert.equal((await ok('exec', 'idonor', '/probe/shm', 'read', '4712')).trim(), 'back from the joined one');
    const seg = (await ok('exec', 'idonor', 'cat', '/proc/sysvipc/shm')).split('\n').find((l) => l.trim().startsWith('4712 '));
    assert.ok(seg, 'the segment is listed in the donor\'s namespace');
    assert.equal(seg!.trim().split(/\s+/)[7], '0', 'its owner is the container\'s root');
  } finally {
    await ok('rm', '-f', 'idonor');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--network container:X joins X\'s user namespace too; a donor outside the remap is refused', async () => {
  await ok('run', '-d', '--name', 'donor', 'busybox', 'sleep', '1000');
  await ok('run', '-d', '--name', 'hostdonor', '--userns', 'host', 'busybox', 'sleep', '1000');
  try {
    const donorPid = await pidOf('donor');
    const addr = (await ok('exec', 'donor', 'ip', '-o', '-4', 'addr', 'show', 'eth0')).split(/\s+/)[3];
    assert.match(addr, /^\d+\.\d+\.\d+\.\d+\/\d+$/);
    const out = (await ok('run', '--rm', '--network', 'container:donor', 'busybox', 'sh', '-c',
      'ip -o -4 addr show eth0; readlink /proc/self/ns/user; ps -o args | grep -c ^sleep || true')).trim().split('\n');
    assert.equal(out[0].split(/\s+/)[3], addr);
    assert.equal(out[1], readlinkSync(`/proc/${donorPid}/ns/user`));
    assert.equal(out[2], '0', 'its own PID namespace');
    // The host's user namespace cannot be entered from a remapped container: refused at start, with 400.
    await ok('create', '--name', 'tohost', '--pid', 'container:hostdonor', 'busybox', 'true');
    const r = await api(b, 'POST', '/containers/tohost/start');
    assert.equal(r.status, 400);
    assert.match(r.json<{ message: string }>().message, /cannot share the PID namespace of container hostdonor: it runs in the host's user namespace/);
    // --userns host on both sides shares it.
    assert.match(await ok('run', '--rm', '--userns', 'host', '--pid', 'container:hostdonor', 'busybox', 'ps', '-o', 'args'), /sleep 1000/);
  } finally {
    await ok('rm', '-f', 'donor', 'hostdonor', 'tohost');
  }
});

test('net.* and IPC sysctls apply in a remapped container, its own network or a donor\'s; the host keeps its values', async () => {
  const hostPing = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').trim();
  // The network namespace is berthd's (owned by the host's user namespace): the shim writes net.* keys.
  // ping_group_range holds gids: read in the container's user namespace, as the kernel does for a write
  // from inside (so a gid the range does not map is refused, as under Docker).
  assert.equal((await ok('run', '--rm', '--sysctl', 'net.ipv4.ping_group_range=1 65535', '--sysctl', 'kernel.shmmni=1234',
    'busybox', 'sh', '-c', 'cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni')).trim().split(/\s+/).join(' '), '1 65535 1234');
  await fails(/write sysctl net.ipv4.ping_group_range.*invalid argument/, 'run', '--rm', '--sysctl', 'net.ipv4.ping_group_range=0 2147483647', 'busybox', 'true');
  // With --network none the namespace is the container's own (made in its user namespace): written inside.
  assert.equal((await ok('run', '--rm', '--network', 'none', '--sysctl', 'net.ipv4.tcp_keepalive_time=123', 'busybox',
    'cat', '/proc/sys/net/ipv4/tcp_keepalive_time')).trim(), '123');
  await ok('run', '-d', '--name', 'netdonor', 'busybox', 'sleep', '1000');
  try {
    await ok('run', '--rm', '--network', 'container:netdonor', '--sysctl', 'net.ipv4.tcp_keepalive_time=321', 'busybox', 'true');
    assert.equal((await ok('exec', 'netdonor', 'cat', '/proc/sys/net/ipv4/tcp_keepalive_time')).trim(), '321');
  } finally {
    await ok('rm', '-f', 'netdonor');
  }
  assert.equal(readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').trim(), hostPing);
  // A key outside the namespaces is still refused at create (through the API: the CLI refuses it itself).
  const r = await api(b, 'POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['true'], HostConfig: { Sysctls: { 'vm.overcommit_ratio': '51' } } } });
  assert.equal(r.status, 400);
  assert.match(r.json<{ message: string }>().message, /^sysctl "vm.overcommit_ratio" is not in a separate kernel namespace$/);
});

test('run --rm, device nodes, --user, --read-only, a tty, and the container keeps its own network', async () => {
  await ok('run', '--rm', 'busybox', 'true');
  assert.equal((await ok('ps', '-aq')).trim(), '');
  assert.match(await ok('run', '--rm', 'busybox', 'ip', '-o', 'addr', 'show', 'eth0'), /inet \d+\.\d+\.\d+\.\d+/);
  assert.match(await ok('run', '--rm', 'busybox', 'ls', '-ln', '/dev/null'), /^crw/);
  assert.equal((await ok('run', '--rm', '--user', '1000:1000', 'busybox', 'id', '-u')).trim(), '1000');
  // A read-only root with a tmpfs, and a terminal from the container's own devpts.
  assert.equal((await ok('run', '--rm', '--read-only', '--tmpfs', '/scratch', 'busybox', 'sh', '-c',
    'touch /x 2>/dev/null && echo wrote || echo refused; touch /scratch/y && stat -c %u /scratch/y')).trim(), 'refused\n0');
  const tty = execFileSync('script', ['-qec', `${DOCKER} run --rm -t busybox sh -c 'tty; stat -c %u $(tty)'`, '/dev/null'],
    { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: b.host } });
  assert.match(tty, /\/dev\/pts\/0\s+0/);
});

test('a remapped container outlives a berthd restart; exec and stop work after it', async () => {
  await ok('run', '-d', '--name', 'r1', 'busybox', 'sleep', '1000');
  const pid = await pidOf('r1');
  await b.stop();
  await b.restart();
  assert.equal(await pidOf('r1'), pid);
  assert.deepEqual(hostIds(pid), { uid: BASE, gid: BASE });
  assert.match(await ok('exec', 'r1', 'id'), /^uid=0\(root\)/);
  await ok('rm', '-f', 'r1');
});

test('kernels before 6.15 (layers attached while the overlay is made) give the same view', async () => {
  const etc = makeEtc();
  let other: Awaited<ReturnType<typeof startBerthd>> | undefined;
  try {
    other = await startBerthd({ daemonJson: { 'userns-remap': 'default' }, env: { BERTH_USERNS_ROOT: etc, BERTH_TEST_IDMAP_ATTACHED: '1' } });
    const r = await other.docker(['load', '-i', path.join(FIXTURES, 'busybox.tar')]);
    assert.equal(r.code, 0, r.stderr);
    const out = await other.docker(['run', '--rm', 'busybox', 'sh', '-c', 'stat -c %u:%g /bin/busybox / && cat /proc/self/uid_map']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, new RegExp(`^0:0\\n0:0\\n\\s*0\\s+${BASE}\\s+65536\\n$`));
    // Nothing stays mounted in the staging directories.
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.includes('.idmap/')));
  } finally {
    await other?.destroy();
    rmSync(etc, { recursive: true, force: true });
  }
});

test('a container made before the remap was turned on starts under it with its files shifted, and back again', async () => {
  const etc = makeEtc();
  let other: Awaited<ReturnType<typeof startBerthd>> | undefined;
  try {
    other = await startBerthd({ env: { BERTH_USERNS_ROOT: etc } });
    const d = async (...args: string[]) => {
      const r = await other!.docker(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await d('load', '-i', path.join(FIXTURES, 'busybox.tar'));
    // First run writes root's and uid 1000's files; every later run shows their owners and appends.
    await d('run', '--name', 'pre', 'busybox', 'sh', '-c',
      'if [ -e /d/f ]; then stat -c %u:%g /d/f /d; echo again >> /d/f && cat /d/f; else mkdir /d && echo one > /d/f && chown 1000:1000 /d; fi');
    const upper = (await d('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', 'pre')).trim();
    assert.equal(statSync(path.join(upper, 'd', 'f')).uid, 0);
    const config = path.join(other.root, 'daemon.json');
    const plain = JSON.parse(readFileSync(config, 'utf8'));
    const run = async () => (await d('start', '-a', 'pre')).trim();
    const restartWith = async (json: object) => {
      await other!.stop();
      writeFileSync(config, JSON.stringify(json));
      await other!.restart();
    };
    await restartWith({ ...plain, 'userns-remap': 'default' });
    assert.equal(await run(), '0:0\n1000:1000\none\nagain');
    assert.equal(statSync(path.join(upper, 'd', 'f')).uid, BASE);
    assert.equal(statSync(path.join(upper, 'd')).uid, BASE + 1000);
    // The remap turned off again: the files are root's and uid 1000's on the host once more.
    await restartWith(plain);
    assert.equal(await run(), '0:0\n1000:1000\none\nagain\nagain');
    assert.equal(statSync(path.join(upper, 'd', 'f')).uid, 0);
    assert.equal(statSync(path.join(upper, 'd')).gid, 1000);
  } finally {
    await other?.destroy();
    rmSync(etc, { recursive: true, force: true });
  }
});

test('a user the host does not have stops berthd at start with the reason', async () => {
  await assert.rejects(startBerthd({ daemonJson: { 'userns-remap': 'no-such-user-here' } }), /no such user|userns-remap/);
});

