// Where docker-py's own integration suite (make conformance, docs/conformance.md) found berth differing
// from Docker: each fix checked here with the client that found it, small and fast.
//   - the classic builder: .dockerignore that names itself and the Dockerfile, `!` exceptions, a Dockerfile
//     from outside the context, RUN stderr framed as Docker frames it, cache_from as the only cache source;
//   - exec: detachKeys from the client's config file (docker-py sends `detachKeys` in the exec body, the
//     docker CLI `DetachKeys`), honoured by the daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCmd, DOCKER } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { api, dockerOk, show, sleep, waitFor } from '../helpers/clients';
import { startRegistry } from '../helpers/registry';

const b = berthdForFile({ fixtures: ['busybox'] });

/** Runs a python3 (docker-py 7.1.0) program against the daemon; its stdout, or a failure with its output. */
async function py(program: string, env: Record<string, string> = {}): Promise<string> {
  const r = await runCmd('python3', ['-c', `import docker, json, sys, os\nc = docker.APIClient(base_url='${b.host}', version='auto')\n${program}`],
    { env: { PYTHONDONTWRITEBYTECODE: '1', DOCKER_CONFIG: path.join(b.root, 'docker-config'), ...env }, timeoutMs: 120000 });
  assert.equal(r.code, 0, show(r));
  return r.stdout;
}

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-conf-ctx-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

test('build: a .dockerignore that names itself and the Dockerfile, with ! exceptions (docker-py and the CLI)', async () => {
  const ctx = tree({
    Dockerfile: 'FROM busybox\nADD . /test\n',
    '.dockerignore': 'ignored\nDockerfile\n.dockerignore\n ignored-with-spaces \n!ignored/subdir/excepted-file\n! ignored/subdir/excepted-with-spaces  \n\n#*\n',
    'not-ignored': 'x', '#file.txt': 'x', 'ignored-with-spaces': 'x',
    'ignored/subdir/file': 'x', 'ignored/subdir/excepted-file': 'x', 'ignored/subdir/excepted-with-spaces': 'x',
  });
  try {
    const want = ['/test/#file.txt', '/test/ignored/subdir/excepted-file', '/test/ignored/subdir/excepted-with-spaces', '/test/not-ignored'];
    await py(`for _ in c.build(path=${JSON.stringify(ctx)}, tag='conf-ignore-py'): pass`);
    const fromPy = await dockerOk(b, ['run', '--rm', 'conf-ignore-py', 'find', '/test', '-type', 'f']);
    assert.deepEqual(fromPy.trim().split('\n').sort(), want);
    await dockerOk(b, ['build', '-q', '-t', 'conf-ignore-cli', ctx]);
    const fromCli = await dockerOk(b, ['run', '--rm', 'conf-ignore-cli', 'find', '/test', '-type', 'f']);
    assert.deepEqual(fromCli.trim().split('\n').sort(), want);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
});

test('build: a Dockerfile outside the context is used and not copied (docker-py and the CLI)', async () => {
  const ctx = tree({ 'file.txt': 'hello world', '.dockerignore': '.dockerignore\n' });
  const dfDir = tree({ Dockerfile: 'FROM busybox\nCOPY . /src\nWORKDIR /src\n' });
  try {
    const out = await py(`print(json.dumps([l for l in c.build(path=${JSON.stringify(ctx)}, dockerfile=${JSON.stringify(path.join(dfDir, 'Dockerfile'))}, tag='conf-outside', decode=True)]))`);
    const lines = JSON.parse(out) as Array<{ stream?: string }>;
    assert.match(lines[lines.length - 1].stream ?? '', /Successfully tagged conf-outside/, out);
    assert.deepEqual((await dockerOk(b, ['run', '--rm', 'conf-outside', 'ls', '-a'])).trim().split('\n').sort(), ['.', '..', 'file.txt']);
    await dockerOk(b, ['build', '-q', '-t', 'conf-outside-cli', '-f', path.join(dfDir, 'Dockerfile'), ctx]);
    assert.deepEqual((await dockerOk(b, ['run', '--rm', 'conf-outside-cli', 'ls', '-a'])).trim().split('\n').sort(), ['.', '..', 'file.txt']);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
    rmSync(dfDir, { recursive: true, force: true });
  }
});

test('build: a RUN step\'s stderr comes as Docker sends it (ESC[91m … ESC[0m), stdout as it is', async () => {
  const out = await py(`
script = b'FROM busybox\\nRUN sh -c "echo to-out; >&2 echo to-err"'
import io
print(json.dumps([l.get('stream') for l in c.build(fileobj=io.BytesIO(script), decode=True, nocache=True)]))`);
  const streams = JSON.parse(out) as Array<string | null>;
  assert.ok(streams.includes('\x1b[91mto-err\n\x1b[0m'), out);
  assert.ok(streams.includes('to-out\n'), out);
});

test('build: cache_from makes only the named images (and their parents) cache sources', async () => {
  const out = await py(`
import io
script = b'FROM busybox\\nENV FOO=bar\\nRUN touch baz\\nRUN touch bax'
def hits(**kw):
    return sum('Using cache' in (l.get('stream') or '') for l in c.build(fileobj=io.BytesIO(script), decode=True, **kw))
for _ in c.build(fileobj=io.BytesIO(script), tag='conf-cache1'): pass
print(json.dumps([hits(tag='conf-cache2', cache_from=['conf-cache1']), hits(tag='conf-cache3', cache_from=['nosuchtag']), hits(tag='conf-cache4')]))`);
  // From the named image: all three steps. From a name that matches nothing: none, although the local
  // cache has them (Docker uses the local cache only when no cache_from is given). Without: all three.
  assert.deepEqual(JSON.parse(out), [3, 0, 3]);
  const bad = await api(b, 'POST', '/build?cachefrom=notjson', { body: Buffer.alloc(1024), headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(bad.status, 400, bad.body);
  assert.match(JSON.parse(bad.body).message, /cachefrom/);
});

test('exec: detachKeys from docker-py\'s config file (body key detachKeys) detaches the session', async () => {
  const cfgDir = path.join(b.root, 'py-config');
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ detachKeys: 'ctrl-x' }));
  const out = await py(`
import time
ctr = c.create_container('busybox', 'cat', detach=True, stdin_open=True)
c.start(ctr)
e = c.exec_create(ctr, 'cat', stdin=True, tty=True, stdout=True)
sock = c.exec_start(e, tty=True, socket=True)._sock
sock.sendall(b'hello\\n')
time.sleep(0.5)
echoed = sock.recv(100)
sock.sendall(b'\\x18')
sock.settimeout(10)
rest = b''
while True:
    d = sock.recv(100)
    if not d: break
    rest += d
print(json.dumps({'keys': c.exec_inspect(e)['DetachKeys'], 'echoed': echoed.decode(), 'closed': True}))
c.remove_container(ctr, force=True)`, { DOCKER_CONFIG: cfgDir });
  const r = JSON.parse(out);
  assert.equal(r.keys, 'ctrl-x');
  assert.match(r.echoed, /hello/);
  assert.equal(r.closed, true);
});

test('exec: the docker CLI sends config.json detachKeys in the exec body (not a query), and it detaches', async () => {
  const cfgDir = path.join(b.root, 'cli-config');
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ detachKeys: 'ctrl-x' }));
  await dockerOk(b, ['run', '-d', '--name', 'conf-dk', 'busybox', 'sleep', '600']);
  // `script` gives the CLI a terminal; its stdin is the terminal's keyboard.
  const cmd = `DOCKER_HOST=${b.host} DOCKER_CONFIG=${cfgDir} ${DOCKER} exec -it conf-dk sh -c 'echo ready; exec cat'`;
  const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout.on('data', (d) => { screen += d.toString(); });
  child.stderr.on('data', (d) => { screen += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  try {
    await waitFor('exec -it ready', () => screen.includes('ready'), 20000);
    const list = JSON.parse((await api(b, 'GET', '/containers/conf-dk/json')).body).ExecIDs as string[];
    assert.equal(list.length, 1);
    const ex = JSON.parse((await api(b, 'GET', `/exec/${list[0]}/json`)).body);
    assert.equal(ex.DetachKeys, 'ctrl-x', 'the CLI put config.json detachKeys in the exec create body');
    child.stdin.write('\x18');
    const code = await Promise.race([exited, sleep(15000).then(() => 'timeout' as const)]);
    assert.notEqual(code, 'timeout', `the CLI did not detach on ctrl-x\n${screen}`);
    assert.match(screen, /read escape sequence/);
    // Detached, not ended: the exec's process is still there.
    const after = JSON.parse((await api(b, 'GET', `/exec/${list[0]}/json`)).body);
    assert.equal(after.Running, true);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await dockerOk(b, ['rm', '-f', 'conf-dk']);
  }
});

test('volumes: a volume created without a name is anonymous (labelled so), and volume prune removes it', async () => {
  const anon = (await api(b, 'POST', '/volumes/create', { body: {} })).json();
  assert.deepEqual(anon.Labels, { 'com.docker.volume.anonymous': '' });
  const named = (await api(b, 'POST', '/volumes/create', { body: { Name: 'conf-named' } })).json();
  assert.equal(named.Labels, null);
  const pruned = (await api(b, 'POST', '/volumes/prune')).json();
  assert.ok(pruned.VolumesDeleted.includes(anon.Name), JSON.stringify(pruned));
  assert.ok(!pruned.VolumesDeleted.includes('conf-named'), JSON.stringify(pruned));
  await dockerOk(b, ['volume', 'rm', 'conf-named']);
});

test('distribution: GET /distribution/{name}/json answers the manifest descriptor and platforms (docker-py inspect_distribution)', async () => {
  const reg = await startRegistry(b.root, 'dist');
  try {
    const name = `127.0.0.1:${reg.port}/conf/dist:v1`;
    await dockerOk(b, ['tag', 'busybox', name]);
    const pushed = await dockerOk(b, ['push', name]);
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed)?.[1];
    assert.ok(digest, pushed);
    const out = JSON.parse(await py(`print(json.dumps(c.inspect_distribution(${JSON.stringify(name)})))`));
    assert.equal(out.Descriptor.digest, digest);
    assert.equal(out.Descriptor.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.ok(out.Descriptor.size > 0);
    assert.deepEqual(out.Platforms, [{ architecture: 'amd64', os: 'linux' }]);
    const missing = await api(b, 'GET', `/distribution/127.0.0.1:${reg.port}/conf/nothing:v1/json`);
    assert.equal(missing.status, 404, missing.body);
    assert.match(missing.json().message, /not found/);
  } finally {
    reg.stop();
  }
});

test('logs: a follow request gets its 200 at once, before the container prints anything (docker-py run with auto_remove)', async () => {
  const id = (await dockerOk(b, ['run', '-d', 'busybox', 'sh', '-c', 'sleep 3; echo late'])).trim();
  try {
    const started = Date.now();
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: b.sock, path: `/containers/${id}/logs?stdout=1&follow=1`, method: 'GET' }, (res) => {
        resolve(res.statusCode ?? 0);
        res.destroy();
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200);
    assert.ok(Date.now() - started < 2000, `the headers came after ${Date.now() - started} ms`);
    // And docker-py's run(auto_remove=True) of a failing command reports the failure (it inspected the
    // container while the logs were open; a late 200 made that a 404 of the removed container).
    const out = await py(`
cl = docker.DockerClient(base_url='${b.host}', version='auto')
try:
    cl.containers.run('busybox', 'sh -c ">&2 echo error && sleep 2 && exit 1"', auto_remove=True)
    print('no error')
except docker.errors.ContainerError as e:
    print(json.dumps({'exit': e.exit_status, 'stderr': e.stderr}))`);
    assert.deepEqual(JSON.parse(out), { exit: 1, stderr: null });
  } finally {
    await b.docker(['rm', '-f', id]);
  }
});

test('create: the container-wide MacAddress (docker-py mac_address) is the main network endpoint\'s MAC', async () => {
  const out = JSON.parse(await py(`
ctr = c.create_container('busybox', ['sh', '-c', 'cat /sys/class/net/eth0/address; sleep 30'], mac_address='02:42:ac:11:00:0a')
c.start(ctr)
import time
for _ in range(50):
    logs = c.logs(ctr).decode()
    if logs: break
    time.sleep(0.1)
i = c.inspect_container(ctr)
c.remove_container(ctr, force=True)
print(json.dumps({'mac': i['NetworkSettings']['MacAddress'], 'inside': logs.strip()}))`));
  assert.deepEqual(out, { mac: '02:42:ac:11:00:0a', inside: '02:42:ac:11:00:0a' });
  const bad = await api(b, 'POST', '/containers/create', { body: { Image: 'busybox', MacAddress: 'not-a-mac' } });
  assert.equal(bad.status, 400, bad.body);
  assert.match(bad.json().message, /invalid MAC address: not-a-mac/);
});

test('inspect: a user network endpoint given no aliases shows Aliases null (docker-py run with network=)', async () => {
  await dockerOk(b, ['network', 'create', 'conf-net']);
  try {
    const id = (await dockerOk(b, ['create', '--network', 'conf-net', 'busybox', 'true'])).trim();
    const n = (await api(b, 'GET', `/containers/${id}/json`)).json().NetworkSettings.Networks['conf-net'];
    assert.equal(n.Aliases, null);
    assert.equal(n.DriverOpts, null);
    await dockerOk(b, ['rm', id]);
  } finally {
    await b.docker(['network', 'rm', 'conf-net']);
  }
});

test('load: an archive that cannot be read is a 200 stream ending in errorDetail, as Docker answers (docker-py ImageLoadError)', async () => {
  const out = await py(`
cl = docker.DockerClient(base_url='${b.host}', version='auto')
try:
    cl.images.load('abc')
    print('loaded')
except docker.errors.ImageLoadError as e:
    print('ImageLoadError: ' + str(e))`);
  assert.match(out, /^ImageLoadError: .*(truncated|archive|tar)/);
  // A bad parameter is still refused before the stream starts.
  const bad = await api(b, 'POST', '/images/load?platform=nosuch%2F%2F%2F', { body: 'abc', headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(bad.status, 400, bad.body);
});

test('build: cache_from an image that was not built here (saved and loaded: no parent chain) is used step by step', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-conf-cf-'));
  try {
    const program = (tag: string, cacheFrom: string) => `
import io
script = b'FROM busybox\\nENV FOO=cf\\nRUN touch cf1\\nRUN touch cf2'
lines = list(c.build(fileobj=io.BytesIO(script), decode=True, tag='${tag}'${cacheFrom ? `, cache_from=['${cacheFrom}']` : ''}))
print(json.dumps({'hits': sum('Using cache' in (l.get('stream') or '') for l in lines), 'id': c.inspect_image('${tag}')['Id']}))`;
    const src = JSON.parse(await py(program('conf-cf-src', '')));
    await dockerOk(b, ['save', '-o', path.join(dir, 'src.tar'), 'conf-cf-src']);
    await dockerOk(b, ['rmi', 'conf-cf-src']);
    assert.match(await dockerOk(b, ['load', '-i', path.join(dir, 'src.tar')]), /Loaded image: conf-cf-src:latest/);
    // cache_from the loaded image: each of the three steps comes from its history, and the last is it:
    // the loaded image has no parent here, so no image made locally can stand for that last step.
    const cached = JSON.parse(await py(program('conf-cf-cached', 'conf-cf-src')));
    assert.deepEqual(cached, { hits: 3, id: src.id });
    // The steps before it became images of their own, parent to child: the next such build uses them.
    const again = JSON.parse(await py(program('conf-cf-again', 'conf-cf-src')));
    assert.deepEqual(again, { hits: 3, id: src.id });
    assert.equal((await dockerOk(b, ['run', '--rm', 'conf-cf-cached', 'sh', '-c', 'ls /cf1 /cf2 && echo $FOO'])).trim(), '/cf1\n/cf2\ncf');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await b.docker(['rmi', 'conf-cf-src', 'conf-cf-cached', 'conf-cf-again']);
  }
});

test('network inspect: IPAM.Options is shown as sent, null without any (docker-py) and {} from the CLI', async () => {
  const out = await py(`
from docker.types import IPAMConfig, IPAMPool
n = c.create_network('conf-ipam', ipam=IPAMConfig(driver='default', pool_configs=[IPAMPool(subnet='10.231.7.0/24')]))
print(json.dumps(c.inspect_network(n['Id'])['IPAM']))
c.remove_network(n['Id'])`);
  const ipam = JSON.parse(out);
  assert.equal(ipam.Options, null);
  assert.equal(ipam.Config[0].Subnet, '10.231.7.0/24');
  await dockerOk(b, ['network', 'create', 'conf-ipam-cli']);
  try {
    assert.deepEqual((await api(b, 'GET', '/networks/conf-ipam-cli')).json().IPAM.Options, {});
  } finally {
    await b.docker(['network', 'rm', 'conf-ipam-cli']);
  }
});
