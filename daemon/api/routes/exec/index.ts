// /containers/{id}/exec and /exec/{id}/…: create, start (detached, or attached without an Upgrade header;
// the hijacked start is in api/hijack.ts), inspect, resize. Also the websocket attach of containers,
// which needs @fastify/websocket's route hook and so lives in this encapsulated plugin.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import type { Daemon } from '../../../daemon';
import { qbool, qint, type Query } from '../../../lib/query';
import { invalid } from '../../../errors/errors';
import { execService, type ExecCreateBody } from '../../../exec/service';
import { execOnSocket } from '../../../exec/stream';
import { attachWebsocket, parseDetachKeys, type WsLike } from '../../../containers/attach';
import { commonHeaders } from '../../plugins/dialect';
import { websocketUpgrades, streamContentType } from '../../hijack';
import { compareVersions } from '../../version';
import { foldKeys } from '../../../lib/jsonkeys';

type Req = FastifyRequest<{ Params: { id: string }; Querystring: Query }>;

// The fields of Docker's ExecConfig: keys of a body in another case are read as these (lib/jsonkeys.ts).
const EXEC_CREATE_FIELDS = ['User', 'Privileged', 'Tty', 'ConsoleSize', 'AttachStdin', 'AttachStderr', 'AttachStdout',
  'Detach', 'DetachKeys', 'Env', 'WorkingDir', 'Cmd'] as const;

export function execRoutes(app: FastifyInstance, d: Daemon): void {
  const svc = execService(d);

  app.post('/containers/:id/exec', async (req: Req, reply) => {
    const body = req.body && typeof req.body === 'object' ? foldKeys(req.body as ExecCreateBody, EXEC_CREATE_FIELDS) : req.body;
    const out = svc.create(req.params.id, (body ?? {}) as ExecCreateBody);
    reply.code(201).send(out);
  });

  // Without an Upgrade header: Detach answers 200 at once; otherwise the stream follows a plain 200 and
  // lasts until the process ends (older clients).
  app.post('/exec/:id/start', async (req: Req, reply: FastifyReply) => {
    const raw = req.body && typeof req.body === 'object' ? foldKeys(req.body as object, ['Detach', 'Tty', 'ConsoleSize']) : req.body;
    const body = (raw ?? {}) as { Detach?: boolean; Tty?: boolean };
    const e = svc.checkStartable(req.params.id);
    if (body.Detach) {
      await svc.start(e.id, null);
      reply.code(200).send();
      return;
    }
    if (e.config.AttachStdin && e.config.Tty) parseDetachKeys(e.config.DetachKeys);
    const tty = !!body.Tty;
    reply.hijack();
    const sock = req.raw.socket;
    sock.on('error', () => undefined);
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: ${streamContentType(req.apiVersion, tty)}\r\n${Object.entries(commonHeaders()).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    await execOnSocket(svc, e, sock, tty);
  });

  app.get('/exec/:id/json', async (req: Req) => svc.inspect(req.params.id));

  app.post('/exec/:id/resize', async (req: Req, reply) => {
    const h = qint(req.query, 'h') ?? 0;
    const w = qint(req.query, 'w') ?? 0;
    // The kernel keeps a terminal's size in 16 bits (a larger one was a 500 from the shim's encoder).
    for (const [k, v] of [['height', h], ['width', w]] as const) {
      if (v < 0 || v > 65535) throw invalid(`invalid resize ${k} ${JSON.stringify(String(v))}: value out of range`);
    }
    svc.resize(req.params.id, h, w);
    reply.code(200).send();
  });

  // The websocket plugin's onRoute hook rewrites every route declared after it in its context, so it is
  // kept in a context of its own holding only the websocket route.
  void app.register(async (ws) => {
    // It listens for upgrades on the emitter hijack.ts feeds with websocket upgrades only.
    await ws.register(websocket, { options: { server: websocketUpgrades as unknown as import('node:http').Server } });
    ws.get('/containers/:id/attach/ws', { websocket: true }, (socket: unknown, req: Req) => {
      const sock = socket as WsLike;
      let live;
      try {
        live = d.containers.lookup(req.params.id);
        if (live.rec.config.Tty && qbool(req.query, 'stdin')) parseDetachKeys(req.query.detachKeys as string | undefined);
      } catch (e) {
        sock.close(1011);
        return;
      }
      d.containers.emitAttach(live);
      attachWebsocket(d.containers, live, sock, {
        stdin: qbool(req.query, 'stdin'), stdout: qbool(req.query, 'stdout'), stderr: qbool(req.query, 'stderr'),
        stream: qbool(req.query, 'stream'), logs: qbool(req.query, 'logs'), detachKeys: req.query.detachKeys as string | undefined,
      }, compareVersions(req.apiVersion || '1.52', '1.28') >= 0).catch((e) => {
        req.log.warn({ err: e }, 'websocket attach failed');
        sock.close(1011);
      });
    });
  });
}
