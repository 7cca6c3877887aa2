// Facts about the host for /info and /version, read once at start.
import os from 'node:os';
import { readFileSync } from 'node:fs';

export interface HostInfo {
  kernel: string;
  os: string;
  osVersion: string;
  hostname: string;
  cpus: number;
  memTotal: number;
  arch: string;
}

function osRelease(): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line);
      if (m) out[m[1]] = m[3];
    }
    return out;
  } catch {
    return {};
  }
}

export function probeHost(): HostInfo {
  const rel = osRelease();
  return {
    kernel: os.release(),
    os: rel.PRETTY_NAME ?? 'Linux',
    osVersion: rel.VERSION_ID ?? '',
    hostname: os.hostname(),
    cpus: os.cpus().length,
    memTotal: os.totalmem(),
    arch: process.arch === 'x64' ? 'x86_64' : process.arch,
  };
}

/** Go's GOARCH name for this machine. */
export const goArch = () => (process.arch === 'x64' ? 'amd64' : process.arch);
