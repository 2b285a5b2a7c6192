// The benchmark's npm peers (lmdb-js, better-sqlite3, classic-level) and its plot renderer (vega, vega-lite)
// belong to a package of their own, bench/package.json, which `npm run bench:peers` installs
// into bench/node_modules: the library, its CLI and its tests install without them. They are
// loaded from there by path at run time, and typed where they are used by the few members the
// benchmark calls, so the benchmark compiles whether they are installed or not.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export type PeerModule = 'lmdb' | 'better-sqlite3' | 'classic-level' | 'vega' | 'vega-lite';

/** What to run when a peer module is missing. */
export const PEERS_COMMAND = 'npm run bench:peers';

/** dist/bench -> the repository's bench/package.json */
const BENCH_MANIFEST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'package.json');

const benchRequire = createRequire(BENCH_MANIFEST);

/** Loads a CommonJS peer (lmdb-js ships one, better-sqlite3 is one); throws if missing. */
export function requirePeer(name: PeerModule): unknown {
  return benchRequire(name) as unknown;
}

/** Imports an ES-module peer (vega, vega-lite) by its resolved file; throws if missing. */
export async function importPeer(name: PeerModule): Promise<unknown> {
  return (await import(pathToFileURL(benchRequire.resolve(name)).href)) as unknown;
}

/** The installed version of a peer module, or undefined. */
export function peerVersion(name: PeerModule): string | undefined {
  return moduleVersion(benchRequire, name);
}

/** The version of the module `name` as `require` finds it, or undefined. */
export function moduleVersion(require: NodeJS.Require, name: string): string | undefined {
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    return undefined;
  }
  // Walk up from the entry point: not every package exports its package.json.
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    const parsed = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
    if (parsed.name === name) return parsed.version;
  }
  return undefined;
}
