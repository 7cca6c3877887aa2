// Choosing one image from a manifest list / OCI index: os and architecture must match, the variant too when
// one is asked for (arm64 images say v8, which is also what an arm64 host wants when none is given).
import { invalid } from '../errors/errors';
import { goArch } from '../lib/host';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export function hostPlatform(): Platform {
  const arch = goArch();
  return arch === 'arm64' ? { os: 'linux', architecture: 'arm64', variant: 'v8' } : { os: 'linux', architecture: arch };
}

/** `linux`, `linux/amd64`, `linux/arm64/v8`, `amd64` (os defaults to linux). Empty → the host's. */
export function parsePlatform(s: string | undefined): Platform {
  if (!s) return hostPlatform();
  const parts = s.trim().toLowerCase().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) throw invalid(`"${s}": unknown operating system or architecture: invalid argument`);
  let [os, arch, variant] = parts;
  if (parts.length === 1) {
    if (os === 'linux') return hostPlatform();
    [os, arch] = ['linux', parts[0]];
  }
  if (os !== 'linux') throw invalid(`"${s}": unknown operating system or architecture: invalid argument`);
  // Docker's normalisation of architecture names.
  const alias: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm' };
  arch = alias[arch] ?? arch;
  if (arch === 'arm64' && !variant) variant = 'v8';
  return variant ? { os, architecture: arch, variant } : { os, architecture: arch };
}

export const platformString = (p: Platform) => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

export interface IndexEntry {
  digest: string;
  mediaType?: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

/** The entry of a manifest list that fits `want`, or undefined. Attestation manifests (os "unknown") never fit. */
export function choosePlatform(entries: IndexEntry[], want: Platform): IndexEntry | undefined {
  const fits = entries.filter((e) => {
    const p = e.platform;
    if (!p || p.os !== want.os || p.architecture !== want.architecture) return false;
    if (e.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return false;
    if (!want.variant) return true;
    const v = p.variant || (p.architecture === 'arm64' ? 'v8' : '');
    return v === want.variant;
  });
  if (fits.length === 0) return undefined;
  // Without a variant asked for, an entry without one (or the newest variant) is the better fit.
  fits.sort((a, b) => (a.platform?.variant ?? '').localeCompare(b.platform?.variant ?? '') * (want.variant ? 1 : -1));
  return want.variant ? fits[0] : fits.find((e) => !e.platform?.variant) ?? fits[0];
}
