// POST /auth: docker login. The credentials are checked against the registry (daemon/distribution) and
// not stored: the CLI keeps them and sends them with each pull and push in X-Registry-Auth.
import type { FastifyInstance } from 'fastify';
import type { Daemon } from '../../../daemon';
import { invalid } from '../../../errors/errors';
import { distributionOf } from '../../../distribution';
import type { AuthConfig } from '../../../distribution/auth';

export function authRoutes(app: FastifyInstance, d: Daemon): void {
  app.post('/auth', async (req) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw invalid('invalid JSON: body must be an object');
    const auth: AuthConfig = {};
    let username = typeof body.username === 'string' ? body.username : undefined;
    let password = typeof body.password === 'string' ? body.password : undefined;
    // The legacy `auth` field: base64 of user:password.
    if (username === undefined && typeof body.auth === 'string' && body.auth) {
      const dec = Buffer.from(body.auth, 'base64').toString('utf8');
      const i = dec.indexOf(':');
      if (i > 0) [username, password] = [dec.slice(0, i), dec.slice(i + 1)];
    }
    if (username) auth.username = username;
    if (password !== undefined) auth.password = password;
    if (typeof body.identitytoken === 'string' && body.identitytoken) auth.identitytoken = body.identitytoken;
    if (typeof body.registrytoken === 'string' && body.registrytoken) auth.registrytoken = body.registrytoken;
    if (typeof body.serveraddress === 'string') auth.serveraddress = body.serveraddress;
    return distributionOf(d).login(auth);
  });
}
