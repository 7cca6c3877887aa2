// A container's devices, as Docker gives them: the device cgroup allows only the few nodes every container
// has (null, zero, full, random, urandom, tty, console, ptmx, the pty slaves, tun) plus creating nodes
// (mknod) of any kind, and what the container was given with --device (nodes made in its /dev, the access
// asked for) and --device-cgroup-rule; --privileged gets every host device and every access. Without the
// cgroup, CAP_MKNOD would let any container read the host's disks.
// Worked out at every start, since host devices come and go.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BigIntStats } from 'node:fs';
import { invalid } from '../errors/errors';
import type { ContainerRecord } from './model';

/** An OCI linux.devices entry: a node the shim makes in the container's /dev. */
export interface SpecDevice { path: string; type: 'c' | 'b'; major: number; minor: number; fileMode: number; uid: number; gid: number }

export interface ContainerDevices {
  /** Nodes to make, beyond the defaults the shim always makes. */
  nodes: SpecDevice[];
  /** Device cgroup rules in order, later ones winning ("allow c 1:3 rwm"). */
  rules: string[];
}

/** Docker's default device cgroup: nothing but these. */
export const DEFAULT_DEVICE_RULES = [
  'deny a *:* rwm',
  'allow c *:* m', 'allow b *:* m',
  'allow c 1:3 rwm', 'allow c 1:5 rwm', 'allow c 1:7 rwm', 'allow c 1:8 rwm', 'allow c 1:9 rwm',
  'allow c 5:0 rwm', 'allow c 5:1 rwm', 'allow c 5:2 rwm', 'allow c 136:* rwm', 'allow c 10:200 rwm',
];

/** What --privileged does not bring from the host's /dev (mounts of their own, runtime state). */
const SKIP_UNDER_DEV = new Set(['pts', 'shm', 'mqueue', 'fd', '.lxc', '.lxd-mounts', '.udev']);

function split(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

function nodeOf(st: BigIntStats, inContainer: string): SpecDevice | undefined {
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  return { path: inContainer, type, ...split(st.rdev), fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
}

/** Every device node under `dir` (following the top path's symlink, not those below). */
async function nodesUnder(dir: string, inContainer: string, skip?: Set<string>): Promise<SpecDevice[]> {
  const out: SpecDevice[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (skip?.has(name)) continue;
    const p = path.join(dir, name);
    let st: BigIntStats;
    try {
      st = await stat(p, { bigint: true });
    } catch {
      continue;
    }
    if (st.isDirectory()) out.push(...(await nodesUnder(p, path.posix.join(inContainer, name))));
    else {
      const n = nodeOf(st, path.posix.join(inContainer, name));
      if (n) out.push(n);
    }
  }
  return out;
}

/** The access string of --device's third part: a non-empty subset of "rwm". */
function checkPermissions(perms: string, spec: string): string {
  if (!/^[rwm]{1,3}$/.test(perms) || new Set(perms).size !== perms.length) throw invalid(`invalid device mode: ${perms} in ${spec}`);
  return perms;
}

/** --device-cgroup-rule: "c 1:3 rwm", "b *:* m", "a". */
function parseCgroupRule(rule: string): string {
  const m = /^([acb]) (\*|\d+):(\*|\d+) ([rwm]{1,3})$/.exec(rule.trim());
  if (rule.trim() === 'a') return 'allow a *:* rwm';
  if (!m) throw invalid(`invalid device cgroup rule format: '${rule}'`);
  return `allow ${m[1]} ${m[2]}:${m[3]} ${m[4]}`;
}

export async function containerDevices(hc: ContainerRecord['hostConfig']): Promise<ContainerDevices> {
  if (hc.Privileged) {
    return { nodes: await nodesUnder('/dev', '/dev', SKIP_UNDER_DEV), rules: ['allow a *:* rwm'] };
  }
  const nodes: SpecDevice[] = [];
  const rules = [...DEFAULT_DEVICE_RULES];
  for (const d of (hc.Devices ?? []) as Array<{ PathOnHost?: string; PathInContainer?: string; CgroupPermissions?: string }>) {
    const onHost = d.PathOnHost ?? '';
    const inContainer = d.PathInContainer || onHost;
    const perms = checkPermissions(d.CgroupPermissions || 'rwm', `${onHost}:${inContainer}`);
    const gathering = (why: string) => invalid(`error gathering device information while adding custom device "${onHost}": ${why}`);
    let st: BigIntStats;
    try {
      st = await stat(onHost, { bigint: true });
    } catch (e) {
      throw gathering((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message);
    }
    const found = st.isDirectory() ? await nodesUnder(onHost, inContainer) : [nodeOf(st, inContainer)].filter((n): n is SpecDevice => !!n);
    if (!st.isDirectory() && found.length === 0) throw gathering('not a device node');
    for (const n of found) {
      nodes.push(n);
      rules.push(`allow ${n.type} ${n.major}:${n.minor} ${perms}`);
    }
  }
  for (const r of (hc.DeviceCgroupRules ?? []) as string[]) rules.push(parseCgroupRule(r));
  return { nodes, rules };
}
