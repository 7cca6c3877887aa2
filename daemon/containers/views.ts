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

export function inspectView(svc: ContainerService, live: Live, apiVersion: string) {
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
  const config: Record<string, unknown> = { ...r.config };
  const out: Record<string, unknown> = {
    Id: r.id,
    Created: r.created,
    Path: r.path,
    Args: r.args,
    State: stateView(r),
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
    ExecIDs: openExecIds(live.rec.id),
    HostConfig: r.hostConfig,
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
    Config: config,
    NetworkSettings: netSettings(svc, r),
  };
  const health = svc.health.view(live);
  if (health) (out.State as Record<string, unknown>).Health = health;
  if (compareVersions(apiVersion, '1.44') < 0) (out.HostConfig as Record<string, unknown>) = { ...r.hostConfig, KernelMemory: 0, KernelMemoryTCP: 0 };
  return out;
}

/** Docker's human Status column. */
export function humanStatus(r: ContainerRecord, now = Date.now()): string {
  const s = r.state;
  const since = (t: string) => (now - Number(parseRfc3339Ns(t) / 1_000_000n)) / 1000;
  switch (s.status) {
    case 'created':
      return 'Created';
    case 'running':
      return `Up ${humanDuration(since(s.startedAt))}`;
    case 'paused':
      return `Up ${humanDuration(since(s.startedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.exitCode}) ${humanDuration(since(s.finishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'exited':
      return `Exited (${s.exitCode}) ${humanDuration(since(s.finishedAt))} ago`;
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

export function listView(_svc: ContainerService, live: Live) {
  const r = live.rec;
  return {
    Id: r.id,
    Names: [r.name],
    Image: r.imageRef,
    ImageID: r.imageId,
    Command: [r.path, ...r.args].join(' '),
    Created: createdSecs(r),
    Ports: _svc['d'].networks.portList(r, r.state.status === 'running' || r.state.status === 'paused'),
    Labels: r.config.Labels ?? {},
    State: r.state.status,
    Status: humanStatus(r) + (r.state.status === 'running' ? healthSuffix(_svc.health.view(live)) : ''),
    HostConfig: { NetworkMode: r.hostConfig.NetworkMode, ...(r.hostConfig.Annotations ? { Annotations: r.hostConfig.Annotations } : {}) },
    NetworkSettings: { Networks: netSettings(_svc, r).Networks },
    Mounts: (r.mounts ?? []).map(mountView),
  };
}

export { shortId };
