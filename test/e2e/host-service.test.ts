// berthd as a host service (DESIGN promise 9): TCP listeners with TLS as dockerd has them (--tlsverify with
// a CA, --tls without client verification, plain TCP only with --tls=false), the unix socket alongside with
// mode 0660 and a configurable group, Prometheus metrics on metrics-addr, and daemon.json defaults for
// containers (default-ulimits, default-shm-size, log-opts) and in /info. Certificates are made here with
// openssl; every listener is on loopback.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, runCmd, DOCKER, REPO, type RunResult, type StartOptions } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { api, waitFor, show, httpGet } from '../helpers/clients';
import { freePort } from '../helpers/registry';

let certs = '';
let port = 0;
let metricsPort = 0;
const ADM_GID = Number(execFileSync('getent', ['group', 'adm'], { encoding: 'utf8' }).split(':')[2]);


/** A CA, a server certificate for 127.0.0.1 (IP SAN) and a client certificate, all signed by the CA. */
function makeCerts(dir: string): void {
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=berth test CA']);
  writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'server.ext']);
  writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'client.csr', '-subj', '/CN=client']);
  ossl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'client.ext']);
}

/** The docker CLI over TCP with the client certificate (or with the given TLS flags). */
function tlsDocker(args: string[], opts: { input?: string; tlsFlags?: string[]; p?: number } = {}): Promise<RunResult> {
  const flags = opts.tlsFlags ?? ['--tlsverify', '--tlscacert', path.join(certs, 'ca.pem'), '--tlscert', path.join(certs, 'cert.pem'), '--tlskey', path.join(certs, 'key.pem')];
  return runCmd(DOCKER, [...flags, '-H', `tcp://127.0.0.1:${opts.p ?? port}`, ...args], {
    input: opts.input, timeoutMs: 60000,
    env: { DOCKER_HOST: '', DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: certs, DOCKER_CONFIG: path.join(certs, 'docker-config') },
  });
}

/** A sample's value from Prometheus text: `name{labels} value`, labels matched exactly as written. */
function sample(text: string, nameAndLabels: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(nameAndLabels + ' ')) return Number(line.slice(nameAndLabels.length + 1));
  }
  return undefined;
}

/** Certificates and ports first; the daemon listens on TCP with TLS, on its socket with group adm, and
 *  serves metrics. */
async function startOptions(): Promise<StartOptions> {
  certs = mkdtempSync(path.join(os.tmpdir(), 'berth-tls-'));
  makeCerts(certs);
  port = await freePort();
  metricsPort = await freePort();
  return {
    extraArgs: ['-H', `tcp://127.0.0.1:${port}`, '--tlsverify', '--tlscacert', path.join(certs, 'ca.pem'),
      '--tlscert', path.join(certs, 'server-cert.pem'), '--tlskey', path.join(certs, 'server-key.pem'), '-G', 'adm',
      '--metrics-addr', `127.0.0.1:${metricsPort}`],
    daemonJson: {
      'default-ulimits': { nofile: { Name: 'nofile', Hard: 2048, Soft: 1024 } },
      'default-shm-size': '128M',
      'log-opts': { 'max-size': '10m', 'max-file': '3' },
      labels: ['role=test', 'zone=loopback'],
      'registry-mirrors': ['https://mirror.invalid:5000'],
      'insecure-registries': ['insecure.invalid:5000', '10.99.0.0/16'],
    },
  };
}

const b = berthdForFile({ start: startOptions, fixtures: ['busybox'] });

after(() => {
  if (certs) rmSync(certs, { recursive: true, force: true });
});

describe('TCP with TLS', () => {
  test('docker --tlsverify run over tcp://127.0.0.1', async () => {
    const r = await tlsDocker(['run', '--rm', 'busybox', 'echo', 'hi']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'hi\n');
    const v = await tlsDocker(['version', '--format', '{{.Server.APIVersion}}']);
    assert.equal(v.code, 0, show(v));
    assert.match(v.stdout.trim(), /^1\.\d+$/);
  });

  test('hijacked streams over TLS: run -i (attach) and exec -i carry stdin and its end', async () => {
    const r = await tlsDocker(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'cat; echo done'], { input: 'line one\nline two\n' });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'line one\nline two\ndone\n');

    const d = await tlsDocker(['run', '-d', '--name', 'tlsx', 'busybox', 'sleep', '600']);
    assert.equal(d.code, 0, show(d));
    const e = await tlsDocker(['exec', '-i', 'tlsx', 'sh', '-c', 'tr a-z A-Z; exit 7'], { input: 'shout\n' });
    assert.equal(e.code, 7, show(e));
    assert.equal(e.stdout, 'SHOUT\n');
    const a = await tlsDocker(['exec', 'tlsx', 'sh', '-c', 'echo out; echo err >&2']);
    assert.equal(a.code, 0, show(a));
    assert.equal(a.stdout, 'out\n');
    assert.equal(a.stderr, 'err\n');
    const rm = await tlsDocker(['rm', '-f', 'tlsx']);
    assert.equal(rm.code, 0, show(rm));
  });

  test('a client without a certificate is refused under --tlsverify', async () => {
    const err = await new Promise<Error | undefined>((resolve) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/_ping', ca: readFileSync(path.join(certs, 'ca.pem')) }, (res) => {
        res.resume();
        resolve(undefined);
      });
      req.on('error', (e) => resolve(e));
    });
    assert.ok(err, 'the TLS handshake without a client certificate must fail');
    // With the certificate the same request answers.
    const ok = await new Promise<number>((resolve, reject) => {
      https.get({
        host: '127.0.0.1', port, path: '/_ping', ca: readFileSync(path.join(certs, 'ca.pem')),
        cert: readFileSync(path.join(certs, 'cert.pem')), key: readFileSync(path.join(certs, 'key.pem')),
      }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
    });
    assert.equal(ok, 200);
    // Plain HTTP to the TLS port gets no API answer.
    const plain = await runCmd('curl', ['-sS', '-m', '10', `http://127.0.0.1:${port}/_ping`]);
    assert.notEqual(plain.stdout, 'OK');
  });

  test('the unix socket keeps working alongside, mode 0660 with the -G group', async () => {
    const r = await b.docker(['run', '--rm', 'busybox', 'echo', 'unix']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'unix\n');
    const st = statSync(b.sock);
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.gid, ADM_GID);
    assert.equal(st.uid, 0);
  });
});

describe('refusals and other TLS modes', () => {
  function runBerthd(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-refuse-'));
    writeFileSync(path.join(dir, 'daemon.json'), '{}');
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [path.join(REPO, 'bin', 'berthd'), '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'),
        '--pidfile', path.join(dir, 'pid'), '--config-file', path.join(dir, 'daemon.json'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr!.on('data', (c) => { stderr += c; });
      const t = setTimeout(() => p.kill('SIGKILL'), 30000);
      p.on('close', (code) => {
        clearTimeout(t);
        rmSync(dir, { recursive: true, force: true });
        resolve({ code, stderr });
      });
    });
  }

  test('a tcp host without TLS flags: berthd refuses to start and says why', async () => {
    const p = await freePort();
    const r = await runBerthd(['-H', `tcp://127.0.0.1:${p}`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /refusing to listen on tcp:\/\/127\.0\.0\.1:\d+ without TLS/);
    assert.match(r.stderr, /--tlsverify/);
    assert.match(r.stderr, /--tls=false/);
  });

  test('--tlsverify with a missing certificate file: a clear error', async () => {
    const p = await freePort();
    const r = await runBerthd(['-H', `tcp://127.0.0.1:${p}`, '--tlsverify', '--tlscacert', path.join(certs, 'ca.pem'),
      '--tlscert', path.join(certs, 'nope.pem'), '--tlskey', path.join(certs, 'server-key.pem')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /could not load TLS certificate .*nope\.pem/);
  });

  test('--tls without --tlsverify: TLS, clients need no certificate', async () => {
    const p = await freePort();
    const t = await startBerthd({ extraArgs: ['-H', `tcp://127.0.0.1:${p}`, '--tls', '--tlscert', path.join(certs, 'server-cert.pem'), '--tlskey', path.join(certs, 'server-key.pem')] });
    try {
      const r = await tlsDocker(['version', '--format', '{{.Server.Os}}'], { p, tlsFlags: ['--tlsverify', '--tlscacert', path.join(certs, 'ca.pem')] });
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout.trim(), 'linux');
      // A client with no certificate at all is served.
      const status = await new Promise<number>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: p, path: '/_ping', ca: readFileSync(path.join(certs, 'ca.pem')) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      assert.equal(status, 200);
      const plain = await runCmd('curl', ['-sS', '-m', '10', `http://127.0.0.1:${p}/_ping`]);
      assert.notEqual(plain.stdout, 'OK');
    } finally {
      await t.destroy();
    }
  });

  test('--tls=false: plain TCP on purpose, with a loud warning', async () => {
    const p = await freePort();
    const t = await startBerthd({ extraArgs: ['-H', `tcp://127.0.0.1:${p}`, '--tls=false'] });
    try {
      const r = await runCmd(DOCKER, ['-H', `tcp://127.0.0.1:${p}`, 'info', '--format', '{{.OSType}}'], { env: { DOCKER_HOST: '', DOCKER_CONFIG: path.join(t.root, 'docker-config') } });
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout.trim(), 'linux');
      assert.match(readFileSync(path.join(t.root, 'berthd.log'), 'utf8'), /WITHOUT TLS/);
    } finally {
      await t.destroy();
    }
  });
});

describe('Prometheus metrics', () => {
  test('GET /metrics on metrics-addr: container states, engine info, images, requests, events, process figures', async () => {
    const d = await b.docker(['run', '-d', '--name', 'metered', 'busybox', 'sleep', '600']);
    assert.equal(d.code, 0, show(d));
    const ps = await b.docker(['ps']);
    assert.equal(ps.code, 0, show(ps));
    const m = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`, 30000);
    assert.equal(m.status, 200);
    assert.match(m.type, /^text\/plain; version=0\.0\.4/);
    const t = m.body;
    assert.equal(sample(t, 'engine_daemon_container_states_containers{state="running"}'), 1, t);
    assert.equal(sample(t, 'engine_daemon_container_states_containers{state="paused"}'), 0);
    assert.ok((sample(t, 'engine_daemon_container_states_containers{state="stopped"}') ?? -1) >= 0);
    assert.match(t, /^# TYPE engine_daemon_container_states_containers gauge$/m);
    assert.match(t, /^engine_daemon_engine_info\{architecture="[^"]+",.*graphdriver="overlay2",.*os_type="linux",.*\} 1$/m);
    assert.equal(sample(t, 'berth_images'), 1);
    assert.ok((sample(t, 'engine_daemon_events_total') ?? 0) >= 2, 'create and start events at least');
    assert.ok((sample(t, 'berth_events_total{type="container",action="start"}') ?? 0) >= 1);
    assert.ok((sample(t, 'berth_http_requests_total{method="GET",route="/containers/json",code="200"}') ?? 0) >= 1, t);
    assert.ok((sample(t, 'berth_http_request_duration_seconds_count{method="POST",route="/containers/create"}') ?? 0) >= 1, t);
    assert.match(t, /^berth_http_request_duration_seconds_bucket\{method="GET",route="\/containers\/json",le="\+Inf"\} \d+$/m);
    assert.ok((sample(t, 'engine_daemon_container_actions_seconds_count{action="create"}') ?? 0) >= 1, t);
    assert.ok((sample(t, 'engine_daemon_container_actions_seconds_count{action="start"}') ?? 0) >= 1, t);
    assert.ok((sample(t, 'process_resident_memory_bytes') ?? 0) > 10 * 1024 * 1024);
    assert.ok((sample(t, 'process_open_fds') ?? 0) > 0);
    assert.ok((sample(t, 'nodejs_eventloop_lag_seconds{quantile="max"}') ?? -1) >= 0);
    // Every line is a comment or `name{labels} number`.
    for (const line of t.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.e+-]+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (NaN|[+-]Inf))$/, line);

    const stop = await b.docker(['rm', '-f', 'metered']);
    assert.equal(stop.code, 0, show(stop));
    const after = await waitFor('running count back to 0', async () => {
      const x = (await httpGet(`http://127.0.0.1:${metricsPort}/metrics`, 30000)).body;
      return sample(x, 'engine_daemon_container_states_containers{state="running"}') === 0 ? x : undefined;
    });
    assert.ok(after);
    assert.equal((await httpGet(`http://127.0.0.1:${metricsPort}/other`, 30000)).status, 404);
  });
});

describe('daemon.json defaults for containers and /info', () => {
  test('default-ulimits apply to containers that set none of their own', async () => {
    const r = await b.docker(['run', '--rm', 'busybox', 'sh', '-c', 'ulimit -Sn; ulimit -Hn']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, '1024\n2048\n');
    const own = await b.docker(['run', '--rm', '--ulimit', 'nofile=512:768', 'busybox', 'sh', '-c', 'ulimit -Sn; ulimit -Hn']);
    assert.equal(own.code, 0, show(own));
    assert.equal(own.stdout, '512\n768\n');
  });

  test('default-shm-size and log-opts are the defaults of new containers', async () => {
    const r = await b.docker(['create', '--name', 'defaults', 'busybox', 'true']);
    assert.equal(r.code, 0, show(r));
    const hc = (await api(b, 'GET', '/containers/defaults/json')).json().HostConfig;
    assert.equal(hc.ShmSize, 128 * 1024 * 1024);
    assert.deepEqual(hc.LogConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
    const own = await b.docker(['create', '--name', 'owndefaults', '--shm-size', '8m', '--log-opt', 'max-size=1m', 'busybox', 'true']);
    assert.equal(own.code, 0, show(own));
    const hc2 = (await api(b, 'GET', '/containers/owndefaults/json')).json().HostConfig;
    assert.equal(hc2.ShmSize, 8 * 1024 * 1024);
    assert.deepEqual(hc2.LogConfig.Config, { 'max-size': '1m', 'max-file': '3' });
    const df = await b.docker(['run', '--rm', 'busybox', 'df', '-k', '/dev/shm']);
    assert.equal(df.code, 0, show(df));
    assert.match(df.stdout, /\s131072\s/);
    await b.docker(['rm', 'defaults', 'owndefaults']);
  });

  test('/info reflects daemon.json and flags', async () => {
    const info = (await api(b, 'GET', '/info')).json();
    assert.equal(info.DockerRootDir, b.dataRoot);
    assert.deepEqual(info.Labels, ['role=test', 'zone=loopback']);
    assert.deepEqual(info.RegistryConfig.Mirrors, ['https://mirror.invalid:5000/']);
    assert.equal(info.RegistryConfig.IndexConfigs['insecure.invalid:5000'].Secure, false);
    assert.ok(info.RegistryConfig.InsecureRegistryCIDRs.includes('10.99.0.0/16'));
    assert.equal(info.LoggingDriver, 'json-file');
    assert.deepEqual(info.DefaultAddressPools, [{ Base: b.net.pool, Size: 28 }]);
    assert.ok(info.NFd > 0);
    const cli = await b.docker(['info', '--format', '{{json .Labels}} {{.DockerRootDir}}']);
    assert.equal(cli.code, 0, show(cli));
    assert.equal(cli.stdout.trim(), `["role=test","zone=loopback"] ${b.dataRoot}`);
  });
});
