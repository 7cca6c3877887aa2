// GET /images/search: docker search, with the is-official, is-automated and stars filters applied here.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import { qint, qstr, parseFilters, checkFilterKeys, type Query } from '../../../lib/query';
import { invalid } from '../../../errors/errors';
import { distributionOf } from '../../../distribution';
import { decodeRegistryAuth } from '../../../distribution/auth';
import { search } from '../../../distribution/search';

export function imageSearchRoutes(app: FastifyInstance, d: Daemon): void {
  app.get('/images/search', async (req: FastifyRequest<{ Querystring: Query }>) => {
    const term = qstr(req.query, 'term') ?? '';
    if (!term) throw invalid('term is required');
    const limit = qint(req.query, 'limit') ?? 25;
    if (limit < 1 || limit > 100) throw invalid(`limit ${limit} is outside the range of [1, 100]`);
    const f = parseFilters(req.query);
    checkFilterKeys(f, ['is-official', 'is-automated', 'stars']);
    const flag = (k: string): boolean | undefined => {
      const v = f.get(k)?.[0];
      if (v === undefined) return undefined;
      if (!['true', 'false', '1', '0'].includes(v)) throw invalid(`invalid filter '${k}=${v}'`);
      return v === 'true' || v === '1';
    };
    const official = flag('is-official');
    const automated = flag('is-automated');
    const starsRaw = f.get('stars')?.[0];
    const stars = starsRaw === undefined ? 0 : Number(starsRaw);
    if (!Number.isInteger(stars)) throw invalid(`invalid filter 'stars=${starsRaw}'`);
    const results = await search(distributionOf(d).registries, term, limit, decodeRegistryAuth(req.headers['x-registry-auth']));
    return results.filter((r) => (official === undefined || r.is_official === official)
      && (automated === undefined || r.is_automated === automated) && r.star_count >= stars);
  });
}
