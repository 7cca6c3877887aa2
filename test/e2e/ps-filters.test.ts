// docker ps: -s (SizeRw and the virtual size), inspect -s, and the network, volume, publish and expose
// filters, through the docker CLI against a real berthd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { berthdForFile } from '../helpers/file';
import { dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });

const { ok, fails } = dockerCli(() => b);
const names = async (...filter: string[]) => (await ok('ps', '-a', '--format', '{{.Names}}', ...filter)).trim().split('\n').filter(Boolean).sort();

test('ps -s and inspect -s give the read-write layer and the virtual size', async () => {
  await ok('run', '--name', 'sz', 'busybox', 'sh', '-c', 'head -c 300000 /dev/zero > /big');
  const row = await ok('ps', '-a', '-s', '--filter', 'name=sz', '--format', '{{.Size}}');
  assert.match(row.trim(), /^30\dkB \(virtual \d+(\.\d+)?MB\)$/);
  const ins = JSON.parse(await ok('inspect', '-s', 'sz'))[0];
  assert.ok(ins.SizeRw >= 300000 && ins.SizeRw < 320000, String(ins.SizeRw));
  assert.ok(ins.SizeRootFs > ins.SizeRw);
  assert.equal(JSON.parse(await ok('inspect', 'sz'))[0].SizeRw, undefined);
  await ok('rm', 'sz');
});

test('ps filters: network, volume, publish, expose', async () => {
  await ok('network', 'create', 'pf-net');
  await ok('create', '--name', 'pf-a', '--network', 'pf-net', '-v', 'pf-vol:/data', '--expose', '7000', 'busybox', 'true');
  await ok('run', '-d', '--name', 'pf-b', '-p', '127.0.0.1::80', 'busybox', 'sleep', '1000');
  const hostPort = (await ok('port', 'pf-b', '80')).trim().split(':')[1];
  assert.deepEqual(await names('--filter', 'network=pf-net'), ['pf-a']);
  assert.deepEqual(await names('--filter', 'network=bridge'), ['pf-b']);
  assert.deepEqual(await names('--filter', 'volume=pf-vol'), ['pf-a']);
  assert.deepEqual(await names('--filter', 'volume=/data'), ['pf-a']);
  assert.deepEqual(await names('--filter', 'expose=7000'), ['pf-a']);
  assert.deepEqual(await names('--filter', 'expose=6000-7100/tcp'), ['pf-a']);
  assert.deepEqual(await names('--filter', `publish=${hostPort}`), ['pf-b']);
  assert.deepEqual(await names('--filter', 'publish=1/udp'), []);
  await fails(/invalid filter/, 'ps', '--filter', 'publish=abc');
  await ok('rm', '-f', 'pf-a', 'pf-b');
  await ok('network', 'rm', 'pf-net');
  await ok('volume', 'rm', 'pf-vol');
});
