// The arrows between berthd's rooms (issue 16): services are given narrow interfaces at construction
// (containers/deps.ts, network/deps.ts, …) and never reach for the Daemon, and nothing below the API
// layer imports it. The composition root (daemon.ts, main.ts, app.ts) and the API layer may import both.
// Read from the sources, so that a new import that breaks the rule fails here, not in review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..', '..');
const DAEMON = path.join(REPO, 'daemon');
const ROOT_FILES = new Set(['daemon.ts', 'main.ts', 'app.ts']);
/** Not narrowed yet, each with its reason. */
const STILL_TAKES_DAEMON = new Map([
  ['build/builder.ts', 'the classic builder drives containers, images and the network as the API does; next round'],
]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The modules a file imports (static imports and `import()`), resolved to paths relative to daemon/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => path.relative(DAEMON, path.resolve(path.dirname(file), s)));
}

const below = sources(DAEMON)
  .map((f) => path.relative(DAEMON, f))
  .filter((f) => !ROOT_FILES.has(f) && !f.startsWith('api/'));

test('the sources were found', () => {
  assert.ok(below.includes('containers/service.ts') && below.includes('network/service.ts'), below.join(' '));
});

test('nothing below the API layer imports it', () => {
  const bad = below.flatMap((f) => importsOf(path.join(DAEMON, f)).filter((i) => i === 'api' || i.startsWith('api/')).map((i) => `${f} → ${i}`));
  assert.deepEqual(bad, []);
});

test('no service takes the Daemon: each gets the narrow interfaces it uses', () => {
  const bad = below.filter((f) => !STILL_TAKES_DAEMON.has(f))
    .flatMap((f) => importsOf(path.join(DAEMON, f)).filter((i) => i === 'daemon').map(() => f));
  assert.deepEqual(bad, []);
});

test('the container service makes no runtime of its own: it is given one', () => {
  const text = readFileSync(path.join(DAEMON, 'containers', 'service.ts'), 'utf8');
  assert.doesNotMatch(text, /new Runtime\(/);
  assert.doesNotMatch(text, /from '\.\.\/runtime\/runtime'/);
});
