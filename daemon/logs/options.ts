// What the log drivers share: the container facts a driver sees (moby's logger.Info), Docker's size and
// boolean parsing, the tag template, and the extra attributes of log-opts labels/env.
import { invalid } from '../errors/errors';

/** The container as a log driver sees it. */
export interface LogContext {
  id: string;
  name: string;      // "/web"
  imageId: string;   // sha256:…
  imageRef: string;  // Config.Image as given
  labels: Record<string, string>;
  env: string[];
  /** The container's directory under the data root: log files live there. */
  dir: string;
}

export type LogOpts = Record<string, string>;

/** Options every driver takes, as Docker's built-ins: delivery mode, and the dual-logging cache's. */
export const COMMON_OPTS = new Set(['mode', 'max-buffer-size', 'cache-disabled', 'cache-max-size', 'cache-max-file', 'cache-compress']);

/** go-units FromHumanSize: decimal units (k = 1000), an optional "b"/"ib" suffix. */
export function fromHumanSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?(i)?b?$/i.exec(s.trim());
  if (!m) throw invalid(`invalid size: '${s}'`);
  const exp = m[2] ? 'kmgtp'.indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.floor(Number(m[1]) * (m[3] ? 1024 : 1000) ** exp);
}

/** Go's strconv.ParseBool. */
export function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Go's strconv.Atoi, loosely: an optional sign and digits only. */
export function atoi(s: string): number | undefined {
  return /^[+-]?\d+$/.test(s) ? Number(s) : undefined;
}

/**
 * The tag: Docker's Go template over the container (`{{.ID}}`, `{{.FullID}}`, `{{.Name}}`, `{{.ImageID}}`,
 * `{{.ImageFullID}}`, `{{.ImageName}}`, `{{.DaemonName}}`, `{{.Command}}`-less). `def` when no tag is set.
 */
export function logTag(ctx: LogContext, o: LogOpts, def: string): string {
  const tpl = o.tag ?? o['syslog-tag'] ?? def;
  const imageHex = ctx.imageId.replace(/^sha256:/, '');
  const fields: Record<string, string> = {
    ID: ctx.id.slice(0, 12),
    FullID: ctx.id,
    Name: ctx.name.replace(/^\//, ''),
    ImageID: imageHex.slice(0, 12),
    ImageFullID: ctx.imageId,
    ImageName: ctx.imageRef,
    DaemonName: 'docker',
  };
  return tpl.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_m, f: string) => {
    if (!(f in fields)) throw invalid(`template: log-tag:1: can't evaluate field ${f} in type *logger.Info`);
    return fields[f];
  });
}

function regexOf(src: string, what: string): RegExp {
  try {
    return new RegExp(src);
  } catch {
    throw invalid(`error parsing regexp for ${what}: ${src}`);
  }
}

/** Refuses a labels-regex or env-regex that is not a regular expression. */
export function checkRegexes(o: LogOpts): void {
  for (const k of ['labels-regex', 'env-regex']) if (o[k] !== undefined) regexOf(o[k], k);
}

/** log-opts labels, labels-regex, env, env-regex: the container's labels and environment they name. */
export function extraAttributes(ctx: LogContext, o: LogOpts): Record<string, string> {
  const out: Record<string, string> = {};
  const names = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  for (const k of names(o.labels)) if (k in ctx.labels) out[k] = ctx.labels[k];
  if (o['labels-regex']) {
    const re = regexOf(o['labels-regex'], 'labels-regex');
    for (const [k, v] of Object.entries(ctx.labels)) if (re.test(k)) out[k] = v;
  }
  const env = new Map<string, string>();
  for (const e of ctx.env) {
    const i = e.indexOf('=');
    if (i > 0) env.set(e.slice(0, i), e.slice(i + 1));
  }
  for (const k of names(o.env)) if (env.has(k)) out[k] = env.get(k)!;
  if (o['env-regex']) {
    const re = regexOf(o['env-regex'], 'env-regex');
    for (const [k, v] of env) if (re.test(k)) out[k] = v;
  }
  return out;
}

/** Options of the keys `known` only, else Docker's "unknown log opt" for `driver`. */
export function checkKeys(o: LogOpts, known: Set<string>, message: (key: string) => string): void {
  for (const k of Object.keys(o)) if (!known.has(k) && !COMMON_OPTS.has(k)) throw invalid(message(k));
}

/** The options every driver takes (Docker's ValidateLogOpts before the driver's own validator). */
export function checkCommon(o: LogOpts): void {
  const mode = o.mode ?? '';
  if (mode !== '' && mode !== 'blocking' && mode !== 'non-blocking') throw invalid(`logger: logging mode not supported: ${mode}`);
  if (o['max-buffer-size'] !== undefined) {
    if (mode !== 'non-blocking') throw invalid(`logger: max-buffer-size option is only supported with 'mode=non-blocking'`);
    fromHumanSize(o['max-buffer-size']);
  }
  if (o['cache-disabled'] && parseBool(o['cache-disabled']) === undefined) {
    throw invalid(`invalid value for option cache-disabled: ${o['cache-disabled']}`);
  }
}

/** How a driver's files rotate: what the shim is told. */
export interface Rotation {
  maxSize: number;   // bytes, 0 = never
  maxFile: number;   // files kept in all
  compress: boolean;
}

export function rotationArgs(r: Rotation): string[] {
  const a: string[] = [];
  if (r.maxSize > 0) a.push('--log-max-size', String(r.maxSize));
  if (r.maxFile > 1) a.push('--log-max-file', String(r.maxFile));
  if (r.compress) a.push('--log-compress');
  return a;
}
