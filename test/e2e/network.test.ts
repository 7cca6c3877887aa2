// Networking through the docker CLI 28.2.2 against a real berthd (issue 5): the default bridge, host,
// none and container: modes, user networks with IPAM, embedded DNS, isolation, published ports, and
// cleanup of links, namespaces and nftables rules. Traffic goes only to loopback and to the addresses of
// containers on networks this file's daemon made (its bridge and subnets come from the harness).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { api, waitFor, sleep, dockerCli, httpGet } from '../helpers/clients';
import { freePort } from '../helpers/registry';

const b = berthdForFile({ fixtures: ['busybox'] });

const { ok, fails } = dockerCli(() => b);

const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];

/** Host links that are ports of the given bridges. */
function portsOf(bridges: string[]): string[] {
  const out = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return out.split('\n').map((l) => /^\d+:\s+([^:@\s]+)(?:@\S+)?:.* master (\S+)/.exec(l)).filter((m) => m && bridges.includes(m[2])).map((m) => m![1]);
}

function linkExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ruleset(): string {
  return execFileSync('nft', ['list', 'table', 'ip', b.net.table], { encoding: 'utf8' });
}

const netnsFiles = () => {
  try {
    return readdirSync(path.join(b.execRoot, 'netns'));
  } catch {
    return [];
  }
};

function tcpConnect(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let data = '';
    const t = setTimeout(() => { s.destroy(); reject(new Error(`timeout connecting to ${host}:${port}`)); }, timeoutMs);
    s.on('data', (d) => { data += d.toString(); });
    s.on('end', () => { clearTimeout(t); resolve(data); });
    s.on('error', (e) => { clearTimeout(t); reject(e); });
  });
}

describe('the default bridge network', () => {
  test('a container gets a veth on the bridge, an address, a route, Docker\'s MAC, and NetworkSettings', async () => {
    const out = await ok('run', '--rm', 'busybox', 'sh', '-c', 'ip -o -4 addr show eth0; ip route; cat /etc/hosts; cat /etc/hostname');
    const m = /inet (10\.213\.\d+\.(\d+))\/24/.exec(out);
    assert.ok(m, out);
    assert.ok(out.startsWith('2: eth0') || /eth0/.test(out), out);
    assert.match(out, new RegExp(`default via ${b.net.gateway.replace(/\./g, '\\.')} dev eth0`));
    assert.match(out, new RegExp(`${m![1].replace(/\./g, '\\.')}\\t[0-9a-f]{12}`));

    await ok('run', '-d', '--name', 'web', 'busybox', 'sh', '-c', 'while true; do echo hello-from-web | nc -l -p 5000; done');
    const c = await inspect('web');
    const ns = c.NetworkSettings;
    assert.match(ns.IPAddress, /^10\.213\.\d+\.\d+$/);
    assert.equal(ns.Gateway, b.net.gateway);
    assert.equal(ns.IPPrefixLen, 24);
    assert.equal(ns.MacAddress, '02:42:' + ns.IPAddress.split('.').map((x: string) => Number(x).toString(16).padStart(2, '0')).join(':'));
    assert.equal(ns.SandboxKey, path.join(b.execRoot, 'netns', c.Id.slice(0, 12)));
    assert.equal(ns.Networks.bridge.IPAddress, ns.IPAddress);
    assert.equal(ns.Networks.bridge.EndpointID.length, 64);
    assert.equal(c.HostConfig.NetworkMode, 'bridge');
    assert.equal(portsOf([b.net.bridge]).length, 1);
    // The host reaches it directly on its bridge address.
    const got = await waitFor('web answers', async () => (await tcpConnect(ns.IPAddress, 5000).catch(() => '')) || undefined);
    assert.match(got, /hello-from-web/);
    // Another container on the bridge reaches it too.
    assert.match(await ok('run', '--rm', 'busybox', 'nc', '-w', '2', ns.IPAddress, '5000'), /hello-from-web/);
    const ls = JSON.parse((await ok('ps', '--format', '{{json .}}', '--filter', 'name=web')).trim());
    assert.equal(ls.Networks, 'bridge');
    // Outbound NAT for the subnet, and nothing else of ours on the bridge after removal.
    assert.match(ruleset(), new RegExp(`ip saddr ${b.net.subnet.replace(/\./g, '\\.')} oifname != "${b.net.bridge}" masquerade`));
    await ok('rm', '-f', 'web');
    assert.deepEqual(portsOf([b.net.bridge]), []);
    assert.deepEqual(netnsFiles(), []);
  });

  test('addresses come back to the pool; a stopped container shows no address', async () => {
    await ok('run', '-d', '--name', 'a1', 'busybox', 'sleep', '100');
    const ip1 = (await inspect('a1')).NetworkSettings.IPAddress;
    await ok('stop', '-t', '0', 'a1');
    const st = await inspect('a1');
    assert.equal(st.NetworkSettings.IPAddress, '');
    assert.equal(st.NetworkSettings.SandboxKey, '');
    assert.deepEqual(portsOf([b.net.bridge]), []);
    await ok('run', '-d', '--name', 'a2', 'busybox', 'sleep', '100');
    assert.equal((await inspect('a2')).NetworkSettings.IPAddress, ip1);
    await ok('rm', '-f', 'a1', 'a2');
  });

  test('--hostname, --dns, --dns-search, --dns-option, --add-host (host-gateway) and --mac-address', async () => {
    const out = await ok('run', '--rm', '--hostname', 'h1', '--dns', '10.213.0.53', '--dns-search', 'example.test', '--dns-option', 'ndots:2',
      '--add-host', 'gw:host-gateway', '--add-host', 'x.test:10.9.8.7', '--mac-address', '02:42:aa:bb:cc:dd', 'busybox',
      'sh', '-c', 'cat /etc/resolv.conf /etc/hosts /etc/hostname; ip -o link show eth0');
    assert.match(out, /nameserver 10\.213\.0\.53/);
    assert.match(out, /search example\.test/);
    assert.match(out, /options ndots:2/);
    assert.match(out, new RegExp(`${b.net.gateway.replace(/\./g, '\\.')}\\tgw`));
    assert.match(out, /10\.9\.8\.7\tx\.test/);
    assert.match(out, /\th1\n/);
    assert.match(out, /^h1$/m);
    assert.match(out, /02:42:aa:bb:cc:dd/);
  });

  test('host, none and container:<name>', async () => {
    // The host's own network namespace (its inode, not a count of links: other daemons on the host add and
    // remove veths meanwhile).
    const inHost = await ok('run', '--rm', '--network', 'host', 'busybox', 'readlink', '/proc/self/ns/net');
    assert.equal(inHost.trim(), readlinkSync(`/proc/${b.proc.pid}/ns/net`), inHost);
    const none = await ok('run', '--rm', '--network', 'none', 'busybox', 'ip', '-o', 'link');
    assert.deepEqual(none.split('\n').filter(Boolean).map((l) => l.split(':')[1].trim()), ['lo']);
    await ok('run', '-d', '--name', 'sb', 'busybox', 'sleep', '100');
    const ip = (await inspect('sb')).NetworkSettings.IPAddress;
    const joined = await ok('run', '--rm', '--network', 'container:sb', 'busybox', 'ip', '-o', '-4', 'addr', 'show', 'eth0');
    assert.match(joined, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`));
    await ok('rm', '-f', 'sb');
    assert.deepEqual(netnsFiles(), []);
  });
});

describe('user-defined networks', () => {
  test('create with IPAM options, inspect, ls filters, rm', async () => {
    const sub = b.net.pool.replace(/\.0\/24$/, '.64/28');
    const base = sub.replace(/\.64\/28$/, '');
    await ok('network', 'create', '--subnet', sub, '--ip-range', `${base}.72/29`, '--gateway', `${base}.65`, '--aux-address', `r=${base}.72`,
      '--label', 'team=blue', '--internal', '--attachable', '-o', `com.docker.network.bridge.name=${b.net.bridge}x`, 'n-opts');
    const n = JSON.parse(await ok('network', 'inspect', 'n-opts'))[0];
    assert.deepEqual(n.IPAM.Config, [{ Subnet: sub, IPRange: `${base}.72/29`, Gateway: `${base}.65`, AuxiliaryAddresses: { r: `${base}.72` } }]);
    assert.equal(n.Internal, true);
    assert.equal(n.Attachable, true);
    assert.deepEqual(n.Labels, { team: 'blue' });
    assert.equal(n.Driver, 'bridge');
    assert.ok(linkExists(`${b.net.bridge}x`));
    assert.equal((await ok('network', 'ls', '--filter', 'label=team=blue', '--format', '{{.Name}}')).trim(), 'n-opts');
    assert.equal((await ok('network', 'ls', '--filter', 'type=custom', '-q')).trim().split('\n').length, 1);
    await ok('run', '-d', '--name', 'o1', '--network', 'n-opts', 'busybox', 'sleep', '100');
    assert.equal((await inspect('o1')).NetworkSettings.Networks['n-opts'].IPAddress, `${base}.73`);
    await fails(/has active endpoints/, 'network', 'rm', 'n-opts');
    await fails(/already exists/, 'network', 'create', 'n-opts');
    await fails(/pre-defined network/, 'network', 'rm', 'bridge');
    // (The CLI takes any 404 from create for a missing image and tries a pull; the API says what it is.)
    const r404 = await api(b, 'POST', '/containers/create', { body: { Image: 'busybox', HostConfig: { NetworkMode: 'nosuchnet' } } });
    assert.equal(r404.status, 404);
    assert.equal(r404.json().message, 'network nosuchnet not found');
    await ok('rm', '-f', 'o1');
    await ok('network', 'rm', 'n-opts');
    assert.ok(!linkExists(`${b.net.bridge}x`));
    assert.doesNotMatch(ruleset(), new RegExp(`${b.net.bridge}x`));
  });

  test('names, aliases and short ids resolve through the embedded DNS; --ip; isolation between networks', async () => {
    const subA = b.net.pool.replace(/\.0\/24$/, '.32/28');
    await ok('network', 'create', '--subnet', subA, 'na');
    await ok('network', 'create', 'nb');
    const na = JSON.parse(await ok('network', 'inspect', 'na'))[0];
    // A subnet given without a gateway is shown as given (Docker's IPAM.Config); the gateway is its first address.
    assert.deepEqual(na.IPAM.Config, [{ Subnet: subA }]);
    const naGateway = subA.replace(/\.32\/28$/, '.33');
    const fixed = subA.replace(/\.32\/28$/, '.42');
    await fails(/user configured subnets/, 'run', '--rm', '--network', 'nb', '--ip', subA.replace(/\.32\/28$/, '.5'), 'busybox', 'true');
    await ok('run', '-d', '--name', 'srv', '--network', 'na', '--ip', fixed, '--network-alias', 'db', 'busybox',
      'sh', '-c', 'while true; do echo from-srv | nc -l -p 6000; done');
    const srv = await inspect('srv');
    assert.equal(srv.NetworkSettings.Networks.na.IPAddress, fixed);
    assert.deepEqual(srv.NetworkSettings.Networks.na.Aliases, ['db']);
    const q = await ok('run', '--rm', '--network', 'na', 'busybox', 'sh', '-c',
      `cat /etc/resolv.conf; nslookup srv; nslookup db; nslookup ${srv.Id.slice(0, 12)}; nc -w 2 srv 6000`);
    assert.match(q, new RegExp(`nameserver ${naGateway.replace(/\./g, '\\.')}`));
    assert.equal(q.split(fixed).length - 1 >= 3, true, q);
    assert.match(q, /from-srv/);
    // From another network: no way through.
    const r = await b.docker(['run', '--rm', '--network', 'nb', 'busybox', 'nc', '-w', '2', fixed, '6000']);
    assert.doesNotMatch(r.stdout, /from-srv/);
    const insp = JSON.parse(await ok('network', 'inspect', 'na'))[0];
    assert.equal(insp.Containers[srv.Id].Name, 'srv');
    assert.equal(insp.Containers[srv.Id].IPv4Address, `${fixed}/28`);
    await ok('rm', '-f', 'srv');
    await ok('network', 'rm', 'na', 'nb');
  });

  test('connect and disconnect a running container; prune', async () => {
    await ok('network', 'create', 'nc1');
    await ok('network', 'create', '--label', 'keep=no', 'unused');
    await ok('run', '-d', '--name', 'cc', 'busybox', 'sleep', '100');
    await ok('network', 'connect', '--alias', 'cca', 'nc1', 'cc');
    const c = await inspect('cc');
    assert.deepEqual(Object.keys(c.NetworkSettings.Networks).sort(), ['bridge', 'nc1']);
    const ip = c.NetworkSettings.Networks.nc1.IPAddress;
    const seen = await ok('run', '--rm', '--network', 'container:cc', 'busybox', 'ip', '-o', '-4', 'addr');
    assert.match(seen, new RegExp(`eth1\\s+inet ${ip.replace(/\./g, '\\.')}/28`));
    assert.match(await ok('run', '--rm', '--network', 'nc1', 'busybox', 'nslookup', 'cca'), new RegExp(ip.replace(/\./g, '\\.')));
    await ok('network', 'disconnect', 'nc1', 'cc');
    assert.deepEqual(Object.keys((await inspect('cc')).NetworkSettings.Networks), ['bridge']);
    assert.doesNotMatch(await ok('run', '--rm', '--network', 'container:cc', 'busybox', 'ip', '-o', 'link'), /eth1/);
    const pruned = await ok('network', 'prune', '-f');
    assert.match(pruned, /unused/);
    assert.match(pruned, /nc1/);
    await ok('rm', '-f', 'cc');
  });
});

describe('the default route among several networks (GwPriority)', () => {
  test('the highest gw-priority gives it, at start, on connect and after the gateway network goes', async () => {
    for (const n of ['gp1', 'gp2', 'gp3']) await ok('network', 'create', n);
    const gateway = async (n: string) => (await inspect(n)).IPAM.Config[0].Gateway as string;
    const route = async () => (await ok('exec', 'gpc', 'ip', 'route')).split('\n').find((l) => l.startsWith('default')) ?? '';
    await ok('run', '-d', '--name', 'gpc', '--network', 'name=gp1', '--network', 'name=gp2,gw-priority=10', 'busybox', 'sleep', '600');
    const nets = (await inspect('gpc')).NetworkSettings.Networks;
    assert.equal(nets.gp1.GwPriority, 0);
    assert.equal(nets.gp2.GwPriority, 10);
    assert.match(await route(), new RegExp(`^default via ${(await gateway('gp2')).replace(/\./g, '\\.')} `));
    // A network of a higher priority takes it over; one of a lower does not.
    await ok('network', 'connect', '--gw-priority', '20', 'gp3', 'gpc');
    assert.match(await route(), new RegExp(`^default via ${(await gateway('gp3')).replace(/\./g, '\\.')} `));
    await ok('network', 'disconnect', 'gp3', 'gpc');
    await waitFor('the next network in line', async () => (await route()).startsWith(`default via ${await gateway('gp2')} `) || undefined);
    await ok('network', 'disconnect', 'gp2', 'gpc');
    await waitFor('the last network', async () => (await route()).startsWith(`default via ${await gateway('gp1')} `) || undefined);
    await ok('rm', '-f', 'gpc');
    await ok('network', 'rm', 'gp1', 'gp2', 'gp3');
  });

  // IPv6 networks are tested in ipv6.test.ts, with berthd in a namespace of its own (an IPv6 network turns
  // on IPv6 forwarding, which this file's daemon must not do to the machine).
  test('a network with neither IPv4 nor IPv6, and --ip6 on the default bridge, are refused', async () => {
    await fails(/needs IPv4 or IPv6/, 'network', 'create', '--ipv4=false', 'v4less');
    await fails(/supported on user defined networks only/, 'run', '--rm', '--ip6', 'fd00::5', 'busybox', 'true');
    assert.doesNotMatch(await ok('network', 'ls', '--format', '{{.Name}}'), /v4less/);
  });
});

describe('isolation inside a network', () => {
  test('com.docker.network.bridge.enable_icc=false keeps the containers of a network apart', async () => {
    await ok('network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', 'noicc');
    await ok('run', '-d', '--name', 'i1', '--network', 'noicc', 'busybox', 'sh', '-c', 'while true; do echo from-i1 | nc -l -p 7000; done');
    const ip = (await inspect('i1')).NetworkSettings.Networks.noicc.IPAddress;
    await waitFor('i1 listens', async () => (await tcpConnect(ip, 7000).catch(() => '')) || undefined);
    const r = await b.docker(['run', '--rm', '--network', 'noicc', 'busybox', 'nc', '-w', '2', ip, '7000']);
    assert.doesNotMatch(r.stdout, /from-i1/);
    assert.match(execFileSync('nft', ['list', 'table', 'bridge', b.net.table], { encoding: 'utf8' }), /iifname .* oifname .* drop/);
    await ok('rm', '-f', 'i1');
    await ok('network', 'rm', 'noicc');
  });
});

describe('published ports', () => {
  test('-p 127.0.0.1:H:C, a random port, docker port, reachable on 127.0.0.1; a taken port fails cleanly', async () => {
    const hp = await freePort();
    await ok('run', '-d', '--name', 'pweb', '-p', `127.0.0.1:${hp}:80`, '-p', '81', '--hostname', 'pweb-host', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
    const got = await waitFor('published port answers', async () => (await httpGet(`http://127.0.0.1:${hp}/hostname`).catch(() => undefined)));
    assert.equal(got.status, 200);
    assert.equal(got.body.trim(), 'pweb-host');
    const ports = await ok('port', 'pweb');
    assert.match(ports, new RegExp(`80/tcp -> 127\\.0\\.0\\.1:${hp}`));
    assert.match(ports, /81\/tcp -> 0\.0\.0\.0:\d+/);
    // The binding is an element of the loopback DNAT map: host address . proto . port : container . port.
    assert.match(ruleset(), new RegExp(`127\\.0\\.0\\.1 \\. tcp \\. ${hp} : ${(await inspect('pweb')).NetworkSettings.IPAddress.replace(/\./g, '\\.')} \\. 80`));
    // The same port again: Docker's error, and nothing of the second container is left running or mapped.
    await fails(/port is already allocated|address already in use/, 'run', '-d', '--name', 'pweb2', '-p', `127.0.0.1:${hp}:80`, 'busybox', 'sleep', '100');
    const second = await inspect('pweb2');
    assert.equal(second.State.Running, false);
    assert.equal(portsOf([b.net.bridge]).length, 1);
    await ok('rm', '-f', 'pweb', 'pweb2');
    assert.doesNotMatch(ruleset(), /elements/, 'no published port is left in the maps');
    // A port taken by another program on the host.
    const holder = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    const taken = (holder.address() as net.AddressInfo).port;
    await fails(/address already in use/, 'run', '--rm', '-p', `127.0.0.1:${taken}:80`, 'busybox', 'true');
    holder.close();
    assert.deepEqual(portsOf([b.net.bridge]), []);
  });
});

describe('cleanup after kill -9 of berthd', () => {
  test('veths and namespaces of containers that ended while berthd was down are swept', async () => {
    await ok('network', 'create', 'nk');
    await ok('run', '-d', '--name', 'k1', '--network', 'nk', 'busybox', 'sleep', '1');
    await ok('run', '-d', '--name', 'k2', 'busybox', 'sleep', '100');
    const bridges = [b.net.bridge, `br-${JSON.parse(await ok('network', 'inspect', 'nk'))[0].Id.slice(0, 12)}`];
    await b.kill9();
    await sleep(1500);
    await b.restart();
    assert.equal(portsOf(bridges).length, 1);
    assert.equal(netnsFiles().length, 1);
    assert.equal((await inspect('k2')).NetworkSettings.Networks.bridge.IPAddress !== '', true);
    await ok('rm', '-f', 'k1', 'k2');
    await ok('network', 'rm', 'nk');
    assert.deepEqual(portsOf(bridges), []);
    assert.deepEqual(netnsFiles(), []);
    assert.ok(!linkExists(bridges[1]));
  });
});
