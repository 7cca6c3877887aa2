// --userns-remap (daemon.json `userns-remap`), as dockerd has it: containers run in a user namespace of
// their own whose root is the first id of a subordinate range of the host (/etc/subuid, /etc/subgid).
// `default` is the user `dockremap`, made with a 65536-id range when missing; `user`, `user:group`,
// `uid`, `uid:gid` name an entry of those files (by name or by number, as shadow's tools accept both).
//
// Unlike dockerd, which keeps a chowned copy of every image layer per remap (<data-root>/<uid>.<gid>/),
// berth shows the same layer directories to every container through idmapped mounts of them (see
// addon/src/fs/idmap.h): nothing is copied, and turning the remap on or off keeps images and containers.
import { readFile, appendFile, chown, lchown, lstat, chmod, readdir } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { native } from './native';

const run = promisify(execFile);

/** One line of an OCI linux.uidMappings / gidMappings. */
export interface IdRange {
  containerID: number;
  hostID: number;
  size: number;
}

export interface Remap {
  /** What the user gave (`default`, `user:group`, …), and the names the ranges were found under. */
  setting: string;
  user: string;
  group: string;
  uidMappings: IdRange[];
  gidMappings: IdRange[];
}

/** The uid and gid maps a container's files are laid out for (null: the host's own ids). */
export interface IdMaps {
  uid: IdRange[];
  gid: IdRange[];
}

export function idMapsOf(r: Remap): IdMaps {
  return { uid: r.uidMappings, gid: r.gidMappings };
}

/** A host id as `from` lays it out, given the id `to` has for the same container id; unchanged when
 *  either side has no place for it (a host id outside the old range, a container id outside the new). */
function shiftId(from: IdRange[] | null, to: IdRange[] | null, hostId: number): number {
  let inside = hostId;
  if (from) {
    const m = from.find((r) => hostId >= r.hostID && hostId < r.hostID + r.size);
    if (!m) return hostId;
    inside = m.containerID + hostId - m.hostID;
  }
  if (!to) return inside;
  const n = to.find((r) => inside >= r.containerID && inside < r.containerID + r.size);
  return n ? n.hostID + inside - n.containerID : hostId;
}

/**
 * Docker keeps containers per remap (a container made before the remap was turned on is not seen under
 * it); berth keeps one data root, so the container stays, and what it wrote is given to the ids of the
 * remap it now starts under: every entry of its upper dir (never following a symlink; the container is
 * not running, so nothing swaps them meanwhile) is shifted from the old maps to the new. Returns whether
 * the maps differed (then the caller records the new ones).
 */
export async function followIdMaps(upper: string, from: IdMaps | null, to: IdMaps | null): Promise<boolean> {
  if (JSON.stringify(from) === JSON.stringify(to)) return false;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const uid = shiftId(from?.uid ?? null, to?.uid ?? null, st.uid);
    const gid = shiftId(from?.gid ?? null, to?.gid ?? null, st.gid);
    if (uid !== st.uid || gid !== st.gid) {
      await lchown(p, uid, gid);
      // chown clears set-user-ID and set-group-ID on a file, also for root: they are the container's.
      if (st.isFile() && st.mode & 0o6000) await chmod(p, st.mode & 0o7777);
    }
    if (!st.isDirectory()) return;
    for (const name of await readdir(p)) await walk(path.join(p, name));
  };
  await walk(upper);
  return true;
}

/** The host uid and gid that are root inside the namespace. */
export function rootPair(r: Remap): { uid: number; gid: number } {
  const uid = r.uidMappings.find((m) => m.containerID === 0)!.hostID;
  const gid = r.gidMappings.find((m) => m.containerID === 0)!.hostID;
  return { uid, gid };
}

/** uid_map / gid_map text ("inside outside count" a line). */
export function mapText(ranges: IdRange[]): string {
  return ranges.map((r) => `${r.containerID} ${r.hostID} ${r.size}\n`).join('');
}

/** A container id as it is on the host; one outside every range is the range's root (never host root). */
export function toHost(ranges: IdRange[], id: number): number {
  for (const r of ranges) if (id >= r.containerID && id < r.containerID + r.size) return r.hostID + id - r.containerID;
  return ranges.find((r) => r.containerID === 0)?.hostID ?? ranges[0].hostID;
}

/** An archive's owners for a remapped container's files: ids of its range back to the container's own,
 *  any other (an image layer's root, seen without the idmap) as it is. */
export function archiveIds(r: Remap): { uid: (id: number) => number; gid: (id: number) => number } {
  const back = (ranges: IdRange[], id: number) => {
    for (const m of ranges) if (id >= m.hostID && id < m.hostID + m.size) return m.containerID + id - m.hostID;
    return id;
  };
  return { uid: (id) => back(r.uidMappings, id), gid: (id) => back(r.gidMappings, id) };
}

/** A host id (uid or gid) as the container sees it, or 65534 (the kernel's overflow id) when unmapped. */
export function toContainer(ranges: IdRange[], hostId: number): number {
  for (const r of ranges) if (hostId >= r.hostID && hostId < r.hostID + r.size) return r.containerID + hostId - r.hostID;
  return 65534;
}

const DEFAULT_USER = 'dockremap';
/** dockerd's: the first range starts here and is this large. */
const FIRST_ID = 100000;
const RANGE_SIZE = 65536;

/** Where /etc lives: tests point BERTH_USERNS_ROOT at a directory of their own, so that making
 *  `dockremap` touches its etc/passwd and etc/subuid (useradd --prefix) and not the machine's. */
function etcRoot(): string {
  return process.env.BERTH_USERNS_ROOT || '/';
}

export class RemapError extends Error {}

/** Entries of a passwd or group file: name → numeric id. */
export function parseIdFile(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] && /^\d+$/.test(f[2])) out.set(f[0], Number(f[2]));
  }
  return out;
}

/** The ranges of /etc/subuid or /etc/subgid text that belong to `name` or to its number `id`, in file
 *  order, laid out one after another from container id 0 (as dockerd does with several ranges). */
export function rangesFor(text: string, name: string, id: number | undefined): IdRange[] {
  const out: IdRange[] = [];
  let next = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(':');
    if (f.length !== 3 || !/^\d+$/.test(f[1]) || !/^\d+$/.test(f[2])) continue;
    if (f[0] !== name && (id === undefined || f[0] !== String(id))) continue;
    const size = Number(f[2]);
    if (size <= 0) continue;
    out.push({ containerID: next, hostID: Number(f[1]), size });
    next += size;
  }
  return out;
}

/** The first RANGE_SIZE ids from FIRST_ID on that no range of `text` overlaps. */
export function freeRange(text: string): number {
  const taken = text.split('\n').map((l) => l.trim().split(':')).filter((f) => f.length === 3 && /^\d+$/.test(f[1]) && /^\d+$/.test(f[2]))
    .map((f) => ({ start: Number(f[1]), end: Number(f[1]) + Number(f[2]) })).sort((a, b) => a.start - b.start);
  let start = FIRST_ID;
  for (const t of taken) if (t.start < start + RANGE_SIZE && t.end > start) start = t.end;
  return start;
}

async function readOrEmpty(p: string): Promise<string> {
  try {
    return await readFile(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

/** `default`: the user dockremap, created (a system user with its own group, no home, no shell) with a
 *  range in /etc/subuid and /etc/subgid when it has none, as dockerd does on its first start. */
async function ensureDefaultUser(root: string): Promise<void> {
  const etc = path.join(root, 'etc');
  const users = parseIdFile(await readOrEmpty(path.join(etc, 'passwd')));
  if (!users.has(DEFAULT_USER)) {
    const prefix = root === '/' ? [] : ['--prefix', root];
    try {
      await run('useradd', [...prefix, '--system', '--user-group', '--no-create-home', '--shell', '/bin/false', DEFAULT_USER]);
    } catch (e) {
      throw new RemapError(`couldn't create the default "${DEFAULT_USER}" user for userns-remap: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
    }
  }
  for (const file of ['subuid', 'subgid']) {
    const p = path.join(etc, file);
    const text = await readOrEmpty(p);
    if (rangesFor(text, DEFAULT_USER, undefined).length > 0) continue;
    const start = freeRange(text);
    await appendFile(p, `${text && !text.endsWith('\n') ? '\n' : ''}${DEFAULT_USER}:${start}:${RANGE_SIZE}\n`);
  }
}

/** Resolves the daemon's `userns-remap` setting to its id ranges; a RemapError says what is missing. */
export async function resolveRemap(setting: string): Promise<Remap> {
  const root = etcRoot();
  const etc = path.join(root, 'etc');
  if (setting === 'default') await ensureDefaultUser(root);
  const [userPart, groupPart] = setting === 'default' ? [DEFAULT_USER, DEFAULT_USER] : setting.split(':', 2);
  if (!userPart) throw new RemapError(`invalid userns-remap ${JSON.stringify(setting)}: use default, user, user:group, uid or uid:gid`);
  const users = parseIdFile(await readOrEmpty(path.join(etc, 'passwd')));
  const groups = parseIdFile(await readOrEmpty(path.join(etc, 'group')));
  // A number stands for itself and, when one exists, the name of that id (subuid may list either).
  const named = (ids: Map<string, number>, v: string): { name: string; id: number | undefined } => {
    if (/^\d+$/.test(v)) {
      const id = Number(v);
      for (const [n, i] of ids) if (i === id) return { name: n, id };
      return { name: v, id };
    }
    if (!ids.has(v)) return { name: '', id: undefined };
    return { name: v, id: ids.get(v) };
  };
  const u = named(users, userPart);
  if (!u.name) throw new RemapError(`error during uid lookup for "${userPart}": no such user`);
  // Without a group, the user's name is the group's (dockerd's rule).
  const g = groupPart ? named(groups, groupPart) : named(groups, u.name).name ? named(groups, u.name) : { name: u.name, id: u.id };
  if (!g.name) throw new RemapError(`error during gid lookup for "${groupPart}": no such group`);
  const uidMappings = rangesFor(await readOrEmpty(path.join(etc, 'subuid')), u.name, u.id);
  const gidMappings = rangesFor(await readOrEmpty(path.join(etc, 'subgid')), g.name, g.id);
  if (uidMappings.length === 0) throw new RemapError(`no subuid ranges found for user "${u.name}" in ${path.join(etc, 'subuid')}`);
  if (gidMappings.length === 0) throw new RemapError(`no subgid ranges found for group "${g.name}" in ${path.join(etc, 'subgid')}`);
  return { setting, user: u.name, group: g.name, uidMappings, gidMappings };
}

/** Checks at berthd's start that this kernel and file system make idmapped overlays (Linux 5.19 with a
 *  file system that supports idmapped mounts: ext4, xfs, btrfs, tmpfs from 6.3 …). `scratch` is an
 *  absolute path in the data root, created and removed. */
export async function probeRemap(r: Remap, scratch: string): Promise<void> {
  try {
    await native.probeIdmappedOverlay(scratch, mapText(r.uidMappings), mapText(r.gidMappings), rootPair(r).uid);
  } catch (e) {
    throw new RemapError(`userns-remap needs overlayfs over idmapped mounts (Linux 5.19 and a data root on a file system with idmapped mounts, such as ext4, xfs or btrfs), which this host cannot make: ${(e as Error).message}`);
  }
}

/** Gives `p` to the namespace's root (a container's upper dir, its /etc files, a new volume). */
export async function chownToRoot(r: Remap, p: string): Promise<void> {
  const { uid, gid } = rootPair(r);
  await chown(p, uid, gid);
}
