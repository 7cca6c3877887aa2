// Request bodies are checked against the project's own schemas in api-spec/ before any work is done.
// ajv runs without type coercion: a string where Docker wants a number is a 400, as in Docker.
import Ajv, { type ValidateFunction } from 'ajv';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { invalid } from '../errors/errors';

function specDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const c = path.join(dir, 'api-spec', 'schemas');
    try {
      readdirSync(c);
      return c;
    } catch { /* walk up */ }
    dir = path.dirname(dir);
  }
  throw new Error('api-spec/schemas not found');
}

const ajv = new Ajv({ allErrors: false, strict: false });
const validators = new Map<string, ValidateFunction>();
for (const f of readdirSync(specDir()).filter((x) => x.endsWith('.json'))) {
  const schema = JSON.parse(readFileSync(path.join(specDir(), f), 'utf8'));
  validators.set(schema.$id, ajv.compile(schema));
}

/** Throws a 400 naming the first field that does not fit. */
export function validateBody(schemaId: string, body: unknown): void {
  const v = validators.get(schemaId);
  if (!v) throw new Error(`no schema ${schemaId}`);
  if (body === undefined || body === null) return;
  if (!v(body)) {
    const e = v.errors![0];
    const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : 'body';
    throw invalid(`invalid JSON: ${where} ${e.message}`);
  }
}
