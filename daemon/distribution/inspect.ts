// GET /distribution/{name}/json: what the registry holds for a name, without pulling it (docker-py's
// inspect_distribution, `docker manifest`-like tools). The answer is Docker's: the descriptor of the manifest
// the name points at (its media type, digest and size) and the platforms it is for: each entry's of a
// manifest list or OCI index, or, for a single image manifest, those of its config blob.
import { invalid } from '../errors/errors';
import { tagNameOnly, type NamedRef } from '../images/reference';
import type { AuthConfig } from './auth';
import { readBody } from './http';
import { parseManifest } from './manifest';
import { withManifest } from './resolve';
import { registryErrorText, RegistryError, type Registries } from './registry';

interface PlatformOut { architecture: string; os: string; variant?: string; 'os.version'?: string; 'os.features'?: string[] }

export interface DistributionInspect {
  Descriptor: { mediaType: string; digest: string; size: number };
  Platforms: PlatformOut[];
}

/** Docker's platform object: empty fields left out. */
function platformOf(p: { os?: string; architecture?: string; variant?: string; 'os.version'?: string; 'os.features'?: string[] }): PlatformOut {
  const out: PlatformOut = { architecture: p.architecture ?? '', os: p.os ?? '' };
  if (p.variant) out.variant = p.variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  if (p['os.features']?.length) out['os.features'] = p['os.features'];
  return out;
}

export async function inspectDistribution(registries: Registries, ref: NamedRef, auth: AuthConfig): Promise<DistributionInspect> {
  const named = ref.digest ? ref : tagNameOnly(ref);
  // docker.io names ask the mirrors first, as a pull does; only the registry itself answers for real.
  return withManifest(registries, named, auth, async (s, top) => {
    const m = parseManifest(top.bytes, top.contentType);
    let mediaType = (top.contentType ?? '').split(';')[0].trim();
    if (!mediaType || mediaType === 'application/json') {
      try {
        mediaType = JSON.parse(top.bytes.toString('utf8')).mediaType ?? mediaType;
      } catch { /* parseManifest already accepted it */ }
    }
    const Descriptor = { mediaType, digest: top.digest, size: top.bytes.length };
    if (m.kind === 'index') return { Descriptor, Platforms: m.entries.filter((e) => e.platform).map((e) => platformOf(e.platform!)) };
    const res = await s.fetch('GET', `blobs/${m.config.digest}`);
    const bytes = await readBody(res, 32 * 1024 * 1024);
    if (res.status !== 200) throw new RegistryError('system', `error fetching image configuration: ${registryErrorText(bytes, res.status)}`);
    let cfg: { os?: string; architecture?: string; variant?: string; 'os.version'?: string; 'os.features'?: string[] };
    try {
      cfg = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw invalid('invalid image configuration: not JSON');
    }
    return { Descriptor, Platforms: [platformOf(cfg)] };
  });
}
