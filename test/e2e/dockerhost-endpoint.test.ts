// API 1.44+'s per-endpoint settings (issue 11): EndpointSettings.MacAddress (also on connect), DriverOpts,
// Links and Aliases on user networks are kept and shown back by inspect, and a link given on connect is a
// name the linking container resolves; bad values get Docker's 400 and change nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok } = dockerCli(() => b);
const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];

test('connect with MacAddress, DriverOpts, Aliases and Links: the interface has the MAC, inspect shows them, the link resolves', async () => {
  await ok('network', 'create', 'ep-net');
  await ok('run', '-d', '--name', 'ep-srv', '--network', 'ep-net', 'busybox', 'sleep', '300');
  await ok('run', '-d', '--name', 'ep-cli', 'busybox', 'sleep', '300');
  const r = await api(b, 'POST', '/v1.47/networks/ep-net/connect', { body: {
    Container: 'ep-cli',
    EndpointConfig: { MacAddress: '02:42:ac:de:00:07', DriverOpts: { 'com.example.opt': 'yes' }, Aliases: ['cli-alias'], Links: ['ep-srv:backend'] },
  } });
  assert.equal(r.status, 200, r.body);
  const s = (await inspect('ep-cli')).NetworkSettings.Networks['ep-net'];
  assert.equal(s.MacAddress, '02:42:ac:de:00:07');
  assert.deepEqual(s.DriverOpts, { 'com.example.opt': 'yes' });
  assert.deepEqual(s.Aliases, ['cli-alias']);
  assert.deepEqual(s.Links, ['ep-srv:backend']);
  assert.match(await ok('exec', 'ep-cli', 'cat', '/sys/class/net/eth1/address'), /02:42:ac:de:00:07/);
  const srvIp = (await inspect('ep-srv')).NetworkSettings.Networks['ep-net'].IPAddress;
  assert.ok((await ok('exec', 'ep-cli', 'nslookup', 'backend')).includes(srvIp), 'the link alias resolves for ep-cli');
  // On a stopped container the settings stay (the MAC as configured).
  await ok('stop', '-t', '0', 'ep-cli');
  const stopped = (await inspect('ep-cli')).NetworkSettings.Networks['ep-net'];
  assert.equal(stopped.MacAddress, '02:42:ac:de:00:07');
  assert.deepEqual(stopped.Links, ['ep-srv:backend']);
  await ok('rm', '-f', 'ep-srv', 'ep-cli');
  await ok('network', 'rm', 'ep-net');
});

test('create: --link on a user network is shown in EndpointSettings.Links; --driver-opt on connect', async () => {
  await ok('network', 'create', 'ep-net2');
  await ok('run', '-d', '--name', 'ep-a', '--network', 'ep-net2', 'busybox', 'sleep', '300');
  await ok('run', '-d', '--name', 'ep-b', '--network', 'ep-net2', '--link', 'ep-a:aa', 'busybox', 'sleep', '300');
  assert.deepEqual((await inspect('ep-b')).NetworkSettings.Networks['ep-net2'].Links, ['ep-a:aa']);
  await ok('network', 'create', 'ep-net3');
  await ok('network', 'connect', '--driver-opt', 'k=v', 'ep-net3', 'ep-a');
  assert.deepEqual((await inspect('ep-a')).NetworkSettings.Networks['ep-net3'].DriverOpts, { k: 'v' });
  await ok('rm', '-f', 'ep-a', 'ep-b');
  await ok('network', 'rm', 'ep-net2', 'ep-net3');
});

test('bad endpoint settings: 400 with Docker\'s message, nothing connected', async () => {
  await ok('network', 'create', 'ep-net4');
  await ok('create', '--name', 'ep-c', 'busybox', 'true');
  const bad = await api(b, 'POST', '/networks/ep-net4/connect', { body: { Container: 'ep-c', EndpointConfig: { MacAddress: 'zz:zz' } } });
  assert.equal(bad.status, 400, bad.body);
  assert.match(bad.json().message, /invalid MAC address: zz:zz/);
  assert.equal((await inspect('ep-c')).NetworkSettings.Networks['ep-net4'], undefined);
  const onBridge = await api(b, 'POST', '/networks/bridge/connect', { body: { Container: 'ep-c', EndpointConfig: { Links: ['x:y'] } } });
  assert.ok(onBridge.status === 400 || onBridge.status === 403, onBridge.body);
  await ok('rm', '-f', 'ep-c');
  await ok('network', 'rm', 'ep-net4');
});

test('docker rm --link parent/alias removes the legacy link only: hosts entry gone, both containers intact', async () => {
  await ok('run', '-d', '--name', 'lr-db', 'busybox', 'sleep', '300');
  await ok('run', '-d', '--name', 'lr-web', '--link', 'lr-db:db', 'busybox', 'sleep', '300');
  assert.match(await ok('exec', 'lr-web', 'cat', '/etc/hosts'), /\tdb /);
  await ok('rm', '--link', '/lr-web/db');
  assert.equal((await inspect('lr-web')).HostConfig.Links, null);
  assert.doesNotMatch(await ok('exec', 'lr-web', 'cat', '/etc/hosts'), /\tdb /);
  assert.equal((await inspect('lr-db')).State.Running, true);
  // No such link: 404 in Docker's words; a name without a parent: a conflict.
  const none = await api(b, 'DELETE', '/containers/lr-web/nope?link=1');
  assert.equal(none.status, 404, none.body);
  assert.match(none.json().message, /No such container: lr-web\/nope/);
  const top = await api(b, 'DELETE', '/containers/lr-web?link=1');
  assert.equal(top.status, 409, top.body);
  assert.match(top.json().message, /cannot remove the default link name of the container/);
  await ok('rm', '-f', 'lr-web', 'lr-db');
});
