#!/usr/bin/env bash
# `npm run bench:peers`: installs what the benchmark compares with and draws with, by package
# name only, and checks that each one works (loads and opens a database; renders a plot):
#   PMDK libpmemobj (Debian package libpmemobj-dev; needs root and apt-get);
#   lmdb-js, better-sqlite3 12, classic-level (native addons; classic-level for bench/level.ts
#   only), vega and vega-lite: bench/package.json, pinned
#   by bench/package-lock.json, installed into bench/node_modules, never into the library's.
# Prints one "bench: ..." line per peer: ready, or why not (the suite then skips that peer).
# Exits 1 if any peer is missing. better-sqlite3 13 needs a newer Node than 20, hence 12.
set -u
cd "$(dirname "$0")"

# The check loads each npm peer from bench/node_modules and uses it for real: a native addon
# whose install script did not run (npm skips scripts it was not allowed to run) fails here.
check_modules() {
  node --input-type=module - "$1" <<'EOF'
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const require = createRequire(path.resolve('package.json'));
const verbose = process.argv[2] === 'verbose';
const version = (name) => JSON.parse(fs.readFileSync(path.join('node_modules', name, 'package.json'), 'utf8')).version;
const checks = {
  'lmdb-js': () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-lmdb-check-'));
    try {
      const db = require('lmdb').open({ path: dir, encoding: 'binary', keyEncoding: 'uint32' });
      db.putSync(1, Uint8Array.of(7));
      if (db.get(1)?.[0] !== 7) throw new Error('a value put did not read back');
      db.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return `lmdb-js ${version('lmdb')}`;
  },
  'better-sqlite3': () => {
    const db = new (require('better-sqlite3'))(':memory:');
    const sqlite = db.prepare('SELECT sqlite_version() AS v').get().v;
    db.close();
    return `better-sqlite3 ${version('better-sqlite3')} (SQLite ${sqlite})`;
  },
  'classic-level': async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-level-check-'));
    try {
      const db = new (require('classic-level').ClassicLevel)(dir);
      await db.put('k', 'v');
      if ((await db.get('k')) !== 'v') throw new Error('a value put did not read back');
      await db.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return `classic-level ${version('classic-level')}`;
  },
  'vega, vega-lite': async () => {
    const vega = await import(pathToFileURL(require.resolve('vega')).href);
    const vegaLite = await import(pathToFileURL(require.resolve('vega-lite')).href);
    const spec = { data: { values: [{ x: 1 }] }, mark: 'point', encoding: { x: { field: 'x', type: 'quantitative' } } };
    const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
    if (!(await view.toSVG()).startsWith('<svg')) throw new Error('vega rendered no SVG');
    view.finalize();
    return `vega ${version('vega')}, vega-lite ${version('vega-lite')}`;
  },
};
let missing = 0;
for (const [name, check] of Object.entries(checks)) {
  try {
    const ready = await check();
    if (verbose) console.log(`bench: ready: ${ready}`);
  } catch (error) {
    missing++;
    if (verbose) console.log(`bench: ${name} does not work (${String(error.message).split('\n')[0]}); it will be skipped`);
  }
}
process.exitCode = missing === 0 ? 0 : 1;
EOF
}

status=0
if [ -e /usr/include/libpmemobj.h ]; then
  echo "bench: ready: PMDK libpmemobj"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpmemobj-dev; } >/dev/null; then
    echo "bench: ready: PMDK libpmemobj (installed libpmemobj-dev)"
  else
    echo "bench: apt-get could not install libpmemobj-dev; PMDK will be skipped"
    status=1
  fi
else
  echo "bench: libpmemobj-dev is missing and installing it needs root and apt-get; PMDK will be skipped"
  status=1
fi

if ! check_modules quiet; then
  npm install --no-audit --no-fund >&2 || echo "bench: npm install in bench/ failed"
  if ! check_modules quiet; then
    # npm may have installed a native peer without running its build script: run it now.
    npm rebuild better-sqlite3 lmdb msgpackr-extract classic-level >&2 || echo "bench: npm rebuild in bench/ failed"
  fi
fi
check_modules verbose || status=1
exit "$status"
