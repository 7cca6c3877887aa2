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
const validators = new Map<string, ValidateFunction>();
const dir = path.join(REPO, 'api-spec', 'responses');
for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
  const schema = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
  validators.set(schema.$id, ajv.compile(schema));
}

export const RESPONSE_SCHEMAS = [...validators.keys()];

function at(value: unknown, pointer: string): unknown {
  let v = value as Record<string, unknown> | undefined;
  for (const k of pointer.split('/').slice(1)) v = v?.[k.replace(/~1/g, '/').replace(/~0/g, '~')] as Record<string, unknown> | undefined;
  return v;
}

/** The mismatches of `value` with the schema `id`, one line each; empty when it fits. */
export function shapeErrors(id: string, value: unknown): string[] {
  const v = validators.get(id);
  if (!v) throw new Error(`no response schema ${id} in api-spec/responses`);
  if (v(value)) return [];
  return v.errors!.map((e) => {
    const got = e.keyword === 'required' ? '' : ` (got ${JSON.stringify(at(value, e.instancePath))?.slice(0, 80)})`;
    return `${e.instancePath || '/'} ${e.message}${got}`;
  });
}

/** Fails with every mismatch of `value` with the schema `id`. */
export function assertShape(id: string, value: unknown, what = id): void {
  const errs = shapeErrors(id, value);
  assert.deepEqual(errs, [], `${what} does not have Docker's shape (${id}):\n  ${errs.join('\n  ')}`);
}
