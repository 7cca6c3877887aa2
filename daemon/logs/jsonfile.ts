// json-file: Docker's default driver. `<container dir>/<id>-json.log`, one JSON object per line
// ({"log","stream","attrs"?,"time"}), rotated as Docker rotates it (FILE.1, FILE.2 …, or FILE.1.gz …
// with compress), which is what the kubelet and other readers of Docker's files expect.
import path from 'node:path';
import { invalid } from '../errors/errors';
import type { LogDriver } from './driver';
import { atoi, checkKeys, checkRegexes, extraAttributes, fromHumanSize, logTag, parseBool, rotationArgs, type LogContext, type LogOpts, type Rotation } from './options';

const KEYS = new Set(['max-file', 'max-size', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag']);

function rotation(o: LogOpts): Rotation {
  let maxSize = 0;
  if (o['max-size'] !== undefined) {
    maxSize = fromHumanSize(o['max-size']);
    if (maxSize <= 0) throw invalid('max-size must be a positive number');
  }
  let maxFile = 1;
  if (o['max-file'] !== undefined) {
    const n = atoi(o['max-file']);
    if (n === undefined) throw invalid(`strconv.Atoi: parsing "${o['max-file']}": invalid syntax`);
    if (n < 1) throw invalid('max-file cannot be less than 1');
    maxFile = n;
  }
  let compress = false;
  if (o.compress !== undefined) {
    const b = parseBool(o.compress);
    if (b === undefined) throw invalid(`strconv.ParseBool: parsing "${o.compress}": invalid syntax`);
    if (b && (maxFile === 1 || maxSize === 0)) throw invalid('compress cannot be true when max-file is less than 2 or max-size is not set');
    compress = b;
  }
  return { maxSize, maxFile, compress };
}

export const jsonFile: LogDriver = {
  name: 'json-file',
  validate(o) {
    checkKeys(o, KEYS, (k) => `unknown log opt '${k}' for json-file log driver`);
    rotation(o);
    checkRegexes(o);
  },
  async shimArgs(ctx, o) {
    const attrs = extraAttributes(ctx, o);
    // No default tag: only one the user asked for is written.
    if (o.tag) attrs.tag = logTag(ctx, o, '');
    const a = ['--log-driver', 'json-file', '--log', this.inspectPath(ctx), ...rotationArgs(rotation(o))];
    if (Object.keys(attrs).length > 0) a.push('--log-attrs', JSON.stringify(attrs));
    return a;
  },
  readPath(ctx) {
    return this.inspectPath(ctx);
  },
  inspectPath(ctx: LogContext) {
    return path.join(ctx.dir, `${ctx.id}-json.log`);
  },
};
