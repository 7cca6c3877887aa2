// /volumes: the route table. Handlers parse, call the volume service, and write.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import { qbool, parseFilters, checkFilterKeys, labelMatch, type Query, type Filters } from '../../../lib/query';
import { invalid } from '../../../errors/errors';
import type { VolumeRow } from '../../../volumes/service';

type Req = FastifyRequest<{ Params: { name: string }; Querystring: Query }>;

function matches(d: Daemon, v: VolumeRow, f: Filters): boolean {
  for (const [k, vals] of f) {
    if (vals.length === 0) continue;
    switch (k) {
      case 'name': if (!vals.some((x) => v.name.includes(x))) return false; break;
      case 'driver': if (!vals.includes(v.driver)) return false; break;
      case 'label': if (!vals.every((x) => labelMatch(v.labels, x))) return false; break;
      case 'dangling': {
        const want = vals.map((x) => x.toLowerCase());
        if (want.some((x) => !['true', 'false', '1', '0'].includes(x))) throw invalid(`invalid filter 'dangling=${vals[0]}'`);
        const dangling = d.volumes.usedBy(v.name).length === 0;
        if (!want.some((x) => (x === 'true' || x === '1') === dangling)) return false;
        break;
      }
      default: break;
    }
  }
  return true;
}

export function volumeRoutes(app: FastifyInstance, d: Daemon): void {
  const svc = d.volumes;

  app.get('/volumes', async (req: Req) => {
    const f = parseFilters(req.query);
    checkFilterKeys(f, ['name', 'driver', 'label', 'dangling']);
    return { Volumes: svc.all().filter((v) => matches(d, v, f)).map((v) => svc.view(v)), Warnings: null };
  });

  app.get('/volumes/:name', async (req: Req) => svc.view(svc.get(req.params.name)));

  app.post('/volumes/create', async (req, reply) => {
    // Checked against api-spec VolumeCreate before this runs (daemon/api/validate.ts).
    const body = (req.body ?? {}) as Record<string, unknown>;
    const v = await svc.create(body as { Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> });
    reply.code(201);
    return svc.view(v);
  });

  app.delete('/volumes/:name', async (req: Req, reply) => {
    await svc.remove(req.params.name, qbool(req.query, 'force'));
    reply.code(204).send();
  });

  app.post('/volumes/prune', async (req: FastifyRequest<{ Querystring: Query }>) => {
    const f = parseFilters(req.query);
    checkFilterKeys(f, ['label', 'label!', 'all']);
    const labels = f.get('label') ?? [];
    const notLabels = f.get('label!') ?? [];
    const all = (f.get('all') ?? []).some((x) => ['true', '1'].includes(x.toLowerCase()));
    return svc.prune((l) => labels.every((x) => labelMatch(l, x)) && !notLabels.some((x) => labelMatch(l, x)), all);
  });
}
