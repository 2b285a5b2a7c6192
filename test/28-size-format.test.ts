// Sizes for people: the largest unit reached, exact where exact, and never rounded into a size
// that reads as exact (a 4097-byte region is not "4.0 KiB").
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatSize, parseSize } from '../src/index.js';

test('formatSize: the largest unit, exact or visibly not, and parseSize reads exact ones back', () => {
  const cases: [number, string][] = [
    [0, '0 B'], [1023, '1023 B'], [1024, '1 KiB'], [4097, '4.001 KiB'], [66_584_576, '63.5 MiB'],
    [1.5 * 2 ** 30, '1.5 GiB'], [64 * 2 ** 20, '64 MiB'], [2 ** 30 + 1, '1073741825 B'], [3 * 2 ** 50, '3 PiB'],
  ];
  for (const [bytes, shown] of cases) assert.equal(formatSize(bytes), shown, String(bytes));
  for (const bytes of [1024, 66_584_576, 1.5 * 2 ** 30, 2 ** 30 + 1]) {
    assert.equal(parseSize(formatSize(bytes).replace(' ', ''), 'size'), bytes, 'an exact size reads back');
  }
});

test('a size of 0 or no size at all is a usage error (exit 2) and creates nothing', () => {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'regions.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-size-'));
  try {
    const pool = path.join(dir, 'p.pool');
    for (const size of ['0', 'abc', '-1']) {
      const env = { ...process.env, CI: 'true' };
      const run = spawnSync(process.execPath, [bin, '-p', pool, 'mkpool', '--size', size], { encoding: 'utf8', env });
      assert.equal(run.status, 2, `--size ${size}: ${run.stderr}`);
      assert.match(run.stderr, /pool size/);
    }
    assert.equal(fs.existsSync(pool), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
