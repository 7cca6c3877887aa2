// A fastify app for route tests through inject: the API's dialect (errors, booleans) and its /v<version>
// prefix as berthd's app has them, with the routes `register` adds, ready to inject into.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { registerDialect } from '../../daemon/api/plugins/dialect';
import { splitVersion } from '../../daemon/api/version';

export async function routeApp(register: (app: FastifyInstance) => void, opts: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...opts,
    rewriteUrl: (req) => {
      const v = splitVersion(req.url ?? '/');
      (req as unknown as { berthVersion?: string }).berthVersion = v.version;
      return v.url;
    },
  });
  registerDialect(app);
  register(app);
  await app.ready();
  return app;
}
