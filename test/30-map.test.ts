import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createPool, isRegionError, openPool, type Pool, type PoolMode, type Tracking } from '../src/index.js';

// Every test runs in both modes from this one source: the kernel in this process
// ('exclusive') and in the pool's regiond ('shared'); the API promises the same behaviour.
const here = path.dirname(fileURLToPath(import.meta.url));
const TRACKERS: Tracking[] = ['fault', 'scan', 'manual'];
const MODES = ['exclusive', 'shared'] as const;
process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];

function withPool(mode: Exclude<PoolMode, 'auto'>, body: (pool: Pool, file: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-map-'));
    const file = path.join(dir, 'map.pool');
    const pool = createPool(file, { size: '32MiB', mode });
    const regiond = pool.server?.pid;
    try {
      await body(pool, file);
    } finally {
      pool.close();
      if (regiond !== undefined) process.kill(regiond, 'SIGTERM'); // it would leave when idle; the test is done with it now
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

for (const mode of MODES) {

  for (const tracking of TRACKERS) {
    test(`${mode}, ${tracking}: stores persist through pmsync and survive reopening; nothing else does`, withPool(mode, (pool, file) => {
      pool.create('r', { size: '1MiB' });
      const m = pool.open('r').map({ tracking });
      const bytes = new Uint8Array(m.buffer);
      bytes[1] = 11;
      bytes[300_000] = 22;
      if (tracking === 'manual') m.markDirty(0, 300_001);
      const stats = m.pmsync();
      assert.equal(stats.epoch, 1);
      assert.ok(stats.fences <= 2);
      bytes[2] = 33; // never pmsynced
      pool.close();
      const again = openPool(file, { mode });
      const committed = again.open('r').read();
      assert.equal(committed[1], 11);
      assert.equal(committed[300_000], 22);
      assert.equal(committed[2], 0, 'a store without pmsync is not durable');
      again.close();
    }));

    test(`${mode}, ${tracking}: an empty pmsync does not fence; only dirty pages are committed`, withPool(mode, (pool) => {
      pool.create('r', { size: '1MiB' });
      const m = pool.open('r').map({ tracking });
      const empty = m.pmsync();
      assert.equal(empty.pages, 0);
      assert.equal(empty.fences, 0);
      new Uint8Array(m.buffer)[4096 * 7] = 1;
      if (tracking === 'manual') m.markDirty(4096 * 7, 1);
      assert.equal(m.pmsync().pages, 1);
      assert.equal(m.pmsync().pages, 0);
    }));

    test(`${mode}, ${tracking}: fs.readSync into a mapping after prepareWrite is committed`, withPool(mode, (pool, file) => {
      pool.create('r', { size: '64KiB' });
      const m = pool.open('r').map({ tracking });
      m.pmsync();
      const source = path.join(path.dirname(file), 'source.bin');
      fs.writeFileSync(source, Buffer.alloc(5000, 0x5a));
      const fd = fs.openSync(source, 'r');
      m.prepareWrite(8192, 5000);
      assert.equal(fs.readSync(fd, new Uint8Array(m.buffer), 8192, 5000, 0), 5000);
      fs.closeSync(fd);
      assert.equal(m.pmsync().pages, 2);
      const committed = pool.open('r').read(8192, 5000);
      assert.ok(committed.every((b) => b === 0x5a));
    }));
  }

  test(`${mode}: several mappings of one region see each other at once; a pmsync of one commits all`, withPool(mode, (pool) => {
    pool.create('r', { size: '256KiB' });
    const region = pool.open('r');
    const a = region.map();
    const b = region.map({ offset: 64 * 1024, length: 64 * 1024 });
    new Uint8Array(a.buffer)[64 * 1024 + 5] = 42;
    assert.equal(new Uint8Array(b.buffer)[5], 42);
    new Uint8Array(b.buffer)[100] = 43;
    assert.equal(new Uint8Array(a.buffer)[64 * 1024 + 100], 43);
    assert.equal(a.pmsync().pages, 1);
    const committed = region.read(64 * 1024, 101);
    assert.equal(committed[5], 42);
    assert.equal(committed[100], 43);
  }));

  test(`${mode}: unmap detaches the buffer; pending stores are kept for the next pmsync`, withPool(mode, (pool) => {
    pool.create('r', { size: '64KiB' });
    const region = pool.open('r');
    const m = region.map();
    const bytes = new Uint8Array(m.buffer);
    bytes[10] = 9;
    m.unmap();
    assert.equal(m.buffer.byteLength, 0);
    assert.throws(() => new Uint8Array(m.buffer, 0, 1));
    assert.equal(bytes[10], undefined);
    assert.equal(new Uint8Array(m.shared)[10], 0, 'the SharedArrayBuffer reads zeros after unmap');
    assert.throws(() => m.pmsync(), (e) => isRegionError(e, 'CLOSED'));
    assert.equal(region.pmsync().pages, 1);
    assert.equal(region.read(10, 1)[0], 9);
  }));

  test(`${mode}: errors: bad windows, busy regions, read-only pmsync`, withPool(mode, (pool) => {
    pool.create('r', { size: '64KiB' });
    const region = pool.open('r');
    assert.throws(() => region.map({ offset: 100 }), (e) => isRegionError(e, 'INVALID'));
    assert.throws(() => region.map({ offset: 0, length: 128 * 1024 }), (e) => isRegionError(e, 'INVALID'));
    assert.throws(() => region.map({ tracking: 'bogus' as Tracking }), (e) => isRegionError(e, 'INVALID'));
    const m = region.map();
    assert.throws(() => pool.remove('r'), (e) => isRegionError(e, 'BUSY'));
    assert.throws(() => pool.resize('r', '128KiB'), (e) => isRegionError(e, 'BUSY'));
    assert.throws(() => m.markDirty(60_000, 10_000), (e) => isRegionError(e, 'INVALID'));
    m.unmap();
    pool.resize('r', '128KiB');
    const ro = pool.open('r', { access: 'ro' });
    const view = ro.map();
    assert.throws(() => view.pmsync(), (e) => isRegionError(e, 'PERMISSION'));
    assert.throws(() => ro.write(0, new Uint8Array(1)), (e) => isRegionError(e, 'PERMISSION'));
  }));

  test(`${mode}: region.write while mapped goes through the working copy`, withPool(mode, (pool) => {
    pool.create('r', { size: '64KiB' });
    const region = pool.open('r');
    const m = region.map();
    region.write(5000, Uint8Array.of(1, 2, 3));
    assert.deepEqual([...new Uint8Array(m.buffer, 5000, 3)], [1, 2, 3]);
    assert.deepEqual([...region.read(5000, 3)], [1, 2, 3]);
  }));

  test(`${mode}: a store into a read-only mapping stops the process with a message naming region and offset`, withPool(mode, (pool, file) => {
    pool.create('ro', { size: '64KiB' });
    pool.close();
    const child = spawnSync(process.execPath, [path.join(here, 'fixtures', 'map-readonly-store.js'), file, mode], { encoding: 'utf8', env: { ...process.env, REGIONS_QUIET: '1' } });
    assert.equal(child.signal, 'SIGSEGV');
    assert.match(child.stdout, /read 0/);
    assert.doesNotMatch(child.stdout, /stored/);
    assert.match(child.stderr, /regions: store into read-only region "ro" at offset 8200/);
    // reopen for the wrapper's close()
    Object.assign(pool, openPool(file, { mode }));
  }));

  for (const tracking of TRACKERS) {
    test(`${mode}, ${tracking}: a worker thread's stores are frozen by pmsync: every snapshot is one instant`, withPool(mode, async (pool) => {
      pool.create('r', { size: '64KiB' });
      const region = pool.open('r');
      const m = region.map({ tracking });
      const worker = new Worker(path.join(here, 'fixtures', 'map-worker.js'), { workerData: { shared: m.shared, pageA: 3, pageB: 9 } });
      await new Promise((resolve) => worker.once('message', resolve));
      let checked = 0;
      for (let i = 0; i < 200; i++) {
        if (tracking === 'manual') m.markDirty(0, 64 * 1024);
        m.pmsync();
        const committed = new DataView(region.read().buffer);
        const a = committed.getInt32(3 * 4096, true);
        const b = committed.getInt32(9 * 4096, true);
        assert.ok(a === b || a === b + 1, `snapshot ${i}: page A ${a}, page B ${b}: A is stored first, so A - B must be 0 or 1`);
        if (a > 0) checked++;
      }
      Atomics.store(new Int32Array(m.shared), 0, 1);
      const count = await new Promise((resolve) => worker.once('message', resolve));
      await worker.terminate();
      assert.ok(checked > 0 && (count as number) > 0);
    }));
  }
}
