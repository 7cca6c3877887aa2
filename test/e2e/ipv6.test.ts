// IPv6 as Docker has it (issue 11): `--ipv6` networks with a given or a ULA subnet, `--ip6`, the default
// bridge with daemon.json `ipv6` + `fixed-cidr-v6`, inspect's IPv6 fields, LinkLocalIPs, AAAA answers of the
// embedded DNS, ports published on [::1] and ::, and docker-py's IPv6 network tests. berthd runs in a
// network namespace this file makes (its bridges, addresses, IPv6 forwarding and nftables tables go with
// it); every request to a container is made from inside that namespace. That namespace has ip6tables as
// Docker 28 leaves it (filter FORWARD policy DROP, DOCKER-USER first) and bridged traffic goes through it
// (br_netfilter), so IPv6 between containers works only if berth's own chain lets it through.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { TestNetns } from '../helpers/netns';
import { api, dockerCli, show, waitFor } from '../helpers/clients';
import { runCmd } from '../helpers/berthd';

const ns = new TestNetns('berth-v6');

const b = berthdForFile({
  fixtures: ['busybox'],
  // Forwarding as Docker leaves it: DOCKER-USER first, policy DROP.
  netns: { ns, make: { ip6tables: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n' +
      '-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n' } },
  start: { daemonJson: { ipv6: true, 'fixed-cidr-v6': 'fd00:b1:0:1::/64' } },
});

const { ok, fails } = dockerCli(() => b);
const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];
const inNs = ns.run;

/** The end of berthd's log, for a failure's message. */
const logTail = () => { try { return readFileSync(path.join(b.root, 'berthd.log'), 'utf8').slice(-3000); } catch { return ''; } };

/** An HTTP GET from inside berthd's namespace; a failure shows the end of berthd's log. */
const getInNs = (url: string) => ns.httpGet(url, () => `\n--- berthd.log\n${logTail()}`);

const HTTPD = ['sh', '-c', 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'];

describe('user networks with IPv6', () => {
  test('--ipv6 --subnet: inspect shows both families; --ip6 and the next free address; the containers reach each other and the gateway over IPv6', async () => {
    const created = await ok('network', 'create', '--ipv6', '--subnet', 'fd00:b1:0:10::/64', 'v6net');
    const n = JSON.parse(await ok('network', 'inspect', 'v6net'))[0];
    assert.equal(n.Id, created.trim());
    assert.equal(n.EnableIPv6, true);
    assert.equal(n.IPAM.Config.length, 2, JSON.stringify(n.IPAM));
    assert.match(n.IPAM.Config[0].Subnet, /^\d+\.\d+\.\d+\.\d+\/\d+$/);
    // Shown as given: a subnet without a gateway has none in IPAM.Config (its first address is the gateway).
    assert.deepEqual(n.IPAM.Config[1], { Subnet: 'fd00:b1:0:10::/64' });

    await ok('run', '-d', '--name', 'v6a', '--network', 'v6net', '--ip6', 'fd00:b1:0:10::a', 'busybox', 'sleep', '300');
    await ok('run', '-d', '--name', 'v6b', '--network', 'v6net', 'busybox', 'sleep', '300');
    const a = (await inspect('v6a')).NetworkSettings.Networks.v6net;
    assert.equal(a.GlobalIPv6Address, 'fd00:b1:0:10::a');
    assert.equal(a.GlobalIPv6PrefixLen, 64);
    assert.equal(a.IPv6Gateway, 'fd00:b1:0:10::1');
    assert.deepEqual(a.IPAMConfig, { IPv6Address: 'fd00:b1:0:10::a' });
    const bb = (await inspect('v6b')).NetworkSettings.Networks.v6net;
    assert.equal(bb.GlobalIPv6Address, 'fd00:b1:0:10::2');
    const addrs = await ok('exec', 'v6b', 'sh', '-c', 'ip -6 addr show dev eth0; ip -6 route');
    assert.match(addrs, /inet6 fd00:b1:0:10::2\/64/);
    assert.match(addrs, /default via fd00:b1:0:10::1 dev eth0/);
    await ok('exec', 'v6b', 'ping', '-6', '-c', '1', '-W', '3', 'fd00:b1:0:10::a');
    await ok('exec', 'v6b', 'ping', '-6', '-c', '1', '-W', '3', 'fd00:b1:0:10::1');
    // berth's chain in ip6tables, right after DOCKER-USER, is what let that through the DROP policy.
    const fwd = (await inNs('ip6tables-nft', ['-w', '10', '-S', 'FORWARD'])).stdout.split('\n').filter((l) => l.startsWith('-A '));
    assert.deepEqual(fwd.slice(0, 2), ['-A FORWARD -j DOCKER-USER', '-A FORWARD -j BERTH-FWD-berth0']);
    const net = JSON.parse(await ok('network', 'inspect', 'v6net'))[0];
    const ips = Object.values(net.Containers as Record<string, { IPv6Address: string }>).map((c) => c.IPv6Address).sort();
    assert.deepEqual(ips, ['fd00:b1:0:10::2/64', 'fd00:b1:0:10::a/64']);
    // The embedded DNS answers AAAA with the IPv6 address and A as before.
    const aaaa = await ok('exec', 'v6b', 'nslookup', '-type=aaaa', 'v6a');
    assert.match(aaaa, /fd00:b1:0:10::a/, aaaa);
    const a4 = await ok('exec', 'v6b', 'nslookup', '-type=a', 'v6a');
    assert.ok(a4.includes(a.IPAddress) && !a4.includes('fd00:b1:0:10::a'), a4);
    // /etc/hosts names the container's own IPv6 address too.
    assert.match(await ok('exec', 'v6a', 'cat', '/etc/hosts'), /fd00:b1:0:10::a\t/);
    await ok('rm', '-f', 'v6a', 'v6b');
    await ok('network', 'rm', 'v6net');
  });

  test('IPv6 addresses come from a pool per network: the lowest free one, freed ones given again, and the same after a kill -9 of berthd (the pool is made again from the endpoints)', async () => {
    await ok('network', 'create', '--ipv6', '--subnet', 'fd00:b1:0:50::/64', 'v6pool');
    const ip6 = async (name: string) => (await inspect(name)).NetworkSettings.Networks.v6pool.GlobalIPv6Address as string;
    for (const n of ['pa', 'pb', 'pc']) await ok('run', '-d', '--name', n, '--network', 'v6pool', 'busybox', 'sleep', '300');
    assert.deepEqual([await ip6('pa'), await ip6('pb'), await ip6('pc')], ['fd00:b1:0:50::2', 'fd00:b1:0:50::3', 'fd00:b1:0:50::4']);
    await ok('rm', '-f', 'pb');
    await b.kill9();
    await b.restart();
    // ::3 is free again; ::2 and ::4 are held by the containers that ran on.
    await ok('run', '-d', '--name', 'pd', '--network', 'v6pool', 'busybox', 'sleep', '300');
    assert.equal(await ip6('pd'), 'fd00:b1:0:50::3');
    await ok('run', '-d', '--name', 'pe', '--network', 'v6pool', '--ip6', 'fd00:b1:0:50::6', 'busybox', 'sleep', '300');
    await ok('run', '-d', '--name', 'pf', '--network', 'v6pool', 'busybox', 'sleep', '300');
    assert.equal(await ip6('pf'), 'fd00:b1:0:50::5');
    const dup = await b.docker(['run', '-d', '--name', 'pg', '--network', 'v6pool', '--ip6', 'fd00:b1:0:50::6', 'busybox', 'sleep', '300']);
    assert.notEqual(dup.code, 0, show(dup));
    assert.match(dup.stderr, /Address already in use/);
    await ok('run', '-d', '--name', 'ph', '--network', 'v6pool', 'busybox', 'sleep', '300');
    assert.equal(await ip6('ph'), 'fd00:b1:0:50::7', 'past the --ip6 one');
    await ok('rm', '-f', 'pa', 'pc', 'pd', 'pe', 'pf', 'pg', 'ph');
    await ok('network', 'rm', 'v6pool');
  });

  test('--ipv6 without a subnet takes a ULA /64 of the engine\'s pool, the same one again after rm', async () => {
    await ok('network', 'create', '--ipv6', 'ula1');
    await ok('network', 'create', '--ipv6', 'ula2');
    const s1 = JSON.parse(await ok('network', 'inspect', 'ula1'))[0].IPAM.Config[1];
    const s2 = JSON.parse(await ok('network', 'inspect', 'ula2'))[0].IPAM.Config[1];
    assert.match(s1.Subnet, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/, s1.Subnet);
    assert.notEqual(s1.Subnet, s2.Subnet);
    assert.equal(s1.Subnet.split(':').slice(0, 3).join(':'), s2.Subnet.split(':').slice(0, 3).join(':'), 'one /48 pool');
    await ok('network', 'rm', 'ula1', 'ula2');
    await ok('network', 'create', '--ipv6', 'ula3');
    assert.equal(JSON.parse(await ok('network', 'inspect', 'ula3'))[0].IPAM.Config[1].Subnet, s1.Subnet);
    await ok('network', 'rm', 'ula3');
  });

  test('bad IPv6 input: Docker\'s 400 and nothing made', async () => {
    await ok('network', 'create', 'v4only');
    // An interface on a network without IPv6 has it switched off (no link-local address either), as Docker does.
    const off = await ok('run', '--rm', '--network', 'v4only', 'busybox', 'sh', '-c', 'cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6; ip -6 addr show dev eth0');
    assert.equal(off.trim(), '1', off);
    await fails(/IPv6 is not enabled|user configured subnets/, 'run', '-d', '--name', 'bad6', '--network', 'v4only', '--ip6', 'fd00::5', 'busybox', 'true');
    await ok('network', 'create', '--ipv6', '--subnet', 'fd00:b1:0:20::/64', 'v6b');
    await fails(/does not belong to any of this network's subnets/, 'run', '-d', '--name', 'bad6', '--network', 'v6b', '--ip6', 'fd00:b1:0:21::5', 'busybox', 'true');
    await fails(/overlaps/, 'network', 'create', '--ipv6', '--subnet', 'fd00:b1:0:20::/80', 'v6c');
    const r = await api(b, 'POST', '/networks/create', { body: { Name: 'v6d', EnableIPv6: true, IPAM: { Config: [{ Subnet: 'fd00:b1:0:30::/64', Gateway: 'fd00:b1:0:31::1' }] } } });
    assert.equal(r.status, 400, r.body);
    assert.match(r.json().message, /no matching subnet for gateway/);
    assert.equal((await ok('ps', '-aq', '--filter', 'name=bad6')).trim(), '');
    assert.doesNotMatch(await ok('network', 'ls', '--format', '{{.Name}}'), /v6c|v6d/);
    await ok('network', 'rm', 'v4only', 'v6b');
  });
});

describe('the default bridge with daemon.json ipv6 and fixed-cidr-v6', () => {
  test('a container gets an address of fixed-cidr-v6, shown in NetworkSettings; the bridge network shows both subnets', async () => {
    await ok('run', '-d', '--name', 'defv6', 'busybox', 'sleep', '300');
    const ns = (await inspect('defv6')).NetworkSettings;
    assert.equal(ns.GlobalIPv6Address, 'fd00:b1:0:1::2');
    assert.equal(ns.GlobalIPv6PrefixLen, 64);
    assert.equal(ns.IPv6Gateway, 'fd00:b1:0:1::1');
    assert.equal(ns.Networks.bridge.GlobalIPv6Address, 'fd00:b1:0:1::2');
    const br = JSON.parse(await ok('network', 'inspect', 'bridge'))[0];
    assert.equal(br.EnableIPv6, true);
    assert.deepEqual(br.IPAM.Config[1], { Subnet: 'fd00:b1:0:1::/64', Gateway: 'fd00:b1:0:1::1' });
    // The host (berthd's namespace) reaches it on its IPv6 address.
    const ping = await inNs('busybox', ['ping', '-6', '-c', '1', '-W', '3', 'fd00:b1:0:1::2']);
    assert.equal(ping.code, 0, show(ping));
    await ok('rm', '-f', 'defv6');
  });
});

describe('published ports and IPv6', () => {
  test('-p PORT publishes on 0.0.0.0 and ::; [::1] and a host IPv6 address reach the container, as 127.0.0.1 does', async () => {
    await ok('network', 'create', '--ipv6', '--subnet', 'fd00:b1:0:40::/64', 'v6pub');
    await ok('run', '-d', '--name', 'web6', '--network', 'v6pub', '-p', '18086:80', '-p', '[::1]:18087:80', '-p', '127.0.0.1:18088:80', 'busybox', ...HTTPD);
    const ports = (await inspect('web6')).NetworkSettings.Ports['80/tcp'] as Array<{ HostIp: string; HostPort: string }>;
    assert.deepEqual(ports.map((p) => `${p.HostIp}|${p.HostPort}`).sort(), ['0.0.0.0|18086', '127.0.0.1|18088', '::1|18087', '::|18086'].sort());
    const want = /hello from [0-9a-f]{12}/;
    await waitFor('httpd listening', async () => (await getInNs('http://127.0.0.1:18088/').catch(() => '')).match(want));
    assert.match(await getInNs('http://[::1]:18087/'), want);
    assert.match(await getInNs('http://[::1]:18086/'), want);
    assert.match(await getInNs('http://[fd00:b1:0:40::1]:18086/'), want);
    assert.match(await getInNs('http://127.0.0.1:18086/'), want);
    const rules = await inNs('nft', ['list', 'table', 'ip6', 'berth_berth0']);
    assert.match(rules.stdout, /tcp \. 18086 : fd00:b1:0:40::2 \. 80/, show(rules));
    // A restart of berthd (the container lives on): the relays on ::1 and :: and the IPv6 rules come back.
    await b.stop();
    await b.restart();
    assert.match(await getInNs('http://[::1]:18087/'), want);
    assert.match(await getInNs('http://[::1]:18086/'), want);
    assert.match(await getInNs('http://[fd00:b1:0:40::1]:18086/'), want);
    const again = (await inspect('web6')).NetworkSettings.Networks.v6pub;
    assert.equal(again.GlobalIPv6Address, 'fd00:b1:0:40::2');
    assert.equal((await inspect('web6')).NetworkSettings.LinkLocalIPv6Address, '', 'never set, as in Docker');
    await ok('rm', '-f', 'web6');
    await ok('network', 'rm', 'v6pub');
    // The IPv6 rules went with the last IPv6 user network but the default bridge's (it has IPv6 here).
    const after6 = await inNs('nft', ['list', 'table', 'ip6', 'berth_berth0']);
    assert.doesNotMatch(after6.stdout, /18086|fd00:b1:0:40/, show(after6));
  });
});

describe('docker-py 7.1.0: its IPv6 network tests', () => {
  test('create_network(enable_ipv6=True, ipam=...), a container with ipv6_address, connect with ipv6_address, link_local_ips', async () => {
    const py = `
import os, docker
from docker.types import IPAMConfig, IPAMPool
c = docker.APIClient(base_url=os.environ['DOCKER_HOST'], version='auto')
n = c.create_network('pyv6', enable_ipv6=True, ipam=IPAMConfig(driver='default', pool_configs=[
    IPAMPool(subnet='2001:389::1/64', iprange='2001:389::0/96', gateway='2001:389::ffff')]))
assert c.inspect_network(n['Id'])['EnableIPv6'] is True
n2 = c.create_network('pyv6b', ipam=IPAMConfig(driver='default', pool_configs=[IPAMPool(subnet='2001:390::1/64')]))
ct = c.create_container('busybox', 'top', host_config=c.create_host_config(network_mode='pyv6b'),
    networking_config=c.create_networking_config({'pyv6b': c.create_endpoint_config(ipv6_address='2001:390::f00d')}))
c.start(ct)
s = c.inspect_container(ct)['NetworkSettings']['Networks']['pyv6b']
assert s['IPAMConfig']['IPv6Address'] == '2001:390::f00d', s
assert s['GlobalIPv6Address'] == '2001:390::f00d', s
ct2 = c.create_container('busybox', 'top', host_config=c.create_host_config(network_mode='pyv6'))
c.start(ct2)
c.disconnect_container_from_network(ct2, 'pyv6')
c.connect_container_to_network(ct2, 'pyv6', ipv6_address='2001:389::f00d')
s2 = c.inspect_container(ct2)['NetworkSettings']['Networks']['pyv6']
assert s2['IPAMConfig']['IPv6Address'] == '2001:389::f00d', s2
assert s2['GlobalIPv6Address'] == '2001:389::f00d', s2
ct3 = c.create_container('busybox', 'top', host_config=c.create_host_config(network_mode='bridge'),
    networking_config=c.create_networking_config({'bridge': c.create_endpoint_config(link_local_ips=['169.254.8.8'])}))
c.start(ct3)
s3 = c.inspect_container(ct3)['NetworkSettings']['Networks']['bridge']
assert s3['IPAMConfig']['LinkLocalIPs'] == ['169.254.8.8'], s3
out = c.exec_start(c.exec_create(ct3, ['ip', '-4', 'addr', 'show', 'dev', 'eth0']))
assert b'169.254.8.8' in out, out
for x in (ct, ct2, ct3):
    c.remove_container(x, force=True)
c.remove_network('pyv6')
c.remove_network('pyv6b')
print('ok')
`;
    const r = await runCmd('python3', ['-c', py], { env: { DOCKER_HOST: b.host, PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 120000 });
    assert.equal(r.code, 0, `${show(r)}\n--- berthd.log\n${logTail()}`);
    assert.match(r.stdout, /^ok$/m);
  });
});
