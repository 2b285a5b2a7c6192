// The API's promises that hold in both modes, from one source: options are checked strictly
// (a misspelt key is INVALID naming the closest valid one), pool handles are independent of
// each other, check({ repair }) is refused on an open pool rather than ignored, and
// region.write on a mapped region goes through the working copy.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { checkPool, createPool, isRegionError, openPool, type Pool, type PoolMode } from '../src/index.js';

const MODES = ['exclusive', 'shared'] as const;
process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];

function withPool(mode: Exclude<PoolMode, 'auto'>, body: (pool: Pool, file: string) => void): () => void {
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-api-'));
    const file = path.join(dir, 'api.pool');
    const pool = createPool(file, { size: '16MiB', mode });
    const regiond = pool.server?.pid;
    try {
      body(pool, file);
    } finally {
      pool.close();
      if (regiond !== undefined) process.kill(regiond, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** INVALID whose message names the unknown key and suggests `near`. */
function unknownOption(key: string, near: string): (e: unknown) => boolean {
  return (e) => isRegionError(e, 'INVALID') && e.message.includes(`unknown option '${key}'`) && e.message.includes(`did you mean '${near}'`);
}

test('misspelt options of createPool, openPool and checkPool are INVALID, naming the closest key; nothing is created', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-api-'));
  const file = path.join(dir, 'typo.pool');
  try {
    assert.throws(() => createPool(file, { size: '16MiB', mdoe: 'exclusive' } as never), unknownOption('mdoe', 'mode'));
    assert.equal(fs.existsSync(file), false, 'no pool file, no regiond for a misspelt option');
    assert.throws(() => createPool(file, { size: '16MiB', mode: 'exclusive', access: { socketMdoe: 0o660 } } as never), unknownOption('socketMdoe', 'socketMode'));
    createPool(file, { size: '16MiB', mode: 'exclusive' }).close();
    assert.throws(() => openPool(file, { mdoe: 'exclusive' } as never), unknownOption('mdoe', 'mode'));
    assert.throws(() => checkPool(file, { repiar: true } as never), unknownOption('repiar', 'repair'));
    assert.throws(() => openPool(file, { zzzzzz: 1 } as never), (e) => isRegionError(e, 'INVALID') && !e.message.includes('did you mean'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

for (const mode of MODES) {
  test(`${mode}: misspelt options of create, open, map and check are INVALID; nothing is done`, withPool(mode, (pool) => {
    assert.throws(() => pool.create('r', { size: '64KiB', mdoe: 0o644 } as never), unknownOption('mdoe', 'mode'));
    assert.deepEqual(pool.list(), []);
    pool.create('r', { size: '64KiB' });
    assert.throws(() => pool.open('r', { acess: 'ro' } as never), unknownOption('acess', 'access'));
    const region = pool.open('r');
    assert.throws(() => region.map({ trakcing: 'scan' } as never), unknownOption('trakcing', 'tracking'));
    assert.throws(() => pool.check({ repiar: true } as never), unknownOption('repiar', 'repair'));
  }));

  test(`${mode}: check({ repair: true }) on an open pool is refused, not ignored`, withPool(mode, (pool) => {
    assert.equal(pool.check().ok, true);
    assert.throws(() => pool.check({ repair: true }), (e) => isRegionError(e, 'INVALID') && /needs pool .* closed/.test(e.message));
  }));

  test(`${mode}: region.write on a mapped region is seen by the mapping and commits its other stores too`, withPool(mode, (pool) => {
    pool.create('r', { size: '64KiB' });
    const region = pool.open('r');
    const m = region.map();
    const bytes = new Uint8Array(m.buffer);
    bytes[100] = 7; // a store not yet pmsynced
    const stats = region.write(5000, Uint8Array.of(1, 2, 3));
    assert.equal(stats.pages, 2, 'the written page and the stored one, in one commit');
    assert.deepEqual([...bytes.subarray(5000, 5003)], [1, 2, 3], 'the mapping sees the write at once');
    assert.equal(region.read(100, 1)[0], 7, 'the pending store was committed with it');
    m.unmap();
    region.write(6000, Uint8Array.of(9)); // unmapped: the copy may still hold the region's pages
    assert.equal(region.read(6000, 1)[0], 9);
    assert.equal(region.map().buffer.byteLength, 64 * 1024);
  }));
}

test('shared: two pool handles of one file in one process are independent: closing one leaves the other\'s mappings', withPool('shared', (pool, file) => {
  pool.create('r', { size: '64KiB' });
  const other = openPool(file, { mode: 'shared' });
  try {
    const mine = pool.open('r').map();
    const theirs = other.open('r').map();
    new Uint8Array(theirs.buffer)[1] = 5;
    assert.equal(new Uint8Array(mine.buffer)[1], 5, 'one working copy');
    pool.close();
    assert.equal(mine.buffer.byteLength, 0, 'the closed pool\'s mappings are unmapped');
    assert.equal(theirs.buffer.byteLength, 64 * 1024, 'the other pool\'s are not');
    new Uint8Array(theirs.buffer)[2] = 6;
    assert.equal(theirs.pmsync().pages, 1);
    assert.deepEqual([...other.open('r').read(1, 2)], [5, 6]);
  } finally {
    other.close();
  }
}));
