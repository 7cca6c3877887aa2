// Hijacked connections: `Connection: Upgrade` + `Upgrade: tcp` requests (attach, exec start). node hands
// these to the server's 'upgrade' event, outside fastify, so they are routed here. Websocket upgrades
// (/containers/{id}/attach/ws) are passed on to @fastify/websocket through `websocketUpgrades`.
// The reply must be exactly `101 UPGRADED` with `Upgrade: tcp`: the docker CLI 28 refuses anything else.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Daemon } from '../daemon';
import { splitVersion, compareVersions } from './version';
import { commonHeaders } from './plugins/dialect';
import { toHttp } from '../errors/errors';
import { qbool, type Query } from '../lib/query';
import { attachSocket, parseDetachKeys } from '../containers/attach';
import { foldKeys } from '../lib/jsonkeys';
import { execService } from '../exec/service';
import { execOnSocket } from '../exec/stream';
import { validateBody } from './validate';
import { EventEmitter } from 'node:events';

/** Websocket upgrades, from every server: @fastify/websocket listens here (given as its `server`) rather
 *  than on the first http.Server, where it would take every upgrade, the hijacked ones too. */
export const websocketUpgrades = new EventEmitter();

/** Sockets already answered 101: an error after that cannot become an HTTP reply. */
const upgraded = new WeakSet<Socket>();

/** Reads a request body of Content-Length bytes that follows the headers of an upgrade request: part or
 *  all of it may be in `head`, the rest comes on the socket. What follows the body is stdin and is put
 *  back on the socket. */
function readUpgradeBody(req: IncomingMessage, sock: Socket, head: Buffer): Promise<Buffer> {
  const len = Number(req.headers['content-length'] ?? 0);
  if (!Number.isFinite(len) || len <= 0) {
    if (head.length) sock.unshift(head);
    return Promise.resolve(Buffer.alloc(0));
  }
  if (len > 1 << 20) return Promise.reject(Object.assign(new Error('request body too large'), { statusCode: 400 }));
  return new Promise((resolve, reject) => {
    let buf = head;
    const check = (): boolean => {
      if (buf.length < len) return false;
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      sock.pause();
      if (buf.length > len) sock.unshift(buf.subarray(len));
      resolve(buf.subarray(0, len));
      return true;
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      check();
    };
    const onEnd = () => {
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      reject(Object.assign(new Error('unexpected end of request body'), { statusCode: 400 }));
    };
    if (check()) return;
    sock.on('data', onData);
    sock.on('end', onEnd);
    // A client gone without a FIN (reset, killed) ends the wait too.
    sock.on('close', onEnd);
  });
}

async function hijackExecStart(daemon: Daemon, id: string, version: string, req: IncomingMessage, sock: Socket, head: Buffer): Promise<void> {
  const svc = execService(daemon);
  const raw = await readUpgradeBody(req, sock, head);
  let body: { Detach?: boolean; Tty?: boolean } = {};
  if (raw.length) {
    try {
      body = foldKeys(JSON.parse(raw.toString('utf8')), ['Detach', 'Tty', 'ConsoleSize']);
    } catch {
      throw Object.assign(new Error('invalid JSON in request body'), { statusCode: 400 });
    }
    // Not through fastify, so not through its preHandler: checked here as there.
    validateBody('ExecStart', body);
  }
  const e = svc.checkStartable(id);
  if (body.Detach) {
    await svc.start(e.id, null);
    sock.end(`HTTP/1.1 200 OK\r\n${headerLines(commonHeaders())}Content-Length: 0\r\n\r\n`);
    return;
  }
  if (e.config.AttachStdin && e.config.Tty) parseDetachKeys(e.config.DetachKeys);
  const tty = !!body.Tty;
  sock.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${streamContentType(version, tty)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n${headerLines(commonHeaders())}\r\n`);
  upgraded.add(sock);
  await execOnSocket(svc, e, sock, tty);
}

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
  if (String(req.headers.upgrade ?? '').toLowerCase() === 'websocket') {
    if (websocketUpgrades.listenerCount('upgrade') > 0) websocketUpgrades.emit('upgrade', req, socket, head);
    else writeHttpError(sock, Object.assign(new Error('page not found'), { statusCode: 404 }));
    return;
  }
  sock.on('error', () => {});
  try {
    const v = splitVersion(req.url ?? '/');
    if (v.error) throw Object.assign(new Error(v.error), { statusCode: 400 });
    const u = new URL(v.url, 'http://berth');
    const query: Query = {};
    for (const [k, val] of u.searchParams) query[k] = val;
    const ex = /^\/exec\/([^/]+)\/start\/?$/.exec(u.pathname);
    if (ex && req.method === 'POST') {
      hijackExecStart(daemon, decodeURIComponent(ex[1]), v.version, req, sock, head).catch((e) => {
        if (sock.destroyed) return;
        if (upgraded.has(sock)) {
          daemon.log.warn({ err: e }, 'exec stream failed');
          sock.destroy();
        } else {
          writeHttpError(sock, e);
        }
      });
      return;
    }
    const m = /^\/containers\/([^/]+)\/attach$/.exec(u.pathname);
    if (!m || req.method !== 'POST') throw Object.assign(new Error('page not found'), { statusCode: 404 });
    const live = daemon.containers.lookup(decodeURIComponent(m[1]));
    const tty = !!live.rec.config.Tty;
    if (tty && qbool(query, 'stdin')) parseDetachKeys(query.detachKeys as string | undefined);
    sock.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${streamContentType(v.version, tty)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n${headerLines(commonHeaders())}\r\n`);
    if (head.length) sock.unshift(head);
    daemon.containers.emitAttach(live);
    attachSocket(daemon.containers, live, sock, {
      stdin: qbool(query, 'stdin'), stdout: qbool(query, 'stdout'), stderr: qbool(query, 'stderr'),
      stream: qbool(query, 'stream'), logs: qbool(query, 'logs'), detachKeys: query.detachKeys as string | undefined,
    }).catch((e) => {
      // The 101 is out: a failure (the log unreadable, the container gone) can only end the stream.
      daemon.log.warn({ err: e, id: live.rec.id }, 'attach stream failed');
      sock.destroy();
    });
  } catch (e) {
    writeHttpError(sock, e);
  }
}
