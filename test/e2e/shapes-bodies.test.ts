// Request bodies and their schemas. The app berthd serves (buildApp, every route module) is built on a
// daemon that is never reached: a body that does not fit is refused before its handler runs, so each
// route's schema can be checked through the real router with inject. Also: every route that can take a
// body is either given a schema or listed as taking none, and every table entry names a real route.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../daemon/app';
import type { Daemon } from '../../daemon/daemon';
import { BODY_SCHEMAS, NO_JSON_BODY, hasSchema, registeredRoutes, registerBodyValidation, validateBody } from '../../daemon/api/validate';
import Fastify from 'fastify';

/** Any property is another of these, and calling one gives another: route modules may take services
 *  from the daemon when they are registered. A handler that really used one would get no answer, which
 *  is why each request below must be refused before its handler. */
function unreachable(): unknown {
  const f = function () { /* never a real answer */ };
  return new Proxy(f, {
    get: (_t, k) => (k === 'then' ? undefined : k === Symbol.toPrimitive ? () => '' : unreachable()),
    apply: () => unreachable(),
  });
}

let app: FastifyInstance;
before(async () => {
  const daemon = new Proxy({}, {
    get: (_t, k) => (k === 'config' ? new Proxy({ api: { maxJsonBody: 4 << 20, headerTimeoutMs: 10_000, bodyTimeoutMs: 60_000, writeTimeoutMs: 300_000, maxConnections: 1024 } }, { get: (t, kk) => (kk in t ? (t as Record<string | symbol, unknown>)[kk] : unreachable()) }) : unreachable()),
  }) as unknown as Daemon;
  app = buildApp(daemon, pino({ level: 'silent' })).app;
  await app.ready();
});
after(async () => { await app?.close(); });

test('every route that can take a body has a schema or is listed as taking none; the tables name real routes', () => {
  const routes = new Set(registeredRoutes.get(app));
  assert.ok(routes.size > 50, `routes seen: ${routes.size}`);
  for (const r of routes) {
    if (!/^(POST|PUT|PATCH) /.test(r)) continue;
    assert.ok(BODY_SCHEMAS[r] || NO_JSON_BODY[r], `${r} is classified`);
  }
  for (const [r, id] of Object.entries(BODY_SCHEMAS)) {
    assert.ok(routes.has(r), `${r} (BODY_SCHEMAS) is a route`);
    assert.ok(hasSchema(id), `schema ${id} exists for ${r}`);
  }
  for (const r of Object.keys(NO_JSON_BODY)) assert.ok(routes.has(r), `${r} (NO_JSON_BODY) is a route`);
});

test('a route with a body and no schema is refused when it is registered', async () => {
  const bare = Fastify();
  registerBodyValidation(bare);
  assert.throws(() => bare.post('/containers/:id/frobnicate', async () => ({})), /POST \/containers\/:id\/frobnicate takes a body but has no schema/);
  bare.get('/containers/:id/frobnicate', async () => ({})); // a GET takes no body: fine
  await bare.close();
});

// One wrong body per route with a schema, the field Docker's decoder would name, and its Go message.
const cases: { url: string; body: unknown; message: string }[] = [
  { url: '/containers/create', body: { Image: 'busybox', HostConfig: { Memory: 'lots' } }, message: 'json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Resources.Memory of type int64' },
  { url: '/containers/create', body: { Image: 'busybox', Env: 'A=1' }, message: 'json: cannot unmarshal string into Go struct field CreateRequest.Config.Env of type []string' },
  { url: '/containers/create', body: { Image: 'busybox', Cmd: 5 }, message: 'json: cannot unmarshal number into Go struct field CreateRequest.Config.Cmd of type string' },
  { url: '/containers/create', body: { Image: 'busybox', HostConfig: { RestartPolicy: { MaximumRetryCount: 1.5 } } }, message: 'json: cannot unmarshal number 1.5 into Go struct field RestartPolicy.HostConfig.RestartPolicy.MaximumRetryCount of type int' },
  { url: '/containers/create', body: { Image: 'busybox', HostConfig: { Ulimits: [{ Name: 'nofile', Soft: 'x' }] } }, message: 'json: cannot unmarshal string into Go struct field Ulimit.HostConfig.Resources.Ulimits.Soft of type int64' },
  { url: '/containers/create', body: { Image: 'busybox', HostConfig: { BlkioWeight: 70000 } }, message: 'json: cannot unmarshal number 70000 into Go struct field HostConfig.HostConfig.Resources.BlkioWeight of type uint16' },
  { url: '/containers/create', body: { Image: 'busybox', Labels: { a: 1 } }, message: 'json: cannot unmarshal number into Go struct field CreateRequest.Config.Labels of type string' },
  { url: '/containers/create', body: [1], message: 'json: cannot unmarshal array into Go value of type container.CreateRequest' },
  { url: '/containers/create', body: { Image: 'busybox', HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 8080 }] } } }, message: 'json: cannot unmarshal number into Go struct field PortBinding.HostConfig.PortBindings.HostPort of type string' },
  { url: '/containers/create', body: { Image: 'busybox', HostConfig: { Mounts: [{ Type: 'bind', Source: '/', Target: '/x', ReadOnly: 'yes' }] } }, message: 'json: cannot unmarshal string into Go struct field Mount.HostConfig.Mounts.ReadOnly of type bool' },
  { url: '/containers/create', body: { Image: 'busybox', NetworkingConfig: { EndpointsConfig: { n: { Aliases: 'a' } } } }, message: 'json: cannot unmarshal string into Go struct field EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases of type []string' },
  { url: '/containers/x/update', body: { Memory: true }, message: 'json: cannot unmarshal bool into Go struct field UpdateConfig.Resources.Memory of type int64' },
  { url: '/containers/x/exec', body: { Cmd: 'ls' }, message: 'json: cannot unmarshal string into Go struct field ExecOptions.Cmd of type []string' },
  { url: '/exec/x/start', body: { Detach: 'yes' }, message: 'json: cannot unmarshal string into Go struct field ExecStartOptions.Detach of type bool' },
  { url: '/commit?container=x', body: { Env: [1] }, message: 'json: cannot unmarshal number into Go struct field CreateRequest.Config.Env of type string' },
  { url: '/networks/create', body: { Name: 'n', Internal: 'yes' }, message: 'json: cannot unmarshal string into Go struct field CreateRequest.CreateOptions.Internal of type bool' },
  { url: '/networks/create', body: { Name: 'n', IPAM: { Config: [{ Subnet: 10 }] } }, message: 'json: cannot unmarshal number into Go struct field IPAMConfig.CreateOptions.IPAM.Config.Subnet of type string' },
  { url: '/networks/n/connect', body: { Container: 'c', EndpointConfig: { Aliases: 'a' } }, message: 'json: cannot unmarshal string into Go struct field EndpointSettings.EndpointConfig.Aliases of type []string' },
  { url: '/networks/n/disconnect', body: { Container: 'c', Force: 1 }, message: 'json: cannot unmarshal number into Go struct field DisconnectOptions.Force of type bool' },
  { url: '/volumes/create', body: { Name: 5 }, message: 'json: cannot unmarshal number into Go struct field CreateOptions.Name of type string' },
  { url: '/volumes/create', body: { Labels: ['a'] }, message: 'json: cannot unmarshal array into Go struct field CreateOptions.Labels of type map[string]string' },
  { url: '/auth', body: { username: 1 }, message: 'json: cannot unmarshal number into Go struct field AuthConfig.username of type string' },
];

test('a wrongly typed body is a 400 in Docker\'s words on every route with a schema, before its handler', async () => {
  const covered = new Set<string>();
  for (const c of cases) {
    const r = await app.inject({ method: 'POST', url: `/v1.50${c.url}`, payload: JSON.stringify(c.body), headers: { 'content-type': 'application/json' } });
    assert.equal(r.statusCode, 400, `${c.url} ${JSON.stringify(c.body)}: ${r.body}`);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.json(), { message: `invalid JSON: ${c.message}` }, `${c.url} ${JSON.stringify(c.body)}`);
    covered.add(c.url.replace(/\?.*/, '').replace(/^\/(containers|networks|exec)\/(x|n)\//, '/$1/:id/'));
  }
  for (const r of Object.keys(BODY_SCHEMAS)) assert.ok(covered.has(r.slice(5)), `a case for ${r}`);
});

test('bodies stay as lenient as Docker\'s: unknown fields, nulls for absent values and an empty body pass', () => {
  for (const id of new Set(Object.values(BODY_SCHEMAS))) {
    // Clients send fields of newer API versions, and Go's decoder ignores what it does not know.
    assert.doesNotThrow(() => validateBody(id, { NotAFieldOfBerth: [1, { x: null }], AnotherOne: 'x' }), id);
    assert.doesNotThrow(() => validateBody(id, {}), id);
    assert.doesNotThrow(() => validateBody(id, null), id);
  }
  // What the docker CLI 28 sends for `docker run` (docs/traces/run-pull.txt), nulls and all.
  assert.doesNotThrow(() => validateBody('ContainerCreate', {
    Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false, OpenStdin: false,
    StdinOnce: false, Env: null, Cmd: ['echo', 'hi'], Image: 'busybox', Volumes: {}, WorkingDir: '', Entrypoint: null, OnBuild: null,
    Labels: { doc: '1' }, HostConfig: { Binds: null, ContainerIDFile: '', LogConfig: { Type: '', Config: {} }, NetworkMode: 'default',
      PortBindings: {}, RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, AutoRemove: true, VolumeDriver: '', VolumesFrom: null,
      ConsoleSize: [24, 80], CapAdd: null, CapDrop: null, CgroupnsMode: '', Dns: [], DnsOptions: [], DnsSearch: [], ExtraHosts: null,
      GroupAdd: null, IpcMode: '', Cgroup: '', Links: null, OomScoreAdj: 0, PidMode: '', Privileged: false, PublishAllPorts: false,
      ReadonlyRootfs: false, SecurityOpt: null, UTSMode: '', UsernsMode: '', ShmSize: 0, Isolation: '', CpuShares: 0, Memory: 0,
      NanoCpus: 0, CgroupParent: '', BlkioWeight: 0, BlkioWeightDevice: [], BlkioDeviceReadBps: [], CpuPeriod: 0, CpuQuota: 0,
      CpusetCpus: '', CpusetMems: '', Devices: [], DeviceCgroupRules: null, DeviceRequests: null, MemoryReservation: 0, MemorySwap: 0,
      MemorySwappiness: -1, OomKillDisable: false, PidsLimit: 0, Ulimits: [], MaskedPaths: null, ReadonlyPaths: null },
    NetworkingConfig: { EndpointsConfig: {} },
  }));
});
