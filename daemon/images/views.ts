// The JSON shapes Docker gives images (samples/image-inspect.json, samples/images-list.json, trace
// history-tag), per API version:
//   < 1.43  untagged images list as RepoTags ["<none>:<none>"], RepoDigests ["<none>@<none>"]
//   < 1.44  VirtualSize (= Size)
//   < 1.45  inspect has Container and ContainerConfig
//   < 1.50  inspect Config is the full container-config shape (Hostname, Tty, …); from 1.50 only the image
//           config fields that are set (the OCI image config).
/* eslint-disable @typescript-eslint/no-explicit-any */
import { compareVersions } from '../lib/versions';
import { ZERO_TIME, parseRfc3339Ns, rfc3339Nano } from '../lib/time';

const below = (v: string, min: string) => compareVersions(v, min) < 0;

/** RFC3339 as Go prints it (trailing fractional zeros dropped); bad or missing times become the zero time. */
export function goTime(s: unknown): string {
  if (typeof s !== 'string' || s === '') return ZERO_TIME;
  try {
    return rfc3339Nano(parseRfc3339Ns(s));
  } catch {
    return ZERO_TIME;
  }
}

/** Unix seconds of an RFC3339 time (Go's Time.Unix(), so the zero time is far negative). */
/** An image's `created` in nanoseconds since the epoch (year 1 when it has none), for ordering images made
 *  within the same second, as Docker's before/since filters compare whole timestamps. */
export function unixNanos(s: unknown): bigint {
  if (typeof s !== 'string' || s === '') return -62135596800n * 1_000_000_000n;
  try {
    return parseRfc3339Ns(s);
  } catch {
    const ms = Date.parse(s);
    return Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : -62135596800n * 1_000_000_000n;
  }
}

export function unixSeconds(s: unknown): number {
  if (typeof s !== 'string' || s === '') return -62135596800;
  try {
    return Number(parseRfc3339Ns(s) / 1_000_000_000n);
  } catch {
    const ms = Date.parse(s);
    return Number.isFinite(ms) ? Math.floor(ms / 1000) : -62135596800;
  }
}

/** The `config` object inside an image config (Docker writes `config`; very old writers `Config`). */
export const imageConfigOf = (cfg: any): any => cfg?.config ?? cfg?.Config ?? {};

/** Docker's container.Config shape, as image inspect showed it before API 1.50. */
export function legacyConfig(c: any): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Hostname: c.Hostname ?? '',
    Domainname: c.Domainname ?? '',
    User: c.User ?? '',
    AttachStdin: !!c.AttachStdin,
    AttachStdout: !!c.AttachStdout,
    AttachStderr: !!c.AttachStderr,
  };
  if (c.ExposedPorts && Object.keys(c.ExposedPorts).length) out.ExposedPorts = c.ExposedPorts;
  Object.assign(out, {
    Tty: !!c.Tty,
    OpenStdin: !!c.OpenStdin,
    StdinOnce: !!c.StdinOnce,
    Env: c.Env ?? null,
    Cmd: c.Cmd ?? null,
  });
  if (c.Healthcheck) out.Healthcheck = c.Healthcheck;
  if (c.ArgsEscaped) out.ArgsEscaped = true;
  Object.assign(out, {
    Image: c.Image ?? '',
    Volumes: c.Volumes ?? null,
    WorkingDir: c.WorkingDir ?? '',
    Entrypoint: c.Entrypoint ?? null,
    OnBuild: c.OnBuild ?? null,
    Labels: c.Labels ?? null,
  });
  if (c.StopSignal) out.StopSignal = c.StopSignal;
  if (c.StopTimeout !== undefined && c.StopTimeout !== null) out.StopTimeout = c.StopTimeout;
  if (c.Shell) out.Shell = c.Shell;
  return out;
}

/** The OCI image config fields, only those set, as image inspect shows them from API 1.50. */
export function ociConfig(c: any): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const nonEmpty = (v: unknown) => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0)
    && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);
  for (const k of ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell']) {
    if (nonEmpty(c[k]) && c[k] !== false) out[k] = c[k];
  }
  return out;
}

export interface InspectInput {
  id: string;
  config: any;
  size: number;
  parent: string;
  lastTagTime: string;
  repoTags: string[];
  repoDigests: string[];
  /** Layer diff directories, topmost first; empty for an image without layers. */
  layerDirs: string[];
}

export function inspectView(i: InspectInput, apiVersion: string): Record<string, unknown> {
  const cfg = i.config ?? {};
  const out: Record<string, unknown> = {
    Id: i.id,
    RepoTags: i.repoTags,
    RepoDigests: i.repoDigests,
    Parent: i.parent,
    Comment: cfg.comment ?? '',
    Created: goTime(cfg.created),
  };
  if (below(apiVersion, '1.45')) {
    out.Container = cfg.container ?? '';
    out.ContainerConfig = legacyConfig(cfg.container_config ?? {});
  }
  out.DockerVersion = cfg.docker_version ?? '';
  out.Author = cfg.author ?? '';
  const c = imageConfigOf(cfg);
  out.Config = below(apiVersion, '1.50') ? legacyConfig(c) : ociConfig(c);
  out.Architecture = cfg.architecture ?? '';
  if (cfg.variant) out.Variant = cfg.variant;
  out.Os = cfg.os ?? '';
  if (cfg['os.version']) out.OsVersion = cfg['os.version'];
  out.Size = i.size;
  if (below(apiVersion, '1.44')) out.VirtualSize = i.size;
  out.GraphDriver = { Data: graphDriverData(i.layerDirs), Name: 'overlay2' };
  const diffIds: string[] = cfg.rootfs?.diff_ids ?? [];
  out.RootFS = diffIds.length ? { Type: 'layers', Layers: diffIds } : { Type: 'layers' };
  out.Metadata = { LastTagTime: i.lastTagTime || ZERO_TIME };
  return out;
}

/** Docker's overlay2 metadata of an image: the top layer's directories, the others as LowerDir. */
function graphDriverData(diffDirs: string[]): Record<string, string> | null {
  if (diffDirs.length === 0) return null;
  const top = diffDirs[0].replace(/\/diff$/, '');
  const out: Record<string, string> = {};
  if (diffDirs.length > 1) out.LowerDir = diffDirs.slice(1).join(':');
  out.MergedDir = `${top}/merged`;
  out.UpperDir = `${top}/diff`;
  out.WorkDir = `${top}/work`;
  return out;
}

export interface SummaryInput {
  id: string;
  config: any;
  size: number;
  parent: string;
  repoTags: string[];
  repoDigests: string[];
}

export function summaryView(s: SummaryInput, apiVersion: string): Record<string, unknown> {
  let tags: string[] | null = s.repoTags;
  let digests: string[] | null = s.repoDigests;
  if (below(apiVersion, '1.43')) {
    if (tags.length === 0 && digests.length === 0) {
      tags = ['<none>:<none>'];
      digests = ['<none>@<none>'];
    } else if (digests.length === 0) digests = null;
  }
  const out: Record<string, unknown> = {
    Containers: -1,
    Created: unixSeconds(s.config?.created),
    Id: s.id,
    Labels: imageConfigOf(s.config).Labels ?? null,
    ParentId: s.parent,
    RepoDigests: digests,
    RepoTags: tags,
    SharedSize: -1,
    Size: s.size,
  };
  if (below(apiVersion, '1.44')) out.VirtualSize = s.size;
  return out;
}

/** `docker history`: one entry per config history item, newest first. The newest entry carries the image's
 *  id and tags, the next its parent's, and so on while parents exist locally; the rest are `<missing>`
 *  (loaded and pulled images have no local parents). */
export function historyView(config: any, layerSizes: number[], ancestry: { id: string; tags: string[] }[]): Record<string, unknown>[] {
  const hist: any[] = Array.isArray(config?.history) ? config.history : [];
  const out: Record<string, unknown>[] = [];
  let li = 0;
  for (const h of hist) {
    let size = 0;
    if (!h?.empty_layer) {
      size = layerSizes[li] ?? 0;
      li++;
    }
    out.unshift({
      Comment: h?.comment ?? '',
      Created: unixSeconds(h?.created),
      CreatedBy: h?.created_by ?? '',
      Id: '<missing>',
      Size: size,
      Tags: null,
    });
  }
  for (let k = 0; k < out.length && k < ancestry.length; k++) {
    out[k].Id = ancestry[k].id;
    out[k].Tags = ancestry[k].tags.length ? ancestry[k].tags : null;
  }
  return out;
}
