// local: Docker's driver for logs kept on the host compactly. `<container dir>/local-logs/container.log`,
// rotated at max-size (default 20 MB) keeping max-file files (default 5), rotated files gzipped
// (container.log.1.gz …; compress defaults to true).
//
// On-disk format (berth's, not Docker's protobuf frames): the same JSON lines as json-file, written by the
// same shim code and read by the same reader, so tail, since/until and follow across rotations behave
// identically for both. What differs from json-file is what Docker's local driver promises: bounded by
// default, compressed, and not an interface (inspect shows no LogPath).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { invalid } from '../errors/errors';
import type { LogDriver } from './driver';
import { atoi, checkKeys, checkRegexes, extraAttributes, fromHumanSize, logTag, parseBool, rotationArgs, type LogContext, type LogOpts, type Rotation } from './options';

const KEYS = new Set(['max-file', 'max-size', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag']);

export const LOCAL_DEFAULTS: Rotation = { maxSize: 20 * 1024 * 1024, maxFile: 5, compress: true };

/** The local driver's rotation from `max-size`/`max-file`/`compress` (or, for the cache, `cache-` ones). */
export function localRotation(o: LogOpts, prefix = ''): Rotation {
  const r = { ...LOCAL_DEFAULTS };
  const size = o[`${prefix}max-size`];
  if (size !== undefined) {
    try {
      r.maxSize = fromHumanSize(size);
    } catch {
      throw invalid(`invalid value for max-size: ${size}`);
    }
  }
  const file = o[`${prefix}max-file`];
  if (file !== undefined) {
    const n = atoi(file);
    if (n === undefined) throw invalid(`invalid value for max-file: ${file}`);
    r.maxFile = n;
  }
  const c = o[`${prefix}compress`];
  if (c !== undefined) {
    const b = parseBool(c);
    if (b === undefined) throw invalid(`invalid boolean value for compress: strconv.ParseBool: parsing "${c}": invalid syntax`);
    r.compress = b;
  }
  if (r.maxSize < 0) throw invalid('max-size must not be negative');
  if (r.maxFile < 0) throw invalid('max-file must not be negative');
  if (r.compress && r.maxFile <= 1) throw invalid('compression cannot be enabled when max file count is 1');
  return r;
}

export function localPath(ctx: LogContext): string {
  return path.join(ctx.dir, 'local-logs', 'container.log');
}

export const local: LogDriver = {
  name: 'local',
  validate(o) {
    checkKeys(o, KEYS, (k) => `unknown log opt '${k}' for log driver local`);
    localRotation(o);
    checkRegexes(o);
  },
  async shimArgs(ctx, o) {
    const file = localPath(ctx);
    await mkdir(path.dirname(file), { recursive: true });
    const attrs = extraAttributes(ctx, o);
    if (o.tag) attrs.tag = logTag(ctx, o, '');
    const a = ['--log-driver', 'local', '--log', file, ...rotationArgs(localRotation(o))];
    if (Object.keys(attrs).length > 0) a.push('--log-attrs', JSON.stringify(attrs));
    return a;
  },
  readPath(ctx) {
    return localPath(ctx);
  },
  inspectPath() {
    return '';
  },
};
