// POST /containers/create: the body checked, the image's defaults merged in as Docker merges them, and a
// ContainerRecord ready to be stored. No side effects here; the service writes rows and directories.
import type { ContainerDeps } from './deps';
import type { ContainerService } from './service';
import { asBadReference, invalid } from '../errors/errors';
import { mergeLogConfig } from '../logs';
import { newId, shortId } from '../lib/ids';
import { nowNs, rfc3339Nano } from '../lib/time';
import { checkCreate } from './validate';
import { NAME_RE, generateName } from './names';
import { initialState, type ContainerRecord } from './model';
import { MASKED_PATHS, READONLY_PATHS } from './spec';
import { checkModes } from './namespaces';
import { checkSysctls } from './sysctls';
import { parseSignal } from '../lib/signals';
import { parseLink, storedLink } from '../network/links';
import os from 'node:os';
import path from 'node:path';
import { parseVolumesFrom, planMounts, type MountDefaults } from '../volumes/mounts';
import { idMapsOf } from '../runtime/userns';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type CreateBody = Record<string, any>;

const asList = (v: unknown): string[] | null => (v === undefined || v === null ? null : typeof v === 'string' ? [v] : (v as string[]));

/** What a create reads: the daemon's defaults, the image, other containers (links, --volumes-from,
 *  container: modes) and the API's body schema. */
export interface CreateContext extends Pick<ContainerDeps, 'config' | 'images' | 'validateBody' | 'remap'> {
  containers: Pick<ContainerService, 'lookup' | 'containerDir'>;
}

export function prepareCreate(d: CreateContext, nameParam: string | undefined, body: CreateBody | undefined, taken: (n: string) => boolean, mountDefaults: MountDefaults = {}): ContainerRecord {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid('invalid JSON: expected a JSON object with the container configuration');
  d.validateBody('ContainerCreate', body);
  checkCreate(body);
  if (nameParam !== undefined && nameParam !== '' && !NAME_RE.test(nameParam)) {
    throw invalid(`Invalid container name (${nameParam}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  if (!body.Image) throw invalid('config.Image: no image specified');
  const img = d.images.get(body.Image);
  const ic = img.config?.config ?? img.config?.Config ?? {};

  const id = newId();
  const userEntrypoint = asList(body.Entrypoint);
  const userCmd = asList(body.Cmd);
  // Docker: an Entrypoint given at create replaces the image's and drops the image's Cmd.
  let entrypoint = userEntrypoint;
  let cmd = userCmd;
  if (entrypoint === null) {
    entrypoint = ic.Entrypoint ?? null;
    if (cmd === null || cmd.length === 0) cmd = ic.Cmd ?? null;
  } else if (entrypoint.length === 1 && entrypoint[0] === '') {
    entrypoint = null;
  }
  const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (argv.length === 0) throw invalid('no command specified');

  const env = mergeEnv(ic.Env ?? [], body.Env ?? []);
  for (const e of env) if (!e || e.startsWith('=')) throw invalid(`invalid environment variable: ${e}`);
  const stopSignal = body.StopSignal || ic.StopSignal || undefined;
  if (stopSignal) parseSignal(stopSignal);

  const hcIn = body.HostConfig ?? {};
  const rp = hcIn.RestartPolicy ?? {};
  if (hcIn.AutoRemove && rp.Name && rp.Name !== 'no') throw invalid('can\'t create \'AutoRemove\' container with restart policy');
  const hostConfig = {
    ...hcIn,
    Binds: hcIn.Binds ?? null,
    ContainerIDFile: hcIn.ContainerIDFile ?? '',
    // daemon.json log-opts are the defaults of the daemon's log driver; checked here, before anything is made.
    LogConfig: mergeLogConfig(hcIn.LogConfig, d.config.logDriver, d.config.logOpts),
    NetworkMode: hcIn.NetworkMode || 'default',
    PortBindings: hcIn.PortBindings ?? {},
    RestartPolicy: { Name: rp.Name || 'no', MaximumRetryCount: rp.MaximumRetryCount ?? 0 },
    AutoRemove: !!hcIn.AutoRemove,
    VolumeDriver: hcIn.VolumeDriver ?? '',
    VolumesFrom: hcIn.VolumesFrom ?? null,
    ConsoleSize: hcIn.ConsoleSize ?? [0, 0],
    CapAdd: hcIn.CapAdd ?? null,
    CapDrop: hcIn.CapDrop ?? null,
    CgroupnsMode: hcIn.CgroupnsMode || d.config.defaultCgroupnsMode || 'private',
    Dns: hcIn.Dns ?? [],
    DnsOptions: hcIn.DnsOptions ?? [],
    DnsSearch: hcIn.DnsSearch ?? [],
    ExtraHosts: hcIn.ExtraHosts ?? null,
    GroupAdd: hcIn.GroupAdd ?? null,
    IpcMode: hcIn.IpcMode || d.config.defaultIpcMode || 'private',
    Cgroup: hcIn.Cgroup ?? '',
    Links: hcIn.Links ?? null,
    OomScoreAdj: hcIn.OomScoreAdj ?? 0,
    PidMode: hcIn.PidMode ?? '',
    Privileged: !!hcIn.Privileged,
    PublishAllPorts: !!hcIn.PublishAllPorts,
    ReadonlyRootfs: !!hcIn.ReadonlyRootfs,
    SecurityOpt: hcIn.SecurityOpt ?? null,
    UTSMode: hcIn.UTSMode ?? '',
    UsernsMode: hcIn.UsernsMode ?? '',
    ShmSize: hcIn.ShmSize || d.config.defaultShmSize || 67108864,
    Runtime: 'runc',
    // Annotations for the runtime (API 1.43); kept and shown, and given to the OCI spec.
    ...(hcIn.Annotations && Object.keys(hcIn.Annotations).length ? { Annotations: hcIn.Annotations } : {}),
    Isolation: hcIn.Isolation ?? '',
    CpuShares: hcIn.CpuShares ?? 0,
    Memory: hcIn.Memory ?? 0,
    NanoCpus: hcIn.NanoCpus ?? 0,
    CgroupParent: hcIn.CgroupParent ?? '',
    BlkioWeight: hcIn.BlkioWeight ?? 0,
    BlkioWeightDevice: hcIn.BlkioWeightDevice ?? [],
    BlkioDeviceReadBps: hcIn.BlkioDeviceReadBps ?? [],
    BlkioDeviceWriteBps: hcIn.BlkioDeviceWriteBps ?? [],
    BlkioDeviceReadIOps: hcIn.BlkioDeviceReadIOps ?? [],
    BlkioDeviceWriteIOps: hcIn.BlkioDeviceWriteIOps ?? [],
    CpuPeriod: hcIn.CpuPeriod ?? 0,
    CpuQuota: hcIn.CpuQuota ?? 0,
    CpuRealtimePeriod: hcIn.CpuRealtimePeriod ?? 0,
    CpuRealtimeRuntime: hcIn.CpuRealtimeRuntime ?? 0,
    CpusetCpus: hcIn.CpusetCpus ?? '',
    CpusetMems: hcIn.CpusetMems ?? '',
    Devices: hcIn.Devices ?? [],
    DeviceCgroupRules: hcIn.DeviceCgroupRules ?? null,
    DeviceRequests: hcIn.DeviceRequests ?? null,
    MemoryReservation: hcIn.MemoryReservation ?? 0,
    MemorySwap: hcIn.MemorySwap ?? 0,
    MemorySwappiness: hcIn.MemorySwappiness ?? null,
    OomKillDisable: hcIn.OomKillDisable ?? false,
    PidsLimit: hcIn.PidsLimit || null,
    // daemon.json default-ulimits for every name the container does not set itself (as dockerd merges them).
    Ulimits: [...(hcIn.Ulimits ?? []), ...(d.config.defaultUlimits ?? []).filter((u) => !(hcIn.Ulimits ?? []).some((o: { Name: string }) => o.Name === u.Name))],
    CpuCount: hcIn.CpuCount ?? 0,
    CpuPercent: hcIn.CpuPercent ?? 0,
    IOMaximumIOps: hcIn.IOMaximumIOps ?? 0,
    IOMaximumBandwidth: hcIn.IOMaximumBandwidth ?? 0,
    MaskedPaths: hcIn.MaskedPaths ?? (hcIn.Privileged ? null : MASKED_PATHS),
    ReadonlyPaths: hcIn.ReadonlyPaths ?? (hcIn.Privileged ? null : READONLY_PATHS),
  };

  const healthcheck = mergeHealthcheck(body.Healthcheck, ic.Healthcheck);
  checkModes(hostConfig, body.Hostname);
  checkUserns(hostConfig, !!d.remap);
  checkSysctls(hostConfig, (ref) => { try { return d.containers.lookup(ref).rec.hostConfig.NetworkMode; } catch { return undefined; } });
  // Sharing the host's UTS namespace, or its network, the container is named as the host; sharing another
  // container's network, as that container (as Docker does).
  let hostName = hostConfig.UTSMode === 'host' || hostConfig.NetworkMode === 'host' ? os.hostname() : '';
  let domainName = body.Domainname ?? '';
  if (String(hostConfig.NetworkMode).startsWith('container:')) {
    if (body.Hostname) throw invalid('conflicting options: hostname and the network mode');
    try {
      const donor = d.containers.lookup(String(hostConfig.NetworkMode).slice('container:'.length)).rec;
      hostName = donor.config.Hostname;
      domainName ||= donor.config.Domainname ?? '';
    } catch { /* the start reports a missing donor */ }
  }
  const config = {
    Hostname: body.Hostname || hostName || shortId(id),
    Domainname: domainName,
    User: body.User || ic.User || '',
    AttachStdin: !!body.AttachStdin,
    AttachStdout: !!body.AttachStdout,
    AttachStderr: !!body.AttachStderr,
    ...(body.ExposedPorts || ic.ExposedPorts ? { ExposedPorts: { ...(ic.ExposedPorts ?? {}), ...(body.ExposedPorts ?? {}) } } : {}),
    Tty: !!body.Tty,
    OpenStdin: !!body.OpenStdin,
    StdinOnce: !!body.StdinOnce,
    Env: env,
    Cmd: cmd,
    ...(healthcheck ? { Healthcheck: healthcheck } : {}),
    Image: body.Image,
    Volumes: body.Volumes && Object.keys(body.Volumes).length ? body.Volumes : ic.Volumes ?? null,
    WorkingDir: body.WorkingDir || ic.WorkingDir || '',
    Entrypoint: entrypoint,
    OnBuild: body.OnBuild ?? null,
    Labels: { ...(ic.Labels ?? {}), ...(body.Labels ?? {}) },
    ...(stopSignal ? { StopSignal: stopSignal } : {}),
    ...(body.StopTimeout !== undefined && body.StopTimeout !== null ? { StopTimeout: body.StopTimeout } : {}),
    // The container-wide MAC address (deprecated since API 1.44, still sent by docker-py 7): the main
    // network's endpoint takes it when its own EndpointSettings name none (network service recordCreate).
    ...(body.MacAddress ? { MacAddress: checkedMac(String(body.MacAddress)) } : {}),
  };

  const name = nameParam ? (nameParam.startsWith('/') ? nameParam : `/${nameParam}`) : `/${generateName(taken)}`;
  if (hostConfig.Links?.length) {
    const mode = hostConfig.NetworkMode;
    if (mode === 'host') throw invalid('conflicting options: host type networking can\'t be used with links. This would result in undefined behavior');
    if (mode.startsWith('container:')) throw invalid('conflicting options: container type network can\'t be used with links. This would result in undefined behavior');
    hostConfig.Links = (hostConfig.Links as string[]).map((l) => {
      const link = parseLink(l);
      // The target must exist (Docker: 404 for an unknown one); it is stored under its canonical name.
      let target: string;
      try {
        target = d.containers.lookup(link.target).rec.name.slice(1);
      } catch (e) {
        throw invalid(`could not get container for ${link.target}: ${(e as Error).message}`);
      }
      return storedLink({ target, alias: link.alias }, name.slice(1));
    });
  }
  const mounts = planMounts({
    binds: hostConfig.Binds ?? [],
    mounts: hostConfig.Mounts ?? [],
    tmpfs: hostConfig.Tmpfs ?? {},
    volumes: Object.keys(config.Volumes ?? {}),
    volumesFrom: ((hostConfig.VolumesFrom ?? []) as string[]).map((spec) => {
      const { ref, mode } = parseVolumesFrom(spec);
      return { points: asBadReference(() => d.containers.lookup(ref)).rec.mounts ?? [], mode };
    }),
  }, mountDefaults);
  // An image mount names its image at create (as the container's own image); berth mounts it read-only
  // in the container's directory at each start.
  mounts.forEach((m, i) => {
    if (m.Type !== 'image') return;
    // Not a 404: the CLI answers a 404 to a create by pulling the container's own image and trying again.
    try {
      m.ImageId = d.images.get(m.Image!).id;
    } catch {
      throw invalid(`invalid mount config for type "image": No such image: ${m.Image}`);
    }
    m.Source = path.join(d.containers.containerDir(id), 'image-mounts', String(i));
  });
  return {
    mounts,
    id, name, imageId: img.id, imageRef: body.Image, created: rfc3339Nano(nowNs()), config, hostConfig,
    path: argv[0], args: argv.slice(1), layerId: newId(), state: initialState(),
    idMap: d.remap && hostConfig.UsernsMode !== 'host' ? idMapsOf(d.remap) : null,
  };
}

/** The image's Env with the user's on top: same key → the user's value wins, in the image's position. */
function mergeEnv(image: string[], user: string[]): string[] {
  const out = [...image];
  for (const kv of user) {
    const key = kv.split('=')[0];
    const i = out.findIndex((e) => e.split('=')[0] === key);
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** The healthcheck a container runs: the client's settings over the image's (`--health-interval` alone
 *  keeps the image's HEALTHCHECK command, as Docker merges them), checked as Docker checks them. */
function mergeHealthcheck(user: any, image: any): any {
  if (!user || typeof user !== 'object') return image ?? undefined;
  const out = { ...user };
  if (image && typeof image === 'object') {
    if (!Array.isArray(out.Test) || out.Test.length === 0) out.Test = image.Test;
    for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']) if (!out[k] && image[k]) out[k] = image[k];
  }
  const ms = 1e6;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval']) {
    const v = out[k];
    if (v !== undefined && v !== null && v !== 0 && !(typeof v === 'number' && v >= ms)) throw invalid(`${k} in Healthcheck cannot be less than 1ms`);
  }
  if (typeof out.Retries === 'number' && out.Retries < 0) throw invalid('Retries in Healthcheck cannot be negative');
  return out;
}

/** --userns: only `host` (opt out of the daemon's --userns-remap) or nothing. Under a remap, Docker's
 *  refusals of what a user namespace cannot share with the host, in its words. Another container's
 *  namespaces can be shared: the container then joins that one's user namespace (namespaces.ts). */
export function checkUserns(hc: { UsernsMode?: string; Privileged?: boolean; NetworkMode?: string; PidMode?: string; IpcMode?: string }, remapped: boolean): void {
  const mode = hc.UsernsMode ?? '';
  if (mode !== '' && mode !== 'host') throw invalid(`--userns: invalid USER mode`);
  if (!remapped || mode === 'host') return;
  if (hc.Privileged) throw invalid('privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode');
  if (hc.NetworkMode === 'host') throw invalid("cannot share the host's network namespace when user namespaces are enabled");
  if (hc.PidMode === 'host') throw invalid('cannot share the host PID namespace when user namespaces are enabled');
  // The host's IPC namespace is allowed, as Docker does: its /dev/mqueue is bound instead (spec.ts).
}

/** Config.MacAddress: six hex octets, or Docker's 400. */
function checkedMac(mac: string): string {
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) throw invalid(`invalid MAC address: ${mac}`);
  return mac;
}
