// The container as clients see it: GET /containers/{id}/json and the rows of GET /containers/json, in the
// shapes Docker gives (samples/container-inspect.json, samples/containers-list.json).
import { appArmorProfileFor } from './apparmor';
import path from 'node:path';
import { inspectLogPath } from '../logs';
import type { ContainerService, Live } from './service';
import type { ContainerRecord } from './model';
import { humanDuration, parseRfc3339Ns } from '../lib/time';
import { shortId } from '../lib/ids';
import { compareVersions } from '../lib/versions';
import { healthSuffix } from './health';
import { openExecIds } from '../exec/service';
import { mountView } from '../volumes/mounts';
import { stateEpoch } from '../state/changes';

function stateView(r: ContainerRecord) {
  const s = r.state;
  return {
    Status: s.status,
    Running: s.status === 'running' || s.status === 'paused' || s.status === 'restarting',
    Paused: s.status === 'paused',
    Restarting: s.status === 'restarting',
    OOMKilled: s.oomKilled,
    Dead: s.status === 'dead',
    Pid: s.pid,
    ExitCode: s.exitCode,
    Error: s.error,
    StartedAt: s.startedAt,
    FinishedAt: s.finishedAt,
  };
}

/** NetworkSettings from the network service (endpoints, addresses, SandboxKey, ports). */
function netSettings(svc: ContainerService, r: ContainerRecord): Record<string, unknown> {
  const running = r.state.status === 'running' || r.state.status === 'paused';
  return svc['d'].networks.settings(r, running);
}

export function networkSettings(r: ContainerRecord) {
  const running = r.state.status === 'running' || r.state.status === 'paused';
  return {
    Bridge: '',
    SandboxID: running ? r.id : '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: {},
    SandboxKey: running && r.state.pid ? `/proc/${r.state.pid}/ns/net` : '',
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: '',
    Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    MacAddress: '',
    Networks: {},
  };
}

/** Inspect in three kept pieces around what changes without a write or an event (State.Health, whose log
 *  grows with each probe, and ExecIDs): the answer is `head + Health + mid + ExecIDs + tail`. */
interface InspectParts { head: Record<string, unknown>; state: Record<string, unknown>; mid: Record<string, unknown>; tail: Record<string, unknown> }

function inspectParts(svc: ContainerService, live: Live, apiVersion: string): InspectParts {
  const r = live.rec;
  const layer = svc.layerDir(r);
  const dir = svc.containerDir(r.id);
  const img = (() => {
    try {
      return svc['d'].images.get(r.imageId);
    } catch {
      return undefined;
    }
  })();
  const lowers = img ? [`${layer}-init/diff`, ...svc['d'].images.lowerDirs(img)] : [`${layer}-init/diff`];
  // Before API 1.44 HostConfig still had the kernel memory fields.
  const hostConfig = compareVersions(apiVersion, '1.44') < 0 ? { ...r.hostConfig, KernelMemory: 0, KernelMemoryTCP: 0 } : r.hostConfig;
  return {
    head: { Id: r.id, Created: r.created, Path: r.path, Args: r.args },
    state: stateView(r),
    mid: {
      Image: r.imageId,
      ResolvConfPath: path.join(dir, 'resolv.conf'),
      HostnamePath: path.join(dir, 'hostname'),
      HostsPath: path.join(dir, 'hosts'),
      LogPath: inspectLogPath(r.hostConfig.LogConfig ?? {}, svc.logContext(r)),
      Name: r.name,
      RestartCount: r.state.restartCount,
      Driver: 'overlay2',
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: appArmorProfileFor(r.hostConfig, !!svc['d'].apparmor?.used),
    },
    tail: {
      HostConfig: hostConfig,
      GraphDriver: {
        Data: {
          LowerDir: lowers.join(':'),
          MergedDir: path.join(layer, 'merged'),
          UpperDir: path.join(layer, 'diff'),
          WorkDir: path.join(layer, 'work'),
        },
        Name: 'overlay2',
      },
      Mounts: (r.mounts ?? []).map(mountView),
      Config: { ...r.config },
      NetworkSettings: netSettings(svc, r),
    },
  };
}

export function inspectView(svc: ContainerService, live: Live, apiVersion: string) {
  const p = inspectParts(svc, live, apiVersion);
  const health = svc.health.view(live);
  return { ...p.head, State: health ? { ...p.state, Health: health } : p.state, ...p.mid, ExecIDs: openExecIds(live.rec.id), ...p.tail };
}

/** Docker's human Status column. `startedMs`/`finishedMs`: the state's times already parsed. */
export function humanStatus(r: ContainerRecord, now = Date.now(), startedMs?: number, finishedMs?: number): string {
  const s = r.state;
  const since = (t: string, ms: number | undefined) => (now - (ms ?? Number(parseRfc3339Ns(t) / 1_000_000n))) / 1000;
  switch (s.status) {
    case 'created':
      return 'Created';
    case 'running':
      return `Up ${humanDuration(since(s.startedAt, startedMs))}`;
    case 'paused':
      return `Up ${humanDuration(since(s.startedAt, startedMs))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.exitCode}) ${humanDuration(since(s.finishedAt, finishedMs))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'exited':
      return `Exited (${s.exitCode}) ${humanDuration(since(s.finishedAt, finishedMs))} ago`;
  }
}

// A container's creation time in seconds, parsed once per record (a list of 1,000 parsed 1,000 timestamps
// into BigInts each time).
const createdCache = new WeakMap<ContainerRecord, number>();
function createdSecs(r: ContainerRecord): number {
  let v = createdCache.get(r);
  if (v === undefined) {
    v = Math.floor(Number(parseRfc3339Ns(r.created) / 1_000_000_000n));
    createdCache.set(r, v);
  }
  return v;
}

/** A list entry in two pieces around Status, which changes with the clock (and the health). `oldApi`:
 *  before 1.46 the entry's HostConfig has no Annotations. */
function listParts(svc: ContainerService, live: Live, oldApi: boolean): { head: Record<string, unknown>; tail: Record<string, unknown> } {
  const r = live.rec;
  const running = r.state.status === 'running' || r.state.status === 'paused';
  return {
    head: {
      Id: r.id,
      Names: [r.name],
      Image: r.imageRef,
      ImageID: r.imageId,
      Command: [r.path, ...r.args].join(' '),
      Created: createdSecs(r),
      Ports: svc['d'].networks.portList(r, running),
      Labels: r.config.Labels ?? {},
      State: r.state.status,
    },
    tail: {
      HostConfig: { NetworkMode: r.hostConfig.NetworkMode, ...(r.hostConfig.Annotations && !oldApi ? { Annotations: r.hostConfig.Annotations } : {}) },
      NetworkSettings: { Networks: netSettings(svc, r).Networks },
      Mounts: (r.mounts ?? []).map(mountView),
    },
  };
}

function listStatus(svc: ContainerService, live: Live, startedMs?: number, finishedMs?: number): string {
  const r = live.rec;
  return humanStatus(r, Date.now(), startedMs, finishedMs) + (r.state.status === 'running' ? healthSuffix(svc.health.view(live)) : '');
}

export function listView(svc: ContainerService, live: Live, oldApi = false) {
  const p = listParts(svc, live, oldApi);
  return { ...p.head, Status: listStatus(svc, live), ...p.tail };
}

// ---- kept answers ------------------------------------------------------------------------------------
//
// A list of 1,000 containers built 1,000 objects and serialised about 1 MB of JSON per request (and 16
// concurrent lists kept 5 MB each of garbage alive); an inspect rebuilt its 6 kB answer each time. Each
// container's list entry and inspect body are now serialised once and kept, and a list is a join of kept
// strings. A kept answer is used only while both hold:
// - the state epoch has not moved (state/changes.ts: any write to the state database through the daemon's
//   connection, any event), so every write path invalidates it without naming it here, and
// - the container's record is the one it was made from, field by field (a state changed in memory and
//   not yet written, a record replaced at restore).
// What changes without either (the clock in Status, the health log, open execs) is filled in per request
// (and a whole list is reused only when each of its Status texts is what it was).

interface Kept {
  epoch: number;
  rec: ContainerRecord;
  st: ContainerRecord['state'];
  status: string; pid: number; exitCode: number; error: string; startedAt: string; finishedAt: string;
  oomKilled: boolean; restartCount: number; name: string; hostConfig: unknown; config: unknown; mounts: unknown;
  startedMs?: number; finishedMs?: number;
  /** The Status text without its health part, and the whole seconds it was made for (keptStatus). */
  statusText?: string; statusSec?: number;
  /** List entry pieces, by API (index 0: 1.46 and later, 1: before). */
  list: Array<[string, string] | undefined>;
  /** Inspect pieces, by API (index 0: 1.44 and later, 1: before). */
  inspect: Array<[string, string, string] | undefined>;
}

const kept = new WeakMap<Live, Kept>();

function keptFor(live: Live): Kept {
  const r = live.rec;
  const s = r.state;
  const epoch = stateEpoch();
  const k = kept.get(live);
  if (k && k.epoch === epoch && k.rec === r && k.st === s && k.status === s.status && k.pid === s.pid && k.exitCode === s.exitCode
    && k.error === s.error && k.startedAt === s.startedAt && k.finishedAt === s.finishedAt && k.oomKilled === s.oomKilled
    && k.restartCount === s.restartCount && k.name === r.name && k.hostConfig === r.hostConfig && k.config === r.config
    && k.mounts === r.mounts) return k;
  const fresh: Kept = {
    epoch, rec: r, st: s, status: s.status, pid: s.pid, exitCode: s.exitCode, error: s.error, startedAt: s.startedAt,
    finishedAt: s.finishedAt, oomKilled: s.oomKilled, restartCount: s.restartCount, name: r.name, hostConfig: r.hostConfig,
    config: r.config, mounts: r.mounts, list: [], inspect: [],
  };
  kept.set(live, fresh);
  return fresh;
}

/** `{"a":1,"b":2}` → `{"a":1,"b":2` (an object's JSON left open for more members). */
const open = (o: object) => JSON.stringify(o).slice(0, -1);
/** `{"a":1,"b":2}` → `,"a":1,"b":2}` (more members and the end of an object). */
const more = (o: object) => `,${JSON.stringify(o).slice(1)}`;

/** The Status column of a kept entry at `now`. Its text is a function of the whole seconds since the
 *  state's time (humanDuration floors everything it shows), so it is made again only when that count
 *  moves: a list of 1,000 made 1,000 new strings per request, the churn that grew V8's young generation
 *  under load. */
function keptStatus(svc: ContainerService, live: Live, k: Kept, now: number): string {
  const s = k.st;
  let ref: number | undefined;
  if (s.status === 'running' || s.status === 'paused') ref = k.startedMs ??= Number(parseRfc3339Ns(s.startedAt) / 1_000_000n);
  else if (s.status === 'exited' || s.status === 'restarting') ref = k.finishedMs ??= Number(parseRfc3339Ns(s.finishedAt) / 1_000_000n);
  const sec = ref === undefined ? -1 : Math.floor((now - ref) / 1000);
  if (k.statusText === undefined || k.statusSec !== sec) {
    k.statusText = humanStatus(live.rec, now, k.startedMs, k.finishedMs);
    k.statusSec = sec;
  }
  return s.status === 'running' ? k.statusText + healthSuffix(svc.health.view(live)) : k.statusText;
}

/** Rows per block of a kept list answer. Each running container's Status changes at its own instant
 *  (every second in its first minute, then once a minute), so at 1,000 containers some Status changes
 *  every few milliseconds: a whole answer made again for each (1 MB of JSON string and 1 MB of Buffer,
 *  freed only by V8's old-space collections) took malloc's heap from 12 to 116 MiB under 16 connections
 *  of lists. A change now re-encodes the 32 rows of its block (about 32 kB), and a list is written as its
 *  blocks (one writev). */
const BLOCK = 32;

/** A list answer: written one after another, `blocks` are JSON.stringify of the rows' listView. */
export interface ListAnswer { readonly blocks: readonly Buffer[]; readonly length: number }

/** What a kept answer for one API shape and query was made from. */
interface KeptList extends ListAnswer {
  epoch: number;
  /** Every container's Kept when the rows were chosen, in the service's order: the rows are still the
   *  query's while each container's is still current (a state changed in memory moves its Kept, and may
   *  move the container in or out of the query). */
  scan: Kept[];
  /** The query's rows, filtered and ordered, their Kepts and the Status texts their blocks were made with. */
  rows: Live[]; kepts: Kept[]; statuses: string[];
  /** Each block, or undefined while one of its Status texts has changed since it was encoded. */
  blocks: Buffer[];
  length: number;
}
const keptLists = new Map<string, KeptList>();
/** Distinct queries kept (docker ps, ps -a, compose's label filters …); the oldest goes first. */
const KEPT_LISTS = 8;

/** True while every container is still the one `scan` was made from (nothing allocated). */
function sameScan(svc: ContainerService, scan: Kept[]): boolean {
  let j = 0;
  for (const live of svc.byId.values()) {
    if (j >= scan.length || keptFor(live) !== scan[j]) return false;
    j++;
  }
  return j === scan.length;
}

function encodeBlock(svc: ContainerService, kl: KeptList, b: number, oldApi: boolean): Buffer {
  const i = oldApi ? 1 : 0;
  const from = b * BLOCK;
  const to = Math.min(from + BLOCK, kl.rows.length);
  let out = b === 0 ? '[' : ',';
  for (let j = from; j < to; j++) {
    const k = kl.kepts[j];
    let p = k.list[i];
    if (!p) {
      const parts = listParts(svc, kl.rows[j], oldApi);
      p = k.list[i] = [`${open(parts.head)},"Status":`, more(parts.tail)];
    }
    out += (j > from ? ',' : '') + p[0] + JSON.stringify(kl.statuses[j]) + p[1];
  }
  return Buffer.from(to === kl.rows.length ? `${out}]` : out);
}

/** GET /containers/json's body for the query `key` (`select` gives its rows, filtered and ordered, and
 *  throws for a bad query), from kept rows and blocks: the rows are chosen again only when the state
 *  epoch or a container has moved, and only the blocks whose Status texts changed are encoded again. */
export function listAnswer(svc: ContainerService, key: string, oldApi: boolean, select: () => Live[]): ListAnswer {
  const kkey = `${oldApi ? 1 : 0}${key}`;
  const epoch = stateEpoch();
  let kl = keptLists.get(kkey);
  if (!kl || kl.epoch !== epoch || !sameScan(svc, kl.scan)) {
    const rows = select();
    const scan: Kept[] = [];
    for (const live of svc.byId.values()) scan.push(keptFor(live));
    const n = Math.max(1, Math.ceil(rows.length / BLOCK));
    kl = { epoch, scan, rows, kepts: rows.map(keptFor), statuses: new Array<string>(rows.length), blocks: new Array<Buffer>(n), length: 0 };
    keptLists.delete(kkey);
    if (keptLists.size >= KEPT_LISTS) keptLists.delete(keptLists.keys().next().value as string);
    keptLists.set(kkey, kl);
  }
  const now = Date.now();
  const { rows, kepts, statuses, blocks } = kl;
  for (let j = 0; j < rows.length; j++) {
    const st = keptStatus(svc, rows[j], kepts[j], now);
    if (st !== statuses[j]) {
      statuses[j] = st;
      const b = (j / BLOCK) | 0;
      if (blocks[b]) {
        kl.length -= blocks[b].length;
        (blocks as Array<Buffer | undefined>)[b] = undefined;
      }
    }
  }
  for (let b = 0; b < blocks.length; b++) {
    if (blocks[b]) continue;
    blocks[b] = encodeBlock(svc, kl, b, oldApi);
    kl.length += blocks[b].length;
  }
  return kl;
}

/** The whole body of a list answer as one Buffer (for a route that sends one). */
export function listBody(a: ListAnswer): Buffer {
  return Buffer.concat(a.blocks, a.length);
}

/** An inspect body's JSON (as JSON.stringify(inspectView(…)) gives it), from the kept pieces. */
export function inspectJson(svc: ContainerService, live: Live, apiVersion: string): string {
  const k = keptFor(live);
  const i = compareVersions(apiVersion, '1.44') < 0 ? 1 : 0;
  let p = k.inspect[i];
  if (!p) {
    const parts = inspectParts(svc, live, apiVersion);
    p = k.inspect[i] = [`${open(parts.head)},"State":${open(parts.state)}`, `}${more(parts.mid).slice(0, -1)},"ExecIDs":`, more(parts.tail)];
  }
  const health = svc.health.view(live);
  return p[0] + (health ? `,"Health":${JSON.stringify(health)}` : '') + p[1] + JSON.stringify(openExecIds(live.rec.id)) + p[2];
}

export { shortId };
