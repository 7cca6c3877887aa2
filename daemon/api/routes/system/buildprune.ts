// POST /build/prune (part of `docker system prune` and `docker builder prune`). berth's builder is the
// classic one: its cache is made of images, which image prune removes; it keeps no other build cache, so
// there is never anything here to delete.
import type { FastifyInstance } from 'fastify';

export function buildPruneRoutes(app: FastifyInstance): void {
  app.post('/build/prune', async () => ({ CachesDeleted: [], SpaceReclaimed: 0 }));
}
