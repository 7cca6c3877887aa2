// daemon.json "live-restore": false, as dockerd has it: a clean shutdown of berthd stops the running
// containers (within shutdown-timeout), a crash leaves them to be killed at the next start instead of adopted,
// and restart policies bring back the ones that want to run. /info says which mode is on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { berthdForFile } from '../helpers/file';
import { alive, dockerCli, waitFor } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'], start: { daemonJson: { 'live-restore': false, 'shutdown-timeout': 2 } } });
const { ok } = dockerCli(() => b);

const pidOf = async (name: string) => Number((await ok('inspect', '--format', '{{.State.Pid}}', name)).trim());
const statusOf = async (name: string) => (await ok('inspect', '--format', '{{.State.Status}}', name)).trim();

test('docker info reports live-restore off', async () => {
  assert.equal((await ok('info', '--format', '{{.LiveRestoreEnabled}}')).trim(), 'false');
});

test('a clean shutdown stops the running containers; restart policies start theirs again', async () => {
  // busybox sleep as pid 1 ignores SIGTERM: the stop ends with SIGKILL after shutdown-timeout (2 s).
  await ok('run', '-d', '--name', 'lr-plain', 'busybox', 'sleep', '1000');
  await ok('run', '-d', '--name', 'lr-always', '--restart', 'always', 'busybox', 'sleep', '1000');
  const plain = await pidOf('lr-plain');
  const always = await pidOf('lr-always');
  const t0 = Date.now();
  await b.stop();
  assert.ok(Date.now() - t0 < 15_000, 'shutdown-timeout bounds the stop');
  assert.equal(alive(plain), false, 'the container without a policy was stopped with berthd');
  assert.equal(alive(always), false, 'the container with restart=always was stopped with berthd');
  await b.restart();
  assert.equal(await statusOf('lr-plain'), 'exited');
  assert.equal((await ok('inspect', '--format', '{{.State.ExitCode}}', 'lr-plain')).trim(), '137');
  await waitFor('restart=always brings lr-always back', async () => (await statusOf('lr-always')) === 'running');
  assert.notEqual(await pidOf('lr-always'), always);
  await ok('rm', '-f', 'lr-always', 'lr-plain');
});

test('after a crash, a container found running is killed, not adopted', async () => {
  await ok('run', '-d', '--name', 'lr-crash', 'busybox', 'sleep', '1000');
  const pid = await pidOf('lr-crash');
  await b.kill9();
  assert.equal(alive(pid), true, 'the container survives the crash itself');
  await b.restart();
  await waitFor('the container is killed at start', () => !alive(pid));
  assert.equal(await statusOf('lr-crash'), 'exited');
  await ok('rm', 'lr-crash');
});
