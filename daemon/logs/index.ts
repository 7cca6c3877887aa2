// The log drivers berth has, and what the rest of berthd asks of them: create checks a LogConfig, start
// gets the shim's log arguments, `docker logs` and attach's logs=1 get the file to read (the reader is
// ./reader.ts), inspect gets LogPath.
import { BerthError, invalid } from '../errors/errors';
import type { LogDriver } from './driver';
import { jsonFile } from './jsonfile';
import { local } from './local';
import { none } from './none';
import { checkCommon, type LogContext, type LogOpts } from './options';
import { syslog } from './syslog';

export type { LogContext, LogOpts } from './options';
export { streamLogs, type LogOptions } from './reader';

const DRIVERS = new Map<string, LogDriver>([jsonFile, local, none, syslog].map((d) => [d.name, d]));

export const LOG_DRIVERS = [...DRIVERS.keys()].sort();

export interface LogConfig {
  Type?: string;
  Config?: LogOpts | null;
}

function driverOf(type: string): LogDriver {
  const d = DRIVERS.get(type);
  if (!d) throw invalid(`logger: no log driver named '${type}' is registered`);
  return d;
}

/** Docker's ValidateLogOpts: throws its 400 for an unknown driver, option or value. */
export function validateLogConfig(lc: LogConfig): void {
  const type = lc.Type || 'json-file';
  const o = lc.Config ?? {};
  if (type === 'none') return;
  checkCommon(o);
  driverOf(type).validate(o);
}

/**
 * A container's LogConfig as create stores it (Docker's mergeAndVerifyLogConfig): the daemon's driver when
 * none is named; the daemon's log-opts under the container's own when the driver is the daemon's; the
 * daemon's cache- options always. Throws Docker's 400 when the result is not valid.
 */
export function mergeLogConfig(lc: LogConfig | undefined, daemonDriver: string, daemonOpts: LogOpts): { Type: string; Config: LogOpts } {
  const type = lc?.Type || daemonDriver || 'json-file';
  const own = lc?.Config ?? {};
  const config: LogOpts = {};
  for (const [k, v] of Object.entries(daemonOpts)) if (type === daemonDriver || k.startsWith('cache-')) config[k] = v;
  Object.assign(config, own);
  validateLogConfig({ Type: type, Config: config });
  return { Type: type, Config: config };
}

/** The shim's log arguments for a start. */
export async function shimLogArgs(lc: LogConfig, ctx: LogContext): Promise<string[]> {
  const type = lc.Type || 'json-file';
  const o = lc.Config ?? {};
  validateLogConfig(lc); // a container made before a driver's checks existed is refused at start instead
  return driverOf(type).shimArgs(ctx, o);
}

/** The file `docker logs` reads; 501 with Docker's message when the driver keeps none. */
export function logReadPath(lc: LogConfig, ctx: LogContext): string {
  const d = DRIVERS.get(lc.Type || 'json-file');
  const p = d?.readPath(ctx, lc.Config ?? {}) ?? null;
  if (p === null) throw new BerthError('notImplemented', 'configured logging driver does not support reading');
  return p;
}

/** Inspect's LogPath: the json-file log's path, empty for every other driver (as Docker). */
export function inspectLogPath(lc: LogConfig, ctx: LogContext): string {
  return DRIVERS.get(lc.Type || 'json-file')?.inspectPath(ctx) ?? '';
}
