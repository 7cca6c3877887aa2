// Devices and shared namespaces through the docker CLI 28: the device cgroup (Docker's default allow-list,
// --device, --device-cgroup-rule, --privileged) and --pid/--ipc/--uts/--cgroupns host or container:NAME.
// /dev/fuse is the probe device (the host must have it): any process may open it, and it is not in the
// default list.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok, fails } = dockerCli(() => b, { trim: true });
const openFuse = (p = '/dev/fuse') => `(exec 3<>${p}) 2>/dev/null && echo opened || echo refused`;


describe('devices', () => {
  test('the default device cgroup: the usual nodes work, any other node can be made but not opened', async () => {
    assert.ok(existsSync('/dev/fuse'), 'the probe device /dev/fuse is on the host (the fuse module)');
    assert.equal(await ok('run', '--rm', 'busybox', 'sh', '-c',
      'echo x > /dev/null && head -c1 /dev/zero >/dev/null && head -c1 /dev/urandom >/dev/null && echo usual-ok; ' +
      `mknod /dev/fuse c 10 229 && echo made; ${openFuse()}`), 'usual-ok\nmade\nrefused');
    const v1 = '/sys/fs/cgroup/devices';
    if (existsSync(v1)) {
      const id = await ok('run', '-d', 'busybox', 'sleep', '600');
      const list = readFileSync(path.join(v1, b.cgroupParent, id, 'devices.list'), 'utf8');
      assert.doesNotMatch(list, /^a \*:\* rwm$/m, 'not every device');
      assert.match(list, /^c 1:3 rwm$/m);
      assert.match(list, /^b \*:\* m$/m);
      await ok('rm', '-f', id);
    }
  });

  test('--device makes the node (renamed, with the access asked for); --device-cgroup-rule allows a class', async () => {
    assert.ok(existsSync('/dev/fuse'), 'the probe device /dev/fuse is on the host (the fuse module)');
    assert.equal(await ok('run', '--rm', '--device', '/dev/fuse', 'busybox', 'sh', '-c', `stat -c '%t:%T %F' /dev/fuse; ${openFuse()}`), 'a:e5 character special file\nopened');
    assert.equal(await ok('run', '--rm', '--device', '/dev/fuse:/dev/myfuse:r', 'busybox', 'sh', '-c',
      `(exec 3</dev/myfuse) && echo read-ok; ${openFuse('/dev/myfuse')}`), 'read-ok\nrefused');
    assert.equal(await ok('run', '--rm', '--device-cgroup-rule', 'c 10:* rw', 'busybox', 'sh', '-c', `mknod /dev/fuse c 10 229; ${openFuse()}`), 'opened');
    await fails(/error gathering device information while adding custom device "\/dev\/nonexistent": no such file or directory/, 'run', '--rm', '--device', '/dev/nonexistent', 'busybox', 'true');
    await fails(/not a device node/, 'run', '--rm', '--device', '/etc/hostname', 'busybox', 'true');
  });

  test('--privileged gets the host devices, all of them usable', async () => {
    const inside = (await ok('run', '--rm', '--privileged', 'busybox', 'ls', '/dev')).split('\n');
    for (const name of ['null', 'zero', 'full', 'tty', 'kmsg']) if (existsSync(`/dev/${name}`)) assert.ok(inside.includes(name), `/dev/${name} in a privileged container`);
    assert.equal(await ok('run', '--rm', '--privileged', 'busybox', 'sh', '-c', openFuse()), 'opened');
  });
});

describe('shared namespaces', () => {
  const hostNs = (kind: string) => readlinkSync(`/proc/self/ns/${kind}`);

  test('--pid host sees the host processes; --pid container:NAME the other container\'s', async () => {
    assert.equal(await ok('run', '--rm', '--pid', 'host', 'busybox', 'readlink', '/proc/self/ns/pid'), hostNs('pid'));
    assert.ok(Number(await ok('run', '--rm', '--pid', 'host', 'busybox', 'sh', '-c', 'ls /proc | grep -c "^[0-9]"')) > 10);
    await ok('run', '-d', '--name', 'piddonor', 'busybox', 'sleep', '600');
    const ps = await ok('run', '--rm', '--pid', 'container:piddonor', 'busybox', 'ps', '-o', 'pid,args');
    assert.match(ps, /^\s*1 sleep 600$/m, ps);
    await ok('stop', '-t', '0', 'piddonor');
    await fails(/cannot join PID of a non running container: piddonor/, 'run', '--rm', '--pid', 'container:piddonor', 'busybox', 'true');
    await ok('rm', 'piddonor');
  });

  test('--uts host and --network host take the host name, --network container:X the other one\'s; an own hostname is refused there', async () => {
    assert.equal(await ok('run', '--rm', '--uts', 'host', 'busybox', 'hostname'), os.hostname());
    assert.equal(await ok('run', '--rm', '--uts', 'host', 'busybox', 'readlink', '/proc/self/ns/uts'), hostNs('uts'));
    assert.equal(await ok('run', '--rm', '--network', 'host', 'busybox', 'cat', '/etc/hostname'), os.hostname());
    await fails(/Conflicting options: hostname and the UTS mode/, 'create', '--uts', 'host', '-h', 'other', 'busybox');
    // Sharing another container's network, a container takes its name too.
    await ok('run', '-d', '--name', 'netdonor', '-h', 'donorname', 'busybox', 'sleep', '600');
    assert.equal(await ok('run', '--rm', '--network', 'container:netdonor', 'busybox', 'sh', '-c', 'hostname; cat /etc/hostname'), 'donorname\ndonorname');
    await fails(/conflicting options: hostname and the network mode/, 'create', '--network', 'container:netdonor', '-h', 'x', 'busybox');
    await ok('rm', '-f', 'netdonor');
  });

  test('--ipc shareable lends its namespace and /dev/shm; private ones do not; host and none', async () => {
    await ok('run', '-d', '--name', 'ipcdonor', '--ipc', 'shareable', 'busybox', 'sh', '-c', 'echo lent > /dev/shm/note; sleep 600');
    await ok('run', '-d', '--name', 'ipcprivate', 'busybox', 'sleep', '600');
    const donorNs = await ok('exec', 'ipcdonor', 'readlink', '/proc/self/ns/ipc');
    assert.equal(await ok('run', '--rm', '--ipc', 'container:ipcdonor', 'busybox', 'sh', '-c', 'readlink /proc/self/ns/ipc; cat /dev/shm/note'), `${donorNs}\nlent`);
    await fails(/non-shareable IPC/, 'run', '--rm', '--ipc', 'container:ipcprivate', 'busybox', 'true');
    assert.equal(await ok('run', '--rm', '--ipc', 'host', 'busybox', 'readlink', '/proc/self/ns/ipc'), hostNs('ipc'));
    assert.equal(await ok('run', '--rm', '--ipc', 'none', 'busybox', 'sh', '-c', 'test -e /dev/shm && echo shm || echo no-shm'), 'no-shm');
    const id = await ok('inspect', '-f', '{{.Id}}', 'ipcdonor');
    await ok('rm', '-f', 'ipcdonor', 'ipcprivate');
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(`/containers/${id}/mounts/shm `), 'the shared /dev/shm is unmounted from the host');
    await fails(/invalid IPC mode: bogus/, 'create', '--ipc', 'bogus', 'busybox');
  });

  test('--cgroupns host shows the host cgroup paths, and still only its own cgroup under /sys/fs/cgroup', async () => {
    const id = await ok('run', '-d', '--cgroupns', 'host', '--pids-limit', '7', 'busybox', 'sleep', '600');
    assert.ok((await ok('exec', id, 'cat', '/proc/self/cgroup')).includes(id), 'the full path, with the container id');
    assert.equal(await ok('exec', id, 'readlink', '/proc/self/ns/cgroup'), hostNs('cgroup'));
    if (existsSync('/sys/fs/cgroup/pids/pids.max') || existsSync('/sys/fs/cgroup/pids')) {
      assert.equal(await ok('exec', id, 'cat', '/sys/fs/cgroup/pids/pids.max'), '7');
      assert.equal(await ok('exec', id, 'sh', '-c', `ls /sys/fs/cgroup/pids | grep -c ${b.cgroupParent} || true`), '0', 'not the host tree');
    }
    await ok('rm', '-f', id);
  });
});
