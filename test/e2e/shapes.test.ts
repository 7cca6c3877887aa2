// The shapes of berthd's answers against Docker's (api-spec/responses/, derived from Docker's own answers in
// docs/samples and docs/traces): inspect and list of containers (running with ports, volumes, a bind and a
// user network; stopped; created; paused; with a health check), their top, changes and stats, images
// (loaded, built, committed, pulled from a registry) and their history, networks, volumes, exec, /info,
// /version, /system/df, events, and the answers of create, wait, exec create, commit and network create.
// Each answer is checked at Docker 20.10's API version (the samples'), at the one the docker CLI negotiates
// and at berth's own (no /vX.Y prefix), so a field that drifts fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli, waitFor } from '../helpers/clients';
import { assertShape, shapeErrors, CURRENT } from '../helpers/shapes';
import { startRegistry, type Registry } from '../helpers/registry';

let work: string;
let reg: Registry | undefined;
let t0: number;
let execId: string;
let runningExecId: string;

const b = berthdForFile({
  fixtures: ['busybox'],
  start: () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'berth-shapes-'));
    return {};
  },
  setup: async (d) => {
    t0 = Math.floor(Date.now() / 1000) - 1;
    reg = await startRegistry(work);
    const run = (...args: string[]) => d.docker(args, { timeoutMs: 120000 }).then((r) => {
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      return r.stdout.trim();
    });
    mkdirSync(path.join(work, 'bind'));
    mkdirSync(path.join(work, 'ctx'));
    writeFileSync(path.join(work, 'ctx', 'Dockerfile'), 'FROM busybox\nLABEL shapes=built\nENV GREETING=hi\nRUN echo built > /built\nEXPOSE 8080\nVOLUME /cache\nCMD ["sleep", "600"]\n');
    await run('network', 'create', '--label', 'shapes=1', 'shp-net');
    await run('volume', 'create', '--label', 'shapes=1', 'shp-vol');
    await run('run', '-d', '--name', 'shp-run', '--label', 'shapes=1', '-p', '127.0.0.1::80', '-v', 'shp-vol:/data',
      '-v', `${path.join(work, 'bind')}:/bind:ro`, '--network', 'shp-net', '--network-alias', 'web', '-e', 'A=1', 'busybox', 'sleep', '600');
    await run('run', '--name', 'shp-stopped', 'busybox', 'sh', '-c', 'exit 3').catch(() => undefined);
    await run('create', '--name', 'shp-created', '--tmpfs', '/scratch', 'busybox', 'true');
    await run('build', '-q', '-t', 'shp-built:1', path.join(work, 'ctx'));
    await run('commit', '-c', 'LABEL committed=yes', 'shp-run', 'shp-commit:1');
    await run('tag', 'busybox', `127.0.0.1:${reg.port}/shp/busybox:1`);
    await run('push', `127.0.0.1:${reg.port}/shp/busybox:1`);
    await run('rmi', `127.0.0.1:${reg.port}/shp/busybox:1`);
    await run('pull', `127.0.0.1:${reg.port}/shp/busybox:1`);
    await run('run', '-d', '--name', 'shp-built', 'shp-built:1');
    await run('run', '-d', '--name', 'shp-paused', 'busybox', 'sleep', '600');
    await run('pause', 'shp-paused');
    await run('run', '-d', '--name', 'shp-health', '--health-cmd', 'echo ok', '--health-interval', '1s', 'busybox', 'sleep', '600');
    await waitFor('a health check ran', async () => ((await api(d, 'GET', '/containers/shp-health/json')).json().State.Health?.Log ?? []).length > 0, 30000, 200);
    // One exec done, one still running.
    const mk = async (cmd: string[]) => {
      const r = await api(d, 'POST', '/containers/shp-run/exec', { body: { Cmd: cmd, AttachStdout: true, AttachStderr: true } });
      assert.equal(r.status, 201, r.body);
      const id = r.json().Id as string;
      const s = await api(d, 'POST', `/exec/${id}/start`, { body: { Detach: true } });
      assert.equal(s.status, 200, s.body);
      return id;
    };
    execId = await mk(['true']);
    runningExecId = await mk(['sleep', '300']);
  },
  teardown: () => {
    reg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  },
});

const { ok } = dockerCli(() => b);

/** The API versions each answer is checked at: Docker 20.10's (the samples'; docker-compose 1.29), the docker
 *  CLI's (28.2: 1.50) and berth's own. */
const VERSIONS = ['/v1.41', '/v1.50', ''];

async function getJson(url: string): Promise<unknown> {
  const r = await api(b, 'GET', url);
  assert.equal(r.status, 200, `${url}: ${r.body}`);
  return r.json();
}

/** Every answer at every version checked, and all mismatches reported together. */
async function check(id: string, urls: string[]): Promise<void> {
  const errs: string[] = [];
  for (const v of VERSIONS) {
    for (const u of urls) {
      const got = await getJson(`${v}${u}`);
      for (const e of shapeErrors(id, got, v ? v.slice(2) : CURRENT)) errs.push(`${v || '(default)'} ${u}: ${e}`);
    }
  }
  assert.deepEqual(errs, [], `answers that do not have Docker's shape (${id}):\n  ${errs.join('\n  ')}`);
}

test('containers: inspect (running with ports, volumes, a bind and a user network; stopped; created; built; paused; with a health check) and list', async () => {
  await check('ContainerInspect', ['shp-run', 'shp-stopped', 'shp-created', 'shp-built', 'shp-paused', 'shp-health'].map((n) => `/containers/${n}/json`));
  await check('ContainerInspect', ['/containers/shp-run/json?size=1']);
  await check('ContainerList', ['/containers/json', '/containers/json?all=1', '/containers/json?all=1&size=1']);
  const list = (await getJson('/containers/json?all=1')) as unknown[];
  assert.equal(list.length, 6, 'the six containers are listed');
  const health = (await getJson('/containers/shp-health/json')) as { State: { Health: { Status: string } } };
  assert.equal(health.State.Health.Status, 'healthy');
});

test('images: inspect (loaded, built, committed, pulled) and list, and history', async () => {
  const pulled = `127.0.0.1:${reg!.port}/shp/busybox:1`;
  await check('ImageInspect', ['busybox', 'shp-built:1', 'shp-commit:1', pulled].map((n) => `/images/${n}/json`));
  await check('ImageList', ['/images/json', '/images/json?all=1']);
  await check('ImageHistory', ['busybox', 'shp-built:1', 'shp-commit:1'].map((n) => `/images/${n}/history`));
  const inspect = (await getJson(`/images/${pulled}/json`)) as { RepoDigests: string[] };
  assert.equal(inspect.RepoDigests.length, 1, 'a pulled image has its digest');
});

test('networks: inspect (the user network with a container, the default bridge, host, none) and list', async () => {
  await check('NetworkInspect', ['shp-net', 'bridge', 'host', 'none'].map((n) => `/networks/${n}`));
  await check('NetworkList', ['/networks']);
});

test('volumes: inspect and list', async () => {
  await check('VolumeInspect', ['/volumes/shp-vol']);
  await check('VolumeList', ['/volumes']);
});

test('exec inspect: finished and running', async () => {
  await check('ExecInspect', [`/exec/${execId}/json`, `/exec/${runningExecId}/json`]);
});

test('system: info, version, df', async () => {
  await check('SystemInfo', ['/info']);
  await check('SystemVersion', ['/version']);
  await check('SystemDf', ['/system/df']);
  // SystemTime is Go's RFC3339Nano: a fraction with no trailing zero (a millisecond clock ends in 0 one time in ten).
  const times: string[] = [];
  for (let i = 0; i < 40; i++) times.push(((await getJson('/info')) as { SystemTime: string }).SystemTime);
  assert.deepEqual(times.filter((t) => !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?(Z|[+-]\d\d:\d\d)$/.test(t) || !/\.\d{4,}/.test(t)), [], 'SystemTime with nanoseconds');
});

test('events: every message of the objects made above', async () => {
  const until = Math.floor(Date.now() / 1000) + 1;
  for (const v of VERSIONS) {
    const r = await api(b, 'GET', `${v}/events?since=${t0}&until=${until}`);
    assert.equal(r.status, 200, r.body);
    const msgs = r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { Type: string });
    const types = new Set(msgs.map((m) => m.Type));
    for (const t of ['container', 'image', 'network', 'volume']) assert.ok(types.has(t), `${t} events in ${[...types]}`);
    for (const m of msgs) assertShape('EventMessage', m, `${v || '(default)'} event ${JSON.stringify(m).slice(0, 200)}`, v ? v.slice(2) : CURRENT);
  }
});

test('the CLI reads what it is given: inspect formats and ps', async () => {
  assert.equal((await ok('inspect', '-f', '{{.State.Status}} {{.HostConfig.NetworkMode}} {{len .Mounts}}', 'shp-run')).trim(), 'running shp-net 2');
  assert.match(await ok('ps', '-a', '--format', '{{.Names}}'), /shp-stopped/);
});

test('FinishedAt is Go\'s RFC3339Nano (no trailing zeros), as the shim reports it; docker logs -t has nine digits', async () => {
  // 24 containers: under a fixed nine-digit fraction about one time in ten would end in 0.
  const names = Array.from({ length: 24 }, (_, i) => `shp-fin${i}`);
  for (const n of names) await ok('create', '--name', n, 'busybox', 'echo', n);
  await ok('start', ...names);
  const goNano = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$/;
  const finished: string[] = [];
  for (const n of names) {
    const c = await waitFor(`${n} exited`, async () => {
      const j = (await getJson(`/containers/${n}/json`)) as { State: { Status: string; FinishedAt: string } };
      return j.State.Status === 'exited' ? j : undefined;
    });
    finished.push(c.State.FinishedAt);
    assertShape('ContainerInspect', c, n);
  }
  assert.deepEqual(finished.filter((t) => !goNano.test(t)), [], 'FinishedAt');
  assert.match(await ok('logs', '-t', names[0]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z shp-fin0\n$/);
  await ok('rm', ...names);
});

test('the schemas see drift: a null for an object, a number as a string, a missing field, a field of an older API', async () => {
  const c = (await getJson('/containers/shp-run/json')) as Record<string, any>;
  assert.deepEqual(shapeErrors('ContainerInspect', c), []);
  const drift = structuredClone(c);
  drift.Config.Labels = null; // Docker sends {} for a container without labels
  drift.State.Pid = String(drift.State.Pid);
  delete drift.HostConfig.NetworkMode;
  drift.Created = 1795436034;
  const errs = shapeErrors('ContainerInspect', drift).join('\n');
  for (const want of ['/Config/Labels must be object', '/State/Pid must be integer', "/HostConfig must have required property 'NetworkMode'", '/Created must be string']) {
    assert.ok(errs.includes(want), `${want} in:\n${errs}`);
  }
  // VirtualSize went in API 1.44: required of an answer at 1.41, not of one at 1.50.
  const img = (await getJson('/v1.41/images/busybox/json')) as Record<string, unknown>;
  delete img.VirtualSize;
  assert.match(shapeErrors('ImageInspect', img, '1.41').join('\n'), /required property 'VirtualSize'/);
  assert.deepEqual(shapeErrors('ImageInspect', img, '1.50'), []);
});

test('exec start through the hijack (Upgrade: tcp, as the CLI sends it) checks its body as the plain route does', async () => {
  const r = await api(b, 'POST', '/containers/shp-run/exec', { body: { Cmd: ['true'], AttachStdout: true } });
  assert.equal(r.status, 201, r.body);
  const body = JSON.stringify({ Detach: false, Tty: 'no' });
  const answer = await new Promise<string>((resolve, reject) => {
    const s = net.connect(b.sock);
    let got = '';
    s.setTimeout(10000, () => s.destroy(new Error('no answer')));
    s.on('data', (c) => { got += c.toString('utf8'); });
    s.on('end', () => resolve(got));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.write(`POST /v1.50/exec/${r.json().Id}/start HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.equal(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).message, 'invalid JSON: json: cannot unmarshal string into Go struct field ExecStartOptions.Tty of type bool');
  assert.equal(((await getJson(`/exec/${r.json().Id}/json`)) as { Running: boolean; Pid: number }).Pid, 0, 'the exec did not start');
});

test('containers: top, changes and stats (one answer of stream=0, the first two of a stream)', async () => {
  await check('ContainerTop', ['/containers/shp-run/top']);
  await check('ContainerChanges', ['/containers/shp-run/changes', '/containers/shp-stopped/changes']);
  await check('ContainerStats', ['/containers/shp-run/stats?stream=0']);
  const r = await new Promise<string[]>((resolve, reject) => {
    const got: string[] = [];
    const req = http.request({ socketPath: b.sock, path: '/containers/shp-run/stats?stream=1' }, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          got.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
        if (got.length >= 2) {
          req.destroy();
          resolve(got.slice(0, 2));
        }
      });
    });
    req.setTimeout(15000, () => req.destroy(new Error('no two stats in 15 s')));
    req.on('error', (e) => { if (got.length < 2) reject(e); });
    req.end();
  });
  for (const line of r) assertShape('ContainerStats', JSON.parse(line), `stats stream ${line.slice(0, 120)}`);
});

test('answers of create, wait, exec create, commit and network create', async () => {
  const made = await api(b, 'POST', '/containers/create?name=shp-made', { body: { Image: 'busybox', Cmd: ['sh', '-c', 'exit 5'] } });
  assert.equal(made.status, 201, made.body);
  assertShape('ContainerCreateResponse', made.json());
  assert.deepEqual(made.json().Warnings, []);
  assert.equal((await api(b, 'POST', '/containers/shp-made/start')).status, 204);
  const waited = await api(b, 'POST', '/containers/shp-made/wait');
  assertShape('ContainerWaitResponse', waited.json());
  assert.equal(waited.json().StatusCode, 5);
  const exec = await api(b, 'POST', '/containers/shp-run/exec', { body: { Cmd: ['true'] } });
  assertShape('IdResponse', exec.json());
  const commit = await api(b, 'POST', '/commit?container=shp-made&repo=shp-made-image&tag=1', { body: { Labels: { a: 'b' } } });
  assert.equal(commit.status, 201, commit.body);
  assertShape('IdResponse', commit.json());
  const net = await api(b, 'POST', '/networks/create', { body: { Name: 'shp-net2' } });
  assert.equal(net.status, 201, net.body);
  assertShape('NetworkCreateResponse', net.json());
  await ok('rm', 'shp-made');
  await ok('rmi', 'shp-made-image:1');
  await ok('network', 'rm', 'shp-net2');
});
