import { randomBytes } from 'node:crypto';

/** A new 64-hex id, as Docker gives containers, execs and networks. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

export const shortId = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

export const isFullId = (s: string) => /^[0-9a-f]{64}$/.test(s);
