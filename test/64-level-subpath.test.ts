// abstract-level is a dependency of the 'region-system/level' entry only: a program that
// imports the package root must not load it (nor anything of the Level ecosystem), while the
// subpath does (the control that shows the check can see a load).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * What importing `specifier` exports, and the CommonJS modules of node_modules it loads (an ESM
 * import of a CommonJS module goes through require's cache).
 */
function load(specifier: string): { exports: string[]; loaded: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const entry = await import(process.argv[1]);
    const loaded = Object.keys(require.cache).filter((file) => file.includes('/node_modules/'));
    console.log(JSON.stringify({ exports: Object.keys(entry), loaded }));`;
  const args = ['--input-type=module', '-e', script, specifier];
  const result = spawnSync(process.execPath, args, { cwd: packageRoot, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const { exports, loaded } = JSON.parse(result.stdout) as { exports: string[]; loaded: string[] };
  return { exports, loaded: loaded.map((file) => path.relative(packageRoot, file)) };
}

test('importing the package root loads no Level module', () => {
  const { exports, loaded } = load('region-system');
  assert.ok(exports.includes('openPool'), 'the root loaded');
  assert.deepEqual(loaded.filter((file) => /level|module-error|maybe-combine-errors/.test(file)), []);
});

test('importing region-system/level loads abstract-level and exports RegionLevel', () => {
  const { exports, loaded } = load('region-system/level');
  assert.deepEqual(exports, ['RegionLevel']);
  const found = loaded.some((file) => file.includes('node_modules/abstract-level/'));
  assert.ok(found, `abstract-level not among ${loaded.join(', ')}`);
});
