// /networks: the route table. Handlers parse, call the network service, and write.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import { qstr, qbool, parseFilters, checkFilterKeys, labelMatch, type Query, type Filters } from '../../../lib/query';
import { invalid } from '../../../errors/errors';
import type { NetworkRow } from '../../../network/store';

type Req = FastifyRequest<{ Params: { id: string }; Querystring: Query }>;

function matches(d: Daemon, n: NetworkRow, f: Filters): boolean {
  for (const [k, vals] of f) {
    if (vals.length === 0) continue;
    const ok = vals.some((v) => {
      switch (k) {
        case 'id': return n.id.startsWith(v);
        case 'name': return n.name.includes(v);
        case 'driver': return n.driver === v;
        case 'label': return labelMatch(n.labels, v);
        case 'scope': return v === 'local';
        case 'type': {
          if (v !== 'custom' && v !== 'builtin') throw invalid(`invalid filter: 'type'='${v}'`);
          return (v === 'builtin') === ['bridge', 'host', 'none'].includes(n.name);
        }
        case 'dangling': {
          const dangling = !['bridge', 'host', 'none'].includes(n.name) && !d.networks.endpointsOf(n.id).length;
          return (v === 'true' || v === '1') === dangling;
        }
        default: return true;
      }
    });
    // label!= style filters are not part of /networks; a label filter needs every value to match.
    if (k === 'label' && !vals.every((v) => labelMatch(n.labels, v))) return false;
    if (!ok) return false;
  }
  return true;
}

export function networkRoutes(app: FastifyInstance, d: Daemon): void {
  const svc = d.networks;

  app.get('/networks', async (req: Req) => {
    const f = parseFilters(req.query);
    checkFilterKeys(f, ['id', 'name', 'driver', 'label', 'scope', 'type', 'dangling']);
    return svc.all().filter((n) => matches(d, n, f)).map((n) => svc.inspect(n));
  });

  app.get('/networks/:id', async (req: Req) => {
    const scope = qstr(req.query, 'scope');
    const n = svc.lookup(req.params.id);
    if (scope && scope !== 'local') throw invalid(`network ${req.params.id} not found`);
    return svc.inspect(n, qbool(req.query, 'verbose'));
  });

  app.post('/networks/create', async (req: FastifyRequest<{ Querystring: Query }>, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body.Name !== 'string') throw invalid('network name is required');
    const out = await svc.create(body as Parameters<typeof svc.create>[0]);
    reply.code(201).send(out);
  });

  app.delete('/networks/:id', async (req: Req, reply) => {
    await svc.remove(req.params.id);
    reply.code(204).send();
  });

  app.post('/networks/prune', async (req: Req) => {
    const f = parseFilters(req.query);
    checkFilterKeys(f, ['label', 'label!', 'until']);
    const removed: string[] = [];
    for (const n of svc.all()) {
      if (['bridge', 'host', 'none'].includes(n.name) || svc.inUse(n)) continue;
      if (!(f.get('label') ?? []).every((v) => labelMatch(n.labels, v))) continue;
      if ((f.get('label!') ?? []).some((v) => labelMatch(n.labels, v))) continue;
      const until = (f.get('until') ?? [])[0];
      if (until && new Date(n.created).getTime() > (/^\d+$/.test(until) ? Number(until) * 1000 : Date.parse(until))) continue;
      try {
        await svc.remove(n.id);
        removed.push(n.name);
      } catch { /* in use by now */ }
    }
    return { NetworksDeleted: removed };
  });

  app.post('/networks/:id/connect', async (req: Req, reply) => {
    const body = (req.body ?? {}) as { Container?: string; EndpointConfig?: Parameters<typeof svc.connect>[2] };
    if (!body.Container) throw invalid('container is required');
    await svc.connect(req.params.id, body.Container, body.EndpointConfig);
    reply.code(200).send();
  });

  app.post('/networks/:id/disconnect', async (req: Req, reply) => {
    const body = (req.body ?? {}) as { Container?: string; Force?: boolean };
    if (!body.Container) throw invalid('container is required');
    await svc.disconnect(req.params.id, body.Container, !!body.Force);
    reply.code(200).send();
  });
}
