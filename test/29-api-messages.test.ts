// What the API says and does at the edges a new user meets first: creating a pool in a
// directory that does not exist names the directory; a second exclusive open in the same
// process says so; an empty write commits nothing and does not fence.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPool, isRegionError, openPool } from '../src/index.js';

process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];

test('createPool in a missing directory names the directory, and creates nothing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-msg-'));
  try {
    const file = path.join(dir, 'missing', 'x.pool');
    const names = (e: unknown): boolean =>
      isRegionError(e, 'NOT_FOUND') && e.message.includes(`directory ${path.join(dir, 'missing')} does not exist`);
    assert.throws(() => createPool(file, { size: '4MiB', mode: 'exclusive' }), names);
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a second exclusive open in the same process says it is this process, and an empty write does not fence', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-msg-'));
  const file = path.join(dir, 'p.pool');
  const pool = createPool(file, { size: '4MiB', mode: 'exclusive' });
  try {
    const here = (e: unknown): boolean =>
      isRegionError(e, 'BUSY') && /already open in exclusive mode in this process/.test(e.message);
    assert.throws(() => openPool(file, { mode: 'exclusive' }), here);
    pool.create('r', { size: '8KiB' });
    const region = pool.open('r');
    const stats = region.write(0, new Uint8Array(0));
    assert.deepEqual([stats.pages, stats.fences, stats.linesFlushed], [0, 0, 0]);
    assert.equal(region.info().epoch, 0, 'nothing was committed');
  } finally {
    pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
