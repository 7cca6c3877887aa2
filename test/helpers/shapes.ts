// Checks an API answer against the response schemas in api-spec/responses/ (derived from Docker's own
// answers in docs/samples): every mismatch is reported at once, with where it is and what the value was,
// so a field that drifts (a null where Docker sends an object, a number sent as a string, a field that
// went missing) fails the test that saw it.
import Ajv, { type ValidateFunction } from 'ajv';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './berthd';

const ajv = new Ajv({ allErrors: true, strict: false });
const dir = path.join(REPO, 'api-spec', 'responses');
const schemas = new Map<string, object>();
for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
  const schema = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
  schemas.set(schema.$id, schema);
}
const validators = new Map<string, ValidateFunction>();

function olderOrSame(a: string, b: string): boolean {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  return x[0] < y[0] || (x[0] === y[0] && x[1] <= y[1]);
}

/** The schema as it is at an API version: a field Docker dropped after version V (x-required-until {V: [...]})
 *  is required at V and before. */
function atVersion(node: unknown, version: string): unknown {
  if (Array.isArray(node)) return node.map((x) => atVersion(x, version));
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'x-required-until') out[k] = atVersion(v, version);
  const until = (node as Record<string, unknown>)['x-required-until'] as Record<string, string[]> | undefined;
  for (const [v, fields] of Object.entries(until ?? {})) {
    if (olderOrSame(version, v)) out.required = [...((out.required as string[]) ?? []), ...fields];
  }
  return out;
}

function validator(id: string, version: string): ValidateFunction {
  const key = `${id}@${version}`;
  let v = validators.get(key);
  if (!v) {
    const schema = schemas.get(id);
    if (!schema) throw new Error(`no response schema ${id} in api-spec/responses`);
    v = ajv.compile({ ...(atVersion(schema, version) as object), $id: key });
    validators.set(key, v);
  }
  return v;
}

export const RESPONSE_SCHEMAS = [...schemas.keys()];

/** The API version berth serves when a request names none. */
export const CURRENT = '1.52';

function at(value: unknown, pointer: string): unknown {
  let v = value as Record<string, unknown> | undefined;
  for (const k of pointer.split('/').slice(1)) v = v?.[k.replace(/~1/g, '/').replace(/~0/g, '~')] as Record<string, unknown> | undefined;
  return v;
}

/** The mismatches of `value` with the schema `id` at API `version`, one line each; empty when it fits. */
export function shapeErrors(id: string, value: unknown, version = CURRENT): string[] {
  const v = validator(id, version);
  if (v(value)) return [];
  return v.errors!.map((e) => {
    const got = e.keyword === 'required' ? '' : ` (got ${JSON.stringify(at(value, e.instancePath))?.slice(0, 80)})`;
    return `${e.instancePath || '/'} ${e.message}${got}`;
  });
}

/** Fails with every mismatch of `value` with the schema `id`. */
export function assertShape(id: string, value: unknown, what = id, version = CURRENT): void {
  const errs = shapeErrors(id, value, version);
  assert.deepEqual(errs, [], `${what} does not have Docker's shape (${id}):\n  ${errs.join('\n  ')}`);
}
