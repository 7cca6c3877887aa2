// A container's gateways as Docker 28 chooses them, and the published ports that follow them: each family's
// default route from the first network (GwPriority, then dual-stack before single-stack, then by name) that
// has a gateway of that family, so that an IPv6-only network gives the IPv6 route beside an IPv4 network;
// ports of a container on IPv6-only networks published on [::] (an explicit 0.0.0.0 left out, as Docker
// 28 leaves it); and a running container's ports moved to an IPv6 network it is connected to, and back on
// disconnect. berthd runs in a network namespace this file makes; every request is made inside it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { TestNetns } from '../helpers/netns';
import { dockerCli, show, waitFor } from '../helpers/clients';

const ns = new TestNetns('berth-gw6');

const b = berthdForFile({
  fixtures: ['busybox'],
  netns: { ns },
});

const { ok, fails } = dockerCli(() => b);
const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];
const portsOf = async (name: string, key: string) =>
  ((await inspect(name)).NetworkSettings.Ports[key] as Array<{ HostIp: string; HostPort: string }> | null ?? []).map((p) => `${p.HostIp}|${p.HostPort}`).sort();
const logTail = () => { try { return readFileSync(path.join(b.root, 'berthd.log'), 'utf8').slice(-3000); } catch { return ''; } };

/** An HTTP GET from inside berthd's namespace: the body, or the error's code. */
async function get(url: string): Promise<{ body?: string; error?: string }> {
  const js = `require('http').get(${JSON.stringify(url)}, { timeout: 4000 }, (r) => { let d = ''; r.on('data', (c) => d += c); r.on('end', () => console.log(JSON.stringify({ body: d }))); })` +
    `.on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })));`;
  const r = await ns.run(process.execPath, ['-e', js]);
  if (r.code !== 0) throw new Error(`GET ${url}: ${show(r)}`);
  return JSON.parse(r.stdout.trim());
}
const want = /hello from [0-9a-f]{12}/;
async function answers(url: string): Promise<void> {
  const r = await get(url);
  assert.match(r.body ?? '', want, `GET ${url}: ${JSON.stringify(r)}\n--- berthd.log\n${logTail()}`);
}

const HTTPD = ['sh', '-c', 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'];
/** The DNAT map elements of berth's table of a family, for one host port. */
async function dnat(family: 'ip' | 'ip6', port: number): Promise<string[]> {
  const r = await ns.run('nft', ['list', 'table', family, 'berth_berth0']);
  return r.stdout.split(/[,{}\n]/).map((s) => s.trim()).filter((s) => new RegExp(`^(tcp|udp) \\. ${port} : `).test(s));
}
const routes = async (name: string) => {
  const out = await ok('exec', name, 'sh', '-c', 'ip -4 route; echo ---; ip -6 route');
  const [v4, v6] = out.split('---\n');
  return { v4: v4.split('\n').find((l) => l.startsWith('default')) ?? '', v6: v6.split('\n').find((l) => l.startsWith('default')) ?? '' };
};

describe('gateways of both families', () => {
  test('an IPv4 network and an IPv6-only one: each gives its own default route; alone, the IPv6-only one gives IPv6\'s', async () => {
    await ok('network', 'create', '--ipv4=false', '--ipv6', '--subnet', 'fd00:c6:0:1::/64', 'g6only');
    await ok('network', 'create', '--subnet', '10.66.1.0/24', 'g4');
    await ok('run', '-d', '--name', 'both', '--network', 'g6only', '--network', 'g4', 'busybox', 'sleep', '600');
    const r = await routes('both');
    assert.match(r.v4, /^default via 10\.66\.1\.1 /, JSON.stringify(r));
    assert.match(r.v6, /^default via fd00:c6:0:1::1 /, JSON.stringify(r));
    // Connected the other way round (the IPv4 network first, the IPv6-only one connected to it running).
    await ok('run', '-d', '--name', 'later', '--network', 'g4', 'busybox', 'sleep', '600');
    assert.equal((await routes('later')).v6, '');
    await ok('network', 'connect', 'g6only', 'later');
    const l = await routes('later');
    assert.match(l.v4, /^default via 10\.66\.1\.1 /, JSON.stringify(l));
    assert.match(l.v6, /^default via fd00:c6:0:1::1 /, JSON.stringify(l));
    await ok('rm', '-f', 'both', 'later');
  });

  test('-p of a container on IPv6-only networks only: published on [::] (an explicit 0.0.0.0 is IPv4\'s, left out), reached over IPv6; a restart keeps it', async () => {
    await ok('run', '-d', '--name', 'pub6', '--network', 'g6only', '-p', '18200:80', '-p', '0.0.0.0:18201:80', '-p', '[::1]:18202:80', 'busybox', ...HTTPD);
    const c = await inspect('pub6');
    assert.equal(c.State.Running, true);
    const ip6 = c.NetworkSettings.Networks.g6only.GlobalIPv6Address as string;
    assert.deepEqual(await portsOf('pub6', '80/tcp'), ['::1|18202', '::|18200']);
    assert.deepEqual((await ok('port', 'pub6', '80')).trim().split('\n').sort(), ['[::1]:18202', '[::]:18200']);
    await waitFor('httpd answers', async () => want.test((await get('http://[::1]:18200/')).body ?? ''), 15000, 200);
    await answers('http://[fd00:c6:0:1::1]:18200/');
    await answers('http://[::1]:18202/');
    assert.equal((await get('http://127.0.0.1:18200/')).error, 'ECONNREFUSED');
    assert.equal((await get('http://127.0.0.1:18201/')).error, 'ECONNREFUSED');
    assert.deepEqual(await dnat('ip6', 18200), [`tcp . 18200 : ${ip6} . 80`]);
    await b.stop();
    await b.restart();
    assert.deepEqual(await portsOf('pub6', '80/tcp'), ['::1|18202', '::|18200']);
    await answers('http://[fd00:c6:0:1::1]:18200/');
    await ok('rm', '-f', 'pub6');
  });
});

describe('connect and disconnect move published ports', () => {
  test('a container on the default bridge (IPv4 only) with -p: connected to a dual-stack network, its ports go to that network\'s addresses with both routes; connected to an IPv6-only one, [::] goes to its IPv6 address and 0.0.0.0 stays; a disconnect brings the relay back; host ports kept', async () => {
    await ok('network', 'create', '--ipv6', '--subnet', '10.66.2.0/24', '--subnet', 'fd00:c6:0:2::/64', 'g46');
    // The random port first, the numbered one after it: the remaps below keep both.
    await ok('run', '-d', '--name', 'mover', '-p', '80', '-p', '18210:80', 'busybox', ...HTTPD);
    const bridgeIp = (await inspect('mover')).NetworkSettings.Networks.bridge.IPAddress as string;
    const before = await portsOf('mover', '80/tcp');
    const random = before.find((p) => p.startsWith('0.0.0.0|') && p !== '0.0.0.0|18210')!.split('|')[1];
    assert.deepEqual(before, ['0.0.0.0|18210', `0.0.0.0|${random}`, '::|18210', `::|${random}`].sort());
    await waitFor('httpd answers', async () => want.test((await get('http://127.0.0.1:18210/')).body ?? ''), 15000, 200);
    await answers('http://[::1]:18210/');
    assert.deepEqual(await dnat('ip', 18210), [`tcp . 18210 : ${bridgeIp} . 80`]);
    assert.deepEqual(await dnat('ip6', 18210), [], 'the [::] binding is relayed, not NATed');

    // A dual-stack network sorts before the IPv4-only bridge: it becomes both gateways, the ports follow.
    await ok('network', 'connect', 'g46', 'mover');
    const on46 = (await inspect('mover')).NetworkSettings.Networks.g46;
    assert.equal(on46.GlobalIPv6Address, 'fd00:c6:0:2::2');
    const r = await routes('mover');
    assert.match(r.v4, /^default via 10\.66\.2\.1 /, JSON.stringify(r));
    assert.match(r.v6, /^default via fd00:c6:0:2::1 /, JSON.stringify(r));
    assert.deepEqual(await portsOf('mover', '80/tcp'), before, 'the same host ports, the random one included');
    assert.deepEqual(await dnat('ip', 18210), [`tcp . 18210 : ${on46.IPAddress} . 80`]);
    assert.deepEqual(await dnat('ip6', 18210), ['tcp . 18210 : fd00:c6:0:2::2 . 80']);
    assert.deepEqual(await dnat('ip6', Number(random)), [`tcp . ${random} : fd00:c6:0:2::2 . 80`]);
    await answers('http://[fd00:c6:0:2::1]:18210/');
    await answers('http://[::1]:18210/');
    await answers('http://127.0.0.1:18210/');

    // Disconnected: back to the bridge, [::] relayed again.
    await ok('network', 'disconnect', 'g46', 'mover');
    assert.deepEqual(await portsOf('mover', '80/tcp'), before);
    assert.deepEqual(await dnat('ip', 18210), [`tcp . 18210 : ${bridgeIp} . 80`]);
    assert.deepEqual(await dnat('ip6', 18210), []);
    assert.equal((await routes('mover')).v6, '');
    await answers('http://[::1]:18210/');
    await answers('http://127.0.0.1:18210/');

    // An IPv6-only network: the bridge keeps IPv4 (its route and 0.0.0.0), [::] goes to the new IPv6 address.
    await ok('network', 'connect', 'g6only', 'mover');
    const ip6 = (await inspect('mover')).NetworkSettings.Networks.g6only.GlobalIPv6Address as string;
    const r6 = await routes('mover');
    assert.match(r6.v4, new RegExp(`^default via ${(await inspect('mover')).NetworkSettings.Networks.bridge.Gateway.replace(/\./g, '\\.')} `), JSON.stringify(r6));
    assert.match(r6.v6, /^default via fd00:c6:0:1::1 /, JSON.stringify(r6));
    assert.deepEqual(await portsOf('mover', '80/tcp'), before);
    assert.deepEqual(await dnat('ip', 18210), [`tcp . 18210 : ${bridgeIp} . 80`]);
    assert.deepEqual(await dnat('ip6', 18210), [`tcp . 18210 : ${ip6} . 80`]);
    await answers('http://[fd00:c6:0:1::1]:18210/');
    await answers('http://127.0.0.1:18210/');
    await ok('network', 'disconnect', 'g6only', 'mover');
    assert.deepEqual(await dnat('ip6', 18210), []);
    await answers('http://[::1]:18210/');
    await ok('rm', '-f', 'mover');
  });

  test('a connect whose ports cannot be published fails as Docker\'s does and leaves the container as it was', async () => {
    // On the IPv6-only network alone, 0.0.0.0:18220 is left out; an IPv4 network would need it, and another
    // program holds it.
    await ok('run', '-d', '--name', 'held', '--network', 'g6only', '-p', '0.0.0.0:18220:80', '-p', '18221:80', 'busybox', ...HTTPD);
    assert.deepEqual(await portsOf('held', '80/tcp'), ['::|18221']);
    const squat = spawn('nsenter', [`--net=${ns.file}`, '--', process.execPath, '-e',
      "require('net').createServer().listen({ host: '0.0.0.0', port: 18220 }, () => console.log('up'))"], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise((r) => squat.stdout!.once('data', r));
      await fails(/failed to bind host port for 0\.0\.0\.0:18220:10\.66\.1\.\d+:80\/tcp: address already in use/, 'network', 'connect', 'g4', 'held');
    } finally {
      squat.kill('SIGKILL');
    }
    const c = await inspect('held');
    assert.deepEqual(Object.keys(c.NetworkSettings.Networks), ['g6only']);
    assert.deepEqual(await portsOf('held', '80/tcp'), ['::|18221']);
    const r = await routes('held');
    assert.equal(r.v4, '');
    assert.match(r.v6, /^default via fd00:c6:0:1::1 /, JSON.stringify(r));
    assert.doesNotMatch(await ok('exec', 'held', 'ip', '-o', 'link'), /eth1/);
    await waitFor('httpd answers', async () => want.test((await get('http://[fd00:c6:0:1::1]:18221/')).body ?? ''), 15000, 200);
    // Without the squatter the same connect works, and 0.0.0.0:18220 comes with it.
    await ok('network', 'connect', 'g4', 'held');
    assert.deepEqual(await portsOf('held', '80/tcp'), ['0.0.0.0|18220', '0.0.0.0|18221', '::|18221']);
    await answers('http://127.0.0.1:18220/');
    await ok('rm', '-f', 'held');
    await ok('network', 'rm', 'g46', 'g6only', 'g4');
  });
});
