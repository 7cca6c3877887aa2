// resolv.conf on the default bridge (a network without the embedded DNS server), as Docker 28 writes it: the
// host's nameservers less loopback ones, and less IPv6 ones unless the network has IPv6 (daemon.json `ipv6`);
// Google's when none remain, its IPv6 ones too on an IPv6 network; --dns as given; with --network host, the
// host's nameservers as they are (its loopback is the container's). The host's resolv.conf is
// a file of the test's own (BERTH_RESOLV_CONF); the berthd with IPv6 on its default bridge runs in a network
// namespace of this file's own.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { TestNetns } from '../helpers/netns';
import { dockerCli } from '../helpers/clients';

const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-dns-legacy-'));
const hostConf = path.join(dir, 'resolv.conf');
after(() => rmSync(dir, { recursive: true, force: true }));
const MIXED = 'nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nnameserver ::1\nsearch example.test\noptions edns0\n';
const V6_ONLY = 'nameserver 2001:db8::53\nnameserver ::1\n';

describe('the default bridge without IPv6', () => {
  const b = berthdForFile({ fixtures: ['busybox'], start: { env: { BERTH_RESOLV_CONF: hostConf } } });
  const { ok } = dockerCli(() => b);
  const conf = () => ok('run', '--rm', 'busybox', 'cat', '/etc/resolv.conf');

  test('the host\'s IPv6 and loopback nameservers are left out; Google\'s IPv4 ones when none remain; --dns as given', async () => {
    writeFileSync(hostConf, MIXED);
    assert.equal(await conf(), 'nameserver 192.0.2.53\nsearch example.test\noptions edns0\n');
    writeFileSync(hostConf, V6_ONLY);
    assert.equal(await conf(), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
    assert.equal(await ok('run', '--rm', '--dns', '2001:db8::1', 'busybox', 'cat', '/etc/resolv.conf'), 'nameserver 2001:db8::1\n');
  });

  test('--network host keeps the host\'s nameservers as they are, loopback and IPv6 ones too', async () => {
    writeFileSync(hostConf, MIXED);
    assert.equal(await ok('run', '--rm', '--network', 'host', 'busybox', 'cat', '/etc/resolv.conf'),
      'nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nnameserver ::1\nsearch example.test\noptions edns0\n');
    writeFileSync(hostConf, 'search example.test\n');
    assert.equal(await ok('run', '--rm', '--network', 'host', 'busybox', 'cat', '/etc/resolv.conf'), 'search example.test\n');
  });
});

describe('the default bridge with daemon.json ipv6', () => {
  const ns = new TestNetns('berth-dnsleg');
  const b = berthdForFile({
    fixtures: ['busybox'],
    netns: { ns },
    start: { env: { BERTH_RESOLV_CONF: hostConf }, daemonJson: { ipv6: true, 'fixed-cidr-v6': 'fd00:b7:0:1::/64' } },
  });
  const { ok } = dockerCli(() => b);
  const conf = () => ok('run', '--rm', 'busybox', 'cat', '/etc/resolv.conf');

  test('the host\'s IPv6 nameservers are kept (loopback ones are not); Google\'s of both families when none remain', async () => {
    writeFileSync(hostConf, MIXED);
    assert.equal(await conf(), 'nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.test\noptions edns0\n');
    writeFileSync(hostConf, V6_ONLY);
    assert.equal(await conf(), 'nameserver 2001:db8::53\n');
    writeFileSync(hostConf, 'search example.test\n');
    assert.equal(await conf(), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\nsearch example.test\n');
  });
});
