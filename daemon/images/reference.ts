// Image references as Docker reads and prints them.
//
// Terms: a *named* reference has a domain (registry host, maybe with a port), a path (`library/busybox`) and
// optionally a tag and/or a digest. *Normalised* (what berth stores) is the full form
// `docker.io/library/busybox:latest`; *familiar* (what clients are shown) drops `docker.io/` and, for
// one-component official names, `library/` too: `busybox:latest`, `127.0.0.1:5000/x:1`.
// The grammar follows the distribution reference grammar that Docker uses; the error texts are the ones
// clients see from Docker, because scripts and tests match on them.
import { invalid } from '../errors/errors';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const NAME_TOTAL_MAX = 255;

// Grammar pieces.
const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|${ipv6})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const namePat = `(?:${domainAndPort}/)?${pathComponent}(?:/${pathComponent})*`;

const REFERENCE_RE = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const TAG_RE = new RegExp(`^${tagPat}$`);
const DOMAIN_RE = new RegExp(`^${domainAndPort}$`);
/** A bare 64-hex image id. */
export const ID_RE = /^[a-f0-9]{64}$/;

export interface NamedRef {
  domain: string;   // docker.io, 127.0.0.1:5000, localhost:5000
  path: string;     // library/busybox, doc/tag
  tag?: string;
  digest?: string;  // sha256:<64hex>
}

function checkDigest(d: string): void {
  const i = d.indexOf(':');
  const alg = d.slice(0, i);
  const hex = d.slice(i + 1);
  const lens: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
  if (!(alg in lens)) throw invalid('unsupported digest algorithm');
  if (hex.length !== lens[alg]) throw invalid('invalid checksum digest length');
  if (!/^[a-f0-9]+$/.test(hex)) throw invalid('invalid checksum digest format');
}

/** Splits the first component off as a registry domain when it looks like one (has `.` or `:`, is
 *  `localhost`, or has upper-case letters); otherwise the domain is docker.io. */
function splitDomain(name: string): { domain: string; remainder: string } {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = i < 0 ? '' : name.slice(0, i);
  if (i < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return { domain, remainder };
}

/** Parses what a user typed (`busybox`, `x/y:1`, `host:5000/p@sha256:…`) into its normalised parts.
 *  Throws a 400 with Docker's text when it is not a valid reference. */
export function parseNormalizedNamed(s: string): NamedRef {
  if (ID_RE.test(s)) throw invalid(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  if (s === '') throw invalid('invalid reference format');
  const { domain, remainder } = splitDomain(s);
  const tagSep = remainder.indexOf(':');
  const remoteName = tagSep >= 0 ? remainder.slice(0, tagSep) : remainder.split('@')[0];
  if (remoteName.toLowerCase() !== remoteName) {
    throw invalid(`invalid reference format: repository name (${remoteName}) must be lowercase`);
  }
  const full = `${domain}/${remainder}`;
  const m = REFERENCE_RE.exec(full);
  if (!m) throw invalid('invalid reference format');
  const name = m[1];
  if (name.length > NAME_TOTAL_MAX) throw invalid(`invalid reference format: repository name must not be more than ${NAME_TOTAL_MAX} characters`);
  const slash = name.indexOf('/');
  const ref: NamedRef = { domain: name.slice(0, slash), path: name.slice(slash + 1) };
  if (!DOMAIN_RE.test(ref.domain)) throw invalid('invalid reference format');
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) {
    checkDigest(m[3]);
    ref.digest = m[3];
  }
  return ref;
}

/** What a reference-or-id string means: a full image id (bare 64 hex or sha256:<64hex>) or a name. */
export type AnyRef = { kind: 'id'; id: string } | { kind: 'named'; ref: NamedRef };

export function parseAnyReference(s: string): AnyRef {
  if (ID_RE.test(s)) return { kind: 'id', id: `sha256:${s}` };
  if (/^sha256:[a-f0-9]{64}$/.test(s)) return { kind: 'id', id: s };
  return { kind: 'named', ref: parseNormalizedNamed(s) };
}

/** `docker.io/library/busybox` */
export const fullName = (r: NamedRef) => `${r.domain}/${r.path}`;

/** The normalised string berth stores: name[:tag][@digest]. */
export function fullString(r: NamedRef): string {
  return fullName(r) + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** `busybox`, `127.0.0.1:5000/x`, `someone/tool` */
export function familiarName(r: NamedRef): string {
  if (r.domain !== DEFAULT_DOMAIN) return fullName(r);
  if (r.path.startsWith(OFFICIAL_PREFIX)) {
    const rest = r.path.slice(OFFICIAL_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return r.path;
}

/** `busybox:latest`, `127.0.0.1:5000/x:1`, `busybox@sha256:…` */
export function familiarString(r: NamedRef): string {
  return familiarName(r) + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** Adds `:latest` to a reference that has neither tag nor digest. */
export function tagNameOnly(r: NamedRef): NamedRef {
  return r.tag === undefined && r.digest === undefined ? { ...r, tag: DEFAULT_TAG } : r;
}

/** The reference with this tag (any digest dropped); a bad tag is a 400. */
export function withTag(r: NamedRef, tag: string): NamedRef {
  if (!TAG_RE.test(tag)) throw invalid(`invalid tag format`);
  return { domain: r.domain, path: r.path, tag };
}

/** Parses a stored normalised string back (it is always valid). */
export function parseStored(s: string): NamedRef {
  return parseNormalizedNamed(s);
}

/** Familiar form of a stored normalised string. */
export const familiarOf = (stored: string) => familiarString(parseStored(stored));

/** `docker images --filter reference=<pattern>`: Go's path.Match against the familiar string, or against the
 *  familiar name alone when the full string does not match. */
export function familiarMatch(pattern: string, r: NamedRef): boolean {
  const re = globToRegExp(pattern);
  return re.test(familiarString(r)) || re.test(familiarName(r));
}

/** Go's path.Match syntax: `*` any run of non-`/`, `?` one non-`/`, `[…]` a class (`^` or `!` negates),
 *  `\` escapes. A malformed class makes the pattern match nothing. */
export function globToRegExp(pattern: string): RegExp {
  let out = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) out += escapeRe(pattern[++i]);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return /(?!)/;
      let cls = pattern.slice(i + 1, end);
      let neg = false;
      if (cls[0] === '^' || cls[0] === '!') {
        neg = true;
        cls = cls.slice(1);
      }
      out += `[${neg ? '^/' : ''}${cls.replace(/[\]\\]/g, '\\$&')}]`;
      i = end;
    } else out += escapeRe(c);
  }
  return new RegExp(`${out}$`);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
