// The berth addon, typed by addon/index.d.ts. Only daemon/runtime/ imports this.
//
// The compiled file runs from dist/daemon/runtime/ (and tests may run it from elsewhere under the repo), so
// the addon is found by walking up from this file to the first directory holding
// addon/build/Release/berth.node, rather than by a fixed number of '..' that holds for one layout only.
// BERTH_ADDON names the file directly (an installed package, a debug build).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

type Addon = typeof import('../../addon/index');

const ADDON_REL = join('addon', 'build', 'Release', 'berth.node');

/** The absolute path of berth.node, or an Error saying where it was looked for. */
export function findAddon(start: string = __dirname): string {
  const override = process.env.BERTH_ADDON;
  if (override) return resolve(override);
  const tried: string[] = [];
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    const candidate = join(dir, ADDON_REL);
    if (existsSync(candidate)) return candidate;
    tried.push(candidate);
    if (dirname(dir) === dir) break;
  }
  throw new Error(`berth addon not found (run \`make addon\`); looked for ${tried.join(', ')}`);
}

export const native: Addon = require(findAddon()) as Addon;
