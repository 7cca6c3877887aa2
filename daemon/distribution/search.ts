// docker search: the registry's v1 search API (Docker Hub's index, or the registry named in the term:
// `127.0.0.1:5000/busy` asks that registry). Registries that do not offer it answer 404, which becomes
// Docker's error; an unreachable index fails within the connect timeout.
import { request, readBody } from './http';
import { RegistryError, type Registries } from './registry';
import { basicAuthorization, type AuthConfig } from './auth';

export interface SearchResult {
  star_count: number;
  is_official: boolean;
  name: string;
  is_automated: boolean;
  description: string;
}

/** `term` split into the index to ask and the query: a first component with a dot, a colon or
 *  `localhost` names a registry. */
export function searchTarget(term: string): { host: string; query: string } {
  const i = term.indexOf('/');
  const first = i > 0 ? term.slice(0, i) : '';
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost') && first !== 'docker.io' && first !== 'index.docker.io') {
    return { host: first, query: term.slice(i + 1) };
  }
  return { host: 'index.docker.io', query: first === 'docker.io' || first === 'index.docker.io' ? term.slice(i + 1) : term };
}

export async function search(registries: Registries, term: string, limit: number, auth: AuthConfig): Promise<SearchResult[]> {
  const { host, query } = searchTarget(term);
  const insecure = registries.isInsecure(host);
  const bases = insecure ? [`https://${host}`, `http://${host}`] : [`https://${host}`];
  const headers: Record<string, string> = {};
  if (auth.username && auth.password) headers.Authorization = basicAuthorization(auth.username, auth.password);
  let lastErr: unknown;
  for (const base of bases) {
    const url = `${base}/v1/search?q=${encodeURIComponent(query)}&n=${limit}`;
    try {
      const res = await request({ method: 'GET', url, headers, insecure, connectTimeout: 10_000, idleTimeout: 20_000 });
      const body = await readBody(res, 8 * 1024 * 1024);
      if (res.status !== 200) throw new RegistryError('system', `Unexpected status code ${res.status}`);
      const parsed = JSON.parse(body.toString('utf8')) as { results?: Array<Partial<SearchResult>> };
      return (parsed.results ?? []).map((r) => ({
        star_count: Number(r.star_count ?? 0), is_official: !!r.is_official, name: String(r.name ?? ''),
        is_automated: !!r.is_automated, description: String(r.description ?? ''),
      }));
    } catch (e) {
      lastErr = e instanceof RegistryError ? e : new RegistryError('system', `Get "${url}": ${(e as Error).message}`);
    }
  }
  throw lastErr;
}
