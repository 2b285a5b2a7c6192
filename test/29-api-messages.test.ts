// What the API says and does at the edges a new user meets first: creating a pool in a
// directory that does not exist names the directory; a second exclusive open in the same
// process says so; an empty write commits nothing and does not fence; m.mechanism is typed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPool, isRegionError, type MappingApi, openPool } from '../src/index.js';

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

test('a mapping says which mechanism tracks it, through the public type', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-msg-'));
  const pool = createPool(path.join(dir, 'm.pool'), { size: '4MiB', mode: 'exclusive' });
  try {
    pool.create('r', { size: '8KiB' });
    const mappings: MappingApi[] = [pool.open('r').map({ tracking: 'manual' }), pool.open('r', { access: 'ro' }).map()];
    assert.deepEqual(mappings.map((m) => m.mechanism), ['manual', 'read-only']);
    const fault = pool.open('r').map({ tracking: 'fault' }).mechanism;
    assert.ok(fault === 'userfaultfd' || fault === 'mprotect', fault);
  } finally {
    pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('wait on a word that differs is not-equal even with no time to wait; wait and notify dirty no page', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-msg-'));
  const pool = createPool(path.join(dir, 'w.pool'), { size: '4MiB', mode: 'exclusive' });
  try {
    pool.create('r', { size: '16KiB' });
    const m = pool.open('r').map({ tracking: 'fault' });
    new Uint8Array(m.buffer)[0] = 1;
    assert.equal(m.pmsync().pages, 1);
    const results = [m.wait(1024, 5, 0), m.wait(1024, 0, 0), m.wait(1024, 5, 10)];
    assert.deepEqual(results, ['not-equal', 'timed-out', 'not-equal']);
    assert.equal(m.notify(2048), 0);
    assert.equal(m.pmsync().pages, 0, 'a futex on a page does not make it dirty');
  } finally {
    pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
