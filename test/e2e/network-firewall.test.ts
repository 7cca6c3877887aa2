// The firewall at scale (issue 17): a container's published ports and its veths on icc=false networks are
// elements of nftables maps and sets that fixed rules look up, added and deleted one container at a time,
// so a start or stop leaves every other container's elements and every rule as they were (the same rule
// handles: the table was not replaced); and after a kill -9 of berthd the next start renders the same
// elements again and allocates addresses around the ones running containers hold. berthd runs in a network
// namespace this file makes (its bridges and nftables tables go with it); requests to published ports are
// made from inside it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { TestNetns } from '../helpers/netns';
import { dockerCli, show, waitFor } from '../helpers/clients';

const ns = new TestNetns('berth-fw');

const b = berthdForFile({
  fixtures: ['busybox'],
  netns: { ns },
});

const { ok } = dockerCli(() => b);
const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];
const inNs = ns.run;
const TABLE = 'berth_berth0';

const logTail = () => { try { return readFileSync(path.join(b.root, 'berthd.log'), 'utf8').slice(-3000); } catch { return ''; } };

async function nft(family: 'ip' | 'bridge', handles = false): Promise<string> {
  const r = await inNs('nft', [...(handles ? ['-a'] : []), 'list', 'table', family, TABLE]);
  if (r.code !== 0) throw new Error(`nft list table ${family}: ${show(r)}`);
  return r.stdout;
}

/** The elements of each named map and set of a listed table. */
function elements(listing: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const re = /(?:map|set) (\w+) \{[^\n]*\n\s*type [^\n]*\n(?:\s*flags [^\n]*\n)?(?:\s*elements = \{([^}]*)\})?/g;
  for (const m of listing.matchAll(re)) out.set(m[1], (m[2] ?? '').split(',').map((e) => e.trim()).filter(Boolean).sort());
  return out;
}

/** Every rule, chain, map and set of the table with its handle: unchanged handles mean nothing was replaced. */
const handles = (listing: string) => listing.split('\n').filter((l) => l.includes('# handle')).map((l) => l.trim()).sort();

/** An HTTP GET from inside berthd's namespace; a failure shows the end of berthd's log. */
const getInNs = (url: string) => ns.httpGet(url, () => `\n--- berthd.log\n${logTail()}`);

const HTTPD = ['busybox', 'sh', '-c', 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'];
const answers = async (port: number, name: string) => {
  const id = (await inspect(name)).Id.slice(0, 12);
  await waitFor(`${name} answers on ${port}`, async () => (await getInNs(`http://127.0.0.1:${port}/`).catch(() => '')).includes(`hello from ${id}`) || undefined);
};
const ip = async (name: string, net: string) => (await inspect(name)).NetworkSettings.Networks[net].IPAddress as string;

describe('published ports change one container at a time', () => {
  test('a start and a stop add and delete their own elements; every other element and rule stays', async () => {
    await ok('network', 'create', '--subnet', '10.231.0.0/24', 'pubnet');
    await ok('network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', '-o', 'com.docker.network.bridge.name=br-noicc', 'noicc');
    await ok('run', '-d', '--name', 'c1', '-p', '18101:80', ...HTTPD);
    await ok('run', '-d', '--name', 'c2', '--network', 'pubnet', '-p', '127.0.0.1:18102:80', ...HTTPD);
    await ok('run', '-d', '--name', 'c3', '--network', 'noicc', '-p', '18103:80/tcp', '-p', '18103:80/udp', ...HTTPD);
    await ok('run', '-d', '--name', 'c4', '--network', 'noicc', 'busybox', 'sleep', '600');
    for (const [p, n] of [[18101, 'c1'], [18102, 'c2'], [18103, 'c3']] as const) await answers(p, n);

    const ip1 = await ip('c1', 'bridge');
    const ip2 = await ip('c2', 'pubnet');
    const ip3 = await ip('c3', 'noicc');
    const base = await nft('ip');
    const els = elements(base);
    assert.deepEqual(els.get('pub_any'), [`tcp . 18101 : ${ip1} . 80`, `tcp . 18103 : ${ip3} . 80`, `udp . 18103 : ${ip3} . 80`].sort(), base);
    assert.deepEqual(els.get('pub_lo'), [`127.0.0.1 . tcp . 18102 : ${ip2} . 80`], base);
    assert.deepEqual(els.get('pub_dst'), [`${ip1} . tcp . 80`, `${ip2} . tcp . 80`, `${ip3} . tcp . 80`, `${ip3} . udp . 80`].sort(), base);
    const veths = (await inNs('ip', ['-o', 'link', 'show', 'master', 'br-noicc'])).stdout.split('\n').map((l) => /^\d+: ([^@:]+)/.exec(l)?.[1]).filter(Boolean) as string[];
    assert.equal(veths.length, 2, 'c3 and c4 have a veth on noicc');
    const icc = elements(await nft('bridge'));
    assert.deepEqual([...icc.values()].flat(), veths.map((v) => `"${v}"`).sort(), 'the icc=false set holds both veths');
    const rules = handles(await nft('ip', true));
    assert.ok(rules.length > 20, rules.join('\n'));

    // A new container with a port: its elements come, nothing else changes.
    await ok('run', '-d', '--name', 'c5', '--network', 'pubnet', '-p', '18105:80', ...HTTPD);
    await answers(18105, 'c5');
    const ip5 = await ip('c5', 'pubnet');
    const withC5 = elements(await nft('ip'));
    assert.deepEqual(withC5.get('pub_any'), [...els.get('pub_any')!, `tcp . 18105 : ${ip5} . 80`].sort());
    assert.deepEqual(withC5.get('pub_lo'), els.get('pub_lo'));
    assert.deepEqual(withC5.get('pub_dst'), [...els.get('pub_dst')!, `${ip5} . tcp . 80`].sort());
    assert.deepEqual(handles(await nft('ip', true)), rules, 'the rules are the same ones (same handles): the table was not replaced');

    // A stop takes the container's own elements only; the others still answer.
    await ok('stop', '-t', '1', 'c1');
    const noC1 = elements(await nft('ip'));
    assert.deepEqual(noC1.get('pub_any'), withC5.get('pub_any')!.filter((e) => !e.includes('18101')));
    assert.deepEqual(noC1.get('pub_dst'), withC5.get('pub_dst')!.filter((e) => e !== `${ip1} . tcp . 80`));
    assert.deepEqual(noC1.get('pub_lo'), els.get('pub_lo'));
    for (const [p, n] of [[18102, 'c2'], [18103, 'c3'], [18105, 'c5']] as const) await answers(p, n);
    // icc=false: the stopped container's veth leaves the set, the other stays.
    await ok('stop', '-t', '1', 'c4');
    const iccAfter = [...elements(await nft('bridge')).values()].flat();
    assert.equal(iccAfter.length, 1, `one veth left in the icc set: ${iccAfter.join(' ')}`);
    assert.ok(veths.map((v) => `"${v}"`).includes(iccAfter[0]));
    // Started again: its element is back, with the address it has now.
    await ok('start', 'c1');
    await answers(18101, 'c1');
    assert.ok(elements(await nft('ip')).get('pub_any')!.includes(`tcp . 18101 : ${await ip('c1', 'bridge')} . 80`));
    await ok('rm', '-f', 'c5');
    assert.ok(!(await nft('ip')).includes('18105'), 'c5\'s element went with it');
    assert.deepEqual(handles(await nft('ip', true)), rules, 'still the same rules');
    await ok('start', 'c4');
    assert.doesNotMatch(readFileSync(path.join(b.root, 'berthd.log'), 'utf8'), /rewriting the table/, 'every change was one of elements');
  });

  test('after kill -9 the next berthd renders the same elements and allocates around the running containers', async () => {
    // pubnet: c2 holds .2; two more, then the middle one stops (its address is free again).
    await ok('run', '-d', '--name', 'm1', '--network', 'pubnet', '-p', '18111:80', ...HTTPD);
    await ok('run', '-d', '--name', 'm2', '--network', 'pubnet', '-p', '18112:80', ...HTTPD);
    const [a2, a1, a2m] = [await ip('c2', 'pubnet'), await ip('m1', 'pubnet'), await ip('m2', 'pubnet')];
    assert.deepEqual([a2, a1, a2m], ['10.231.0.2', '10.231.0.3', '10.231.0.4']);
    await ok('stop', '-t', '1', 'm1');
    const before = elements(await nft('ip'));
    const bridgeBefore = elements(await nft('bridge'));

    await b.kill9();
    await b.restart();
    assert.deepEqual(elements(await nft('ip')), before, 'the same elements after the restart');
    assert.deepEqual(elements(await nft('bridge')), bridgeBefore, 'the same icc set after the restart');
    for (const [p, n] of [[18101, 'c1'], [18102, 'c2'], [18103, 'c3'], [18112, 'm2']] as const) await answers(p, n);
    // The pool is rebuilt from the rows: the next container gets m1's old address, the lowest free one.
    await ok('run', '-d', '--name', 'm3', '--network', 'pubnet', '-p', '18113:80', ...HTTPD);
    assert.equal(await ip('m3', 'pubnet'), '10.231.0.3');
    await answers(18113, 'm3');
    // m1 starts again and takes the next free address, after the running ones.
    await ok('start', 'm1');
    assert.equal(await ip('m1', 'pubnet'), '10.231.0.5');
    await answers(18111, 'm1');
    await ok('rm', '-f', 'c1', 'c2', 'c3', 'c4', 'm1', 'm2', 'm3');
    const last = elements(await nft('ip'));
    for (const k of ['pub_any', 'pub_addr', 'pub_lo', 'pub_dst']) assert.deepEqual(last.get(k), [], `${k} is empty with no container`);
    assert.deepEqual([...elements(await nft('bridge')).values()].flat(), []);
    assert.doesNotMatch(readFileSync(path.join(b.root, 'berthd.log'), 'utf8'), /rewriting the table/, 'every change was one of elements');
  });

  test('concurrent starts and removals share nft runs and leave exactly the running containers\' elements', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `burst${i}`);
    const run = (n: string, i: number) => ok('run', '-d', '--name', n, ...(i % 2 ? ['--network', 'pubnet'] : []), '-p', `127.0.0.1:${18200 + i}:80`, 'busybox', 'sleep', '600');
    await Promise.all(names.map(run));
    const lo = async () => elements(await nft('ip')).get('pub_lo') ?? [];
    const want = async (list: string[]) => (await Promise.all(list.map(async (n) => {
      const c = await inspect(n);
      const addr = Object.values(c.NetworkSettings.Networks as Record<string, { IPAddress: string }>)[0].IPAddress;
      return `127.0.0.1 . tcp . ${c.HostConfig.PortBindings['80/tcp'][0].HostPort} : ${addr} . 80`;
    }))).sort();
    assert.deepEqual(await lo(), await want(names));
    // Half of them go at once (rm -f: stop and remove), the other half stay.
    await Promise.all(names.filter((_, i) => i % 2 === 0).map((n) => ok('rm', '-f', n)));
    const left = names.filter((_, i) => i % 2 === 1);
    assert.deepEqual(await lo(), await want(left));
    const dst = elements(await nft('ip')).get('pub_dst') ?? [];
    assert.equal(dst.length, left.length, dst.join(' '));
    await ok('rm', '-f', ...left);
    assert.deepEqual(await lo(), []);
    assert.deepEqual(elements(await nft('ip')).get('pub_dst'), []);
    assert.doesNotMatch(readFileSync(path.join(b.root, 'berthd.log'), 'utf8'), /rewriting the table/, 'every change was one of elements');
  });
});
