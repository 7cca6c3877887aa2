// Registry credentials: the X-Registry-Auth header the CLI sends, and the WWW-Authenticate challenges a
// registry answers with (RFC 7235: a scheme, then comma-separated key=value or key="quoted value" pairs).
// Both are small grammars; they are parsed here so that the parsing can be tested without a registry.

export interface AuthConfig {
  username?: string;
  password?: string;
  /** An OAuth refresh token a registry gave at login; used for the token endpoint's refresh_token grant. */
  identitytoken?: string;
  /** A bearer token to send as it is. */
  registrytoken?: string;
  serveraddress?: string;
}

/**
 * Decodes X-Registry-Auth: base64 (URL-safe or standard alphabet, padded or not) of a JSON object. Docker
 * ignores a header it cannot decode (the request goes on without credentials); so does this.
 */
export function decodeRegistryAuth(header: string | string[] | undefined): AuthConfig {
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw || !raw.trim()) return {};
  let text: string;
  const s = raw.trim();
  if (s.startsWith('{')) text = s;
  else {
    const std = s.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
    text = Buffer.from(std, 'base64').toString('utf8');
  }
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
    const out: AuthConfig = {};
    for (const k of ['username', 'password', 'identitytoken', 'registrytoken', 'serveraddress'] as const) {
      // Field names are matched without regard to case, as Go's encoding/json does.
      const key = Object.keys(v).find((x) => x.toLowerCase() === k);
      if (key !== undefined && typeof v[key] === 'string' && v[key] !== '') out[k] = v[key];
    }
    return out;
  } catch {
    return {};
  }
}

export interface Challenge {
  scheme: string; // lower case: basic, bearer
  params: Record<string, string>; // keys lower case
}

/** Parses a WWW-Authenticate value (or several, one per header line) into its challenges. */
export function parseWwwAuthenticate(value: string | string[] | undefined): Challenge[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  const out: Challenge[] = [];
  for (const v of values) {
    let i = 0;
    const n = v.length;
    const skipWs = () => {
      while (i < n && (v[i] === ' ' || v[i] === '\t')) i++;
    };
    const token = () => {
      const start = i;
      while (i < n && !' \t,="'.includes(v[i])) i++;
      return v.slice(start, i);
    };
    let cur: Challenge | undefined;
    while (i < n) {
      skipWs();
      if (v[i] === ',') {
        i++;
        continue;
      }
      const save = i;
      const word = token();
      if (!word) {
        i++;
        continue;
      }
      skipWs();
      if (v[i] === '=' && cur) {
        i++;
        skipWs();
        let val = '';
        if (v[i] === '"') {
          i++;
          while (i < n && v[i] !== '"') {
            if (v[i] === '\\' && i + 1 < n) i++;
            val += v[i++];
          }
          i++;
        } else val = token();
        cur.params[word.toLowerCase()] = val;
      } else {
        // A new scheme. (A token followed by '=' with no scheme yet is malformed; it starts nothing.)
        if (v[i] === '=') {
          i = save + word.length + 1;
          continue;
        }
        cur = { scheme: word.toLowerCase(), params: {} };
        out.push(cur);
      }
    }
  }
  return out;
}

export function basicAuthorization(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}
