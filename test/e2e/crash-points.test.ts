// Every named crash point (daemon/lib/crash.ts) in turn: berthd is started with BERTH_CRASH_AT naming it,
// the operation through that point is driven with the docker CLI, berthd kills itself there (SIGKILL), and
// the next berthd (without the variable) must show the operation's contract: it happened whole or not at
// all; a container that ran throughout still runs with the same pid; nothing is left that nothing
// references (mount, veth, nft rule naming a veth, cgroup, netns file, layer directory, database row); the
// same operation, retried, succeeds. The list of points and what each checked is printed at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { removalsSettled } from '../helpers/removals';
import Database from 'better-sqlite3';
import { berthdForFile } from '../helpers/file';
import { alive, dockerCli, show } from '../helpers/clients';
import type { StartOptions, RunResult } from '../helpers/berthd';
import { startRegistry, type Registry } from '../helpers/registry';

const start: StartOptions = { env: {} };
const b = berthdForFile({ fixtures: ['busybox'], start });
const { ok } = dockerCli(() => b, { timeoutMs: 60000 });
const only = process.env.CRASH_ONLY;
let reg: Registry | undefined;
let regDir = '';
let witnessPid = 0;
const report: string[] = [];

before(async () => {
  regDir = mkdtempSync(path.join(os.tmpdir(), 'berth-crash-reg-'));
  reg = await startRegistry(regDir, 'crash');
});
after(() => {
  reg?.stop();
  if (regDir) rmSync(regDir, { recursive: true, force: true });
  console.log(`crash points checked (${report.length}):\n${report.map((l) => `  ${l}`).join('\n')}`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function restartWith(point: string): Promise<void> {
  await b.stop();
  start.env = point ? { BERTH_CRASH_AT: point } : {};
  await b.restart();
}

/** berthd died by its own SIGKILL at `point` (its log says so). */
async function diedAt(point: string, r: RunResult): Promise<void> {
  for (let i = 0; i < 400 && b.proc.exitCode === null && b.proc.signalCode === null; i++) await sleep(25);
  assert.equal(b.proc.signalCode, 'SIGKILL', `berthd should have died at ${point}; the command gave ${show(r)}`);
  const log = readFileSync(path.join(b.root, 'berthd.log'), 'utf8');
  assert.ok(log.includes(`crash point ${point}: SIGKILL`), `the log names ${point}`);
}

const st = async (name: string) => (await ok('inspect', '--format', '{{.State.Status}} {{.State.Pid}}', name)).trim().split(' ');
const exists = async (kind: string, name: string) => (await b.docker([kind, 'inspect', name])).code === 0;

function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(b.root + '/'));
}

function cgroupDirs(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || (f[sep + 1] !== 'cgroup' && f[sep + 1] !== 'cgroup2')) continue;
    const dir = path.join(f[4], b.cgroupParent);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(path.join(dir, e.name));
  }
  return out;
}

/** Nothing is left that nothing references; returns what it looked at. */
async function noLeaks(): Promise<string> {
  const ps = (await ok('ps', '-a', '--no-trunc', '--format', '{{.ID}}')).split('\n').filter(Boolean);
  const infos = ps.length ? JSON.parse(await ok('inspect', ...ps)) as any[] : [];
  const running = infos.filter((c) => c.State.Running);
  const runIds = new Set(running.map((c) => c.Id as string));
  const shorts = new Set(running.map((c) => (c.Id as string).slice(0, 12)));
  // Mounts: only running containers' roots, their own dirs' mounts, their netns files, and the netns dir.
  const seen = new Set<string>();
  const netnsDir = path.join(b.execRoot, 'netns');
  const mergedOf = new Map(infos.map((c) => [c.GraphDriver.Data.MergedDir as string, c.Id as string]));
  for (const m of mountPoints()) {
    if (m === netnsDir) continue;
    assert.ok(!seen.has(m) || m === netnsDir, `one mount at ${m}, not a stack`);
    seen.add(m);
    if (m.startsWith(netnsDir + '/')) {
      assert.ok(shorts.has(path.basename(m)), `netns file ${m} belongs to a running container`);
      continue;
    }
    const merged = mergedOf.get(m);
    if (merged) {
      assert.ok(runIds.has(merged), `root ${m} is mounted only while its container runs`);
      continue;
    }
    const c = /\/containers\/([0-9a-f]{64})\//.exec(m);
    if (c) {
      assert.ok(runIds.has(c[1]), `mount ${m} belongs to a running container`);
      continue;
    }
    if (m.startsWith(path.join(b.dataRoot, 'volumes') + '/')) continue;
    assert.fail(`mount ${m} is referenced by nothing`);
  }
  // netns files (also those not mounted).
  for (const f of existsSync(netnsDir) ? readdirSync(netnsDir) : []) assert.ok(shorts.has(f), `netns file ${f} belongs to a running container`);
  // cgroups.
  for (const d of cgroupDirs()) assert.ok(runIds.has(path.basename(d)), `cgroup ${d} belongs to a running container`);
  // veths on this daemon's bridges: one per network of each running container.
  const nets = JSON.parse(await ok('network', 'inspect', ...(await ok('network', 'ls', '-q')).split('\n').filter(Boolean))) as any[];
  const bridges = nets.filter((n) => n.Driver === 'bridge').map((n) => n.Options?.['com.docker.network.bridge.name'] || (n.Name === 'bridge' ? b.net.bridge : `br-${n.Id.slice(0, 12)}`));
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }) || '[]') as any[];
  const ours = links.filter((l) => bridges.includes(l.master));
  const expected = running.reduce((n, c) => n + Object.keys(c.NetworkSettings.Networks ?? {}).filter((k) => nets.find((x) => x.Name === k)?.Driver === 'bridge').length, 0);
  assert.equal(ours.length, expected, `veths on our bridges (${ours.map((l) => l.ifname).join(' ')}) are one per network of a running container`);
  // nft rules name only veths that exist.
  const names = new Set(links.map((l) => l.ifname as string));
  let table = '';
  try { table = execFileSync('nft', ['list', 'table', 'ip', b.net.table], { encoding: 'utf8' }); } catch { /* no table yet */ }
  for (const v of table.match(/veth[0-9a-f]{7}/g) ?? []) assert.ok(names.has(v), `nft rule names ${v}, which exists`);
  // Layer directories and rows, once the removals rm answered before finishing are over.
  assert.deepEqual(await removalsSettled(b.dataRoot), [], 'removals finish');
  const db = new Database(path.join(b.dataRoot, 'berth.db'), { readonly: true, fileMustExist: true });
  try {
    const layers = db.prepare('SELECT chain_id, parent, cache_id FROM layers').all() as Array<{ chain_id: string; parent: string | null; cache_id: string }>;
    const chains = new Set(layers.map((l) => l.chain_id));
    for (const l of layers) {
      assert.ok(existsSync(path.join(b.dataRoot, 'overlay2', l.cache_id, 'diff')), `layer ${l.chain_id} has its directory`);
      if (l.parent) assert.ok(chains.has(l.parent), `layer ${l.chain_id} has its parent`);
    }
    for (const i of db.prepare('SELECT id, top_chain FROM images').all() as Array<{ id: string; top_chain: string | null }>) {
      if (i.top_chain) assert.ok(chains.has(i.top_chain), `image ${i.id} has its layers`);
    }
    const ctrLayers = new Set(infos.flatMap((c) => {
      const l = path.basename(path.dirname(c.GraphDriver.Data.MergedDir));
      return [l, `${l}-init`];
    }));
    const cacheIds = new Set(layers.map((l) => l.cache_id));
    for (const d of readdirSync(path.join(b.dataRoot, 'overlay2'))) {
      if (d === 'l') continue;
      assert.ok(cacheIds.has(d) || ctrLayers.has(d), `overlay2/${d} is an image layer or a container's`);
    }
    const ids = new Set(ps);
    for (const d of readdirSync(path.join(b.dataRoot, 'containers'))) assert.ok(ids.has(d), `containers/${d} has its container`);
    for (const d of existsSync(path.join(b.execRoot, 'containers')) ? readdirSync(path.join(b.execRoot, 'containers')) : []) assert.ok(ids.has(d), `exec-root containers/${d} has its container`);
    const rows = (db.prepare('SELECT id FROM containers').all() as Array<{ id: string }>).map((r) => r.id).sort();
    assert.deepEqual(rows, [...ids].sort(), 'container rows are the containers listed');
    const vols = (db.prepare('SELECT name FROM volumes').all() as Array<{ name: string }>).map((r) => r.name).sort();
    const vdirs = existsSync(path.join(b.dataRoot, 'volumes')) ? readdirSync(path.join(b.dataRoot, 'volumes')).filter((d) => d !== 'metadata.db').sort() : [];
    assert.deepEqual(vdirs, vols, 'volume directories are the volume rows');
    for (const e of db.prepare('SELECT network_id, container_id FROM endpoints').all() as Array<{ network_id: string; container_id: string }>) {
      assert.ok(ids.has(e.container_id), `endpoint of ${e.container_id} has its container`);
      assert.ok(nets.some((n) => n.Id === e.network_id), `endpoint on ${e.network_id} has its network`);
    }
  } finally {
    db.close();
  }
  return 'no leaked mount/netns/cgroup/veth/nft/layer/row';
}

async function witnessKept(): Promise<void> {
  assert.deepEqual(await st('witness'), ['running', String(witnessPid)], 'the witness container runs with the same pid');
  assert.equal(alive(witnessPid), true);
}

interface Case {
  point: string;
  /** Before the armed berthd starts. */
  setup?: () => Promise<void>;
  /** The docker command that goes through the point (a function: made once berthd runs). */
  op: string[] | (() => string[]);
  /** After the restart: the contract; returns what it checked. */
  check: () => Promise<string>;
  /** The same operation again, once more and without the crash (default: op). */
  retry?: string[] | null;
  /** Checked after the retry. */
  after?: () => Promise<void>;
  cleanup?: () => Promise<void>;
}

const rmf = (...names: string[]) => b.docker(['rm', '-f', ...names]);

const cases: Case[] = [
  {
    point: 'create.after-dirs', op: ['create', '--name', 'c1', 'busybox', 'true'],
    check: async () => { assert.equal(await exists('container', 'c1'), false); return 'not created; its dirs swept'; },
    cleanup: async () => { await rmf('c1'); },
  },
  {
    point: 'create.after-row', op: ['create', '--name', 'c1', 'busybox', 'true'],
    check: async () => { assert.equal((await st('c1'))[0], 'created'); return 'created whole'; },
    retry: ['rm', 'c1'], after: async () => { await ok('create', '--name', 'c1', 'busybox', 'true'); }, cleanup: async () => { await rmf('c1'); },
  },
  ...['start.after-rootfs', 'start.after-network'].map((point): Case => ({
    point, setup: async () => { await ok('create', '--name', 's1', 'busybox', 'sleep', '1000'); }, op: ['start', 's1'],
    check: async () => { assert.equal((await st('s1'))[0], 'created'); return 'not started; rootfs/netns/veth undone'; },
    after: async () => { const [s, p] = await st('s1'); assert.equal(s, 'running'); assert.ok(alive(Number(p))); },
    cleanup: async () => { await rmf('s1'); },
  })),
  ...['start.after-shim', 'start.after-save'].map((point): Case => ({
    point, setup: async () => { await ok('create', '--name', 's1', 'busybox', 'sleep', '1000'); }, op: ['start', 's1'],
    check: async () => {
      const [s, p] = await st('s1');
      assert.equal(s, 'running');
      assert.ok(alive(Number(p)) && readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep'), 'its process runs');
      assert.match(await ok('exec', 's1', 'ip', '-4', 'addr', 'show', 'eth0'), /inet 10\.213\./);
      return 'started whole: adopted, same process, network kept';
    },
    retry: ['restart', '-t', '0', 's1'], cleanup: async () => { await rmf('s1'); },
  })),
  {
    // busybox sleep as pid 1 ignores SIGTERM: the stop is cut short after the signal, before the kill.
    point: 'stop.after-signal', setup: async () => { await ok('run', '-d', '--name', 'k1', 'busybox', 'sleep', '1000'); }, op: ['stop', '-t', '5', 'k1'],
    check: async () => {
      const [s, p] = await st('k1');
      assert.equal(s, 'running');
      assert.ok(alive(Number(p)));
      return 'not stopped (SIGTERM ignored by pid 1, SIGKILL never sent): still running with its pid';
    },
    retry: ['stop', '-t', '1', 'k1'], after: async () => { assert.equal((await st('k1'))[0], 'exited'); }, cleanup: async () => { await rmf('k1'); },
  },
  {
    point: 'exit.after-save', setup: async () => { await ok('run', '-d', '--name', 'k1', 'busybox', 'sleep', '1000'); }, op: ['stop', '-t', '0', 'k1'],
    check: async () => { assert.equal((await st('k1'))[0], 'exited'); return 'exit recorded; root, cgroup, veth released at restore'; },
    retry: ['start', 'k1'], after: async () => { await ok('stop', '-t', '0', 'k1'); }, cleanup: async () => { await rmf('k1'); },
  },
  {
    point: 'kill.after-signal', setup: async () => { await ok('run', '-d', '--name', 'k1', 'busybox', 'sleep', '1000'); }, op: ['kill', 'k1'],
    check: async () => { assert.equal((await st('k1'))[0], 'exited'); return 'killed whole'; },
    retry: ['start', 'k1'], after: async () => { await ok('kill', 'k1'); }, cleanup: async () => { await rmf('k1'); },
  },
  {
    point: 'rm.after-unmount', setup: async () => { await ok('create', '--name', 'r1', 'busybox', 'true'); }, op: ['rm', 'r1'],
    check: async () => { assert.equal((await st('r1'))[0], 'created'); return 'not removed; can be removed again'; },
    retry: ['rm', 'r1'], after: async () => { assert.equal(await exists('container', 'r1'), false); },
  },
  {
    point: 'rm.after-row', setup: async () => { await ok('run', '-d', '--name', 'r1', 'busybox', 'sleep', '1000'); }, op: ['rm', '-f', 'r1'],
    check: async () => { assert.equal(await exists('container', 'r1'), false); return 'removed whole; its dirs and layers swept'; },
    retry: ['create', '--name', 'r1', 'busybox', 'true'], cleanup: async () => { await rmf('r1'); },
  },
  {
    // rm answers before the files go: the crash comes after the CLI's success; the mark finishes it.
    point: 'rm.before-files', setup: async () => { await ok('run', '--name', 'r1', 'busybox', 'sh', '-c', 'mkdir /d && touch /d/a /d/b'); }, op: ['rm', 'r1'],
    check: async () => { assert.equal(await exists('container', 'r1'), false); return 'removed; its files deleted at restore (pending_removals)'; },
    retry: ['create', '--name', 'r1', 'busybox', 'true'], cleanup: async () => { await rmf('r1'); },
  },
  {
    point: 'policy-restart.before-start',
    setup: async () => { await ok('run', '-d', '--name', 'p1', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 2; exit 3'); },
    op: ['wait', 'p1'],
    check: async () => {
      for (let i = 0; i < 100 && (await st('p1'))[0] !== 'running'; i++) await sleep(100);
      const [s, p] = await st('p1');
      assert.equal(s, 'running');
      assert.ok(alive(Number(p)));
      return 'the policy starts it again after the restart';
    },
    retry: null, cleanup: async () => { await rmf('p1'); },
  },
  {
    point: 'exec.after-spawn', setup: async () => { await ok('run', '-d', '--name', 'e1', 'busybox', 'sleep', '1000'); }, op: ['exec', 'e1', 'true'],
    check: async () => { assert.equal((await st('e1'))[0], 'running'); return 'the container keeps running'; },
    retry: ['exec', 'e1', 'echo', 'again'], cleanup: async () => { await rmf('e1'); },
  },
  {
    point: 'network-create.after-row', op: ['network', 'create', 'n1'],
    check: async () => {
      assert.equal(await exists('network', 'n1'), true);
      await ok('run', '--rm', '--network', 'n1', 'busybox', 'true');
      return 'created whole: the bridge comes up at use';
    },
    retry: ['network', 'rm', 'n1'], after: async () => { await ok('network', 'create', 'n1'); }, cleanup: async () => { await b.docker(['network', 'rm', 'n1']); },
  },
  {
    point: 'network-create.after-bridge', op: ['network', 'create', 'n1'],
    check: async () => { assert.equal(await exists('network', 'n1'), true); await ok('run', '--rm', '--network', 'n1', 'busybox', 'true'); return 'created whole'; },
    retry: ['network', 'rm', 'n1'], after: async () => { await ok('network', 'create', 'n1'); }, cleanup: async () => { await b.docker(['network', 'rm', 'n1']); },
  },
  ...['network-connect.after-row', 'network-attach.before-veth', 'network-connect.after-veth'].map((point): Case => ({
    point,
    setup: async () => { await ok('network', 'create', 'n2'); await ok('run', '-d', '--name', 'nc', 'busybox', 'sleep', '1000'); },
    op: ['network', 'connect', 'n2', 'nc'],
    check: async () => {
      const nets = Object.keys(JSON.parse(await ok('inspect', '--format', '{{json .NetworkSettings.Networks}}', 'nc')));
      if (nets.includes('n2')) {
        // Recorded: then whole, with the container's interface on n2 and its address.
        const ip = (await ok('inspect', '--format', '{{(index .NetworkSettings.Networks "n2").IPAddress}}', 'nc')).trim();
        assert.match(ip, /^10\.214\./);
        assert.match(await ok('exec', 'nc', 'ip', '-4', 'addr', 'show', 'eth1'), new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`));
        await ok('network', 'disconnect', 'n2', 'nc');
        return `connected whole: eth1 has ${ip}`;
      }
      return 'not connected';
    },
    cleanup: async () => { await rmf('nc'); await b.docker(['network', 'rm', 'n2']); },
  })),
  {
    point: 'network-disconnect.after-row',
    setup: async () => { await ok('network', 'create', 'n3'); await ok('run', '-d', '--name', 'nd', '--network', 'n3', 'busybox', 'sleep', '1000'); await ok('network', 'connect', 'bridge', 'nd'); },
    op: ['network', 'disconnect', 'n3', 'nd'],
    check: async () => {
      const nets = Object.keys(JSON.parse(await ok('inspect', '--format', '{{json .NetworkSettings.Networks}}', 'nd')));
      assert.deepEqual(nets, ['bridge']);
      return 'disconnected whole: its veth swept';
    },
    retry: ['network', 'connect', 'n3', 'nd'], cleanup: async () => { await rmf('nd'); await b.docker(['network', 'rm', 'n3']); },
  },
  {
    point: 'network-rm.after-bridge', setup: async () => { await ok('network', 'create', 'n4'); }, op: ['network', 'rm', 'n4'],
    check: async () => {
      assert.equal(await exists('network', 'n4'), true);
      return 'not removed: the row stays, its bridge is made again at use';
    },
    retry: ['network', 'rm', 'n4'], after: async () => { assert.equal(await exists('network', 'n4'), false); },
  },
  {
    point: 'volume-create.after-dir', op: ['volume', 'create', 'v1'],
    check: async () => { assert.equal(await exists('volume', 'v1'), false); return 'not created; its dir swept'; },
    cleanup: async () => { await b.docker(['volume', 'rm', 'v1']); },
  },
  {
    point: 'volume-rm.after-row', setup: async () => { await ok('volume', 'create', 'v2'); }, op: ['volume', 'rm', 'v2'],
    check: async () => { assert.equal(await exists('volume', 'v2'), false); return 'removed whole; its dir swept'; },
    retry: ['volume', 'create', 'v2'], cleanup: async () => { await b.docker(['volume', 'rm', 'v2']); },
  },
  ...['layer.before-row', 'layer.after-commit', 'pull.after-layer', 'pull.before-image-row'].map((point): Case => ({
    point, setup: async () => { await b.docker(['rmi', `127.0.0.1:${reg!.port}/crash/img:1`]); }, op: () => ['pull', `127.0.0.1:${reg!.port}/crash/img:1`],
    check: async () => { assert.equal(await exists('image', `127.0.0.1:${reg!.port}/crash/img:1`), false); return 'no image; finished layers kept (rows) or swept (tmp dirs)'; },
    after: async () => { await ok('run', '--rm', `127.0.0.1:${reg!.port}/crash/img:1`, 'cat', '/crash.txt'); },
    cleanup: async () => { await b.docker(['rmi', `127.0.0.1:${reg!.port}/crash/img:1`]); },
  })),
  {
    point: 'load.before-image-row', op: ['load', '-i', path.join(__dirname, '..', '..', '..', 'build', 'fixtures', 'layered.tar')],
    check: async () => { assert.equal(await exists('image', 'layered:latest'), false); return 'no image; its committed layers reused by the retry'; },
    after: async () => { await ok('image', 'inspect', 'layered:latest'); },
    cleanup: async () => { await b.docker(['rmi', 'layered:latest']); },
  },
  {
    point: 'commit.before-image-row',
    setup: async () => { await ok('run', '--name', 'cm', 'busybox', 'sh', '-c', 'echo hi > /committed'); },
    op: ['commit', 'cm', 'committed:1'],
    check: async () => { assert.equal(await exists('image', 'committed:1'), false); assert.equal((await st('cm'))[0], 'exited'); return 'no image; container intact'; },
    after: async () => { assert.equal((await ok('run', '--rm', 'committed:1', 'cat', '/committed')).trim(), 'hi'); },
    cleanup: async () => { await rmf('cm'); await b.docker(['rmi', 'committed:1']); },
  },
  ...['build-step.before-image-row', 'build-step.after-image-row'].map((point): Case => ({
    point, op: () => ['build', '-t', 'built:1', path.join(b.root, 'ctx')],
    setup: async () => {
      mkdirSync(path.join(b.root, 'ctx'), { recursive: true });
      writeFileSync(path.join(b.root, 'ctx', 'Dockerfile'), 'FROM busybox\nRUN echo built > /built\n');
    },
    check: async () => {
      assert.equal(await exists('image', 'built:1'), false);
      // The step's container may stay listed (as with Docker's classic builder when the daemon dies); it is a
      // whole container that can be removed.
      const left = (await ok('ps', '-aq', '--filter', 'status=exited', '--filter', 'status=created')).split('\n').filter(Boolean);
      for (const id of left) await ok('rm', '-f', id);
      return `no tagged image; ${left.length} step container(s) left whole and removable`;
    },
    after: async () => { assert.equal((await ok('run', '--rm', 'built:1', 'cat', '/built')).trim(), 'built'); },
    cleanup: async () => { await b.docker(['rmi', 'built:1']); await b.docker(['builder', 'prune', '-f']); },
  })),
  {
    point: 'image-rm.after-row', setup: async () => { await ok('commit', 'witness', 'gone:1'); }, op: ['rmi', 'gone:1'],
    check: async () => { assert.equal(await exists('image', 'gone:1'), false); return 'removed whole; its layer collected by prune'; },
    retry: ['image', 'prune', '-f'],
  },
  {
    point: 'image-prune.after-images', setup: async () => { await ok('commit', 'witness'); }, op: ['image', 'prune', '-f'],
    check: async () => { assert.equal((await ok('images', '-q', '--filter', 'dangling=true')).trim(), ''); return 'dangling images gone'; },
  },
];

test('setup: a witness container and an image in the loopback registry', async () => {
  await ok('run', '-d', '--name', 'witness', 'busybox', 'sleep', '100000');
  witnessPid = Number((await st('witness'))[1]);
  const ctx = path.join(b.root, 'img');
  mkdirSync(ctx, { recursive: true });
  await ok('run', '--name', 'mk', 'busybox', 'sh', '-c', 'echo crash > /crash.txt');
  await ok('commit', 'mk', `127.0.0.1:${reg!.port}/crash/img:1`);
  await rmf('mk');
  await ok('push', `127.0.0.1:${reg!.port}/crash/img:1`);
});

for (const c of cases) {
  if (only && !c.point.startsWith(only)) continue;
  test(`crash at ${c.point}`, async () => {
    const op = typeof c.op === 'function' ? c.op() : c.op;
    try {
      await c.setup?.();
      await restartWith(c.point);
      const r = await b.docker(op, { timeoutMs: 60000 });
      await diedAt(c.point, r);
      await restartWith('');
      const checked = await c.check();
      await witnessKept();
      const leaks = await noLeaks();
      if (c.retry !== null) {
        const again = await b.docker(c.retry ?? op, { timeoutMs: 60000 });
        assert.equal(again.code, 0, `retry: docker ${(c.retry ?? op).join(' ')}\n${show(again)}`);
      }
      await c.after?.();
      await noLeaks();
      report.push(`${c.point.padEnd(30)} docker ${op.join(' ').replace(b.root, '…')}: ${checked}; ${leaks}; witness pid kept; ${c.retry === null ? 'no retry' : `retried: docker ${(c.retry ?? op).join(' ').replace(b.root, '…')}`}`);
    } finally {
      if (b.proc.exitCode !== null || b.proc.signalCode !== null) await restartWith('');
      await c.cleanup?.();
    }
  });
}
