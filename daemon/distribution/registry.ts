// Talking to one repository of one registry (the v2 protocol): which endpoint to use (mirrors for docker.io,
// TLS first and plain HTTP only where allowed), the ping that says how the registry wants to be
// authenticated, and the basic and bearer-token flows.
//
// Plain HTTP is allowed for 127.0.0.0/8, ::1, localhost and the daemon's `insecure-registries` (host[:port]
// or CIDR), as Docker allows it: TLS is tried first (certificates not checked for those), then http://.
import net from 'node:net';
import type { Logger } from 'pino';
import { BerthError, systemError } from '../errors/errors';
import { basicAuthorization, parseWwwAuthenticate, type AuthConfig, type Challenge } from './auth';
import { request, readBody, discard, cidrContains, NetworkError, type HttpRequest, type HttpResponse } from './http';

export const DOCKER_HUB_HOST = 'registry-1.docker.io';

export interface RegistryConfig {
  insecureRegistries: string[];
  registryMirrors: string[];
}

export interface Endpoint {
  /** scheme://host[:port] to try; for an insecure host both schemes are tried in turn. */
  url: string;
  insecure: boolean;
  mirror: boolean;
}

/** `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}` → `manifest unknown: manifest unknown`. */
export function registryErrorText(body: Buffer | string, status: number): string {
  try {
    const v = JSON.parse(body.toString());
    const errs = Array.isArray(v?.errors) ? v.errors : [];
    if (errs.length) {
      return errs.map((e: { code?: string; message?: string }) => `${String(e.code ?? 'unknown').toLowerCase().replace(/_/g, ' ')}: ${e.message ?? ''}`).join(', ');
    }
  } catch { /* not JSON */ }
  return `unexpected status ${status}`;
}

export class RegistryError extends BerthError {
  /** The registry could not be reached at all (no route, no such host, refused). */
  unreachable = false;
  constructor(kind: 'notFound' | 'system' | 'unauthorized' | 'invalid', message: string, readonly httpStatus = 0) {
    super(kind, message);
  }
}

export class Registries {
  constructor(private readonly cfg: RegistryConfig, private readonly log: Logger) {}

  /** Whether plain HTTP (and unchecked TLS) may be used for `host` (host[:port]). */
  isInsecure(host: string): boolean {
    const hostname = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
    if (hostname === 'localhost') return true;
    const entries = ['127.0.0.0/8', '::1/128', ...this.cfg.insecureRegistries];
    for (const e of entries) {
      const clean = e.replace(/^https?:\/\//, '').replace(/\/$/, '');
      if (clean === host || clean === hostname) return true;
      if (net.isIP(hostname) && clean.includes('/') && cidrContains(clean, hostname)) return true;
    }
    return false;
  }

  /** Where to look for a repository of `domain`, in order. */
  endpoints(domain: string, forPull: boolean): Endpoint[] {
    const out: Endpoint[] = [];
    if (domain === 'docker.io') {
      if (forPull) {
        for (const m of this.cfg.registryMirrors) {
          const u = new URL(m.includes('://') ? m : `https://${m}`);
          out.push({ url: `${u.protocol}//${u.host}`, insecure: u.protocol === 'http:' || this.isInsecure(u.host), mirror: true });
        }
      }
      out.push({ url: `https://${DOCKER_HUB_HOST}`, insecure: false, mirror: false });
      return out;
    }
    out.push({ url: `https://${domain}`, insecure: this.isInsecure(domain), mirror: false });
    return out;
  }

  /**
   * Opens a session on `repo` (the path inside the registry, `library/busybox`) at `endpoint`: pings it
   * (TLS first, then http:// where allowed) and authenticates for `actions`.
   */
  async open(endpoint: Endpoint, repo: string, auth: AuthConfig, actions: string[]): Promise<Session> {
    const ping = await this.ping(endpoint);
    const s = new Session(ping.base, endpoint.insecure, repo, auth, this.log);
    await s.authorize(ping.challenges, actions);
    return s;
  }

  /** GET /v2/ on the endpoint; returns the base URL that answered and the challenges (none when 200). */
  async ping(endpoint: Endpoint): Promise<{ base: string; challenges: Challenge[]; status: number }> {
    const bases = [endpoint.url];
    if (endpoint.insecure && endpoint.url.startsWith('https://')) bases.push(`http://${endpoint.url.slice('https://'.length)}`);
    let lastErr: unknown;
    for (const base of bases) {
      try {
        const res = await request({ method: 'GET', url: `${base}/v2/`, insecure: endpoint.insecure });
        discard(res);
        if (res.status === 200 || res.status === 401) {
          return { base, challenges: res.status === 401 ? parseWwwAuthenticate(res.headers['www-authenticate']) : [], status: res.status };
        }
        lastErr = new RegistryError('system', `GET "${base}/v2/": unexpected status ${res.status}: this is not a v2 registry`);
      } catch (e) {
        lastErr = e;
        // Only a failed TLS handshake (or a refused connection) lets an insecure registry fall back to http://.
        if (!(e instanceof NetworkError)) throw e;
      }
    }
    if (lastErr instanceof NetworkError) {
      const e = new RegistryError('system', lastErr.message);
      e.unreachable = true;
      throw e;
    }
    throw lastErr;
  }
}

export class Session {
  private authorization: string | undefined;
  private basicOnly = false;

  constructor(readonly base: string, readonly insecure: boolean, readonly repo: string, private readonly auth: AuthConfig, private readonly log: Logger) {}

  get host(): string {
    return new URL(this.base).host;
  }

  /** Sets the Authorization header the session's requests carry, following the registry's challenge. */
  async authorize(challenges: Challenge[], actions: string[]): Promise<void> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      this.authorization = `Bearer ${await this.fetchToken(bearer, [`repository:${this.repo}:${actions.join(',')}`])}`;
    } else if (basic) {
      this.basicOnly = true;
      if (this.auth.username !== undefined) this.authorization = basicAuthorization(this.auth.username, this.auth.password ?? '');
    }
  }

  /** The token flow: GET <realm>?service=&scope= (basic credentials if any), or POST with a refresh token. */
  async fetchToken(ch: Challenge, scopes: string[]): Promise<string> {
    if (this.auth.registrytoken) return this.auth.registrytoken;
    const realm = ch.params.realm;
    if (!realm) throw systemError('the registry asked for a bearer token without a realm');
    const url = new URL(realm);
    let res: HttpResponse;
    if (this.auth.identitytoken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.auth.identitytoken, client_id: 'berth', service: ch.params.service ?? '', scope: scopes.join(' ') });
      res = await request({ method: 'POST', url: url.toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()), insecure: this.insecure })
        .catch((e) => { throw systemError(e.message); });
    } else {
      if (ch.params.service) url.searchParams.set('service', ch.params.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (this.auth.username !== undefined) {
        url.searchParams.set('account', this.auth.username);
        headers.Authorization = basicAuthorization(this.auth.username, this.auth.password ?? '');
      }
      res = await request({ method: 'GET', url: url.toString(), headers, insecure: this.insecure }).catch((e) => { throw systemError(e.message); });
    }
    const body = await readBody(res, 1024 * 1024);
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError('unauthorized', `Get "${realm}": unauthorized: ${registryErrorText(body, res.status).replace(/^unauthorized: /, '')}`, res.status);
    }
    if (res.status !== 200) throw systemError(`Get "${realm}": token endpoint answered ${res.status}`);
    let v: { token?: string; access_token?: string };
    try {
      v = JSON.parse(body.toString());
    } catch {
      throw systemError(`Get "${realm}": the token endpoint did not answer JSON`);
    }
    const tok = v.access_token || v.token;
    if (!tok) throw systemError(`Get "${realm}": the token endpoint gave no token`);
    return tok;
  }

  url(p: string): string {
    return p.startsWith('http://') || p.startsWith('https://') ? p : `${this.base}/v2/${this.repo}/${p}`;
  }

  /**
   * One request with the session's credentials. Redirects are followed for GET and HEAD (blob storage
   * elsewhere); credentials are not sent to another host. A 401 becomes the error Docker gives.
   */
  async fetch(method: string, p: string, o: Omit<HttpRequest, 'method' | 'url'> = {}): Promise<HttpResponse> {
    let url = this.url(p);
    for (let hops = 0; ; hops++) {
      const sameHost = new URL(url).host === this.host;
      const headers = { ...(o.headers ?? {}) };
      if (this.authorization && sameHost) headers.Authorization = this.authorization;
      let res: HttpResponse;
      try {
        res = await request({ ...o, method, url, headers, insecure: this.insecure });
      } catch (e) {
        throw systemError((e as Error).message);
      }
      if ((method === 'GET' || method === 'HEAD') && [301, 302, 303, 307, 308].includes(res.status) && res.headers.location && hops < 5) {
        discard(res);
        url = new URL(res.headers.location, url).toString();
        continue;
      }
      if (res.status === 401) {
        const body = method === 'HEAD' ? Buffer.alloc(0) : await readBody(res, 1024 * 1024).catch(() => Buffer.alloc(0));
        const verb = method[0] + method.slice(1).toLowerCase();
        if (this.basicOnly && this.auth.username === undefined) throw new RegistryError('system', `${verb} "${url}": no basic auth credentials`, 401);
        throw new RegistryError('unauthorized', body.length ? registryErrorText(body, 401) : 'unauthorized: authentication required', 401);
      }
      return res;
    }
  }
}
