// Finding a name's manifest in a registry, shared by pull and distribution inspect: which endpoints to ask,
// in which order, and what a failure of each means.
import { createHash } from 'node:crypto';
import { invalid, notFound, systemError } from '../errors/errors';
import { familiarString, fullString, type NamedRef } from '../images/reference';
import type { AuthConfig } from './auth';
import { readBody } from './http';
import { MANIFEST_ACCEPT } from './manifest';
import { registryErrorText, RegistryError, type Registries, type Session } from './registry';

/** A manifest as the registry sent it: its bytes, its Content-Type and the digest of the bytes. */
export interface FetchedManifest { bytes: Buffer; contentType?: string; digest: string }

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** GET a manifest by tag or digest; 404 → Docker's "manifest for X not found". */
export async function fetchManifest(s: Session, refText: string, ref: string): Promise<FetchedManifest> {
  const res = await s.fetch('GET', `manifests/${ref}`, { headers: { Accept: MANIFEST_ACCEPT.join(', ') } });
  const bytes = await readBody(res, 8 * 1024 * 1024);
  if (res.status === 404) throw notFound(`manifest for ${refText} not found: ${registryErrorText(bytes, 404)}`);
  if (res.status !== 200) throw new RegistryError('system', `error fetching manifest for ${refText}: ${registryErrorText(bytes, res.status)}`);
  const digest = sha256(bytes);
  if (ref.startsWith('sha256:') && digest !== ref) throw invalid(`manifest verification failed for digest ${ref}`);
  return { bytes, contentType: res.headers['content-type'], digest };
}

/**
 * Walks the endpoints that may serve `named` for pulling (docker.io names: the mirrors first, then the
 * registry itself): opens a pull session, fetches the manifest `named` points at (its digest, else its tag,
 * else latest) and hands both to `use`, whose answer is returned. Anything failing at a mirror (unreachable,
 * no such image, a bad manifest, `use` itself) passes to the next endpoint; the registry itself answers for
 * real, and when it cannot be reached the error names the reference that could not be resolved.
 */
export async function withManifest<T>(registries: Registries, named: NamedRef, auth: AuthConfig,
  use: (s: Session, top: FetchedManifest, refText: string) => Promise<T>): Promise<T> {
  const refText = familiarString(named);
  let lastErr: unknown;
  for (const ep of registries.endpoints(named.domain, true)) {
    try {
      const s = await registries.open(ep, named.path, auth, ['pull']);
      const top = await fetchManifest(s, refText, named.digest ?? named.tag ?? 'latest');
      return await use(s, top, refText);
    } catch (e) {
      lastErr = e;
      if (!ep.mirror) {
        if (e instanceof RegistryError && e.unreachable) throw systemError(`failed to resolve reference "${fullString(named)}": ${e.message}`);
        throw e;
      }
    }
  }
  throw lastErr ?? systemError(`no endpoint for ${named.domain}`);
}
