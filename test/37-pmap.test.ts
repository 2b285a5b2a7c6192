// PMap: the ordered map of issue 14's API in both modes. Key order and refusals, value
// encodings, one pmsync per put, delete and batch (the region's epoch), a throwing batch
// leaves nothing, range options, growth, handles; and a seeded stream of operations and
// batches checked against a Map model, then again after reopening the pool.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPool, isRegionError, openPool, PMap, type Pool, type PoolMode } from '../src/index.js';
import { SimPrng } from '../src/pm/sim_prng.js';
import { applyTo, assertEqualMap, compareKeys, Model, randomOp } from './fixtures/pmap-model.js';

process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];
const seed = Number(process.env['REGIONS_SEED'] ?? 1 + Math.floor(Math.random() * 1e6));
const OPERATIONS = Number(process.env['REGIONS_PMAP_OPERATIONS'] ?? 1500);

type Mode = Exclude<PoolMode, 'auto'>;

async function withPool(mode: Mode, body: (pool: Pool, file: string) => Promise<void> | void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-pmap-'));
  const file = path.join(dir, 'pmap.pool');
  const pool = createPool(file, { size: '128MiB', mode });
  const regiond = pool.server?.pid;
  try {
    await body(pool, file);
  } finally {
    pool.close();
    if (regiond !== undefined) process.kill(regiond, 'SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('keys: numbers < strings (code point order) < byte arrays (unsigned); refusals are INVALID', () =>
  withPool('exclusive', (pool) => {
    const map = PMap.open(pool, 'm', { create: true });
    const keys = [-Infinity, -1e300, -2.5, -0, 1, 2, 10, Infinity, '', 'a', 'ab', 'b', '\uffff', '\u{10000}', 'é',
      new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0, 0), Uint8Array.of(1), Uint8Array.of(255)];
    const shuffled = [...keys].reverse();
    map.batch(() => shuffled.forEach((key, i) => map.put(key, i)));
    const expected = [...keys].sort(compareKeys).map((key) => (Object.is(key, -0) ? 0 : key));
    assert.deepEqual([...map.range()].map(([key]) => key), expected);
    map.put(0, 'zero');
    assert.equal(map.get(-0), 'zero', '-0 and 0 are one key');
    for (const bad of [NaN, 'lone \ud800', {}, null, undefined, true, 'x'.repeat(5000)]) {
      assert.throws(() => map.put(bad as string, 1), { code: 'INVALID' }, `key ${String(bad).slice(0, 20)}`);
    }
    assert.equal(map.size, keys.length);
    assert.ok(map.check().ok);
  }));

test('values: structured clone by default, Uint8Array with binary; the encoding is the map\'s', () =>
  withPool('exclusive', (pool) => {
    const map = PMap.open(pool, 'm', { create: true });
    const value = { born: 1815, tags: new Set(['a']), when: new Date(0), big: 2n ** 70n, nested: new Map([[1, [2]]]) };
    map.put('ada', value);
    assert.deepEqual(map.get('ada'), value);
    assert.equal(map.get('nobody'), undefined);
    assert.throws(() => map.put('f', () => 1), { code: 'INVALID' });
    const bytes = PMap.open(pool, 'b', { create: true, encoding: 'binary' });
    bytes.put(1, Uint8Array.of(1, 2, 3));
    assert.deepEqual(bytes.get(1), Uint8Array.of(1, 2, 3));
    assert.throws(() => bytes.put(2, 'text' as unknown as Uint8Array), { code: 'INVALID' });
    bytes.close();
    assert.throws(() => PMap.open(pool, 'b', { encoding: 'v8' }), { code: 'INVALID' });
    assert.throws(() => PMap.open(pool, 'b', { encodnig: 'v8' } as never), /did you mean 'encoding'/);
    assert.equal(PMap.open(pool, 'b').encoding, 'binary');
  }));

for (const mode of ['exclusive', 'shared'] as const) {
  test(`${mode}: one pmsync per put, delete and batch; a throwing batch leaves nothing, also after reopening`, () =>
    withPool(mode, (pool, file) => {
      const map = PMap.open(pool, 'm', { create: true });
      const epoch = (): number => pool.stat('m').epoch;
      let before = epoch();
      map.put('a', 1);
      assert.equal(epoch(), before + 1, 'a put is one pmsync');
      before = epoch();
      assert.equal(map.batch(() => {
        for (let i = 0; i < 100; i++) map.put(i, 'x'.repeat(i));
        map.delete('a');
        assert.equal(map.get(5), 'xxxxx', 'a batch reads its own writes');
        return 'done';
      }), 'done');
      assert.equal(epoch(), before + 1, 'a batch is one pmsync');
      assert.equal(map.delete('absent'), false);
      before = epoch();
      assert.throws(() => map.batch(() => {
        map.put('b', 2);
        for (let i = 0; i < 50; i++) map.delete(i);
        throw new Error('abandon');
      }), /abandon/);
      assert.throws(() => map.batch((() => Promise.resolve(map.put('c', 3))) as () => unknown), { code: 'INVALID' });
      assert.equal(epoch(), before, 'nothing was committed');
      assert.equal(map.get('b'), undefined);
      assert.equal(map.get('c'), undefined);
      assert.equal(map.size, 100);
      assert.ok(map.check().ok, JSON.stringify(map.check().problems));
      map.close();
      pool.close();
      const again = openPool(file, { mode });
      try {
        const reopened = PMap.open(again, 'm');
        assert.equal(reopened.size, 100);
        assert.equal(reopened.get(99), 'x'.repeat(99));
        assert.equal(reopened.has('a'), false);
        reopened.close();
      } finally {
        again.close();
      }
    }));
}

test('range: start inclusive, end exclusive, reverse, limit, across many leaves', () =>
  withPool('exclusive', (pool) => {
    const map = PMap.open(pool, 'm', { create: true });
    map.batch(() => {
      for (let i = 0; i < 1000; i++) map.put(i, i * 2);
    });
    const keys = (options: object): unknown[] => [...map.range(options)].map(([key]) => key);
    assert.deepEqual(keys({ start: 10, end: 14 }), [10, 11, 12, 13]);
    assert.deepEqual(keys({ start: 10, end: 14, reverse: true }), [13, 12, 11, 10]);
    assert.deepEqual(keys({ start: 995 }), [995, 996, 997, 998, 999]);
    assert.deepEqual(keys({ end: 3, reverse: true }), [2, 1, 0]);
    assert.deepEqual(keys({ start: 500, limit: 3 }), [500, 501, 502]);
    assert.deepEqual(keys({ reverse: true, limit: 2 }), [999, 998]);
    assert.deepEqual(keys({ start: 5.5, end: 7.5 }), [6, 7]);
    assert.equal(keys({}).length, 1000);
    assert.deepEqual(keys({ start: 'a' }), []);
    assert.equal(keys({ reverse: true }).length, 1000);
    assert.throws(() => keys({ limit: -1 }), { code: 'INVALID' });
    assert.throws(() => keys({ strat: 1 }), /did you mean 'start'/);
  }));

test('handles: NOT_FOUND without create, BUSY twice in a process, CLOSED after close; growth when full', () =>
  withPool('exclusive', (pool) => {
    assert.throws(() => PMap.open(pool, 'none'), { code: 'NOT_FOUND' });
    const map = PMap.open(pool, 'm', { create: true, size: '64KiB' });
    assert.throws(() => PMap.open(pool, 'm'), { code: 'BUSY' });
    map.batch(() => {
      for (let i = 0; i < 300; i++) map.put(i, 'v'.repeat(1000)); // 300 KB: the 64 KiB region grows
    });
    assert.ok(pool.stat('m').sizeBytes >= 512 * 1024, `grown to ${pool.stat('m').sizeBytes}`);
    assert.equal(map.size, 300);
    assert.ok(map.check().ok);
    map.close();
    map.close();
    assert.throws(() => map.get(1), { code: 'CLOSED' });
    pool.create('plain', { size: '64KiB' });
    pool.open('plain').write(4096, Uint8Array.of(1, 2, 3, 4));
    assert.throws(() => PMap.open(pool, 'plain'), { code: 'CORRUPT' });
  }));

for (const mode of ['exclusive', 'shared'] as const) {
  test(`${mode}: generated operations and batches against a Map model, then reopened`, (t) =>
    withPool(mode, (pool, file) => {
      t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed}), ${OPERATIONS} operations`);
      const prng = new SimPrng(seed);
      const map = PMap.open(pool, 'm', { create: true, size: '256KiB' });
      const model = new Model();
      for (let done = 0; done < OPERATIONS; ) {
        if (prng.chance(1, 5)) {
          const ops = Array.from({ length: 1 + prng.nextBelow(30) }, () => randomOp(prng, 200));
          const abandon = prng.chance(1, 4);
          const run = (): void => {
            ops.forEach((op) => applyTo(map, op));
            if (abandon) throw new Error('abandoned');
          };
          if (abandon) assert.throws(() => map.batch(run), /abandoned/);
          else map.batch(run);
          if (!abandon) ops.forEach((op) => model.apply(op));
          done += ops.length;
        } else {
          const op = randomOp(prng, 200);
          applyTo(map, op);
          model.apply(op);
          done++;
        }
        if (prng.chance(1, 100)) assertEqualMap(map, model, `after ${done} operations (seed ${seed})`);
      }
      assertEqualMap(map, model, `at the end (seed ${seed})`);
      map.close();
      pool.close();
      const again = openPool(file, { mode });
      try {
        assertEqualMap(PMap.open(again, 'm'), model, `reopened (seed ${seed})`);
      } finally {
        again.close();
      }
    }));
}

test('a deep tree: 20,000 keys split inner nodes; deleting all of them in random order collapses it', (t) =>
  withPool('exclusive', (pool) => {
    t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
    const prng = new SimPrng(seed);
    const map = PMap.open(pool, 'm', { create: true, encoding: 'binary' });
    const keys = Array.from({ length: 20_000 }, (_, i) => `k${String(i * 7919 % 20_000).padStart(5, '0')}`);
    const value = Uint8Array.of(1, 2, 3);
    for (let i = 0; i < keys.length; i += 2000) {
      map.batch(() => keys.slice(i, i + 2000).forEach((key) => map.put(key, value)));
    }
    const full = map.check();
    assert.ok(full.ok, JSON.stringify(full.problems));
    assert.equal(full.entries, 20_000);
    assert.deepEqual([...map.range({ start: 'k12345', limit: 2 })].map(([key]) => key), ['k12345', 'k12346']);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = prng.nextBelow(i + 1);
      [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
    }
    for (let i = 0; i < keys.length; i += 2500) {
      map.batch(() => keys.slice(i, i + 2500).forEach((key) => assert.ok(map.delete(key))));
      assert.ok(map.check().ok, `after deleting ${i + 2500} (seed ${seed})`);
    }
    const empty = map.check();
    assert.equal(empty.entries, 0);
    assert.equal(empty.heap.blocks, 2, 'only the meta block and the empty root leaf are left');
  }));

for (const mode of ['exclusive', 'shared'] as const) {
  test(`read(fn) (${mode}): one consistent read of several keys; its errors reach the caller, nothing is written`, () =>
  withPool(mode, (pool) => {
    const map = PMap.open(pool, 'r', { create: true });
    map.batch(() => {
      map.put('a', 1);
      map.put('b', 2);
    });
    const epoch = pool.stat('r').epoch;
    assert.deepEqual(map.read(() => [map.get('a'), map.get('b'), [...map.range()].length]), [1, 2, 2]);
    assert.throws(() => map.read(() => { throw new RangeError('mine'); }), RangeError);
    assert.throws(() => map.read(42 as unknown as () => void), (error: unknown) => isRegionError(error, 'INVALID'));
    assert.equal(pool.stat('r').epoch, epoch, 'a read commits nothing');
    map.close();
  }));
}

