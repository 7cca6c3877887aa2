// berth on a host that has run Docker (issue 11): docker0 holds 172.17.0.1/16, the iptables FORWARD chain
// drops by default with a DOCKER-USER chain first, bridged traffic goes through iptables (br_netfilter),
// and another host sits on the outside link. All of it is built in namespaces of this test's own
// (test/helpers/dockerhost.ts); berthd runs in the host namespace with its defaults, and the networking
// commands of the seeds' walkthroughs must work there as on a clean host. Then what must NOT work: the
// other host reaching unpublished ports, ports published on 127.0.0.1, or the embedded DNS server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, runCmd, type Berthd } from '../helpers/berthd';
import { loadFixtures, waitFor, show } from '../helpers/clients';
import { makeDockerHost, forwardRules, OUTSIDE, type DockerHost } from '../helpers/dockerhost';

let dh: DockerHost;
let b: Berthd;
let dir: string;

before(async () => {
  dh = await makeDockerHost();
  b = await startBerthd({ netns: dh.file });
  await loadFixtures(b, ['busybox']);
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-dockerhost-'));
  // The other host serves a page, so that containers' outbound traffic can be seen to arrive.
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'from-the-other-host\n');
  dh.peerSpawn('busybox', ['httpd', '-f', '-p', `${OUTSIDE.peer}:80`, '-h', path.join(dir, 'www')]);
});

after(async () => {
  await b?.destroy();
  await dh?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function ok(...args: string[]): Promise<string> {
  const r = await b.docker(args, { timeoutMs: 60000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

/** A busybox web server answering `body` on port 80. */
const WEB = (body: string) => ['sh', '-c', `mkdir -p /www && echo ${body} > /www/index.html && exec httpd -f -p 80 -h /www`];
/** A shell line that GETs / of `host` (busybox 1.35's wget crashes on this machine: nc is the client). */
const GET = (host: string, port = 80, nc = 'nc') => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | ${nc} -w 2 ${host} ${port}`;
const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];
const ipOf = async (name: string, net = 'bridge') => (await inspect(name)).NetworkSettings.Networks[net].IPAddress as string;

/** GET from inside the host namespace / from the other host (bounded). */
const hostGet = (host: string, port: number) => dh.exec('sh', ['-c', `timeout 5 ${GET(host, port, 'busybox nc')}`], 15000);
const peerGet = (host: string, port: number) => dh.peerExec('sh', ['-c', `timeout 4 ${GET(host, port, 'busybox nc')}`], 15000);

/** Retries until a server that just started answers (bounded). */
const eventually = (what: string, fn: () => Promise<{ code: number; stdout: string }>, want: RegExp) =>
  waitFor(what, async () => {
    const r = await fn();
    return r.code === 0 && want.test(r.stdout) ? r.stdout : undefined;
  }, 15000, 200);

test('the default bridge takes a subnet docker0 does not hold; berth\'s chain comes right after DOCKER-USER', async () => {
  const net = JSON.parse(await ok('network', 'inspect', 'bridge'))[0];
  const subnet = net.IPAM.Config[0].Subnet as string;
  assert.notEqual(subnet, '172.17.0.0/16');
  assert.equal(subnet, '172.18.0.0/16', 'the next of Docker\'s default pools');
  const info = JSON.parse(await ok('info', '--format', '{{json .}}'));
  assert.equal(info.Warnings, null, 'nothing overlaps');
  const fwd = await forwardRules(dh);
  assert.equal(fwd[0], '-A FORWARD -j DOCKER-USER', fwd.join('\n'));
  assert.equal(fwd[1], '-A FORWARD -j BERTH-FWD-berth0', fwd.join('\n'));
  const chain = (await dh.iptablesCmd(['-S', 'BERTH-FWD-berth0'])).stdout;
  assert.match(chain, /-A BERTH-FWD-berth0 -i berth0 -j ACCEPT/);
  // The fixture's own policy is untouched.
  assert.match((await dh.iptablesCmd(['-S', 'FORWARD'])).stdout, /^-P FORWARD DROP$/m);
});

test('default bridge: ping between containers, --link, -p 127.0.0.1 and a port range, -P, outbound to the other host', async (t) => {
  t.after(() => b.docker(['rm', '-f', 'web', 'r1', 'r2', 'pa']));
  await ok('run', '-d', '--name', 'web', '-p', '127.0.0.1:8080:80', ...['busybox', ...WEB('web-on-bridge')]);
  const webIp = await ipOf('web');
  assert.match(webIp, /^172\.18\./);
  assert.match(await ok('run', '--rm', 'busybox', 'ping', '-c', '1', '-W', '3', webIp), /1 packets received/);
  assert.match(await ok('run', '--rm', '--link', 'web:w', 'busybox', 'sh', '-c', `for i in 1 2 3 4 5; do ${GET('w')} | grep web-on-bridge && exit 0; sleep 0.3; done; exit 1`), /web-on-bridge/);
  // -p 127.0.0.1:8080:80: the host reaches it on loopback …
  await eventually('127.0.0.1:8080 from the host', () => hostGet('127.0.0.1', 8080), /web-on-bridge/);
  // … and the other host does not, neither on the host's address nor with the container's own address.
  assert.notEqual((await peerGet(OUTSIDE.host, 8080)).code, 0, 'a port on 127.0.0.1 is the host\'s only');
  assert.notEqual((await peerGet(webIp, 80)).code, 0, 'an unpublished port is not reachable from another host');
  // Not only because of this host's FORWARD policy: with it ACCEPT, berth's own rules still keep it out.
  await dh.iptablesCmd(['-P', 'FORWARD', 'ACCEPT']);
  try {
    assert.notEqual((await peerGet(webIp, 80)).code, 0, 'berth drops what is not published, whatever the host\'s policy');
  } finally {
    await dh.iptablesCmd(['-P', 'FORWARD', 'DROP']);
  }
  // A crafted packet: the other host sends to 127.0.0.1:8080 through the host (its own loopback routed out
  // of its eth0), and the host has route_localnet on its outside link, so the kernel does not drop it as a
  // martian (CVE-2020-8558). berth neither DNATs it nor lets it reach the host's loopback.
  await dh.exec('sysctl', ['-qw', 'net.ipv4.conf.out0.route_localnet=1']);
  for (const args of [['rule', 'add', 'pref', '100', 'lookup', 'local'], ['rule', 'del', 'pref', '0', 'lookup', 'local'],
    ['rule', 'add', 'pref', '10', 'to', '127.0.0.1', 'lookup', '50'], ['route', 'add', '127.0.0.1/32', 'via', OUTSIDE.host, 'dev', 'eth0', 'table', '50', 'onlink']]) {
    const r = await dh.peerExec('ip', args);
    assert.equal(r.code, 0, show(r));
  }
  await dh.peerExec('sysctl', ['-qw', 'net.ipv4.conf.eth0.route_localnet=1']);
  const crafted = await peerGet('127.0.0.1', 8080);
  assert.doesNotMatch(crafted.stdout, /web-on-bridge/, 'a port published on 127.0.0.1 is not reachable by a crafted packet');
  assert.notEqual(crafted.code, 0, show(crafted));
  // A range: each container takes the first free port of it; both reachable from the other host.
  await ok('run', '-d', '--name', 'r1', '-p', '9200-9201:80', ...['busybox', ...WEB('range-one')]);
  await ok('run', '-d', '--name', 'r2', '-p', '9200-9201:80', ...['busybox', ...WEB('range-two')]);
  assert.equal((await ok('port', 'r1', '80')).trim().split('\n')[0], '0.0.0.0:9200');
  assert.equal((await ok('port', 'r2', '80')).trim().split('\n')[0], '0.0.0.0:9201');
  await eventually('9200 from the other host', () => peerGet(OUTSIDE.host, 9200), /range-one/);
  await eventually('9201 from the other host', () => peerGet(OUTSIDE.host, 9201), /range-two/);
  await eventually('9201 from the host', () => hostGet('127.0.0.1', 9201), /range-two/);
  // -P publishes the exposed port on a random one.
  await ok('run', '-d', '--name', 'pa', '--expose', '80', '-P', ...['busybox', ...WEB('publish-all')]);
  const hp = /:(\d+)$/.exec((await ok('port', 'pa', '80')).trim().split('\n')[0])![1];
  await eventually('-P from the other host', () => peerGet(OUTSIDE.host, Number(hp)), /publish-all/);
  // Outbound: the other host's server, through the host's outside address.
  assert.match(await ok('run', '--rm', 'busybox', 'sh', '-c', GET(OUTSIDE.peer)), /from-the-other-host/);
});

test('user networks by name and alias; connect then resolve; outbound; the DNS server answers its containers only', async () => {
  await ok('network', 'create', 'front');
  await ok('network', 'create', 'back');
  const sub = (n: string) => ok('network', 'inspect', n, '--format', '{{(index .IPAM.Config 0).Subnet}}').then((s) => s.trim());
  const [front, back] = [await sub('front'), await sub('back')];
  assert.notEqual(front, back);
  for (const s of [front, back]) assert.doesNotMatch(s, /^172\.1[78]\./, 'neither docker0\'s nor the default bridge\'s');
  await ok('run', '-d', '--name', 'api', '--network', 'back', '--network-alias', 'db', ...['busybox', ...WEB('api-on-back')]);
  await ok('run', '-d', '--name', 'app', '--network', 'front', 'busybox', 'sleep', '300');
  const fetch = (name: string) => b.docker(['exec', 'app', 'sh', '-c', GET(name)], { timeoutMs: 15000 });
  assert.notEqual((await fetch('api')).code, 0, 'not on back yet');
  await ok('network', 'connect', 'back', 'app');
  const apiId = (await inspect('api')).Id as string;
  for (const name of ['api', 'db', apiId.slice(0, 12)]) await eventually(`app resolves ${name} after connect`, () => fetch(name), /api-on-back/);
  // Leaving its first network: its nameserver moves to the one it still has.
  await ok('network', 'disconnect', 'front', 'app');
  await eventually('app resolves api after leaving front', () => fetch('api'), /api-on-back/);
  // Outbound from a user network.
  assert.match(await ok('exec', 'app', 'sh', '-c', GET(OUTSIDE.peer)), /from-the-other-host/);
  // The embedded DNS server of back answers nobody else: neither the other host nor the host itself.
  const gw = (await ok('network', 'inspect', 'back', '--format', '{{(index .IPAM.Config 0).Gateway}}')).trim();
  assert.match(await ok('exec', 'app', 'nslookup', 'api', gw), /Address.*\d+\.\d+\.\d+\.\d+/);
  assert.notEqual((await dh.peerExec('busybox', ['timeout', '4', 'nslookup', 'api', gw], 15000)).code, 0, 'the other host gets no answer');
  const fromHost = await dh.exec('busybox', ['timeout', '4', 'nslookup', 'api', gw], 15000);
  assert.ok(fromHost.code !== 0 || !fromHost.stdout.includes((await ipOf('api', 'back'))), show(fromHost));
  await ok('rm', '-f', 'api', 'app');
  await ok('network', 'rm', 'front', 'back');
});

test('compose: services reach each other by service name; down takes berth\'s rules for its network away', async () => {
  writeFileSync(path.join(dir, 'docker-compose.yml'), [
    'version: "3"',
    'services:',
    '  srv:',
    '    image: busybox',
    "    command: sh -c 'mkdir -p /www && echo from-srv > /www/index.html && exec httpd -f -p 80 -h /www'",
    '  cli:',
    '    image: busybox',
    "    command: sh -c 'until printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 2 srv 80 | grep from-srv; do sleep 0.2; done; sleep 100'",
    '    depends_on: [srv]',
    '',
  ].join('\n'));
  const compose = (...args: string[]) => runCmd('/usr/bin/docker-compose', ['-p', 'dh', '-f', path.join(dir, 'docker-compose.yml'), ...args],
    { env: { DOCKER_HOST: b.host, COMPOSE_INTERACTIVE_NO_CLI: '1' }, timeoutMs: 120000 });
  let r = await compose('up', '-d');
  assert.equal(r.code, 0, show(r));
  await waitFor('cli got the page of srv', async () => /from-srv/.test((await compose('logs', 'cli')).stdout) || undefined, 30000, 300);
  const bridge = `br-${JSON.parse(await ok('network', 'inspect', 'dh_default'))[0].Id.slice(0, 12)}`;
  assert.match((await dh.iptablesCmd(['-S', 'BERTH-FWD-berth0'])).stdout, new RegExp(`-i ${bridge} -j ACCEPT`));
  r = await compose('down', '-t', '1');
  assert.equal(r.code, 0, show(r));
  assert.doesNotMatch((await dh.iptablesCmd(['-S', 'BERTH-FWD-berth0'])).stdout, new RegExp(bridge));
});

test('a subnet asked for that the host already routes is used as asked, with a warning (log, docker info)', async () => {
  const r = await b.docker(['network', 'create', '--subnet', '172.17.128.0/24', 'clash']);
  assert.equal(r.code, 0, show(r));
  const info = JSON.parse(await ok('info', '--format', '{{json .}}'));
  assert.ok((info.Warnings ?? []).some((w: string) => w.includes('172.17.128.0/24') && w.includes('docker0')), JSON.stringify(info.Warnings));
  await ok('network', 'rm', 'clash');
  assert.equal(JSON.parse(await ok('info', '--format', '{{json .}}')).Warnings, null);
});

test('a clean stop takes berth\'s chains out of the host\'s firewall when no container runs', async () => {
  await b.stop();
  const fwd = await forwardRules(dh);
  assert.ok(!fwd.some((l) => l.includes('BERTH')), fwd.join('\n'));
  assert.notEqual((await dh.iptablesCmd(['-S', 'BERTH-FWD-berth0'])).code, 0, 'the chain is gone');
  await b.restart();
  assert.equal((await forwardRules(dh))[1], '-A FORWARD -j BERTH-FWD-berth0');
});

/** Another Docker host and a berthd in it, for one test (removed after it). */
async function otherHost(t: { after(fn: () => Promise<void>): void }, iptables: 'nft' | 'legacy', daemonJson?: object): Promise<{ dh: DockerHost; b: Berthd }> {
  const dh2 = await makeDockerHost({ iptables });
  let b2: Berthd | undefined;
  t.after(async () => {
    await b2?.destroy();
    await dh2.destroy();
  });
  dh2.peerSpawn('busybox', ['httpd', '-f', '-p', `${OUTSIDE.peer}:80`, '-h', path.join(dir, 'www')]);
  b2 = await startBerthd({ netns: dh2.file, daemonJson });
  await loadFixtures(b2, ['busybox']);
  return { dh: dh2, b: b2 };
}

test('a host whose iptables is the legacy one: the chains go there; a user network and outbound work', async (t) => {
  const { dh: dh2, b: b2 } = await otherHost(t, 'legacy');
  const run = async (...args: string[]) => {
    const r = await b2.docker(args, { timeoutMs: 60000 });
    assert.equal(r.code, 0, show(r));
    return r.stdout;
  };
  const fwd = (await dh2.iptablesCmd(['-S', 'FORWARD'])).stdout.split('\n').filter((l) => l.startsWith('-A '));
  assert.deepEqual(fwd.slice(0, 2), ['-A FORWARD -j DOCKER-USER', '-A FORWARD -j BERTH-FWD-berth0']);
  assert.doesNotMatch((await dh2.exec('nft', ['list', 'tables'])).stdout, /table ip filter/, 'nothing made in the nft-backed one');
  await run('network', 'create', 'lnet');
  await run('run', '-d', '--name', 'lsrv', '--network', 'lnet', ...['busybox', ...WEB('legacy-srv')]);
  assert.match(await run('run', '--rm', '--network', 'lnet', 'busybox', 'sh', '-c', `for i in 1 2 3 4 5; do ${GET('lsrv')} && exit 0; sleep 0.3; done; exit 1`), /legacy-srv/);
  assert.match(await run('run', '--rm', '--network', 'lnet', 'busybox', 'sh', '-c', GET(OUTSIDE.peer)), /from-the-other-host/);
  await run('rm', '-f', 'lsrv');
});

/** A UDP echo server for a container (busybox's nc has no UDP): the host's own Debian python3, run from
 *  the host's root bind-mounted read-only, answering each datagram with "echo:" and the datagram. */
const UDP_ECHO = (port: number) => ['-v', '/:/host:ro', 'busybox', 'chroot', '/host', '/usr/bin/python3', '-c',
  `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', ${port}))\n` +
  'while True:\n    d, a = s.recvfrom(2048)\n    s.sendto(b"echo:" + d, a)\n'];

/** Sends `text` to host:port over UDP from the host namespace until an answer comes (bounded) and prints it. */
const udpAsk = (dh2: DockerHost, host: string, port: number, text: string) => dh2.exec(process.execPath, ['-e',
  `const s = require('dgram').createSocket('udp4'); let n = 0;` +
  `const t = setInterval(() => { if (n++ > 20) { console.error('no answer'); process.exit(1); } s.send(${JSON.stringify(text)}, ${port}, ${JSON.stringify(host)}); }, 250);` +
  `s.on('message', (m) => { process.stdout.write(m.toString()); clearInterval(t); s.close(); });`], 15000);

test('daemon.json "iptables": false: berth leaves the firewall alone; a TCP and a UDP port are relayed by berthd', async (t) => {
  const { dh: dh2, b: b2 } = await otherHost(t, 'nft', { iptables: false });
  const r = await b2.docker(['run', '-d', '--name', 'relayed', '-p', '127.0.0.1:8080:80', ...['busybox', ...WEB('relayed-web')]]);
  assert.equal(r.code, 0, show(r));
  const u = await b2.docker(['run', '-d', '--name', 'relayed-udp', '-p', '127.0.0.1:5300:5300/udp', '-p', '5301:5300/udp', ...UDP_ECHO(5300)]);
  assert.equal(u.code, 0, show(u));
  for (const [host, port] of [['127.0.0.1', 5300], [OUTSIDE.host, 5301]] as const) {
    const got = await udpAsk(dh2, host, port, `hello-udp-${port}`);
    assert.equal(got.code, 0, show(got));
    assert.equal(got.stdout, `echo:hello-udp-${port}`);
  }
  await b2.docker(['rm', '-f', 'relayed-udp']);
  assert.doesNotMatch((await dh2.exec('nft', ['list', 'tables'])).stdout, /berth/, 'no nftables table of berth');
  assert.doesNotMatch((await dh2.iptablesCmd(['-S'])).stdout, /BERTH/, 'no iptables chain of berth');
  await waitFor('127.0.0.1:8080 relayed', async () => {
    const got = await dh2.exec('sh', ['-c', `timeout 5 ${GET('127.0.0.1', 8080, 'busybox nc')}`], 15000);
    return /relayed-web/.test(got.stdout) || undefined;
  }, 15000, 200);
  await b2.docker(['rm', '-f', 'relayed']);
});
