// Log driver options as create and start see them: Docker's size units, the tag template, extra
// attributes, the daemon.json merge, the shim arguments each driver makes, and daemon.json refused at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mergeLogConfig, shimLogArgs, logReadPath, inspectLogPath, type LogContext } from '../../daemon/logs';
import { extraAttributes, fromHumanSize, logTag } from '../../daemon/logs/options';
import { loadConfig, ConfigError } from '../../daemon/config/config';
import { BerthError } from '../../daemon/errors/errors';

const ctx: LogContext = {
  id: 'abcdef0123456789'.repeat(4), name: '/web', imageId: 'sha256:' + '12'.repeat(32), imageRef: 'busybox:latest',
  labels: { team: 'infra', 'app.tier': 'front' }, env: ['STAGE=prod', 'APP_X=1', 'APP_Y=2', 'PATH=/bin'], dir: '/data/containers/x',
};

test('sizes are go-units FromHumanSize: decimal, with binary for "ki"', () => {
  assert.equal(fromHumanSize('1k'), 1000);
  assert.equal(fromHumanSize('10m'), 10_000_000);
  assert.equal(fromHumanSize('2KiB'), 2048);
  assert.equal(fromHumanSize('1.5g'), 1_500_000_000);
  assert.equal(fromHumanSize('123'), 123);
  assert.throws(() => fromHumanSize('lots'), /invalid size: 'lots'/);
});

test('the tag template and the extra attributes', () => {
  assert.equal(logTag(ctx, {}, '{{.ID}}'), 'abcdef012345');
  assert.equal(logTag(ctx, { tag: '{{.Name}}/{{ .ImageName }}/{{.ImageID}}/{{.DaemonName}}' }, ''), 'web/busybox:latest/121212121212/docker');
  assert.throws(() => logTag(ctx, { tag: '{{.Nope}}' }, ''), /can't evaluate field Nope/);
  assert.deepEqual(extraAttributes(ctx, { labels: 'team,missing', env: 'STAGE', 'env-regex': '^APP_' }),
    { team: 'infra', STAGE: 'prod', APP_X: '1', APP_Y: '2' });
});

test('daemon.json options are defaults for the daemon\'s driver only; cache- options for every driver', () => {
  const d = { 'max-size': '10m', 'max-file': '3', 'cache-max-size': '5m' };
  assert.deepEqual(mergeLogConfig(undefined, 'json-file', d), { Type: 'json-file', Config: d });
  assert.deepEqual(mergeLogConfig({ Type: 'json-file', Config: { 'max-size': '1m' } }, 'json-file', d).Config,
    { 'max-size': '1m', 'max-file': '3', 'cache-max-size': '5m' });
  assert.deepEqual(mergeLogConfig({ Type: 'none' }, 'json-file', d), { Type: 'none', Config: { 'cache-max-size': '5m' } });
  assert.throws(() => mergeLogConfig({ Type: 'journald' }, 'json-file', {}), (e: Error) => e instanceof BerthError && e.status === 400
    && e.message === "logger: no log driver named 'journald' is registered");
});

test('shim arguments, read paths and LogPath of each driver', async () => {
  assert.deepEqual(await shimLogArgs({ Type: 'json-file', Config: { 'max-size': '1k', 'max-file': '2', labels: 'team' } }, ctx),
    ['--log-driver', 'json-file', '--log', `${ctx.dir}/${ctx.id}-json.log`, '--log-max-size', '1000', '--log-max-file', '2',
      '--log-attrs', '{"team":"infra"}']);
  assert.equal(inspectLogPath({ Type: 'json-file' }, ctx), `${ctx.dir}/${ctx.id}-json.log`);
  assert.equal(inspectLogPath({ Type: 'local' }, ctx), '');
  assert.deepEqual(await shimLogArgs({ Type: 'none', Config: {} }, ctx), ['--log-driver', 'none']);
  assert.throws(() => logReadPath({ Type: 'none' }, ctx), (e: Error) => e instanceof BerthError && e.status === 501);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-logopt-'));
  try {
    const local = await shimLogArgs({ Type: 'local', Config: {} }, { ...ctx, dir });
    assert.deepEqual(local, ['--log-driver', 'local', '--log', `${dir}/local-logs/container.log`, '--log-max-size', String(20 * 1024 * 1024),
      '--log-max-file', '5', '--log-compress']);
    const sl = await shimLogArgs({ Type: 'syslog', Config: { 'syslog-address': 'udp://localhost', 'syslog-facility': 'local7', 'cache-max-file': '1', 'cache-compress': 'false' } }, { ...ctx, dir });
    // The shim does no name lookups: localhost is given to it as an address.
    assert.match(sl[3], /^udp:\/\/(127\.0\.0\.1|\[::1\]):514$/);
    sl[3] = 'udp://127.0.0.1:514';
    assert.deepEqual(sl, ['--log-driver', 'syslog', '--syslog-address', 'udp://127.0.0.1:514', '--syslog-facility', '23', '--syslog-tag', 'abcdef012345',
      '--log', `${dir}/container-cached.log`, '--log-max-size', String(20 * 1024 * 1024)]);
    assert.equal(logReadPath({ Type: 'syslog', Config: {} }, { ...ctx, dir }), `${dir}/container-cached.log`);
    assert.throws(() => logReadPath({ Type: 'syslog', Config: { 'cache-disabled': 'true' } }, ctx), /does not support reading/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('daemon.json with an unknown log driver or option stops berthd from starting', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-logcfg-'));
  try {
    const f = path.join(dir, 'daemon.json');
    writeFileSync(f, JSON.stringify({ 'log-driver': 'nosuch' }));
    assert.throws(() => loadConfig(['--config-file', f], '/repo'), (e: Error) => e instanceof ConfigError
      && e.message === "failed to set log opts: logger: no log driver named 'nosuch' is registered");
    writeFileSync(f, JSON.stringify({ 'log-opts': { 'max-sise': '1m' } }));
    assert.throws(() => loadConfig(['--config-file', f], '/repo'), /unknown log opt 'max-sise' for json-file log driver/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
