// Hijacked connections: `Connection: Upgrade` + `Upgrade: tcp` requests (attach; exec start in a later
// issue). node hands these to the server's 'upgrade' event, outside fastify, so they are routed here.
// The reply must be exactly `101 UPGRADED` with `Upgrade: tcp`: the docker CLI 28 refuses anything else.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Daemon } from '../daemon';
import { splitVersion, compareVersions } from './version';
import { commonHeaders } from './plugins/dialect';
import { toHttp } from '../errors/errors';
import { qbool, type Query } from '../lib/query';
import { attachSocket } from '../containers/attach';

function headerLines(h: Record<string, string>): string {
  return Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('');
}

export function writeHttpError(sock: Duplex, err: unknown): void {
  const { status, message } = toHttp(err);
  const body = JSON.stringify({ message }) + '\n';
  const reason = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 500: 'Internal Server Error' }[status] ?? 'Error';
  sock.end(`HTTP/1.1 ${status} ${reason}\r\n${headerLines(commonHeaders())}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export function streamContentType(apiVersion: string, tty: boolean): string {
  if (compareVersions(apiVersion, '1.42') < 0) return 'application/vnd.docker.raw-stream';
  return tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream';
}

export function handleUpgrade(daemon: Daemon, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const sock = socket as Socket;
  sock.on('error', () => {});
  try {
    const v = splitVersion(req.url ?? '/');
    if (v.error) throw Object.assign(new Error(v.error), { statusCode: 400 });
    const u = new URL(v.url, 'http://berth');
    const query: Query = {};
    for (const [k, val] of u.searchParams) query[k] = val;
    const m = /^\/containers\/([^/]+)\/attach$/.exec(u.pathname);
    if (!m || req.method !== 'POST') throw Object.assign(new Error('page not found'), { statusCode: 404 });
    const live = daemon.containers.lookup(decodeURIComponent(m[1]));
    const tty = !!live.rec.config.Tty;
    sock.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${streamContentType(v.version, tty)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n${headerLines(commonHeaders())}\r\n`);
    if (head.length) sock.unshift(head);
    daemon.containers.emitAttach(live);
    void attachSocket(daemon.containers, live, sock, {
      stdin: qbool(query, 'stdin'), stdout: qbool(query, 'stdout'), stderr: qbool(query, 'stderr'),
      stream: qbool(query, 'stream'), logs: qbool(query, 'logs'),
    });
  } catch (e) {
    writeHttpError(sock, e);
  }
}
