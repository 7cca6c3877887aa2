// What create and update accept, checked before anything is made: the rules and the words are Docker's
// (its container settings and resource checks), so that a bad request gets the 400 a Docker client expects
// instead of a container that cannot start, or a cgroup write that fails half-way through an update.
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { invalid } from '../errors/errors';
import { KNOWN_CAPS, allHostCaps } from './spec';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** Docker's smallest memory limit (and reservation): a container needs some room to start at all. */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** The rlimits a container may set (Docker's names; `as` is left out, as Docker leaves it out). */
const ULIMIT_NAMES = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss',
  'rtprio', 'rttime', 'sigpending', 'stack']);

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

/** A port number as Docker parses it: decimal digits only, 1 to 65535. */
function portNumber(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/** `80`, `80/udp`, and in ExposedPorts also a range `8000-8010/tcp`. */
function checkPortKey(key: string, rangeOk: boolean): void {
  const [num, proto, extra] = key.split('/');
  if (extra !== undefined) throw invalid(`invalid port specification: ${JSON.stringify(key)}`);
  const [lo, hi, more] = (num ?? '').split('-');
  const a = portNumber(lo ?? '');
  const b = hi === undefined ? a : portNumber(hi);
  if (a === null || b === null || more !== undefined || (hi !== undefined && !rangeOk) || b < a) {
    throw invalid(`invalid port specification: ${JSON.stringify(num)}`);
  }
  if (proto !== undefined && proto !== '' && !PROTOCOLS.has(proto.toLowerCase())) throw invalid(`invalid proto: ${proto}`);
}

/** ExposedPorts and PortBindings: container ports, protocols, host ports (one, a range, or none for any
 *  free port) and host addresses. */
export function checkPorts(exposed: unknown, bindings: unknown): void {
  if (exposed !== undefined && exposed !== null) {
    if (typeof exposed !== 'object' || Array.isArray(exposed)) throw invalid('invalid ExposedPorts: expected an object keyed by port');
    for (const k of Object.keys(exposed)) checkPortKey(k, true);
  }
  if (bindings === undefined || bindings === null) return;
  if (typeof bindings !== 'object' || Array.isArray(bindings)) throw invalid('invalid PortBindings: expected an object keyed by port');
  for (const [k, list] of Object.entries(bindings as Record<string, unknown>)) {
    // A container port range is refused here as Docker refuses it: the CLI sends one key per port.
    checkPortKey(k, false);
    if (list === null) continue;
    if (!Array.isArray(list)) throw invalid(`invalid PortBindings for ${k}: expected a list of bindings`);
    for (const pb of list as any[]) {
      if (!pb || typeof pb !== 'object' || Array.isArray(pb)) throw invalid(`invalid PortBindings for ${k}: expected a list of bindings`);
      const hp = pb.HostPort ?? '';
      if (typeof hp !== 'string') throw invalid(`invalid port specification: ${JSON.stringify(String(hp))}`);
      // "" and "0" ask for any free port.
      if (hp !== '' && hp !== '0') {
        const [lo, hi, more] = hp.split('-');
        const a = portNumber(lo);
        const b = hi === undefined ? a : portNumber(hi);
        if (a === null || b === null || more !== undefined || b < a) throw invalid(`invalid port specification: ${JSON.stringify(hp)}`);
      }
      const ip = pb.HostIp ?? '';
      if (typeof ip !== 'string' || (ip !== '' && !isIp(ip))) throw invalid(`invalid IP address: ${String(ip)}`);
    }
  }
}

function isIp(s: string): boolean {
  const v = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  return isIP(v) !== 0;
}

/** CapAdd/CapDrop as Docker normalises them: any case, with or without CAP_, or ALL; a capability the
 *  kernel knows but this host does not give berthd is refused too (no container could get it). */
export function checkCaps(add: unknown, drop: unknown): void {
  for (const [field, list] of [['CapAdd', add], ['CapDrop', drop]] as const) {
    if (list === undefined || list === null) continue;
    for (const raw of list as string[]) {
      let c = String(raw).toUpperCase();
      if (c === 'ALL') continue;
      if (!c.startsWith('CAP_')) c = `CAP_${c}`;
      if (!KNOWN_CAPS.includes(c)) throw invalid(`invalid ${field}: unknown capability: ${JSON.stringify(c)}`);
      if (!allHostCaps().includes(c)) {
        throw invalid(`invalid ${field}: capability not supported by your kernel or not available in the current environment: ${JSON.stringify(c)}`);
      }
    }
  }
}

/** Ulimits: Docker's names, soft at most hard (a hard limit of -1 is unlimited). */
export function checkUlimits(ulimits: unknown): void {
  if (ulimits === undefined || ulimits === null) return;
  const seen = new Set<string>();
  for (const u of ulimits as Array<{ Name: string; Soft?: number; Hard?: number }>) {
    if (!ULIMIT_NAMES.has(u.Name)) throw invalid(`invalid ulimit type: ${u.Name}`);
    if (seen.has(u.Name)) throw invalid(`duplicate ulimit: ${u.Name}`);
    seen.add(u.Name);
    const soft = u.Soft ?? 0;
    const hard = u.Hard ?? 0;
    if (hard !== -1) {
      if (soft === -1) throw invalid(`ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: ${hard}`);
      if (soft > hard) throw invalid(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
    }
  }
}

/** The restart policy: Docker's names; a retry count only with on-failure, and never negative. */
export function checkRestartPolicy(rp: any): void {
  if (!rp || typeof rp !== 'object') return;
  const name = rp.Name ?? '';
  const max = rp.MaximumRetryCount ?? 0;
  switch (name) {
    case 'always':
    case 'unless-stopped':
    case 'no':
      if (max !== 0) throw invalid(`invalid restart policy: maximum retry count can only be used with 'on-failure'${max < 0 ? ' and cannot be negative' : ''}`);
      return;
    case 'on-failure':
      if (max < 0) throw invalid('invalid restart policy: maximum retry count cannot be negative');
      return;
    case '':
      // Docker before 25 stored an empty name; it is taken with any count, as Docker takes it.
      return;
    default:
      throw invalid(`invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  }
}

/** The CPUs berthd's own process may run on: what Go's runtime.NumCPU counts, and so Docker. */
export function hostCpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

function readFirst(paths: string[], fallback: string): string {
  for (const p of paths) {
    try {
      const v = readFileSync(p, 'utf8').trim();
      if (v) return v;
    } catch { /* next */ }
  }
  return fallback;
}

/** The CPUs and memory nodes the cgroup hierarchy lets containers use (the root cpuset, as Docker reads it). */
export function hostCpuset(): { cpus: string; mems: string } {
  return {
    cpus: readFirst(['/sys/fs/cgroup/cpuset/cpuset.cpus', '/sys/fs/cgroup/cpuset.cpus.effective', '/sys/devices/system/cpu/online'], `0-${os.cpus().length - 1}`),
    mems: readFirst(['/sys/fs/cgroup/cpuset/cpuset.mems', '/sys/fs/cgroup/cpuset.mems.effective', '/sys/devices/system/node/online'], '0'),
  };
}

/** Docker's list syntax (`0-2,4`); `max` bounds the numbers, so a huge range cannot make a huge set. */
export function parseCpuList(val: string, max: number): Set<number> | string {
  const out = new Set<number>();
  if (val === '') return out;
  const bad = `invalid format: ${val}`;
  for (const r of val.split(',')) {
    const [a, b, more] = r.split('-');
    if (more !== undefined || !/^\d+$/.test(a) || (b !== undefined && !/^\d+$/.test(b))) return bad;
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (hi < lo) return bad;
    if (hi > max) return `value of out range, maximum is ${max}`;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}

function checkCpuset(requested: unknown, available: string, what: 'cpus' | 'mems'): void {
  if (typeof requested !== 'string' || requested === '') return;
  const have = parseCpuList(available, Number.MAX_SAFE_INTEGER);
  const haveSet = typeof have === 'string' ? new Set<number>() : have;
  const max = Math.max(8192, ...haveSet);
  const want = parseCpuList(requested, max);
  if (typeof want === 'string') throw invalid(`Invalid value ${requested} for cpuset ${what}: ${want}`);
  for (const n of want) {
    if (!haveSet.has(n)) {
      throw invalid(what === 'cpus'
        ? `Requested CPUs are not available - requested ${requested}, available: ${available}`
        : `Requested memory nodes are not available - requested ${requested}, available: ${available}`);
    }
  }
}

/** The resources of a create body, or of an update body on its own (`update`: a swap limit may come
 *  without a memory limit, which the container already has). */
export function checkResources(r: any, update: boolean): void {
  const n = (k: string): number => (typeof r[k] === 'number' ? r[k] : 0);
  const memory = n('Memory');
  const swap = n('MemorySwap');
  const reservation = n('MemoryReservation');
  if (memory !== 0 && memory < MIN_MEMORY) throw invalid('Minimum memory limit allowed is 6MB');
  if (memory > 0 && swap > 0 && swap < memory) throw invalid('Minimum memoryswap limit should be larger than memory limit, see usage');
  if (memory === 0 && swap > 0 && !update) throw invalid('You should always set the Memory limit when using Memoryswap limit, see usage');
  const swappiness = r.MemorySwappiness;
  // -1 is what older clients send for "not set".
  if (typeof swappiness === 'number' && swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    throw invalid(`Invalid value: ${swappiness}, valid memory swappiness range is 0-100`);
  }
  if (reservation > 0 && reservation < MIN_MEMORY) throw invalid('Minimum memory reservation allowed is 6MB');
  if (memory > 0 && reservation > 0 && memory < reservation) throw invalid('Minimum memory limit can not be less than memory reservation limit, see usage');

  const nano = n('NanoCpus');
  if (nano > 0 && n('CpuPeriod') > 0) throw invalid('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano > 0 && n('CpuQuota') > 0) throw invalid('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (nano !== 0) {
    const cpus = hostCpuCount();
    if (nano < 0 || nano > cpus * 1e9) throw invalid(`range of CPUs is from 0.01 to ${cpus}.00, as there are only ${cpus} CPUs available`);
  }
  const period = n('CpuPeriod');
  if (period !== 0 && (period < 1000 || period > 1_000_000)) throw invalid('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  const quota = n('CpuQuota');
  if (quota > 0 && quota < 1000) throw invalid('CPU cfs quota can not be less than 1ms (i.e. 1000)');

  const set = hostCpuset();
  checkCpuset(r.CpusetCpus, set.cpus, 'cpus');
  checkCpuset(r.CpusetMems, set.mems, 'mems');

  const weight = n('BlkioWeight');
  if (weight > 0 && (weight < 10 || weight > 1000)) throw invalid('Range of blkio weight is from 10 to 1000');
  if (n('IOMaximumBandwidth') !== 0 || n('IOMaximumIOps') !== 0) {
    throw invalid('Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps');
  }
}

/** Everything of a create's HostConfig (and Config) that needs no lookup of other objects. */
export function checkCreate(body: any): void {
  if (typeof body.WorkingDir === 'string' && body.WorkingDir !== '' && !body.WorkingDir.startsWith('/')) {
    throw invalid(`the working directory '${body.WorkingDir}' is invalid, it needs to be an absolute path`);
  }
  const hc = body.HostConfig ?? {};
  checkPorts(body.ExposedPorts, hc.PortBindings);
  checkRestartPolicy(hc.RestartPolicy);
  checkCaps(hc.CapAdd, hc.CapDrop);
  if (hc.Isolation !== undefined && hc.Isolation !== null && hc.Isolation !== '' && hc.Isolation !== 'default') {
    throw invalid(`invalid isolation '${hc.Isolation}' on linux`);
  }
  for (const k of Object.keys(hc.Annotations ?? {})) {
    if (k === '') throw invalid('invalid Annotations: the empty string is not permitted as an annotation key');
  }
  checkResources(hc, false);
  checkUlimits(hc.Ulimits);
  if (typeof hc.ShmSize === 'number' && hc.ShmSize < 0) throw invalid('SHM size can not be less than 0');
  const oom = hc.OomScoreAdj;
  if (typeof oom === 'number' && (oom < -1000 || oom > 1000)) throw invalid(`Invalid value ${oom}, range for oom score adj is [-1000, 1000]`);
}
