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

/** Docker's Status of a container running for `ms` (under a minute). */
function upFor(ms: number): string {
  const s = ms / 1000;
  return `Up ${s < 1 ? 'Less than a second' : s < 2 ? '1 second' : `${Math.floor(s)} seconds`}`;
}

// A kept list is kept in blocks of 32 rows, and a block is encoded again only when one of its Status texts
// moves: 40 containers started over a second or two change their Status at 40 different instants.
test('a list of several blocks: every Status follows the clock, and a change in any block shows at once', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 40; i += 8) {
    ids.push(...await Promise.all(Array.from({ length: 8 }, async (_, j) => {
      const c = await api(b, 'POST', `/containers/create?name=pb-${i + j}`, { body: { Image: 'busybox', Cmd: ['sleep', '1000'], Labels: { pb: '1' } } });
      assert.equal(c.status, 201, c.body);
      const id = c.json().Id as string;
      assert.equal((await api(b, 'POST', `/containers/${id}/start`)).status, 204);
      return id;
    })));
  }
  try {
    const started = new Map<string, number>();
    for (const id of ids) {
      const at = (await api(b, 'GET', `/containers/${id}/json`)).json().State.StartedAt as string;
      started.set(id, Date.parse(at.replace(/(\.\d{3})\d*/, '$1')));
    }
    const query = `/containers/json?filters=${encodeURIComponent(JSON.stringify({ label: ['pb=1'] }))}`;
    // About 2.5 s of lists: each container's Status moves at least twice, each at its own instant.
    for (let round = 0; round < 25; round++) {
      const t0 = Date.now();
      const rows = (await api(b, 'GET', query)).json() as Array<{ Id: string; Status: string }>;
      const t1 = Date.now();
      assert.equal(rows.length, 40);
      for (const r of rows) {
        const s0 = started.get(r.Id)!;
        // The answer was made between t0 and t1 (1 ms either way for StartedAt's truncation).
        assert.ok([upFor(t0 - s0 - 1), upFor(t1 - s0 + 1)].includes(r.Status), `round ${round}: ${r.Status} for ${t0 - s0}..${t1 - s0} ms`);
      }
      await sleep(100);
    }

    // Newest first: pb-0..7 (the first started) are in the second block, the last started in the first.
    const listed = (await api(b, 'GET', query)).json() as Array<{ Id: string; Names: string[] }>;
    const first = listed[0].Names[0].slice(1);
    const last = listed[39].Names[0].slice(1);
    await ok('rename', first, 'pb-renamed');
    await ok('stop', '-t', '0', last);
    const rows = await ps('pb-');
    assert.equal(rows.size, 40);
    assert.ok(rows.has('pb-renamed') && !rows.has(first), `${first} renamed`);
    assert.equal(rows.get(last)?.state, 'exited');
    const running = (await api(b, 'GET', query)).json() as Array<{ Names: string[] }>;
    assert.equal(running.length, 39);
    assert.ok(!running.some((r) => r.Names[0] === `/${last}`));
    assert.equal((await api(b, 'GET', `${query}&limit=3`)).json().length, 3);

    // The blocks joined are the answer made afresh (size=1), members and order.
    const kept = (await api(b, 'GET', `${query}&all=1`)).json();
    const fresh = (await api(b, 'GET', `${query}&all=1&size=1`)).json();
    const norm = (x: Record<string, unknown>) => {
      const { SizeRw: _a, SizeRootFs: _b, ...rest } = x;
      return { ...rest, Status: String(x.Status).replace(/\d+ seconds?|Less than a second/, 'N') };
    };
    assert.deepEqual(kept.map(norm), fresh.map(norm));
  } finally {
    await Promise.all(ids.map((id) => api(b, 'DELETE', `/containers/${id}?force=1`)));
  }
});
