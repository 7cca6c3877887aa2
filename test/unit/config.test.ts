// daemon flags and daemon.json: TLS for tcp hosts as dockerd 27+ has it, metrics-addr, default ulimits,
// sizes, labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, parseByteSize, ConfigError } from '../../daemon/config/config';

function withFile(json: object, argv: string[]): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-cfg-'));
  try {
    const f = path.join(dir, 'daemon.json');
    writeFileSync(f, JSON.stringify(json));
    return loadConfig(['--config-file', f, ...argv], '/repo');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a tcp host needs TLS flags or an explicit --tls=false', () => {
  assert.throws(() => withFile({}, ['-H', 'tcp://127.0.0.1:2375']), (e: Error) => e instanceof ConfigError && /without TLS/.test(e.message) && /--tls=false/.test(e.message));
  assert.equal(withFile({}, ['-H', 'tcp://127.0.0.1:2375', '--tls=false']).tls, false);
  const v = withFile({}, ['-H', 'tcp://127.0.0.1:2376', '--tlsverify', '--tlscacert', '/c/ca.pem', '--tlscert=/c/s.pem', '--tlskey', '/c/k.pem']);
  assert.equal(v.tls, true, '--tlsverify implies --tls');
  assert.equal(v.tlsVerify, true);
  assert.deepEqual([v.tlsCaCert, v.tlsCert, v.tlsKey], ['/c/ca.pem', '/c/s.pem', '/c/k.pem']);
  const f = withFile({ hosts: ['tcp://127.0.0.1:2376'], tls: true, tlscert: '/x/cert.pem', tlskey: '/x/key.pem' }, []);
  assert.equal(f.tls, true);
  assert.equal(f.tlsVerify, false);
  assert.equal(f.tlsCert, '/x/cert.pem');
  assert.throws(() => withFile({}, ['--tls=maybe']), /invalid boolean/);
  assert.throws(() => withFile({}, ['-H', 'tcp://127.0.0.1', '--tls=false']), /use tcp:\/\/address:port/);
  // unix sockets need nothing
  assert.deepEqual(withFile({}, ['-H', '/run/x.sock']).hosts, ['unix:///run/x.sock']);
});

test('metrics-addr, default-ulimits, default-shm-size, labels, group', () => {
  const c = withFile({
    'metrics-addr': '127.0.0.1:9323', 'default-ulimits': { nofile: { Name: 'nofile', Hard: 2048, Soft: 1024 }, nproc: { Soft: 10, Hard: 20 } },
    'default-shm-size': '128M', labels: ['a=b'], group: 'adm',
  }, []);
  assert.equal(c.metricsAddr, '127.0.0.1:9323');
  assert.deepEqual(c.defaultUlimits, [{ Name: 'nofile', Soft: 1024, Hard: 2048 }, { Name: 'nproc', Soft: 10, Hard: 20 }]);
  assert.equal(c.defaultShmSize, 128 * 1024 * 1024);
  assert.deepEqual(c.labels, ['a=b']);
  assert.equal(c.socketGroup, 'adm');
  assert.equal(withFile({ group: 'adm' }, ['-G', 'wheel']).socketGroup, 'wheel');
  assert.equal(withFile({}, ['--metrics-addr', '[::1]:9323']).metricsAddr, '[::1]:9323');
  assert.throws(() => withFile({ 'metrics-addr': 'nope' }, []), /invalid metrics-addr/);
  assert.throws(() => withFile({ 'default-ulimits': { nofile: { Soft: 5, Hard: 1 } } }, []), /greater than hard/);
  assert.throws(() => withFile({ 'default-ulimits': { bogus: { Soft: 1, Hard: 1 } } }, []), /unknown ulimit/);
  assert.throws(() => withFile({ 'log-opts': { 'max-size': 10 } }, []), /log-opts/);
  assert.equal(withFile({}, []).defaultShmSize, 64 * 1024 * 1024);
});

test('default-ipc-mode and default-cgroupns-mode, from daemon.json or flags, checked', () => {
  assert.equal(withFile({}, []).defaultIpcMode, 'private');
  assert.equal(withFile({}, []).defaultCgroupnsMode, 'private');
  assert.equal(withFile({ 'default-ipc-mode': 'shareable', 'default-cgroupns-mode': 'host' }, []).defaultIpcMode, 'shareable');
  assert.equal(withFile({ 'default-ipc-mode': 'shareable', 'default-cgroupns-mode': 'host' }, []).defaultCgroupnsMode, 'host');
  assert.equal(withFile({}, ['--default-cgroupns-mode', 'host']).defaultCgroupnsMode, 'host');
  assert.throws(() => withFile({ 'default-ipc-mode': 'host' }, []), /invalid default-ipc-mode/);
  assert.throws(() => withFile({}, ['--default-cgroupns-mode=none']), /invalid default-cgroupns-mode/);
});

test('byte sizes as Docker writes them', () => {
  assert.equal(parseByteSize(1024, 'x'), 1024);
  assert.equal(parseByteSize('64m', 'x'), 64 * 1024 * 1024);
  assert.equal(parseByteSize('1g', 'x'), 1024 ** 3);
  assert.equal(parseByteSize('512k', 'x'), 512 * 1024);
  assert.equal(parseByteSize('1.5GB', 'x'), 1.5 * 1024 ** 3);
  assert.throws(() => parseByteSize('lots', 'x'), /invalid x/);
  assert.throws(() => parseByteSize(0, 'x'), /invalid x/);
});

test('the API bounds: api-* keys in daemon.json and as flags, defaults, bad values refused', () => {
  const d = withFile({}, []);
  assert.deepEqual({ ...d.api, maxBufferedBytes: 0 }, { headerTimeoutMs: 10000, bodyTimeoutMs: 60000, writeStallMs: 300000, maxJsonBody: 4 << 20, maxConnections: 1024, maxBufferedBytes: 0 });
  const f = withFile({ 'api-header-timeout': 2.5, 'api-body-timeout': 30, 'api-write-timeout': 5, 'api-max-json-body': '8m', 'api-max-connections': 64 }, []);
  assert.equal(f.api.headerTimeoutMs, 2500);
  assert.equal(f.api.bodyTimeoutMs, 30000);
  assert.equal(f.api.writeStallMs, 5000);
  assert.equal(f.api.maxJsonBody, 8 << 20);
  assert.equal(f.api.maxConnections, 64);
  // Flags win over the file.
  const g = withFile({ 'api-max-connections': 64 }, ['--api-max-connections', '10', '--api-header-timeout=3', '--api-max-json-body', '1m']);
  assert.equal(g.api.maxConnections, 10);
  assert.equal(g.api.headerTimeoutMs, 3000);
  assert.equal(g.api.maxJsonBody, 1 << 20);
  assert.throws(() => withFile({ 'api-header-timeout': 0 }, []), /invalid api-header-timeout/);
  assert.throws(() => withFile({ 'api-body-timeout': 'soon' }, []), /invalid api-body-timeout/);
  assert.throws(() => withFile({ 'api-max-connections': 1.5 }, []), /invalid api-max-connections/);
  assert.throws(() => withFile({ 'api-max-json-body': 'lots' }, []), /invalid api-max-json-body/);
});

test('userland-proxy: true by default; false from daemon.json or --userland-proxy=false, the flag winning; not a boolean refused', () => {
  assert.equal(withFile({}, []).userlandProxy, true);
  assert.equal(withFile({ 'userland-proxy': false }, []).userlandProxy, false);
  assert.equal(withFile({}, ['--userland-proxy=false']).userlandProxy, false);
  assert.equal(withFile({ 'userland-proxy': false }, ['--userland-proxy']).userlandProxy, true);
  assert.throws(() => withFile({ 'userland-proxy': 'no' }, []), (e: Error) => e instanceof ConfigError && /userland-proxy must be true or false/.test(e.message));
});
