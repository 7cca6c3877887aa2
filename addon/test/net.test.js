'use strict';
// Networking through the addon (rtnetlink, namespaces, sysctls), on a bridge and two namespaces of the
// test's own, in 198.18.0.0/15 (the benchmarking range, which nothing on the host routes). The bridge
// lives in a third namespace of the test's own ("outer"), not the host's: on a host whose firewall drops
// forwarded traffic (FORWARD policy DROP, as Docker or ufw leave it) with br_netfilter, bridged frames go
// through that firewall, and the test must not depend on it. Everything is removed in t.after, and the
// test checks that no thread of this process was left in another namespace.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { addon, isRoot, tempDir, mountPoints } = require('./support');

const skip = isRoot ? false : 'needs root';

const tag = Math.random().toString(16).slice(2, 8);
const bridge = `bnt${tag}`;

function ipIn(ns, args) {
  return execFileSync('nsenter', [`--net=${ns}`, 'ip', ...args], { encoding: 'utf8' });
}

function linkIn(ns, name) {
  try {
    return execFileSync('nsenter', [`--net=${ns}`, 'ip', '-o', '-d', 'link', 'show', 'dev', name], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

function threadsInOwnNetns() {
  const own = fs.readlinkSync('/proc/self/ns/net');
  return fs.readdirSync('/proc/self/task').every((tid) => fs.readlinkSync(`/proc/self/task/${tid}/ns/net`) === own);
}

test('a bridge, two namespaces with veths on it, addresses, routes and traffic between them', { skip }, async (t) => {
  const dir = path.join(tempDir('berth-netns-'), 'netns');
  const made = [];
  const outer = path.join(dir, 'outer');
  t.after(async () => {
    const bridgeThere = fs.existsSync(outer) ? await addon.linkDelete(bridge, outer) : false;
    for (const f of made) await addon.netnsDelete(f);
    await addon.netnsDelete(outer);
    if (mountPoints().includes(dir)) execFileSync('umount', [dir]);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    assert.equal(bridgeThere, true, 'bridge removed');
    assert.equal(mountPoints().some((m) => m.startsWith(dir)), false, 'no mount left behind');
  });

  await addon.netnsPrepareDir(dir);
  await addon.netnsPrepareDir(dir); // again: already a private mount point
  assert.ok(mountPoints().includes(dir));
  await addon.netnsCreate(outer);

  await addon.linkAddBridge(bridge, { mtu: 1500, netns: outer });
  assert.equal(linkIn(outer, bridge).includes('bridge'), true);
  await assert.rejects(addon.linkAddBridge(bridge, { netns: outer }), (e) => e.code === 'EEXIST' && e.errno === -17 && /RTM_NEWLINK/.test(e.message) && e.message.includes(bridge));
  await addon.addrAdd({ name: bridge, address: '198.18.7.1/24', netns: outer });
  await addon.addrAdd({ name: bridge, address: '198.18.7.1/24', replace: true, netns: outer });
  await assert.rejects(addon.addrAdd({ name: bridge, address: '198.18.7.1/24', netns: outer }), { code: 'EEXIST' });
  // IPv6 beside it (2001:db8::/32, the documentation range): added without duplicate address detection.
  await addon.addrAdd({ name: bridge, address: '2001:db8:7::1/64', netns: outer });
  await addon.addrAdd({ name: bridge, address: '2001:db8:7::1/64', replace: true, netns: outer });
  await addon.linkSet({ name: bridge, up: true, netns: outer });
  await addon.sysctlWrite(`net/ipv4/conf/${bridge}/route_localnet`, '1', outer);
  assert.equal(execFileSync('nsenter', [`--net=${outer}`, 'cat', `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`], { encoding: 'utf8' }).trim(), '1');

  for (const i of [2, 3]) {
    const ns = path.join(dir, `n${i}`);
    made.push(ns);
    await addon.netnsCreate(ns);
    const hostIf = `vnt${tag}${i}`;
    const mac = `02:42:c6:12:07:0${i}`;
    await addon.linkAddVeth({ name: hostIf, peer: 'eth0', peerNetns: ns, peerMac: mac, netns: outer });
    await addon.linkSet({ name: hostIf, master: bridge, up: true, netns: outer });
    await addon.addrAdd({ name: 'eth0', address: `198.18.7.${i}/24`, netns: ns });
    await addon.linkSet({ name: 'eth0', up: true, netns: ns });
    await addon.routeReplaceDefault({ name: 'eth0', gateway: '198.18.7.1', netns: ns });
    await addon.addrAdd({ name: 'eth0', address: `2001:db8:7::${i}/64`, netns: ns });
    await addon.routeReplaceDefault({ name: 'eth0', gateway: '2001:db8:7::1', netns: ns });

    const inside = await addon.linkList(ns);
    assert.deepEqual(inside.map((l) => l.name).sort(), ['eth0', 'lo']);
    const eth0 = inside.find((l) => l.name === 'eth0');
    assert.equal(eth0.kind, 'veth');
    assert.equal(eth0.mac, mac);
    assert.equal(eth0.up, true);
    assert.equal(inside.find((l) => l.name === 'lo').up, true, 'loopback comes up with the namespace');
    assert.match(ipIn(ns, ['-4', 'addr', 'show', 'dev', 'eth0']), new RegExp(`inet 198\\.18\\.7\\.${i}/24 brd 198\\.18\\.7\\.255`));
    assert.match(ipIn(ns, ['route', 'show', 'default']), /default via 198\.18\.7\.1 dev eth0/);
    const v6 = ipIn(ns, ['-6', 'addr', 'show', 'dev', 'eth0']);
    assert.match(v6, new RegExp(`inet6 2001:db8:7::${i}/64 scope global nodad`), v6);
    assert.match(ipIn(ns, ['-6', 'route', 'show', 'default']), /default via 2001:db8:7::1 dev eth0/);
    const onHost = (await addon.linkList(outer)).find((l) => l.name === hostIf);
    assert.equal(onHost.master, bridge);
    assert.equal(onHost.kind, 'veth');
    await assert.rejects(addon.sysctlWrite('net/ipv4/conf/eth0/forwarding', '0', path.join(dir, 'nope')), { code: 'ENOENT' });
    await addon.sysctlWrite('net/ipv4/conf/eth0/accept_local', '1', ns);
    assert.equal(ipIn(ns, ['-o', 'link']).includes('eth0'), true);
  }
  // The second namespace reaches the first through the bridge.
  const ping = execFileSync('nsenter', [`--net=${made[1]}`, 'busybox', 'ping', '-c', '1', '-W', '5', '198.18.7.2'], { encoding: 'utf8' });
  assert.match(ping, /1 (packets )?received/);
  const ping6 = execFileSync('nsenter', [`--net=${made[1]}`, 'busybox', 'ping', '-6', '-c', '1', '-W', '5', '2001:db8:7::2'], { encoding: 'utf8' });
  assert.match(ping6, /1 (packets )?received/);
  assert.equal(threadsInOwnNetns(), true, 'every thread of this process is back in its own namespace');

  // Deleting the host end takes the container end with it; a second delete finds nothing.
  assert.equal(await addon.linkDelete(`vnt${tag}2`, outer), true);
  assert.equal(await addon.linkDelete(`vnt${tag}2`, outer), false);
  assert.deepEqual((await addon.linkList(made[0])).map((l) => l.name), ['lo']);
  assert.equal(await addon.linkDelete('eth0', made[1]), true);
  assert.equal(linkIn(outer, `vnt${tag}3`), '');

  // Namespace files: removed with their mount; removing again is not an error.
  await addon.netnsDelete(made[0]);
  await addon.netnsDelete(made[0]);
  assert.equal(fs.existsSync(made[0]), false);
  // Creating over a file that still holds a namespace replaces it.
  await addon.netnsCreate(made[1]);
  assert.deepEqual((await addon.linkList(made[1])).map((l) => l.name), ['lo']);
});

test('errors carry errno, code and the object', { skip }, async () => {
  await assert.rejects(addon.linkSet({ name: `nolink${tag}`, up: true }), (e) => e.code === 'ENODEV' && e.errno === -19 && e.message.includes(`nolink${tag}`));
  await assert.rejects(addon.netnsCreate('/nonexistent-dir-berth/x'), { code: 'ENOENT' });
  await assert.rejects(addon.linkAddVeth({ name: `v${tag}`, peer: 'eth0', peerNetns: '/nonexistent-berth-ns' }), { code: 'ENOENT' });
  await assert.rejects(addon.linkSet({ name: 'x'.repeat(16) }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.addrAdd({ name: 'lo', address: '10.0.0.1' }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.addrAdd({ name: 'lo', address: 'fd00::1/129' }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.addrAdd({ name: 'lo', address: 'fd00::zz/64' }), (e) => /not an IPv6 address/.test(e.message));
  await assert.rejects(addon.linkSet({ name: 'lo', mac: 'zz' }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(addon.sysctlWrite('../etc/passwd', 'x'), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(await addon.linkDelete(`nolink${tag}`), false);
  assert.equal(threadsInOwnNetns(), true);
});
