// The container's seccomp profile (OCI linux.seccomp). Profiles are written in Docker's format (the default
// one in seccomp-default.ts, custom ones sent by `--security-opt seccomp=<json>`), whose rules may hold only
// for some capabilities, architectures or kernels (`includes`/`excludes`); resolveProfile turns one into
// the OCI form for a given container as dockerd does, and berth-shim compiles that (cached per profile).
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import { invalid } from '../errors/errors';
import { DEFAULT_PROFILE } from './seccomp-default';

interface Arg { index: number; value: number; valueTwo?: number; op: string }

interface Filter { caps?: string[] | null; arches?: string[] | null; minKernel?: string | null }

/** A rule in Docker's format. */
export interface DockerRule {
  name?: string;
  names?: string[] | null;
  action: string;
  errnoRet?: number | null;
  args?: Arg[] | null;
  comment?: string;
  includes?: Filter | null;
  excludes?: Filter | null;
}

/** A profile in Docker's format (moby's seccomp.Seccomp). */
export interface DockerSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number | null;
  architectures?: string[] | null;
  archMap?: Array<{ architecture: string; subArchitectures: string[] | null }> | null;
  flags?: string[] | null;
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: DockerRule[] | null;
}

interface Rule { names: string[]; action: string; errnoRet?: number; args?: Arg[] }

/** OCI linux.seccomp, as berth-shim reads it. */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  syscalls: Rule[];
}

/** Node's process.arch → the names Docker's profiles use for architectures (libseccomp's). */
const NATIVE_ARCH: Record<string, string> = {
  x64: 'amd64', ia32: 'x86', arm: 'arm', arm64: 'arm64', s390x: 's390x', s390: 's390', ppc64: 'ppc64le',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle',
};
/** …and to the SCMP_ARCH_* name of the archMap entry that applies. */
const SCMP_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', x86: 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64',
  s390x: 'SCMP_ARCH_S390X', s390: 'SCMP_ARCH_S390', ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64',
  loong64: 'SCMP_ARCH_LOONGARCH64', mipsle: 'SCMP_ARCH_MIPSEL',
};

export interface Host { arch: string; kernel: [number, number, number] }

function parseKernel(v: string, what: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  if (!m) throw invalid(`${what}: invalid kernel version: ${JSON.stringify(v)}`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

let hostInfo: Host | undefined;
export function thisHost(): Host {
  hostInfo ??= { arch: NATIVE_ARCH[process.arch] ?? process.arch, kernel: parseKernel(os.release(), 'host kernel') };
  return hostInfo;
}

function kernelAtLeast(host: Host, min: string): boolean {
  const want = parseKernel(min, 'Decoding seccomp profile failed');
  for (let i = 0; i < 3; i++) if (host.kernel[i] !== want[i]) return host.kernel[i] > want[i];
  return true;
}

/**
 * A Docker-format profile for a container whose bounding set is `caps`, on `host`: the archMap entry of
 * the host's architecture gives the architectures; a rule is kept when it has every capability, the
 * architecture and the kernel its `includes` ask for, and none of what its `excludes` name (dockerd's rules).
 */
export function resolveProfile(p: DockerSeccomp, caps: string[], host: Host = thisHost()): SeccompProfile | undefined {
  const rules = p.syscalls ?? [];
  // No default action and no rules: no filter at all (as dockerd reads such a profile).
  if (!p.defaultAction && rules.length === 0) return undefined;
  if (p.architectures?.length && p.archMap?.length) {
    throw invalid("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  const out: SeccompProfile = { defaultAction: p.defaultAction, syscalls: [] };
  if (typeof p.defaultErrnoRet === 'number') out.defaultErrnoRet = p.defaultErrnoRet;
  const arches = [...(p.architectures ?? [])];
  const own = p.archMap?.find((a) => a.architecture === SCMP_ARCH[host.arch]);
  if (own) arches.push(own.architecture, ...(own.subArchitectures ?? []));
  if (arches.length) out.architectures = arches;
  if (p.flags?.length) out.flags = [...p.flags];
  const has = (c: string) => caps.includes(c);
  for (const r of rules) {
    if (r.name && r.names?.length) {
      throw invalid("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'");
    }
    const ex = r.excludes;
    if (ex) {
      if (ex.arches?.includes(host.arch)) continue;
      if (ex.caps?.some(has)) continue;
      if (ex.minKernel && kernelAtLeast(host, ex.minKernel)) continue;
    }
    const inc = r.includes;
    if (inc) {
      if (inc.arches?.length && !inc.arches.includes(host.arch)) continue;
      if (inc.caps?.length && !inc.caps.every(has)) continue;
      if (inc.minKernel && !kernelAtLeast(host, inc.minKernel)) continue;
    }
    const rule: Rule = { names: r.name ? [r.name] : [...(r.names ?? [])], action: r.action };
    if (typeof r.errnoRet === 'number') rule.errnoRet = r.errnoRet;
    if (r.args?.length) rule.args = r.args.map((a) => ({ index: a.index, value: a.value, ...(a.valueTwo ? { valueTwo: a.valueTwo } : {}), op: a.op }));
    out.syscalls.push(rule);
  }
  return out;
}

/** Docker's default profile for a bounding set, resolved once per set. */
const defaults = new Map<string, SeccompProfile>();
export function defaultProfile(caps: string[]): SeccompProfile {
  const key = [...caps].sort().join(',');
  let p = defaults.get(key);
  if (!p) {
    p = resolveProfile(DEFAULT_PROFILE, caps)!;
    if (defaults.size > 64) defaults.clear();
    defaults.set(key, p);
  }
  return p;
}

function parseDockerProfile(text: string): DockerSeccomp {
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw invalid(`Decoding seccomp profile failed: ${(e as Error).message}`);
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) throw invalid('Decoding seccomp profile failed: the profile must be a JSON object');
  const prof = p as DockerSeccomp;
  if (prof.syscalls != null && !Array.isArray(prof.syscalls)) throw invalid('Decoding seccomp profile failed: syscalls must be an array');
  for (const r of prof.syscalls ?? []) {
    if (!r || typeof r !== 'object' || typeof r.action !== 'string') throw invalid('Decoding seccomp profile failed: every rule needs an action');
  }
  return prof;
}

/**
 * The profile for a container, or undefined for none. As dockerd: seccomp=unconfined and --privileged run
 * without a filter (a custom profile included), seccomp=builtin or no option take the default profile.
 */
export function seccompFor(securityOpt: string[] | null, privileged: boolean, caps: string[]): SeccompProfile | undefined {
  let custom: string | undefined;
  for (const o of securityOpt ?? []) {
    const m = /^seccomp[=:](.*)$/s.exec(o);
    if (m) custom = m[1];
  }
  if (custom === 'unconfined' || privileged) return undefined;
  if (custom !== undefined && custom !== 'builtin') return resolveProfile(parseDockerProfile(custom), caps);
  return defaultProfile(caps);
}

/** The file under `dir` that keeps the compiled filter of a profile (the shim checks what it reads). */
export function seccompCachePath(dir: string, p: SeccompProfile): string {
  return `${dir}/${crypto.createHash('sha256').update(JSON.stringify(p)).digest('hex').slice(0, 32)}.bpf`;
}
