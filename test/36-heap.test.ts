// Heap: a persistent allocator in a region. Unit checks of alloc/free/realloc, coalescing,
// the root, growth, refusals of bad offsets, check() finding leaks and damage; a seeded
// random sequence of allocations checked against a model (contents, no overlap, check()
// clean, committed state equal after reopening).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPool, Heap, isRegionError, openPool, type Pool } from '../src/index.js';
import { SimPrng } from '../src/pm/sim_prng.js';

process.env['REGIONS_QUIET'] = '1';
const seed = Number(process.env['REGIONS_SEED'] ?? 1 + Math.floor(Math.random() * 1e6));
const FIRST = 4096 + 256 + 8; // the first payload: page 0 is the application's, then the header

function withPool(body: (pool: Pool, file: string) => void): void {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-heap-'));
  const file = path.join(dir, 'heap.pool');
  const pool = createPool(file, { size: '64MiB', mode: 'exclusive' });
  try {
    body(pool, file);
  } finally {
    pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('alloc, free and realloc: sizes, reuse, coalescing into the wilderness', () =>
  withPool((pool) => {
    const heap = Heap.open(pool, 'h', { create: true, size: '1MiB' });
    const a = heap.alloc(10);
    const b = heap.alloc(100);
    const c = heap.alloc(1000);
    assert.equal(a, FIRST);
    assert.ok(heap.sizeOf(a) >= 10 && heap.sizeOf(b) >= 100 && heap.sizeOf(c) >= 1000);
    assert.ok(b >= a + heap.sizeOf(a) && c >= b + heap.sizeOf(b), 'no overlap');
    heap.free(b);
    assert.equal(heap.alloc(90), b, 'a freed block of the right class is reused');
    heap.free(b);
    heap.free(a);
    assert.equal(heap.check().problems.length, 0, 'a and b coalesced into one free block');
    assert.equal(heap.check().freeBytes, c - 8 - (FIRST - 8));
    heap.free(c);
    assert.equal(heap.stats().top, FIRST - 8, 'everything went back to the wilderness');
    const d = heap.alloc(64);
    heap.bytes.set([1, 2, 3, 4], d);
    const e = heap.realloc(d, 4000);
    assert.equal(e, d, 'the last block grows in place into the wilderness');
    const f = heap.alloc(8);
    const g = heap.realloc(e, 9000);
    assert.notEqual(g, e, 'a block with a neighbour moves');
    assert.deepEqual([...heap.bytes.subarray(g, g + 4)], [1, 2, 3, 4], 'its bytes move with it');
    assert.equal(heap.realloc(g, 10), g, 'shrinking stays in place');
    heap.free(f);
    heap.free(g);
    assert.deepEqual(heap.check(), { ok: true, problems: [], leaks: [], blocks: 0, allocatedBytes: 0, freeBytes: 0 });
  }));

test('bad offsets are INVALID and change nothing: a double free, an interior pointer, page 0', () =>
  withPool((pool) => {
    const heap = Heap.open(pool, 'h', { create: true, size: '64KiB' });
    const a = heap.alloc(100);
    heap.alloc(10);
    for (const bad of [a + 8, 0, 100, a - 8, 2 ** 40, 1.5]) {
      assert.throws(() => heap.free(bad), { code: 'INVALID' }, `free(${bad})`);
    }
    heap.free(a);
    assert.throws(() => heap.free(a), { code: 'INVALID' }, 'a double free');
    assert.throws(() => heap.realloc(a, 10), { code: 'INVALID' });
    assert.throws(() => (heap.root = a), { code: 'INVALID' });
    assert.throws(() => heap.alloc(-1), { code: 'INVALID' });
    assert.ok(heap.check().ok);
  }));

test('full: NO_SPACE and nothing changed; grow() makes room; the state survives a reopen', () =>
  withPool((pool, file) => {
    const heap = Heap.open(pool, 'h', { create: true, size: '64KiB' });
    const a = heap.alloc(30_000);
    heap.root = a;
    heap.bytes.fill(7, a, a + 30_000);
    assert.throws(() => heap.alloc(40_000), { code: 'NO_SPACE' });
    assert.ok(heap.check().ok);
    heap.pmsync();
    heap.grow();
    assert.equal(heap.end, 128 * 1024);
    const b = heap.alloc(40_000);
    heap.bytes.fill(9, b, b + 40_000);
    heap.pmsync();
    heap.close();
    pool.close();
    const again = openPool(file, { mode: 'exclusive' });
    try {
      const reopened = Heap.open(again, 'h');
      assert.equal(reopened.root, a);
      assert.equal(reopened.bytes[a + 29_999], 7);
      assert.equal(reopened.bytes[b + 39_999], 9);
      const report = reopened.check([b]);
      const { allocatedBytes } = report;
      assert.deepEqual(report, { ok: true, problems: [], leaks: [], blocks: 2, allocatedBytes, freeBytes: 0 });
      reopened.close();
    } finally {
      again.close();
    }
  }));

test('check finds leaks, references to freed blocks, and damaged tags', () =>
  withPool((pool) => {
    const heap = Heap.open(pool, 'h', { create: true, size: '64KiB' });
    const a = heap.alloc(100);
    const b = heap.alloc(100);
    const c = heap.alloc(100);
    heap.free(b);
    const report = heap.check([a]);
    assert.deepEqual(report.leaks, [c]);
    assert.equal(report.ok, false);
    const dangling = new RegExp(`reference to ${b}, which is not an allocated block`);
    assert.match(heap.check([a, b, c]).problems.join('\n'), dangling);
    assert.match(heap.check([a, a, c]).problems.join('\n'), /referenced twice/);
    heap.view.setUint32(c - 8, heap.view.getUint32(c - 8, true) + 16, true); // c claims more than it has
    assert.match(heap.check().problems.join('\n'), new RegExp(`block at ${c - 8}: size`));
  }));

test('discard puts the allocator back with the data', () =>
  withPool((pool) => {
    const heap = Heap.open(pool, 'h', { create: true, size: '64KiB', tracking: 'manual' });
    const a = heap.alloc(100);
    heap.pmsync();
    const before = heap.check([a]);
    heap.free(a);
    heap.alloc(5000);
    heap.discard();
    assert.deepEqual(heap.check([a]), before);
  }));

test('random alloc/free/realloc against a model: contents kept, no overlap, check clean, reopen equal', (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
  withPool((pool, file) => {
    const prng = new SimPrng(seed);
    const heap = Heap.open(pool, 'h', { create: true, size: '2MiB', tracking: 'manual' });
    const live = new Map<number, { length: number; fill: number }>();
    let fullSeen = 0;
    const fillBlock = (offset: number, length: number, fill: number): void => {
      heap.bytes.fill(fill, offset, offset + length);
      heap.touch(offset, Math.max(1, length));
    };
    for (let step = 0; step < 4000; step++) {
      const choice = prng.nextBelow(10);
      const offsets = [...live.keys()];
      if (choice < 5 || offsets.length === 0) {
        const length = prng.chance(1, 10) ? prng.nextBelow(40_000) : prng.nextBelow(600);
        let offset: number;
        try {
          offset = heap.alloc(length);
        } catch (error) {
          assert.ok(isRegionError(error, 'NO_SPACE'), String(error));
          assert.ok(heap.check(live.keys()).ok, `step ${step}: a full heap changed (seed ${seed})`);
          fullSeen++;
          continue;
        }
        assert.ok(!live.has(offset), `step ${step}: alloc returned a live offset ${offset} (seed ${seed})`);
        live.set(offset, { length, fill: step & 0xff });
        fillBlock(offset, length, step & 0xff);
      } else {
        const offset = offsets[prng.nextBelow(offsets.length)] ?? 0;
        const entry = live.get(offset);
        assert.ok(entry);
        const kept = heap.bytes.subarray(offset, offset + entry.length);
        assert.ok(kept.every((byte) => byte === entry.fill), `step ${step}: ${offset} overwritten (seed ${seed})`);
        live.delete(offset);
        if (choice < 8) heap.free(offset);
        else {
          const length = prng.nextBelow(3000);
          const moved = heap.realloc(offset, length);
          const keptLength = Math.min(length, entry.length);
          const bytes = heap.bytes.subarray(moved, moved + keptLength);
          assert.ok(bytes.every((byte) => byte === entry.fill), `step ${step}: realloc lost bytes (seed ${seed})`);
          live.set(moved, { length, fill: entry.fill });
          fillBlock(moved, length, entry.fill);
        }
      }
      if (step % 500 === 499 || process.env["HEAP_DEBUG"]) {
        const report = heap.check(live.keys());
        assert.ok(report.ok, `step ${step}: ${JSON.stringify(report)} (seed ${seed})`);
        heap.pmsync();
      }
    }
    heap.pmsync();
    t.diagnostic(`${live.size} blocks live at the end; ${fullSeen} allocations found the heap full`);
    const final = heap.check(live.keys());
    heap.close();
    pool.close();
    const again = openPool(file, { mode: 'exclusive' });
    try {
      const reopened = Heap.open(again, 'h');
      assert.deepEqual(reopened.check(live.keys()), final);
      for (const [offset, { length, fill }] of live) {
        assert.ok(reopened.bytes.subarray(offset, offset + length).every((b) => b === fill));
      }
      reopened.close();
    } finally {
      again.close();
    }
  });
});

test('a region that holds other data is refused, never formatted over, whatever its bytes at 4096', () =>
  withPool((pool) => {
    pool.create('raw', { size: '64KiB' });
    const data = new Uint8Array(8192).fill(0x5a);
    data.fill(0, 4096, 4096 + 64); // zeros where a heap's header would be
    pool.open('raw').write(0, data);
    assert.throws(() => Heap.open(pool, 'raw'), (error: unknown) => isRegionError(error, 'CORRUPT'));
    assert.deepEqual(pool.open('raw').read(0, 8192), data, 'the region is unchanged');
  }));

