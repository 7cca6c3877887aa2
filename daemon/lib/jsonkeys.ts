// Docker decodes request bodies with Go's encoding/json, which matches an object's keys to a struct's
// fields case-insensitively (an exact match first). Clients rely on it: docker-py sends the exec body's
// `detachKeys` in lower camel case. foldKeys renames such keys to the field names a handler reads.

/** A shallow copy of `body` with each key that matches one of `fields` regardless of case renamed to it;
 *  a key spelled exactly as a field wins over another spelling of it. Other keys are kept as they are. */
export function foldKeys<T extends object>(body: T, fields: readonly string[]): T {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  const byLower = new Map(fields.map((f) => [f.toLowerCase(), f]));
  const src = body as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(src)) {
    const field = byLower.get(k.toLowerCase());
    if (field === undefined) out[k] = v;
    else if (field === k || !(field in src)) out[field] = v;
  }
  return out as T;
}
