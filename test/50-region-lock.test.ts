// RegionLock: mutual exclusion among threads and processes, and a holder that dies. Processes
// share the lock through a file mapped MAP_SHARED (the working copy's mechanism) until shared
// mode runs; the region variants below run once openPool(path, { mode: 'shared' }) works.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createPool, isRegionError, openPool, RegionLock, SharedWords, type Pool } from '../src/index.js';
import { LOCK_WAIT_SLICE_MS, LOCK_WAITERS_BIT } from '../src/constants.js';
import { COUNTER_WORD, INSIDE_WORD } from './fixtures/lock-worker.js';

process.env['REGIONS_QUIET'] = '1'; // the tmpfs notice is no news in a test's output
const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'fixtures', 'lock-worker.js');
const WORKERS = 4;
const ITERATIONS = 2000;
/** A dead holder must be taken over well within this (2 slices plus scheduling). */
const TAKEOVER_MS_MAX = 1000;

function tempDir(): string {
  return fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-lock-'));
}

function withPool(body: (pool: Pool, dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = tempDir();
    const pool = createPool(path.join(dir, 'lock.pool'), { size: '8MiB', mode: 'exclusive' });
    try {
      await body(pool, dir);
    } finally {
      pool.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** A 64 KiB zero file on tmpfs: the lock's memory for processes, as a working copy would be. */
function sharedFile(dir: string): string {
  const file = path.join(dir, 'words');
  fs.writeFileSync(file, new Uint8Array(65536));
  return file;
}

function words(file: string): Int32Array {
  const bytes = fs.readFileSync(file);
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function child(args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [fixture, ...args], { stdio: 'pipe', env: { ...process.env, REGIONS_QUIET: '1' } });
}

/** Resolves with the first stdout line matching prefix; rejects if the child exits first. */
function lineFrom(proc: ChildProcessWithoutNullStreams, prefix: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith(prefix));
      if (line !== undefined) {
        proc.stdout.off('data', onData);
        resolve(line);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (chunk: Buffer) => void (err += chunk.toString()));
    proc.once('exit', (code, signal) => reject(new Error(`lock-worker exited (${code ?? signal}) before "${prefix}": ${err}`)));
  });
}

function sharedModeWorks(dir: string): boolean {
  const file = path.join(dir, 'probe.pool');
  createPool(file, { size: '1MiB', mode: 'exclusive' }).close();
  try {
    openPool(file, { mode: 'shared' }).close();
    return true;
  } catch (error) {
    if (isRegionError(error, 'UNSUPPORTED')) return false;
    throw error;
  }
}

test('lock, unlock, withLock: states, errors, not recursive, no promises', withPool((pool) => {
  pool.create('r', { size: '64KiB' });
  const m = pool.open('r').map();
  const lock = new RegionLock(m, 4);
  assert.equal(lock.holder(), 0);
  assert.equal(lock.lock(), 'acquired');
  assert.equal(lock.held, true);
  assert.equal(lock.holder(), process.pid);
  assert.throws(() => lock.lock(), (e) => isRegionError(e, 'BUSY'));
  lock.unlock();
  assert.equal(lock.held, false);
  assert.throws(() => lock.unlock(), (e) => isRegionError(e, 'INVALID'));
  assert.equal(lock.withLock((state) => `${state} ${lock.holder()}`), `acquired ${process.pid}`);
  assert.equal(lock.holder(), 0, 'withLock releases');
  assert.throws(() => lock.withLock(() => { throw new Error('boom'); }), /boom/);
  assert.equal(lock.holder(), 0, 'withLock releases when fn throws');
  assert.throws(() => lock.withLock(async () => 1), (e) => isRegionError(e, 'INVALID'));
  assert.equal(lock.holder(), 0);
  assert.throws(() => new RegionLock(m, 16383), (e) => isRegionError(e, 'INVALID'), 'two words must fit');
  assert.throws(() => new RegionLock(m, -1), (e) => isRegionError(e, 'INVALID'));
  assert.throws(() => new RegionLock(pool.open('r', { access: 'ro' }).map(), 0), (e) => isRegionError(e, 'PERMISSION'));
  m.pmsync();
}));

test(`mutual exclusion: ${WORKERS} worker threads on mapping.shared increment a plain counter`, withPool(async (pool) => {
  pool.create('r', { size: '64KiB' });
  const m = pool.open('r').map();
  const results = await Promise.all(Array.from({ length: WORKERS }, () => new Promise<number>((resolve, reject) => {
    const worker = new Worker(fixture, { workerData: { shared: m.shared, iterations: ITERATIONS } });
    worker.once('message', resolve);
    worker.once('error', reject);
  })));
  const counter = new Int32Array(m.shared);
  assert.deepEqual(results, Array(WORKERS).fill(0), 'no thread ever found another inside');
  assert.equal(counter[COUNTER_WORD], WORKERS * ITERATIONS);
  assert.equal(counter[INSIDE_WORD], 0);
  assert.equal(counter[0], 0, 'the lock is free at the end');
  const epoch = m.pmsync().epoch;
  assert.equal(new DataView(pool.open('r').read(COUNTER_WORD * 4, 4).buffer).getInt32(0, true), WORKERS * ITERATIONS);
  assert.equal(epoch, 1);
}));

test('a thread waiting on a held lock times out with TIMEOUT naming the holder', withPool((pool) => {
  pool.create('r', { size: '64KiB' });
  const m = pool.open('r').map();
  const mine = new RegionLock(m, 0);
  const other = new RegionLock(new SharedWords(m.shared), 0);
  mine.lock();
  const started = Date.now();
  assert.throws(() => other.lock(120), (e) => isRegionError(e, 'TIMEOUT') && e.message.includes(`pid ${process.pid}`));
  assert.ok(Date.now() - started >= 100);
  mine.unlock();
  assert.equal(other.lock(0), 'acquired', 'free again');
  other.unlock();
}));

test(`mutual exclusion: ${WORKERS} processes on a MAP_SHARED file increment a plain counter`, async () => {
  const dir = tempDir();
  try {
    const file = sharedFile(dir);
    const procs = Array.from({ length: WORKERS }, () => child(['file', file, 'increment', String(ITERATIONS)]));
    const lines = await Promise.all(procs.map((p) => lineFrom(p, 'done')));
    assert.deepEqual(lines, Array(WORKERS).fill('done 0'));
    const w = words(file);
    assert.equal(w[COUNTER_WORD], WORKERS * ITERATIONS);
    assert.equal(w[0], 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a holder SIGKILLed while holding: a waiting process takes the lock over (owner-died) in bounded time', async (t) => {
  const dir = tempDir();
  try {
    const file = sharedFile(dir);
    const holder = child(['file', file, 'hold']);
    await lineFrom(holder, 'locked');
    assert.equal(words(file)[0]! & ~LOCK_WAITERS_BIT, holder.pid);
    const waiter = child(['file', file, 'acquire', '10000']);
    await lineFrom(waiter, 'waiting');
    await new Promise((resolve) => setTimeout(resolve, 3 * LOCK_WAIT_SLICE_MS)); // it is asleep on the word
    const got = lineFrom(waiter, 'got');
    const killedAt = Date.now();
    holder.kill('SIGKILL');
    const [, state] = (await got).split(' ');
    const takeoverMs = Date.now() - killedAt;
    t.diagnostic(`taken over ${takeoverMs} ms after the SIGKILL`);
    assert.equal(state, 'owner-died');
    assert.ok(takeoverMs < TAKEOVER_MS_MAX, `took ${takeoverMs} ms`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock word left by a dead process (as after a crash) is taken over; one whose pid was reused too', withPool((pool) => {
  pool.create('r', { size: '64KiB' });
  const m = pool.open('r').map();
  const w = new Int32Array(m.shared);
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  w[0] = Number(gone.stdout) | LOCK_WAITERS_BIT;
  w[1] = 12345;
  const lock = new RegionLock(m, 0);
  let started = Date.now();
  assert.equal(lock.lock(2000), 'owner-died');
  assert.ok(Date.now() - started < TAKEOVER_MS_MAX);
  lock.unlock();
  assert.equal(w[1], 0);

  // A live process whose start time is not the recorded one: its pid was reused.
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    w[0] = sleeper.pid! | LOCK_WAITERS_BIT;
    w[1] = 1;
    started = Date.now();
    assert.equal(lock.lock(2000), 'owner-died');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= LOCK_WAIT_SLICE_MS && elapsed < TAKEOVER_MS_MAX, `reused pid taken over after ${elapsed} ms`);
    lock.unlock();
    // The same process, with its start time unknown (0): alive, so the lock stays held.
    w[0] = sleeper.pid! | LOCK_WAITERS_BIT;
    w[1] = 0;
    assert.throws(() => lock.lock(3 * LOCK_WAIT_SLICE_MS), (e) => isRegionError(e, 'TIMEOUT'));
    w[0] = 0;
  } finally {
    sleeper.kill('SIGKILL');
  }
}));

test(`shared mode: ${WORKERS} processes mapping one region increment a plain counter; a killed holder is taken over`, async (t) => {
  const dir = tempDir();
  try {
    if (!sharedModeWorks(dir)) {
      t.skip('shared mode (regiond) is not available yet: openPool(path, { mode: "shared" }) throws UNSUPPORTED');
      return;
    }
    const poolPath = path.join(dir, 'lock.pool');
    createPool(poolPath, { size: '8MiB', mode: 'exclusive' }).close();
    const pool = openPool(poolPath, { mode: 'shared' });
    try {
      pool.create('lock', { size: '64KiB' });
      const procs = Array.from({ length: WORKERS }, () => child(['region', poolPath, 'lock', 'increment', String(ITERATIONS)]));
      assert.deepEqual(await Promise.all(procs.map((p) => lineFrom(p, 'done'))), Array(WORKERS).fill('done 0'));
      const m = pool.open('lock').map();
      assert.equal(new Int32Array(m.shared)[COUNTER_WORD], WORKERS * ITERATIONS);
      const holder = child(['region', poolPath, 'lock', 'hold']);
      await lineFrom(holder, 'locked');
      const waiter = child(['region', poolPath, 'lock', 'acquire', '10000']);
      await lineFrom(waiter, 'waiting');
      const got = lineFrom(waiter, 'got');
      const killedAt = Date.now();
      holder.kill('SIGKILL');
      assert.equal((await got).split(' ')[1], 'owner-died');
      assert.ok(Date.now() - killedAt < TAKEOVER_MS_MAX);
      m.unmap();
    } finally {
      pool.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
