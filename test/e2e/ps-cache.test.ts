// The container list and inspect are served from JSON kept per container (containers/views.ts): each kind
// of change must show at once in the next `docker ps` and `docker inspect`, however the change came about
// (a verb of the API, the container's own exit, a network's connect), and a kept answer must be what a
// freshly made one is (size=1 answers are made fresh each time, so the two are compared).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli, sleep } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok, fails } = dockerCli(() => b);

/** `docker ps -a` rows of the containers named `prefix…`: name, state, status, labels, networks, ports. */
async function ps(prefix: string): Promise<Map<string, { state: string; status: string; labels: string; networks: string; ports: string }>> {
  const out = await ok('ps', '-a', '--no-trunc', '--filter', `name=^${prefix}`, '--format', '{{.Names}}|{{.State}}|{{.Status}}|{{.Labels}}|{{.Networks}}|{{.Ports}}');
  const rows = new Map();
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const [name, state, status, labels, networks, ports] = line.split('|');
    rows.set(name, { state, status, labels, networks, ports });
  }
  return rows;
}

async function inspect(ref: string): Promise<any> {
  return JSON.parse(await ok('inspect', ref))[0];
}

/** Asks for the list and inspect until they are kept (twice each), so the change that follows must
 *  replace a kept answer. */
async function warm(prefix: string, ref: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await ps(prefix);
    await inspect(ref);
  }
}

test('rename, stop, start, restart, pause and rm show at once in ps and inspect', async () => {
  const id = (await ok('run', '-d', '--name', 'pc-a', '--label', 'tier=web', 'busybox', 'sleep', '1000')).trim();
  await warm('pc-', id);

  await ok('rename', 'pc-a', 'pc-b');
  assert.deepEqual([...(await ps('pc-')).keys()], ['pc-b']);
  assert.equal((await inspect(id)).Name, '/pc-b');

  await ok('stop', '-t', '0', 'pc-b');
  assert.equal((await ps('pc-')).get('pc-b')?.state, 'exited');
  let st = (await inspect(id)).State;
  assert.equal(st.Status, 'exited');
  assert.equal(st.Pid, 0);

  await warm('pc-', id);
  await ok('start', 'pc-b');
  assert.equal((await ps('pc-')).get('pc-b')?.state, 'running');
  st = (await inspect(id)).State;
  assert.equal(st.Status, 'running');
  assert.ok(st.Pid > 0);

  const before = st.StartedAt;
  await warm('pc-', id);
  await ok('restart', '-t', '0', 'pc-b');
  assert.notEqual((await inspect(id)).State.StartedAt, before);

  await warm('pc-', id);
  await ok('pause', 'pc-b');
  assert.equal((await ps('pc-')).get('pc-b')?.state, 'paused');
  assert.match((await ps('pc-')).get('pc-b')!.status, /\(Paused\)$/);
  assert.equal((await inspect(id)).State.Paused, true);
  await ok('unpause', 'pc-b');
  assert.equal((await ps('pc-')).get('pc-b')?.state, 'running');
  assert.equal((await inspect(id)).State.Paused, false);

  // The Status column follows the clock, not the moment the entry was kept.
  const s1 = (await ps('pc-')).get('pc-b')!.status;
  await sleep(2100);
  const s2 = (await ps('pc-')).get('pc-b')!.status;
  assert.notEqual(s1, s2, `status ${s1} still shown 2 s later`);

  await warm('pc-', id);
  await ok('rm', '-f', 'pc-b');
  assert.equal((await ps('pc-')).size, 0);
  await fails(/No such (container|object)/, 'inspect', id);
});

test('an exit of its own, update and exec show at once', async () => {
  const id = (await ok('run', '-d', '--name', 'pe-a', 'busybox', 'sh', '-c', 'read x; exit 3')).trim();
  await warm('pe-', id);
  // The container ends by itself (its stdin is closed at once): no request of a client changes it.
  await ok('wait', id);
  assert.equal((await ps('pe-')).get('pe-a')?.state, 'exited');
  assert.match((await ps('pe-')).get('pe-a')!.status, /^Exited \(\d+\)/);
  assert.equal((await inspect(id)).State.Status, 'exited');
  await ok('rm', id);

  const id2 = (await ok('run', '-d', '--name', 'pe-b', 'busybox', 'sleep', '1000')).trim();
  await warm('pe-', id2);
  await ok('update', '--restart', 'on-failure:3', '--memory', '64m', '--memory-swap', '128m', 'pe-b');
  const hc = (await inspect(id2)).HostConfig;
  assert.deepEqual(hc.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.equal(hc.Memory, 64 * 1024 * 1024);

  await warm('pe-', id2);
  await ok('exec', '-d', 'pe-b', 'sleep', '30');
  const execs = (await inspect(id2)).ExecIDs;
  assert.ok(Array.isArray(execs) && execs.length === 1, `ExecIDs ${JSON.stringify(execs)}`);
  await ok('rm', '-f', 'pe-b');
});

test('connect, disconnect and published ports show at once', async () => {
  await ok('network', 'create', 'pn-net');
  const id = (await ok('run', '-d', '--name', 'pn-a', '-p', '127.0.0.1::80', 'busybox', 'sleep', '1000')).trim();
  await warm('pn-', id);
  assert.match((await ps('pn-')).get('pn-a')!.ports, /^127\.0\.0\.1:\d+->80\/tcp$/);

  await ok('network', 'connect', '--alias', 'web', 'pn-net', 'pn-a');
  assert.deepEqual((await ps('pn-')).get('pn-a')!.networks.split(',').sort(), ['bridge', 'pn-net']);
  let nets = (await inspect(id)).NetworkSettings.Networks;
  assert.ok(nets['pn-net']?.IPAddress, `pn-net in ${JSON.stringify(Object.keys(nets))}`);
  assert.ok(nets['pn-net'].Aliases.includes('web'));

  await warm('pn-', id);
  await ok('network', 'disconnect', 'pn-net', 'pn-a');
  assert.equal((await ps('pn-')).get('pn-a')!.networks, 'bridge');
  nets = (await inspect(id)).NetworkSettings.Networks;
  assert.deepEqual(Object.keys(nets), ['bridge']);

  // A stopped container publishes nothing; started again it gets a port again.
  await ok('stop', '-t', '0', 'pn-a');
  assert.doesNotMatch((await ps('pn-')).get('pn-a')!.ports, /->/);
  assert.equal((await inspect(id)).NetworkSettings.Ports['80/tcp']?.[0]?.HostPort, undefined);
  await warm('pn-', id);
  await ok('start', 'pn-a');
  assert.match((await ps('pn-')).get('pn-a')!.ports, /^127\.0\.0\.1:\d+->80\/tcp$/);
  assert.ok((await inspect(id)).NetworkSettings.Ports['80/tcp']?.[0]?.HostPort);
  await ok('rm', '-f', 'pn-a');
  await ok('network', 'rm', 'pn-net');
});

test('labels: a container of a committed image shows the image\'s label; the source keeps its own', async () => {
  const id = (await ok('run', '-d', '--name', 'pl-a', '--label', 'x=1', 'busybox', 'sleep', '1000')).trim();
  await warm('pl-', id);
  await ok('commit', '--change', 'LABEL y=2', 'pl-a', 'pl-img:1');
  assert.equal((await ps('pl-')).get('pl-a')!.labels, 'x=1');
  const id2 = (await ok('run', '-d', '--name', 'pl-b', 'pl-img:1', 'sleep', '1000')).trim();
  const rows = await ps('pl-');
  assert.deepEqual(rows.get('pl-b')!.labels.split(',').sort(), ['x=1', 'y=2']);
  assert.deepEqual((await inspect(id2)).Config.Labels, { x: '1', y: '2' });
  await ok('rm', '-f', 'pl-a', 'pl-b');
  await ok('rmi', 'pl-img:1');
});

test('kept answers are the answers made afresh, for every API version\'s shape', async () => {
  await ok('run', '-d', '--name', 'pk-a', '--label', 'k=v', '-p', '127.0.0.1::80', 'busybox', 'sleep', '1000');
  await ok('create', '--name', 'pk-b', 'busybox', 'true');
  const drop = (x: Record<string, unknown>) => {
    const { SizeRw: _a, SizeRootFs: _b, ...rest } = x;
    return rest;
  };
  for (const v of ['', '/v1.24', '/v1.43', '/v1.45', '/v1.50']) {
    for (let i = 0; i < 2; i++) {
      const kept = (await api(b, 'GET', `${v}/containers/json?all=1`)).json();
      const fresh = (await api(b, 'GET', `${v}/containers/json?all=1&size=1`)).json();
      // Status follows the clock: the two answers may fall on each side of a second.
      const noStatus = (x: Record<string, unknown>) => ({ ...drop(x), Status: String(x.Status).replace(/\d+ seconds?|Less than a second/, 'N') });
      assert.deepEqual(kept.map(noStatus), fresh.map(noStatus), `list ${v}`);
      for (const c of kept) {
        const res = await api(b, 'GET', `${v}/containers/${c.Id}/json`);
        assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
        const k = res.json();
        const f = drop((await api(b, 'GET', `${v}/containers/${c.Id}/json?size=1`)).json());
        assert.deepEqual(k, f, `inspect ${v} ${c.Names[0]}`);
        assert.deepEqual(Object.keys(k), Object.keys(f), 'the same members in the same order');
      }
    }
  }
  await ok('rm', '-f', 'pk-a', 'pk-b');
});
