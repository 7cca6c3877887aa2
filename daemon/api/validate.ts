// Request bodies are checked against the project's own schemas in api-spec/ before any work is done.
// ajv runs without type coercion: a string where Docker wants a number is a 400, as in Docker. The message
// is the one Docker's Go decoder gives for the same body ("invalid JSON: json: cannot unmarshal string into
// Go struct field HostConfig.HostConfig.Resources.Memory of type int64"), since scripts and SDKs match on it;
// schemas carry the Go names that message needs (x-go-struct on objects, x-go-embedded for the fields of
// embedded structs, x-go on values whose Go type is not the obvious one).
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { invalid } from '../errors/errors';

/** The api-spec directory of the checkout or installation this code runs from. */
export function specRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const c = path.join(dir, 'api-spec');
    try {
      readdirSync(path.join(c, 'schemas'));
      return c;
    } catch { /* walk up */ }
    dir = path.dirname(dir);
  }
  throw new Error('api-spec/schemas not found');
}

type Schema = Record<string, any>;

const ajv = new Ajv({ allErrors: false, strict: false });
const validators = new Map<string, ValidateFunction>();
const schemas = new Map<string, Schema>();
for (const f of readdirSync(path.join(specRoot(), 'schemas')).filter((x) => x.endsWith('.json'))) {
  const schema = JSON.parse(readFileSync(path.join(specRoot(), 'schemas', f), 'utf8')) as Schema;
  schemas.set(schema.$id, schema);
  validators.set(schema.$id, ajv.compile(schema));
}

/**
 * Every route that takes a JSON body, by method and route pattern, and the schema its body is checked
 * against before the handler runs. test/unit/body-schemas.test.ts fails for a route with a body that is in
 * neither this table nor NO_JSON_BODY, so a new route cannot go unchecked.
 */
export const BODY_SCHEMAS: Readonly<Record<string, string>> = {
  'POST /containers/create': 'ContainerCreate',
  'POST /containers/:id/update': 'ContainerUpdate',
  'POST /containers/:id/exec': 'ExecCreate',
  'POST /exec/:id/start': 'ExecStart',
  'POST /commit': 'ContainerConfig',
  'POST /networks/create': 'NetworkCreate',
  'POST /networks/:id/connect': 'NetworkConnect',
  'POST /networks/:id/disconnect': 'NetworkDisconnect',
  'POST /volumes/create': 'VolumeCreate',
  'POST /auth': 'AuthConfig',
};

const noBody = 'parameters in the query; Docker reads no body';
const refused = 'refused before its body is read (berth has no swarm mode and no managed plugins)';
/** POST and PUT routes that take no JSON body, and why. */
export const NO_JSON_BODY: Readonly<Record<string, string>> = {
  'POST /containers/:id/start': noBody,
  'POST /containers/:id/stop': noBody,
  'POST /containers/:id/restart': noBody,
  'POST /containers/:id/kill': noBody,
  'POST /containers/:id/rename': noBody,
  'POST /containers/:id/resize': noBody,
  'POST /containers/:id/wait': noBody,
  'POST /containers/:id/attach': 'hijacked stream: the body is the container\'s stdin',
  'POST /containers/:id/pause': noBody,
  'POST /containers/:id/unpause': noBody,
  'POST /containers/prune': noBody,
  'PUT /containers/:id/archive': 'a tar archive, streamed',
  'POST /exec/:id/resize': noBody,
  'POST /images/load': 'a tar archive, streamed',
  'POST /images/create': 'pull: no body; import (fromSrc=-): a tar archive, streamed',
  'POST /images/prune': noBody,
  'POST /images/*': 'tag and push: parameters in the query and X-Registry-Auth',
  'POST /build': 'the build context, a tar archive, streamed',
  'POST /build/prune': noBody,
  'POST /networks/prune': noBody,
  'POST /volumes/prune': noBody,
  'POST /swarm/init': refused,
  'POST /swarm/join': refused,
  'POST /swarm/leave': refused,
  'POST /plugins/*': refused,
  'PUT /plugins/*': refused,
  'PATCH /plugins/*': refused,
  ...Object.fromEntries(['swarm', 'nodes', 'services', 'tasks', 'secrets', 'configs'].flatMap((r) =>
    ['POST', 'PUT', 'PATCH'].flatMap((m) => [[`${m} /${r}`, refused], [`${m} /${r}/*`, refused]]))),
};

export function hasSchema(id: string): boolean {
  return validators.has(id);
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** The routes each app registered, by "METHOD /pattern", for the test that every one is classified. */
export const registeredRoutes = new WeakMap<FastifyInstance, string[]>();

/**
 * Checks each JSON body against its route's schema (BODY_SCHEMAS) before the handler sees it. A route
 * that can take a body and is in neither table is refused when it is registered: berthd (and every test
 * that builds the app) fails at once, rather than a body going through unchecked.
 */
export function registerBodyValidation(app: FastifyInstance): void {
  const seen: string[] = [];
  registeredRoutes.set(app, seen);
  app.addHook('onRoute', (route) => {
    for (const m of ([] as string[]).concat(route.method)) {
      const key = `${m} ${route.url}`;
      seen.push(key);
      if (BODY_METHODS.has(m) && !BODY_SCHEMAS[key] && !NO_JSON_BODY[key]) {
        throw new Error(`route ${key} takes a body but has no schema: add it to BODY_SCHEMAS or NO_JSON_BODY in daemon/api/validate.ts`);
      }
      // The check is a hook of the routes that have a schema only, not of every request.
      const id = BODY_SCHEMAS[key];
      if (id) route.preHandler = [bodyCheck(id), ...([] as preHandlerHookHandler[]).concat(route.preHandler ?? [])];
    }
  });
}

function bodyCheck(id: string): preHandlerHookHandler {
  return (req, _reply, done) => {
    try {
      validateBody(id, req.body);
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  };
}

/** Throws a 400 naming the first field that does not fit, in the words of Docker's decoder. */
export function validateBody(schemaId: string, body: unknown): void {
  const v = validators.get(schemaId);
  if (!v) throw new Error(`no schema ${schemaId}`);
  if (body === undefined || body === null) return;
  if (!v(body)) throw invalid(`invalid JSON: ${goMessage(schemas.get(schemaId)!, body, v.errors![0])}`);
}

/** The JSON kind Go's decoder names in "cannot unmarshal <kind>". */
function jsonKind(x: unknown, intoInteger: boolean): string {
  if (Array.isArray(x)) return 'array';
  if (typeof x === 'boolean') return 'bool';
  if (typeof x === 'number') return intoInteger ? `number ${x}` : 'number';
  return typeof x; // string, object
}

function deref(root: Schema, s: Schema | undefined): Schema | undefined {
  for (let i = 0; s && s.$ref && i < 8; i++) s = s.$ref.startsWith('#/') ? s.$ref.slice(2).split('/').reduce((o: any, k: string) => o?.[k], root) : undefined;
  return s;
}

/** Go's name for the type a schema node decodes into. */
function goType(root: Schema, s: Schema | undefined): string {
  s = deref(root, s);
  if (!s) return 'interface {}';
  if (s['x-go']) return s['x-go'];
  if (s['x-go-struct']) return s['x-go-struct'];
  const t = ([] as string[]).concat(s.type ?? []).filter((x) => x !== 'null');
  // A string-or-strings (Cmd, Entrypoint) is decoded as a list, then as a string, whose error Docker returns.
  if (s.anyOf) return goType(root, s.anyOf[0]);
  switch (t[0]) {
    case 'integer': return 'int64';
    case 'number': return 'float64';
    case 'boolean': return 'bool';
    case 'string': return 'string';
    case 'array': return `[]${goType(root, s.items)}`;
    case 'object': return s.additionalProperties && typeof s.additionalProperties === 'object' ? `map[string]${goType(root, s.additionalProperties)}` : 'map[string]interface {}';
    default: return 'interface {}';
  }
}

/**
 * "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Resources.Memory of type int64":
 * the innermost struct, the path of field names from the top (with embedded structs, x-go-embedded; array
 * indices and map keys are not named), and the Go type of the value. A check that is not of a type (a
 * range, a required field) names the JSON path and reads as ajv says it.
 */
function goMessage(root: Schema, body: unknown, e: ErrorObject): string {
  const segs = e.instancePath ? e.instancePath.slice(1).split('/').map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~')) : [];
  let node: Schema | undefined = deref(root, root);
  let value: any = body;
  let struct = '';
  const fields: string[] = [];
  const jsonPath: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const k = segs[i];
    const inStruct = node?.['x-go-struct'];
    if (inStruct) struct = inStruct.replace(/^.*\./, ''); // Go names the struct without its package
    if (Array.isArray(value)) node = deref(root, node?.items);
    else if (node?.properties && k in node.properties) {
      // A field of an embedded struct (HostConfig's Resources) is named with it, as Go (1.24 on) names it.
      const embedded = Object.entries((node['x-go-embedded'] ?? {}) as Record<string, string[]>).find(([, names]) => names.includes(k));
      if (embedded) fields.push(embedded[0]);
      fields.push(k);
      jsonPath.push(k);
      node = deref(root, node.properties[k]);
    } else node = deref(root, typeof node?.additionalProperties === 'object' ? node.additionalProperties : undefined);
    value = value?.[k];
    if (node?.anyOf && !Array.isArray(value)) node = deref(root, node.anyOf[0]);
    else if (node?.anyOf) node = deref(root, node.anyOf[node.anyOf.length - 1]);
  }
  const where = jsonPath.join('.') || 'body';
  const type = goType(root, node);
  const integer = /^u?int/.test(type);
  if (e.keyword === 'type' || (integer && (e.keyword === 'minimum' || e.keyword === 'maximum') && /^uint/.test(type))) {
    const into = fields.length ? `Go struct field ${struct}.${fields.join('.')}` : 'Go value';
    return `json: cannot unmarshal ${jsonKind(value, integer)} into ${into} of type ${type}`;
  }
  return `${where} ${e.message}`;
}
