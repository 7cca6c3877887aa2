// The closed set of error kinds berth raises, and the one place that turns a kind into an HTTP status.
// Services throw these; routes never pick status codes themselves (moby's httpstatus.FromError idea).

export type ErrorKind =
  | 'invalid'        // 400: bad parameter or body
  | 'unauthorized'   // 401: a registry refused the credentials (docker login)
  | 'notFound'       // 404: no such object
  | 'conflict'       // 409: name in use, container running, image in use
  | 'notModified'    // 304: start of a running / stop of a stopped container
  | 'forbidden'      // 403: e.g. network with active endpoints
  | 'unavailable'    // 503: swarm endpoints
  | 'notImplemented' // 501
  | 'system';        // 500

const statusOf: Record<ErrorKind, number> = {
  invalid: 400,
  unauthorized: 401,
  notFound: 404,
  conflict: 409,
  notModified: 304,
  forbidden: 403,
  unavailable: 503,
  notImplemented: 501,
  system: 500,
};

export class BerthError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'BerthError';
  }
  get status(): number {
    return statusOf[this.kind];
  }
}

export const invalid = (msg: string, cause?: unknown) => new BerthError('invalid', msg, { cause });
export const notFound = (msg: string) => new BerthError('notFound', msg);
export const conflict = (msg: string) => new BerthError('conflict', msg);
export const notModified = () => new BerthError('notModified', '');
export const systemError = (msg: string, cause?: unknown) => new BerthError('system', msg, { cause });

/** Maps any thrown value to Docker's status and `{"message": …}` text. */
export function toHttp(err: unknown): { status: number; message: string } {
  if (err instanceof BerthError) return { status: err.status, message: err.message };
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, message: e.message ?? 'bad request' };
  }
  // A full disk under the state database: say what the user can act on.
  if (e && e.code === 'SQLITE_FULL') return { status: 500, message: 'cannot record the change: no space left on device (the state database is full)' };
  return { status: 500, message: (e && e.message) || String(err) };
}

/** A container that a request names as a reference (VolumesFrom, NetworkMode container:, links) and that
 *  does not exist is a bad parameter of that request, not a missing object: Docker answers 400, and a 404 to a
 *  create would make the CLI pull the image and try again. */
export function asBadReference<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof BerthError && e.kind === 'notFound') throw new BerthError('invalid', e.message, { cause: e });
    throw e;
  }
}

