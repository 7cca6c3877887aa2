// The answer to /_ping, fixed, with its headers made once: written by fast-reads.ts before fastify, and by
// the route (routes/system) from the same list, so the two cannot drift apart.
import type { ServerResponse } from 'node:http';
import { API_VERSION } from './version';
import { SERVER_HEADER } from './plugins/dialect';

/** The headers of every /_ping answer, as fastify sends them (lower case, in the order they are set). */
export const PING_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['api-version', API_VERSION],
  ['docker-experimental', 'false'],
  ['ostype', 'linux'],
  ['server', SERVER_HEADER],
  ['cache-control', 'no-cache, no-store, must-revalidate'],
  ['pragma', 'no-cache'],
  ['builder-version', '1'],
  ['swarm', 'inactive'],
  ['content-type', 'text/plain; charset=utf-8'],
];

// Flat [name, value, …] arrays: writeHead takes them without building a header object.
const GET_HEADERS = [...PING_HEADERS.flat(), 'content-length', '2'];
const HEAD_HEADERS = [...PING_HEADERS.flat(), 'content-length', '0'];

/** Writes the answer to GET or HEAD /_ping. */
export function writePing(method: 'GET' | 'HEAD', res: ServerResponse): void {
  res.writeHead(200, (method === 'GET' ? GET_HEADERS : HEAD_HEADERS) as unknown as string[]);
  res.end(method === 'GET' ? 'OK' : undefined);
}
