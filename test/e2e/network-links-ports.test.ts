// Networking beyond the basics, through the docker CLI against a real berthd (issue 5): legacy --link on
// the default bridge and on a user network, the embedded DNS server over TCP (from a container: it answers
// nobody else), host port ranges, published
// ports reached from other containers through the host's address (the gateway of this daemon's own test
// bridge), and published ports that keep working while berthd is down and after it comes back.
// Traffic goes only to loopback and to addresses on the bridges this file's daemon made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { berthdForFile } from '../helpers/file';
import { waitFor, show, dockerCli, httpGet } from '../helpers/clients';
import { dnsOverTcp, dnsOverTcpIn } from '../helpers/dns';

const b = berthdForFile({ fixtures: ['busybox'] });

const { ok, fails } = dockerCli(() => b);

const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];

/** `n` consecutive ports nobody listens on now (best effort: asked from the kernel, then let go). */
async function freePorts(n: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    if (first + n > 65535) continue;
    const free = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(first + i, '0.0.0.0', () => s.close(() => resolve(true)));
    })));
    if (free.every(Boolean)) return first;
  }
  throw new Error('no free port range');
}

test('--link on the default bridge: hosts entry, environment, inspect; unknown and stopped targets', async () => {
  await ok('run', '-d', '--name', 'lk-db', '-e', 'DB_USER=admin', '--expose', '5432', '--expose', '8080/udp', 'busybox', 'sleep', '1000');
  const dbIp = (await inspect('lk-db')).NetworkSettings.Networks.bridge.IPAddress;
  const dbHost = (await inspect('lk-db')).Config.Hostname;
  assert.match(dbIp, /^\d+\.\d+\.\d+\.\d+$/);
  const out = await ok('run', '--name', 'lk-web', '--link', 'lk-db:webdb', 'busybox', 'sh', '-c', 'env; echo ---; cat /etc/hosts; echo ---; ping -c 1 -W 3 webdb >/dev/null && echo reached');
  const [env, hosts, reach] = out.split('---\n');
  const vars = Object.fromEntries(env.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  assert.equal(vars.WEBDB_NAME, '/lk-web/webdb');
  assert.equal(vars.WEBDB_PORT, `tcp://${dbIp}:5432`);
  assert.equal(vars.WEBDB_PORT_5432_TCP, `tcp://${dbIp}:5432`);
  assert.equal(vars.WEBDB_PORT_5432_TCP_ADDR, dbIp);
  assert.equal(vars.WEBDB_PORT_5432_TCP_PORT, '5432');
  assert.equal(vars.WEBDB_PORT_5432_TCP_PROTO, 'tcp');
  assert.equal(vars.WEBDB_PORT_8080_UDP, `udp://${dbIp}:8080`);
  assert.equal(vars.WEBDB_ENV_DB_USER, 'admin');
  assert.equal(vars.WEBDB_ENV_PATH, undefined);
  assert.match(hosts, new RegExp(`^${dbIp.replace(/\./g, '\\.')}\\twebdb ${dbHost} lk-db$`, 'm'));
  assert.equal(reach.trim(), 'reached');
  assert.deepEqual((await inspect('lk-web')).HostConfig.Links, ['/lk-db:/lk-web/webdb']);
  // The alias defaults to the name.
  const plain = await ok('run', '--rm', '--link', 'lk-db', 'busybox', 'sh', '-c', 'echo $LK_DB_NAME; grep -c lk-db /etc/hosts');
  assert.match(plain, /^\/[a-z_]+\/lk-db\n1\n$/);

  await fails(/could not get container for nosuch/, 'run', '--rm', '--link', 'nosuch:x', 'busybox', 'true');
  await fails(/host type networking can't be used with links/, 'create', '--network', 'host', '--link', 'lk-db:x', 'busybox', 'true');
  await ok('stop', '-t', '0', 'lk-db');
  await fails(/Cannot link to a non running container: \/lk-db AS \/lk-web\/webdb/, 'start', 'lk-web');
  await ok('rm', '-f', 'lk-web', 'lk-db');
});

test('--link on a user network: the alias resolves for the linking container only; DNS over TCP', async () => {
  await ok('network', 'create', 'lk-net');
  const gw = JSON.parse(await ok('network', 'inspect', 'lk-net'))[0].IPAM.Config[0].Gateway as string;
  await ok('run', '-d', '--name', 'lk-srv', '--network', 'lk-net', 'busybox', 'sleep', '1000');
  await ok('run', '-d', '--name', 'lk-cli', '--network', 'lk-net', '--link', 'lk-srv:backend', 'busybox', 'sleep', '1000');
  await ok('run', '-d', '--name', 'lk-other', '--network', 'lk-net', 'busybox', 'sleep', '1000');
  const srvIp = (await inspect('lk-srv')).NetworkSettings.Networks['lk-net'].IPAddress;
  const viaLink = await ok('exec', 'lk-cli', 'nslookup', 'backend');
  assert.ok(viaLink.includes(srvIp), viaLink);
  const r = await b.docker(['exec', 'lk-other', 'nslookup', 'backend']);
  assert.ok(!r.stdout.includes(srvIp), show(r));

  // The same server over TCP, from a container of the network; the host itself gets no answer (the
  // server is its containers' only).
  const answers = await dnsOverTcpIn((await inspect('lk-other')).NetworkSettings.SandboxKey, gw, ['lk-srv', 'LK-CLI']);
  await assert.rejects(dnsOverTcp(gw, ['lk-srv'], 1500), /timeout|ECONNREFUSED|ECONNRESET/);
  assert.deepEqual(answers[0], { rcode: 0, ips: [srvIp] });
  assert.deepEqual(answers[1].ips, [(await inspect('lk-cli')).NetworkSettings.Networks['lk-net'].IPAddress]);
  await ok('rm', '-f', 'lk-srv', 'lk-cli', 'lk-other');
  await ok('network', 'rm', 'lk-net');
});

test('host port ranges: the first free port of the range; a full range fails and leaves nothing', async () => {
  const lo = await freePorts(3);
  const holder = net.createServer().listen(lo, '127.0.0.1');
  await new Promise((r) => holder.once('listening', r));
  try {
    await ok('run', '-d', '--name', 'pr-a', '-p', `127.0.0.1:${lo}-${lo + 2}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
    assert.equal((await ok('port', 'pr-a', '80')).trim(), `127.0.0.1:${lo + 1}`);
    await ok('run', '-d', '--name', 'pr-b', '-p', `127.0.0.1:${lo}-${lo + 2}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
    assert.equal((await ok('port', 'pr-b', '80')).trim(), `127.0.0.1:${lo + 2}`);
    const got = await waitFor('range port answers', async () => (await httpGet(`http://127.0.0.1:${lo + 2}/hostname`).catch(() => undefined)));
    assert.equal(got.body.trim(), (await inspect('pr-b')).Config.Hostname);
    await fails(/all ports are allocated/, 'run', '-d', '--name', 'pr-c', '-p', `127.0.0.1:${lo}-${lo + 2}:80`, 'busybox', 'sleep', '100');
    assert.equal((await inspect('pr-c')).State.Running, false);
    assert.equal((await ok('port', 'pr-c')).trim(), '');
  } finally {
    holder.close();
    await b.docker(['rm', '-f', 'pr-a', 'pr-b', 'pr-c']);
  }
});

test('a published port from other containers through the host address, and across berthd restarts', async () => {
  const hp = await freePorts(1);
  await ok('run', '-d', '--name', 'pp-srv', '-p', `${hp}:80`, '--hostname', 'pp-srv-host', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
  await waitFor('published port answers', async () => (await httpGet(`http://127.0.0.1:${hp}/hostname`).catch(() => undefined)));
  const gw = b.net.gateway;
  // From a container on the same bridge, through the bridge's gateway (a host address).
  const same = await ok('run', '--rm', 'busybox', 'timeout', '10', 'wget', '-q', '-O', '-', `http://${gw}:${hp}/hostname`);
  assert.equal(same.trim(), 'pp-srv-host');
  // From a container on another network.
  await ok('network', 'create', 'pp-net');
  const other = await ok('run', '--rm', '--network', 'pp-net', 'busybox', 'timeout', '10', 'wget', '-q', '-O', '-', `http://${gw}:${hp}/hostname`);
  assert.equal(other.trim(), 'pp-srv-host');

  // berthd stopped: the port still answers (the kernel's rules stay); started again: still, and still mapped.
  await b.stop();
  assert.equal((await httpGet(`http://127.0.0.1:${hp}/hostname`)).body.trim(), 'pp-srv-host');
  await b.restart();
  assert.equal((await httpGet(`http://127.0.0.1:${hp}/hostname`)).body.trim(), 'pp-srv-host');
  assert.equal((await ok('port', 'pp-srv', '80')).trim().split('\n')[0], `0.0.0.0:${hp}`);
  // After kill -9 too; and the port is still held against others.
  await b.kill9();
  assert.equal((await httpGet(`http://127.0.0.1:${hp}/hostname`)).body.trim(), 'pp-srv-host');
  await b.restart();
  assert.equal((await httpGet(`http://127.0.0.1:${hp}/hostname`)).body.trim(), 'pp-srv-host');
  await fails(/port is already allocated|address already in use/, 'run', '-d', '--name', 'pp-2', '-p', `${hp}:80`, 'busybox', 'sleep', '100');
  await ok('rm', '-f', 'pp-srv', 'pp-2');
  await ok('network', 'rm', 'pp-net');
});
