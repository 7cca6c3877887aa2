// Choosing one image from a manifest list / OCI index: os and architecture must match, the variant too when
// one is asked for (arm64 images say v8, which is also what an arm64 host wants when none is given).
import { invalid, notFound, type BerthError } from '../errors/errors';
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

/** The platform an API 1.48+ client names in a query (`platform={"os":"linux","architecture":"arm64"}`,
 *  repeated for `platforms`), or the plain `linux/arm64` form. */
export function queryPlatform(v: string): Platform {
  const t = v.trim();
  if (t.startsWith('{')) {
    let o: { os?: unknown; architecture?: unknown; variant?: unknown };
    try {
      o = JSON.parse(t);
    } catch {
      throw invalid(`invalid platform: ${v}`);
    }
    if (typeof o.os !== 'string' || typeof o.architecture !== 'string') throw invalid(`invalid platform: ${v}`);
    return parsePlatform([o.os, o.architecture, typeof o.variant === 'string' ? o.variant : ''].filter(Boolean).join('/'));
  }
  return parsePlatform(t);
}

/** Whether an image whose config says `os`/`architecture`/`variant` is of platform `want`. */
export function imageFits(cfg: { os?: string; architecture?: string; variant?: string }, want: Platform): boolean {
  const have = parsePlatform([cfg.os || 'linux', cfg.architecture || hostPlatform().architecture, cfg.variant ?? ''].filter(Boolean).join('/'));
  return have.os === want.os && have.architecture === want.architecture && (!want.variant || (have.variant ?? '') === want.variant);
}

/** Docker's error when a local image is not of the platform asked for. */
export function platformMismatch(ref: string, want: Platform, cfg: { os?: string; architecture?: string; variant?: string }): BerthError {
  const actual = [cfg.os || 'linux', cfg.architecture || '', cfg.variant || ''].filter(Boolean).join('/');
  return notFound(`image with reference ${ref} was found but does not match the specified platform: wanted ${platformString(want)}, actual: ${actual}`);
}
