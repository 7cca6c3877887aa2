// The embedded DNS server on IPv6 networks and IPv6 subnets on a host that has its own (issue 11): the server
// listens on the network's IPv6 gateway too and containers' resolv.conf names it; it answers there over UDP
// and TCP, for the names of every network of the asking container, and nobody else. A network with --ipv6
// and no subnet takes a ULA /64 that overlaps no route or address of the host; an asked-for one that does is
// used with a warning (create's answer, docker info). IPAM.Config shows what was given: no Gateway for a
// subnet given alone. berthd runs in a network namespace of this file's own, whose ip6tables filter table
// drops input and forwarding by default (as a hardened host's does), so queries over IPv6 reach the server
// only through berth's own chains.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { TestNetns } from '../helpers/netns';
import { api, dockerCli, show } from '../helpers/clients';
import { runCmd } from '../helpers/berthd';
import { dnsOverTcpIn } from '../helpers/dns';
import { bigToIp6, cidr6String, parseCidr6 } from '../../daemon/network/ipam/ipam6';

const ns = new TestNetns('berth-dns6');

// Input: only neighbour discovery, ping and answers get in; forwarding: DOCKER-USER first, policy DROP.
const IP6TABLES = '*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n' +
  '-A INPUT -i lo -j ACCEPT\n-A INPUT -p ipv6-icmp -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n' +
  '-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n';

const b = berthdForFile({
  fixtures: ['busybox'],
  netns: { ns, make: { ip6tables: IP6TABLES } },
});

const { ok, fails } = dockerCli(() => b);
const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];
const inNs = ns.run;
const logTail = () => { try { return readFileSync(path.join(b.root, 'berthd.log'), 'utf8').slice(-3000); } catch { return ''; } };

/** busybox nslookup in a container against `server`, bounded (it retries for a while when nobody answers). */
const lookup = (ctr: string, args: string[]) => b.docker(['exec', ctr, 'timeout', '6', 'nslookup', ...args]);

describe('the embedded DNS server on the IPv6 gateway', () => {
  test('resolv.conf names both gateways; the IPv6 one answers A and AAAA over UDP and TCP, for every network of the asker, and nobody else', async () => {
    await ok('network', 'create', '--ipv6', '--subnet', 'fd00:d6:0:1::/64', 'd6a');
    await ok('network', 'create', '--ipv6', '--subnet', 'fd00:d6:0:2::/64', 'd6b');
    const na = (await inspect('d6a'));
    const gw4 = na.IPAM.Config[0].Gateway as string;
    const gw6 = 'fd00:d6:0:1::1';
    await ok('run', '-d', '--name', 'srv', '--network', 'd6a', '--network-alias', 'web', 'busybox', 'sleep', '600');
    await ok('run', '-d', '--name', 'cli', '--network', 'd6a', 'busybox', 'sleep', '600');
    await ok('run', '-d', '--name', 'other', '--network', 'd6b', 'busybox', 'sleep', '600');
    const srv = (await inspect('srv')).NetworkSettings.Networks.d6a;

    const conf = await ok('exec', 'cli', 'cat', '/etc/resolv.conf');
    assert.deepEqual(conf.split('\n').filter((l) => l.startsWith('nameserver')), [`nameserver ${gw4}`, `nameserver ${gw6}`], conf);
    assert.match(conf, /^options ndots:0$/m);

    const a = await lookup('cli', ['srv', gw6]);
    assert.equal(a.code, 0, `${show(a)}\n--- berthd.log\n${logTail()}`);
    assert.ok(a.stdout.includes(srv.IPAddress), a.stdout);
    const aaaa = await lookup('cli', ['-type=aaaa', 'web', gw6]);
    assert.equal(aaaa.code, 0, show(aaaa));
    assert.ok(aaaa.stdout.includes(srv.GlobalIPv6Address), aaaa.stdout);
    // Over TCP on the IPv6 gateway, from the container's own namespace.
    const cliKey = (await inspect('cli')).NetworkSettings.SandboxKey as string;
    const tcp = await dnsOverTcpIn(cliKey, gw6, ['srv', 'web']);
    assert.deepEqual(tcp.map((r) => r.ips), [[srv.IPAddress], [srv.IPAddress]]);
    // berth's ip6tables input chain is what let those through the INPUT policy DROP.
    const input = await inNs('ip6tables-nft', ['-w', '10', '-S', 'BERTH-IN-berth0']);
    assert.match(input.stdout, new RegExp(`-d ${gw6}/128 .*--dport 53 -j ACCEPT`), show(input));

    // A container of another network gets no answer from d6a's server on either gateway.
    const foreign6 = await lookup('other', ['srv', gw6]);
    assert.notEqual(foreign6.code, 0, show(foreign6));
    assert.ok(!foreign6.stdout.includes(srv.IPAddress), foreign6.stdout);
    const foreign4 = await lookup('other', ['srv', gw4]);
    assert.notEqual(foreign4.code, 0, show(foreign4));
    // Nor does the host (berthd's namespace) over IPv6.
    const fromHost = await runCmd('nsenter', [`--net=${ns.file}`, '--', process.execPath, '-e',
      `require(${JSON.stringify(path.join(__dirname, '..', 'helpers', 'dns.js'))}).dnsOverTcp(${JSON.stringify(gw6)}, ['srv'], 3000)` +
      '.then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.message); process.exit(1); })'], { timeoutMs: 15000 });
    assert.ok(fromHost.code !== 0 || JSON.parse(fromHost.stdout)[0].rcode === 5, show(fromHost));

    // Connected to d6a too, `other` resolves d6a's names through its own network's IPv6 server.
    await ok('network', 'connect', 'd6a', 'other');
    const d6b6 = 'fd00:d6:0:2::1';
    const via = await lookup('other', ['srv', d6b6]);
    assert.equal(via.code, 0, show(via));
    assert.ok(via.stdout.includes(srv.IPAddress), via.stdout);
    assert.match(await ok('exec', 'other', 'cat', '/etc/resolv.conf'), new RegExp(`nameserver ${d6b6}`));

    await ok('rm', '-f', 'srv', 'cli', 'other');
    await ok('network', 'rm', 'd6a', 'd6b');
    // The server and its rules went with the network.
    const gone = await inNs('ip6tables-nft', ['-w', '10', '-S']);
    assert.doesNotMatch(gone.stdout, /fd00:d6:0:1::1/, show(gone));
  });

  test('a container on a network without IPv6 keeps one nameserver, the IPv4 gateway', async () => {
    await ok('network', 'create', 'd4only');
    const gw4 = (await inspect('d4only')).IPAM.Config[0].Gateway as string;
    const conf = await ok('run', '--rm', '--network', 'd4only', 'busybox', 'cat', '/etc/resolv.conf');
    assert.deepEqual(conf.split('\n').filter((l) => l.startsWith('nameserver')), [`nameserver ${gw4}`]);
    await ok('network', 'rm', 'd4only');
  });
});

describe('IPv6-only networks (--ipv4=false --ipv6, EnableIPv4=false)', () => {
  test('containers get IPv6 addresses only, route and resolve over IPv6; inspect and ls show EnableIPv4 false; bad input gets 400', async () => {
    await ok('network', 'create', '--ipv4=false', '--ipv6', '--subnet', 'fd00:d6:0:9::/64', 'only6');
    const n = await inspect('only6');
    assert.equal(n.EnableIPv4, false);
    assert.equal(n.EnableIPv6, true);
    assert.deepEqual(n.IPAM.Config, [{ Subnet: 'fd00:d6:0:9::/64' }]);
    const ls = await ok('network', 'ls', '--format', '{{.Name}} {{.IPv4}} {{.IPv6}}');
    assert.match(ls, /^only6 false true$/m, ls);
    assert.match(ls, /^host false false$/m, ls);

    await ok('run', '-d', '--name', 'o6a', '--network', 'only6', '--network-alias', 'six', 'busybox', 'sleep', '600');
    await ok('run', '-d', '--name', 'o6b', '--network', 'only6', 'busybox', 'sleep', '600');
    const a = (await inspect('o6a')).NetworkSettings.Networks.only6;
    assert.equal(a.IPAddress, '');
    assert.equal(a.Gateway, '');
    assert.equal(a.GlobalIPv6Address, 'fd00:d6:0:9::2');
    assert.equal(a.IPv6Gateway, 'fd00:d6:0:9::1');
    assert.match(a.MacAddress, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.equal(parseInt(a.MacAddress.slice(0, 2), 16) & 0x03, 0x02, 'locally administered, unicast');
    const members = Object.values((await inspect('only6')).Containers as Record<string, { IPv4Address: string; IPv6Address: string }>);
    assert.deepEqual(members.map((m) => `${m.IPv4Address}|${m.IPv6Address}`).sort(), ['|fd00:d6:0:9::2/64', '|fd00:d6:0:9::3/64']);

    const inside = await ok('exec', 'o6b', 'sh', '-c', 'ip -4 addr show dev eth0; echo ---; ip -6 route; echo ---; cat /etc/resolv.conf');
    const [v4, routes, conf] = inside.split('---\n');
    assert.doesNotMatch(v4, /inet /, inside);
    assert.match(routes, /default via fd00:d6:0:9::1 dev eth0/, inside);
    assert.deepEqual(conf.split('\n').filter((l) => l.startsWith('nameserver')), ['nameserver fd00:d6:0:9::1'], inside);
    // Names through the server on the IPv6 gateway, as the container's resolver asks for them.
    const q = await b.docker(['exec', 'o6b', 'timeout', '6', 'nslookup', '-type=aaaa', 'six']);
    assert.equal(q.code, 0, `${show(q)}\n--- berthd.log\n${logTail()}`);
    assert.match(q.stdout, /fd00:d6:0:9::2/);
    await ok('exec', 'o6b', 'ping', '-6', '-c', '1', '-W', '3', 'o6a');
    // Connected to an IPv4 network too: that one gives the IPv4 default route, the IPv6 one stays.
    await ok('network', 'create', 'o6v4');
    const gw4 = (await inspect('o6v4')).IPAM.Config[0].Gateway as string;
    await ok('network', 'connect', 'o6v4', 'o6b');
    const both = await ok('exec', 'o6b', 'sh', '-c', 'ip -4 route; ip -6 route');
    assert.match(both, new RegExp(`default via ${gw4.replace(/\./g, '\\.')} dev eth1`), both);
    assert.match(both, /default via fd00:d6:0:9::1 dev eth0/, both);
    await ok('network', 'disconnect', 'o6v4', 'o6b');
    await ok('network', 'rm', 'o6v4');
    // A restart of berthd (the containers live on): the bridge without IPv4 and its server come back.
    await b.stop();
    await b.restart();
    assert.equal((await inspect('only6')).EnableIPv4, false);
    const again = await b.docker(['exec', 'o6b', 'timeout', '6', 'nslookup', '-type=aaaa', 'o6a']);
    assert.equal(again.code, 0, `${show(again)}\n--- berthd.log\n${logTail()}`);
    assert.match(again.stdout, /fd00:d6:0:9::2/);
    await ok('run', '--rm', '--network', 'only6', 'busybox', 'ping', '-6', '-c', '1', '-W', '3', 'six');

    // Bad input: Docker's 400, nothing made.
    await fails(/IPv4 is not enabled on network only6/, 'run', '-d', '--name', 'o6bad', '--network', 'only6', '--ip', '10.9.9.9', 'busybox', 'true');
    const withV4 = await api(b, 'POST', '/networks/create', { body: { Name: 'o6x', EnableIPv4: false, EnableIPv6: true, IPAM: { Config: [{ Subnet: '10.9.9.0/24' }] } } });
    assert.equal(withV4.status, 400, withV4.body);
    const neither = await api(b, 'POST', '/networks/create', { body: { Name: 'o6y', EnableIPv4: false } });
    assert.equal(neither.status, 400, neither.body);
    assert.match(neither.json().message, /IPv4 or IPv6/);
    // Ports of a container on IPv6-only networks are published on [::] (ipv6-gateways.test.ts goes further).
    await ok('run', '-d', '--name', 'o6pub', '--network', 'only6', '-p', '18099:80', 'busybox', 'sleep', '60');
    assert.deepEqual((await ok('port', 'o6pub', '80')).trim(), '[::]:18099');
    await ok('rm', '-f', 'o6pub');
    assert.equal((await ok('ps', '-aq', '--filter', 'name=o6bad')).trim(), '');
    assert.doesNotMatch(await ok('network', 'ls', '--format', '{{.Name}}'), /o6x|o6y/);

    await ok('rm', '-f', 'o6a', 'o6b', 'o6pub');
    await ok('network', 'rm', 'only6');
  });
});

describe('IPv6 subnets and the host\'s routes and addresses', () => {
  test('--ipv6 takes a ULA /64 the host does not use; an asked-for one it uses is warned about (create, docker info); none is shared', async () => {
    await ok('network', 'create', '--ipv6', 'h1');
    const s1 = (await inspect('h1')).IPAM.Config[1];
    // Chosen, so shown with its gateway (Docker shows an allocated pool with it).
    assert.deepEqual(Object.keys(s1).sort(), ['Gateway', 'Subnet']);
    await ok('network', 'rm', 'h1');
    // The host takes that /64 (an address on a device of its own: a veth pair, since this kernel has no
    // dummy links) and routes the next one elsewhere.
    const first = parseCidr6(s1.Subnet);
    const second = cidr6String({ base: first.base + (1n << 64n), prefix: 64 });
    for (const args of [['link', 'add', 'hostdev6', 'type', 'veth', 'peer', 'name', 'hostdev6p'], ['link', 'set', 'hostdev6p', 'up'], ['link', 'set', 'hostdev6', 'up'],
      ['-6', 'addr', 'add', `${bigToIp6(first.base + 5n)}/64`, 'dev', 'hostdev6', 'nodad'], ['-6', 'route', 'add', second, 'dev', 'hostdev6']]) {
      const r = await inNs('ip', args);
      assert.equal(r.code, 0, show(r));
    }
    try {
      await ok('network', 'create', '--ipv6', 'h2');
      const s2 = (await inspect('h2')).IPAM.Config[1].Subnet as string;
      assert.notEqual(s2, s1.Subnet);
      assert.notEqual(s2, second);
      assert.equal(s2.split(':').slice(0, 3).join(':'), s1.Subnet.split(':').slice(0, 3).join(':'), 'still the engine\'s /48');

      // Asked for: used as given, with Docker's kind of warning, through docker-py.
      const py = `
import os, json, docker
from docker.types import IPAMConfig, IPAMPool
c = docker.APIClient(base_url=os.environ['DOCKER_HOST'], version='auto')
r = c.create_network('h3', enable_ipv6=True, ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=os.environ['SUB'])]))
print(json.dumps({'create': r, 'inspect': c.inspect_network('h3')['IPAM']['Config']}))
`;
      const r = await runCmd('python3', ['-c', py], { env: { DOCKER_HOST: b.host, SUB: s1.Subnet, PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 60000 });
      assert.equal(r.code, 0, show(r));
      const got = JSON.parse(r.stdout);
      assert.match(got.create.Warning, new RegExp(`IPv6 subnet of network h3 ${s1.Subnet.replace(/[.:/]/g, '\\$&')} overlaps .*hostdev6`), got.create.Warning);
      assert.deepEqual(got.inspect[1], { Subnet: s1.Subnet }, 'given without a gateway: none shown');
      const info = await b.docker(['info']);
      assert.match(info.stdout + info.stderr, /WARNING: IPv6 subnet of network h3 .* overlaps/);
      // Two networks never share one.
      const dup = await api(b, 'POST', '/networks/create', { body: { Name: 'h4', EnableIPv6: true, IPAM: { Config: [{ Subnet: s1.Subnet }] } } });
      assert.equal(dup.status, 403, dup.body);
      assert.match(dup.json().message, /overlaps with other one/);
      await ok('network', 'rm', 'h2', 'h3');
      const info2 = await b.docker(['info']);
      assert.doesNotMatch(info2.stdout + info2.stderr, /network h3/);
      await fails(/network h4 not found/, 'network', 'inspect', 'h4');
    } finally {
      await inNs('ip', ['link', 'del', 'hostdev6']);
    }
  });
});

describe('IPAM.Config as given', () => {
  test('a subnet alone shows no Gateway, for IPv4 and IPv6; a given gateway and a chosen subnet show theirs (CLI and docker-py)', async () => {
    await ok('network', 'create', '--subnet', '10.77.1.0/24', '--ipv6', '--subnet', 'fd00:d6:0:7::/64', 'g1');
    await ok('network', 'create', '--subnet', '10.77.2.0/24', '--gateway', '10.77.2.254', '--ipv6', '--subnet', 'fd00:d6:0:8::/64', '--gateway', 'fd00:d6:0:8::fe', 'g2');
    assert.deepEqual((await inspect('g1')).IPAM.Config, [{ Subnet: '10.77.1.0/24' }, { Subnet: 'fd00:d6:0:7::/64' }]);
    assert.deepEqual((await inspect('g2')).IPAM.Config, [{ Subnet: '10.77.2.0/24', Gateway: '10.77.2.254' }, { Subnet: 'fd00:d6:0:8::/64', Gateway: 'fd00:d6:0:8::fe' }]);
    // The gateway is still there and is the subnet's first address: containers route and resolve through it.
    await ok('run', '-d', '--name', 'g1c', '--network', 'g1', 'busybox', 'sleep', '300');
    const g1c = (await inspect('g1c')).NetworkSettings.Networks.g1;
    assert.equal(g1c.Gateway, '10.77.1.1');
    assert.equal(g1c.IPv6Gateway, 'fd00:d6:0:7::1');
    const conf = await ok('exec', 'g1c', 'cat', '/etc/resolv.conf');
    assert.match(conf, /nameserver 10\.77\.1\.1\nnameserver fd00:d6:0:7::1\n/);
    await ok('rm', '-f', 'g1c');
    const py = `
import os, json, docker
c = docker.from_env()
n = c.networks.create('g3')
print(json.dumps(c.networks.get(n.id).attrs['IPAM']['Config']))
n.remove()
`;
    const r = await runCmd('python3', ['-c', py], { env: { DOCKER_HOST: b.host, PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 60000 });
    assert.equal(r.code, 0, show(r));
    const cfg = JSON.parse(r.stdout);
    assert.equal(cfg.length, 1);
    assert.match(cfg[0].Subnet, /^\d+\.\d+\.\d+\.0\/\d+$/);
    assert.equal(cfg[0].Gateway, cfg[0].Subnet.replace(/0\/\d+$/, '1'), 'a chosen subnet shows its gateway');
    await ok('network', 'rm', 'g1', 'g2');
  });
});
