// A container's mount points, worked out once at create from what the client sent (HostConfig.Binds,
// HostConfig.Mounts, HostConfig.Tmpfs, HostConfig.VolumesFrom and Config.Volumes) and kept with the
// container. Pure functions: the service creates the volumes they name.
import os from 'node:os';
import path from 'node:path';
import { invalid } from '../errors/errors';

export type MountType = 'bind' | 'volume' | 'tmpfs' | 'image';

/** One mount point, as inspect's Mounts shows it plus what berth needs to mount it. */
export interface MountPoint {
  Type: MountType;
  /** The volume's name (volume); '' for an anonymous volume not yet made. */
  Name?: string;
  /** The host path (bind). For volumes the service fills it from the name. */
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** Not shown in inspect. */
  NoCopy?: boolean;
  Anonymous?: boolean;
  /** A bind whose host path is made when missing (`-v /host:/ctr`; not `--mount type=bind`). */
  CreateSource?: boolean;
  TmpfsOptions?: string[];
  /** A volume created on the fly by this container: its labels and driver options (--mount volume-opt). */
  VolumeLabels?: Record<string, string>;
  VolumeDriverOpts?: Record<string, string>;
  /** A bind without its submounts (BindOptions.NonRecursive, `bind-recursive=disabled`). */
  NonRecursive?: boolean;
  /** How far a read-only bind is read-only: its submounts too when the kernel can (absent, API 1.44's
   *  default), only its top mount ('top': ReadOnlyNonRecursive, and every read-only bind of an older
   *  API), or its submounts too and fail where the kernel cannot ('all': ReadOnlyForceRecursive). */
  ReadOnlyDepth?: 'top' | 'all';
  /** A directory inside the volume or image, mounted instead of its root (VolumeOptions.Subpath,
   *  ImageOptions.Subpath). */
  Subpath?: string;
  /** An image mount (`--mount type=image,source=busybox`): the reference as given, and the image it
   *  named at create. Its Source is the directory where berth mounts the image read-only. */
  Image?: string;
  ImageId?: string;
}

/** What a create's API version changes in the mount points (moby keeps older clients' behaviour). */
export interface MountDefaults {
  /** Before API 1.44 a read-only bind was read-only at its top mount only. */
  readOnlyTopOnly?: boolean;
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

export function checkVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw invalid(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  }
}

function checkDestination(dst: string, spec: string): string {
  if (!dst) throw invalid(`invalid volume specification: '${spec}': invalid mount config for type "volume": field Target must not be empty`);
  if (!path.isAbsolute(dst)) throw invalid(`invalid volume specification: '${spec}': invalid mount config: invalid mount path: '${dst}' mount path must be absolute`);
  const clean = path.posix.normalize(dst).replace(/(.)\/+$/, '$1');
  if (clean === '/') throw invalid(`invalid specification: destination can't be '/'`);
  return clean;
}

/** `-v src:dst[:mode]` (src a host path or a volume name) from HostConfig.Binds. */
export function parseBind(spec: string, defaults: MountDefaults = {}): MountPoint {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p, i) => p === '' && i < 2)) throw invalid(`invalid volume specification: '${spec}'`);
  const [src, dstRaw, mode = ''] = parts;
  const dst = checkDestination(dstRaw, spec);
  let rw = true;
  let propagation = '';
  let nocopy = false;
  for (const m of mode ? mode.split(',') : []) {
    if (m === 'ro') rw = false;
    else if (m === 'rw') rw = true;
    else if (PROPAGATIONS.includes(m)) propagation = m;
    else if (m === 'nocopy') nocopy = true;
    else if (!['z', 'Z', 'consistent', 'cached', 'delegated'].includes(m)) throw invalid(`invalid mode: ${mode}`);
  }
  if (path.isAbsolute(src)) {
    if (nocopy) throw invalid(`invalid mode: ${mode}`);
    return {
      Type: 'bind', Source: path.posix.normalize(src), Destination: dst, Mode: mode, RW: rw, Propagation: propagation || 'rprivate', CreateSource: true,
      ...(!rw && defaults.readOnlyTopOnly ? { ReadOnlyDepth: 'top' as const } : {}),
    };
  }
  if (propagation) throw invalid(`invalid mode: ${mode}`);
  checkVolumeName(src);
  return { Type: 'volume', Name: src, Source: '', Destination: dst, Driver: 'local', Mode: mode || 'z', RW: rw, Propagation: '', NoCopy: nocopy };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** One entry of HostConfig.Mounts (`--mount`). */
export function parseMount(m: any, defaults: MountDefaults = {}): MountPoint {
  if (!m || typeof m !== 'object') throw invalid('invalid mount config: expected an object');
  const type = m.Type;
  const dst = checkDestination(typeof m.Target === 'string' ? m.Target : '', JSON.stringify(m));
  const rw = !m.ReadOnly;
  switch (type) {
    case 'bind': {
      const bad = (why: string) => invalid(`invalid mount config for type "bind": ${why}`);
      if (!m.Source) throw bad('field Source must not be empty');
      if (!path.isAbsolute(m.Source)) throw bad(`invalid mount path: '${m.Source}' mount path must be absolute`);
      const bo = m.BindOptions ?? {};
      const prop = bo.Propagation || 'rprivate';
      if (!PROPAGATIONS.includes(prop)) throw bad(`invalid propagation mode: ${prop}`);
      if (bo.ReadOnlyNonRecursive && bo.ReadOnlyForceRecursive) throw bad('must not set both ReadOnlyNonRecursive and ReadOnlyForceRecursive');
      if (bo.ReadOnlyNonRecursive && rw) throw bad('must not set ReadOnlyNonRecursive when ReadOnly is false');
      if (bo.ReadOnlyForceRecursive && rw) throw bad('must not set ReadOnlyForceRecursive when ReadOnly is false');
      if (bo.ReadOnlyForceRecursive && bo.NonRecursive) throw bad('must not set ReadOnlyForceRecursive when NonRecursive is true');
      // A shared or slave mount would bring in new submounts later, writable ones.
      if (bo.ReadOnlyForceRecursive && prop !== 'rprivate') throw bad('ReadOnlyForceRecursive needs Propagation rprivate');
      let depth: MountPoint['ReadOnlyDepth'];
      if (!rw) depth = bo.ReadOnlyForceRecursive ? 'all' : bo.ReadOnlyNonRecursive || defaults.readOnlyTopOnly ? 'top' : undefined;
      return {
        Type: 'bind', Source: path.posix.normalize(m.Source), Destination: dst, Mode: '', RW: rw, Propagation: prop, CreateSource: !!bo.CreateMountpoint,
        ...(bo.NonRecursive ? { NonRecursive: true } : {}), ...(depth ? { ReadOnlyDepth: depth } : {}),
      };
    }
    case 'volume': {
      if (m.BindOptions) throw invalid(`invalid mount config for type "volume": BindOptions must not be specified`);
      if (m.Source) checkVolumeName(m.Source);
      const driver = m.VolumeOptions?.DriverConfig?.Name || 'local';
      if (driver !== 'local') throw invalid(`plugin "${driver}" not found`);
      const sub = checkSubpath('volume', m.VolumeOptions?.Subpath);
      return {
        Type: 'volume', Name: m.Source || '', Source: '', Destination: dst, Driver: 'local', Mode: 'z', RW: rw, Propagation: '',
        NoCopy: !!m.VolumeOptions?.NoCopy, Anonymous: !m.Source,
        VolumeLabels: m.VolumeOptions?.Labels ?? undefined, VolumeDriverOpts: m.VolumeOptions?.DriverConfig?.Options ?? undefined,
        ...(sub ? { Subpath: sub } : {}),
      };
    }
    case 'image': {
      // Always read-only: the image is never changed.
      if (!m.Source || typeof m.Source !== 'string') throw invalid(`invalid mount config for type "image": field Source must not be empty`);
      if (m.BindOptions || m.VolumeOptions || m.TmpfsOptions) throw invalid(`invalid mount config for type "image": only ImageOptions may be specified`);
      const sub = checkSubpath('image', m.ImageOptions?.Subpath);
      return { Type: 'image', Image: m.Source, Source: '', Destination: dst, Mode: '', RW: false, Propagation: 'rprivate', ...(sub ? { Subpath: sub } : {}) };
    }
    case 'tmpfs': {
      if (m.Source) throw invalid(`invalid mount config for type "tmpfs": field Source must not be specified`);
      const opts: string[] = [];
      if (m.TmpfsOptions?.SizeBytes) opts.push(`size=${m.TmpfsOptions.SizeBytes}`);
      if (m.TmpfsOptions?.Mode) opts.push(`mode=${Number(m.TmpfsOptions.Mode).toString(8)}`);
      // API 1.46: further options as [name] or [name, value] pairs ([["exec"]]).
      for (const o of Array.isArray(m.TmpfsOptions?.Options) ? m.TmpfsOptions.Options : []) {
        if (!Array.isArray(o) || o.length < 1 || o.length > 2 || !o.every((x: unknown) => typeof x === 'string' && x && !/[,\s]/.test(x))) {
          throw invalid(`invalid mount config for type "tmpfs": invalid option ${JSON.stringify(o)}`);
        }
        opts.push(o.length === 2 ? `${o[0]}=${o[1]}` : o[0]);
      }
      return { Type: 'tmpfs', Source: '', Destination: dst, Mode: '', RW: rw, Propagation: '', TmpfsOptions: opts };
    }
    default:
      throw invalid(`invalid mount config for type "${type ?? ''}": mount type unknown`);
  }
}

/** A volume's or image's Subpath: relative, and not climbing out (it is looked up inside at each start). */
function checkSubpath(type: 'volume' | 'image', sub: unknown): string | undefined {
  if (sub === undefined || sub === null || sub === '') return undefined;
  const clean = typeof sub === 'string' ? path.posix.normalize(sub) : '';
  if (!clean || path.posix.isAbsolute(clean) || clean === '..' || clean.startsWith('../')) {
    throw invalid(`invalid mount config for type "${type}": subpath must be a relative path within the ${type}`);
  }
  return clean;
}

/** HostConfig.Tmpfs: { "/run": "rw,size=64m" }. */
export function parseTmpfs(dst: string, opts: string): MountPoint {
  const d = checkDestination(dst, `${dst}:${opts}`);
  const list = (opts || '').split(',').filter(Boolean);
  const rw = !list.includes('ro');
  return { Type: 'tmpfs', Source: '', Destination: d, Mode: '', RW: rw, Propagation: '', TmpfsOptions: list.filter((o) => o !== 'ro' && o !== 'rw') };
}

export interface MountRequest {
  binds: string[];
  mounts: unknown[];
  tmpfs: Record<string, string>;
  volumes: string[];          // Config.Volumes keys (anonymous unless something else is mounted there)
  volumesFrom: Array<{ points: MountPoint[]; mode: string }>;
}

/** All of a container's mount points, in mount order (parents before what is mounted inside them). */
export function planMounts(r: MountRequest, defaults: MountDefaults = {}): MountPoint[] {
  const explicit: MountPoint[] = [];
  const seen = new Set<string>();
  const add = (m: MountPoint) => {
    if (seen.has(m.Destination)) throw invalid(`Duplicate mount point: ${m.Destination}`);
    seen.add(m.Destination);
    explicit.push(m);
  };
  for (const b of r.binds) add(parseBind(b, defaults));
  for (const m of r.mounts) add(parseMount(m, defaults));
  for (const [dst, opts] of Object.entries(r.tmpfs)) add(parseTmpfs(dst, opts));
  // --volumes-from: the other container's mount points, unless this one mounts something there itself.
  for (const vf of r.volumesFrom) {
    for (const p of vf.points) {
      if (seen.has(p.Destination) || p.Type === 'tmpfs' || p.Type === 'image') continue;
      seen.add(p.Destination);
      explicit.push({ ...p, RW: vf.mode === 'ro' ? false : vf.mode === 'rw' ? true : p.RW, Anonymous: false, CreateSource: false });
    }
  }
  for (const v of r.volumes) {
    const dst = checkDestination(v, v);
    if (seen.has(dst)) continue;
    seen.add(dst);
    explicit.push({ Type: 'volume', Name: '', Source: '', Destination: dst, Driver: 'local', Mode: '', RW: true, Propagation: '', Anonymous: true });
  }
  const depth = (p: string) => p.split('/').length;
  return explicit.sort((a, b) => depth(a.Destination) - depth(b.Destination));
}

/** `ctr[:ro|rw]` of HostConfig.VolumesFrom. */
export function parseVolumesFrom(spec: string): { ref: string; mode: string } {
  const [ref, mode = '', extra] = spec.split(':');
  if (!ref || extra !== undefined || (mode && mode !== 'ro' && mode !== 'rw')) throw invalid(`invalid volumes-from specification: ${spec}`);
  return { ref, mode };
}

/** Whether this kernel can make a mount tree read-only in one go (mount_setattr, Linux 5.12). */
export function kernelHasRecursiveReadOnly(release = os.release()): boolean {
  const [major, minor] = release.split('.').map((x) => parseInt(x, 10));
  return major > 5 || (major === 5 && minor >= 12);
}

/** The OCI mount for a point (its Source already the host path, a volume's subpath included). */
export function ociMount(m: MountPoint): object {
  if (m.Type === 'tmpfs') {
    return { destination: m.Destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', ...(m.TmpfsOptions ?? []), m.RW ? 'rw' : 'ro'] };
  }
  const options = [m.NonRecursive ? 'bind' : 'rbind', m.RW ? 'rw' : 'ro', m.Propagation || 'rprivate'];
  // A read-only bind's submounts are made read-only too ("rro", by the shim through mount_setattr),
  // unless asked not to; forced, a kernel without it fails the start.
  const treeRO = !m.RW && m.Type === 'bind' && !m.NonRecursive && m.ReadOnlyDepth !== 'top';
  if (treeRO && (m.ReadOnlyDepth === 'all' || kernelHasRecursiveReadOnly())) options.push('rro');
  return { destination: m.Destination, type: 'bind', source: m.Source, options };
}

/** inspect's Mounts entry. */
export function mountView(m: MountPoint): Record<string, unknown> {
  if (m.Type === 'image') return { Type: 'image', Source: m.Image, Destination: m.Destination, Mode: '', RW: false, Propagation: m.Propagation };
  if (m.Type === 'volume') {
    return { Type: 'volume', Name: m.Name, Source: m.Source, Destination: m.Destination, Driver: m.Driver ?? 'local', Mode: m.Mode, RW: m.RW, Propagation: m.Propagation };
  }
  return { Type: m.Type, Source: m.Source, Destination: m.Destination, Mode: m.Mode, RW: m.RW, Propagation: m.Propagation };
}
