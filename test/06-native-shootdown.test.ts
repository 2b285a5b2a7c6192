// The cross-address-space freeze (native/shootdown.c; DESIGN.md section 6, "the paper's IPI").
// This file plays regiond: it makes a shared working copy (a control area + 64 data pages, on
// /dev/shm), and child processes (fixtures/native-shootdown-mapper.ts) map it, register
// their data mappings in shared mode, and store forever into two pages A then B (A = n, then
// B = n). A shootdown raises the request sequence, signals every child and waits for every
// acknowledgement; from then on no child can store: two reads agree and A - B is 0 or 1.
// Then the dirty bits must name what changed, and after the release every child goes on.
// Also: a stopped child (timeout, then it catches up), a regiond that dies while its mappers
// are frozen (they go on), a mapper killed during a shootdown (regiond stops waiting), and
// the round-trip latency for 1, 2, 4 and 8 processes.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { addon, type MapHandle, type SharedMechanism } from '../src/arch/addon.js';
import { SHOOTDOWN_SIGNAL } from '../src/constants.js';
import { CONTROL_MAGIC, CONTROL_VERSION, controlBytes, MAPPER_SLOTS, SLOT_WORD, slotWord, takeBits, WORD } from '../src/map/control_area.js';

const PAGE = 4096;
const PAGES = 64;
const CONTROL = controlBytes(PAGES);
const ROUNDS = 200;
const ACK_TIMEOUT_MS = 5000;
const here = path.dirname(fileURLToPath(import.meta.url));
const MAPPER = path.join(here, 'fixtures', 'native-shootdown-mapper.js');
const REGIOND = path.join(here, 'fixtures', 'native-shootdown-regiond.js');
const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const UFFD = addon.uffdAvailable();

const children = new Set<ChildProcess>();
const files = new Set<string>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const file of files) fs.rmSync(file, { force: true });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(1);
  }
}

function errorWith(code: string): (error: unknown) => boolean {
  return (error: unknown) => {
    const e = error as { code?: unknown; message?: unknown };
    assert.equal(e.code, code, `expected code ${code}, got ${String(e.code)}: ${String(e.message)}`);
    return true;
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function processState(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

let copies = 0;

/** A shared working copy, mapped whole by this process (regiond's view). */
class Copy {
  readonly path = path.join(shm, `regions-shootdown-${process.pid}-${copies++}`);
  readonly handle: MapHandle;
  readonly words: Int32Array;
  readonly data: Int32Array;

  constructor() {
    fs.writeFileSync(this.path, '');
    files.add(this.path);
    fs.truncateSync(this.path, CONTROL + PAGES * PAGE);
    const fd = fs.openSync(this.path, 'r+');
    this.handle = addon.map(fd, 0, CONTROL + PAGES * PAGE, true, false);
    fs.closeSync(fd);
    this.words = new Int32Array(addon.sharedBuffer(this.handle, 0, CONTROL));
    this.data = new Int32Array(addon.sharedBuffer(this.handle, CONTROL, PAGES * PAGE));
    Atomics.store(this.words, WORD.magic, CONTROL_MAGIC);
    Atomics.store(this.words, WORD.version, CONTROL_VERSION);
    Atomics.store(this.words, WORD.regiondPid, process.pid);
    Atomics.store(this.words, WORD.pages, PAGES);
    Atomics.store(this.words, WORD.slots, MAPPER_SLOTS);
  }

  /** The first word of a data page. */
  word(page: number): number {
    return Atomics.load(this.data, (page * PAGE) / 4);
  }

  ack(slot: number): number {
    return Atomics.load(this.words, slotWord(slot, SLOT_WORD.ackSeq));
  }

  request(): number {
    const seq = (Atomics.load(this.words, WORD.requestSeq) + 1) | 0;
    Atomics.store(this.words, WORD.requestSeq, seq);
    return seq;
  }

  release(seq: number): void {
    Atomics.store(this.words, WORD.releaseSeq, seq);
    addon.futexWake(this.words, WORD.releaseSeq * 4, Infinity);
  }

  /** The dirty pages since the last take, or every page after an overflow. */
  take(): { pages: Set<number>; overflow: boolean } {
    const pages = new Set(takeBits(this.words, PAGES));
    return { pages, overflow: Atomics.exchange(this.words, WORD.overflow, 0) !== 0 };
  }

  close(): void {
    addon.unmap(this.handle);
    fs.rmSync(this.path, { force: true });
    files.delete(this.path);
  }
}

interface Mapper {
  child: ChildProcess;
  pid: number;
  slot: number;
  mechanism: SharedMechanism;
  /** [A, B] of the main thread, then of the worker thread (in the second mapping if twin). */
  pairs: Array<[number, number]>;
  pageA: number; // the main thread's A
}

function firstLine(child: ChildProcess, what: string, timeoutMs = 20_000): Promise<string> {
  const lines = readline.createInterface({ input: child.stdout! });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}) before its first line; stderr: ${stderr}`));
    });
  });
}

/** Mechanisms round-robin; odd slots map the copy as two mappings (one group of two). */
function mechanismOf(slot: number): SharedMechanism {
  const choice = (['uffd', 'segv', 'none'] as const)[slot % 3]!;
  return choice === 'uffd' && !UFFD ? 'segv' : choice;
}

async function spawnMapper(copy: Copy, slot: number, mechanism = mechanismOf(slot), pace: 'busy' | 'paced' = 'busy'): Promise<Mapper> {
  const pairs: Array<[number, number]> = [
    [1 + 2 * slot, 2 + 2 * slot],
    [PAGES / 2 + 1 + 2 * slot, PAGES / 2 + 2 + 2 * slot],
  ];
  const shape = slot % 2 === 1 ? 'twin' : 'single';
  const child = spawn(process.execPath, [MAPPER, copy.path, String(slot), mechanism, ...pairs.flat().map(String), shape, pace], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const line = await firstLine(child, `mapper ${slot} (${mechanism}, ${shape})`);
  const match = /^ready (\d+)$/.exec(line);
  assert.ok(match, `mapper ${slot} says "${line}"`);
  Atomics.store(copy.words, slotWord(slot, SLOT_WORD.pid), child.pid!);
  return { child, pid: Number(match[1]), slot, mechanism, pairs, pageA: pairs[0]![0] };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  children.delete(child);
}

/** regiond's wait: every slot acknowledges seq, or the deadline passes. Returns the slots missing. */
function awaitAcks(copy: Copy, seq: number, slots: number[], timeoutMs: number): number[] {
  const deadline = performance.now() + timeoutMs;
  const missing: number[] = [];
  for (const slot of slots) {
    const word = slotWord(slot, SLOT_WORD.ackSeq);
    for (;;) {
      const acked = Atomics.load(copy.words, word);
      if (acked === seq) break;
      const left = deadline - performance.now();
      if (left <= 0) {
        missing.push(slot);
        break;
      }
      addon.futexWait(copy.words, word * 4, acked, Math.min(left, 50));
    }
  }
  return missing;
}

function spin(us: number): void {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function storing(copy: Copy, mappers: Mapper[]): number[][] {
  return mappers.map((m) => m.pairs.map(([a]) => copy.word(a)));
}

/** Every thread of every mapper stored since `before`. */
function allMoved(copy: Copy, mappers: Mapper[], before: number[][]): boolean {
  return mappers.every((m, i) => m.pairs.every(([a], j) => copy.word(a) !== before[i]![j]));
}

/**
 * `count` shootdowns with every check; returns each round trip (signal -> all acks) in µs.
 */
async function rounds(copy: Copy, mappers: Mapper[], count: number): Promise<number[]> {
  const latencies: number[] = [];
  const pairs = mappers.flatMap((m) => m.pairs.map((pair, thread) => ({ m, pair, thread })));
  let last = pairs.map(() => [0, 0]);
  for (let round = 0; round < count; round++) {
    const seq = copy.request();
    const start = process.hrtime.bigint();
    for (const m of mappers) process.kill(m.pid, SHOOTDOWN_SIGNAL);
    const missing = awaitAcks(copy, seq, mappers.map((m) => m.slot), ACK_TIMEOUT_MS);
    latencies.push(Number(process.hrtime.bigint() - start) / 1000);
    assert.deepEqual(missing, [], `round ${round}: slots ${missing.join(', ')} did not acknowledge`);
    const first = pairs.map(({ pair }) => pair.map((page) => copy.word(page)));
    if (round % 20 === 0) await sleep(5);
    else spin(200);
    const dirty = copy.take();
    pairs.forEach(({ m, pair, thread }, i) => {
      const [a, b] = first[i]!;
      const what = `round ${round}, mapper ${m.slot} (${m.mechanism}), ${thread === 0 ? 'main thread' : 'worker'}`;
      assert.deepEqual(pair.map((page) => copy.word(page)), [a, b], `${what}: a store landed while frozen`);
      assert.ok(((a! - b!) | 0) === 0 || ((a! - b!) | 0) === 1, `${what}: A = ${a}, B = ${b}: B ran ahead or A was lost`);
      if (m.mechanism === 'none') return;
      pair.forEach((page, k) => {
        if (first[i]![k] !== last[i]![k]) assert.ok(dirty.overflow || dirty.pages.has(page), `${what}: page ${page} changed but is not marked`);
      });
    });
    last = first;
    const before = storing(copy, mappers);
    copy.release(seq);
    await until(() => allMoved(copy, mappers, before), `round ${round}: every thread of every mapper storing again`);
  }
  return latencies;
}

test('shootdownInstall and sharedRegister check their arguments; a process serves its own shootdown', async () => {
  const copy = new Copy();
  const fd = fs.openSync(copy.path, 'r+');
  const control = addon.map(fd, 0, CONTROL, true, false);
  const data = addon.map(fd, CONTROL, PAGES * PAGE, true, false);
  const readOnly = addon.map(fd, CONTROL, PAGE, false, false);
  fs.closeSync(fd);
  const options = { control, slot: 5, firstPage: 0, mechanism: 'segv' as const, label: 'self' };
  assert.throws(() => addon.sharedRegister(data, options), errorWith('EINVAL')); // no handler yet
  assert.throws(() => addon.shootdownInstall(5), errorWith('ERANGE')); // not a real-time signal
  addon.shootdownInstall(SHOOTDOWN_SIGNAL);
  addon.shootdownInstall(SHOOTDOWN_SIGNAL); // once per process: the same again is a no-op
  assert.throws(() => addon.shootdownInstall(SHOOTDOWN_SIGNAL + 1), errorWith('EINVAL'));
  assert.throws(() => addon.sharedRegister(data, { ...options, slot: 63 }), errorWith('ERANGE'));
  assert.throws(() => addon.sharedRegister(data, { ...options, firstPage: 8 * (CONTROL - 4096) }), errorWith('ERANGE'));
  assert.throws(() => addon.sharedRegister(data, { ...options, control: data }), errorWith('EINVAL'));
  assert.throws(() => addon.sharedRegister(readOnly, options), errorWith('EINVAL'));
  assert.throws(() => addon.sharedRegister(data, { ...options, control: {} as MapHandle }), TypeError);
  assert.throws(() => addon.sharedRegister(data, { ...options, mechanism: 'readonly' as SharedMechanism }), TypeError);

  addon.sharedRegister(data, { ...options, firstPage: 0 });
  assert.throws(() => addon.sharedRegister(data, options), errorWith('EEXIST'));
  assert.throws(() => addon.trackFreeze(data), errorWith('EINVAL'));
  const view = new Int32Array(addon.sharedBuffer(data, 0, PAGES * PAGE));
  Atomics.store(view, (3 * PAGE) / 4, 33); // a first store: marked in the shared bitmap
  assert.deepEqual([...copy.take().pages], [3]);
  assert.equal(addon.trackStatus(data).faults, 1);

  const seq = copy.request();
  process.kill(process.pid, SHOOTDOWN_SIGNAL);
  assert.deepEqual(awaitAcks(copy, seq, [5], ACK_TIMEOUT_MS), []);
  assert.equal(addon.trackStatus(data).faults, 0, 'the freeze re-protected every page: counting starts over');
  // A worker's store waits for the release, then lands and is marked.
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     Atomics.store(new Int32Array(workerData.buffer), workerData.index, 77);
     parentPort.postMessage('stored');`,
    { eval: true, workerData: { buffer: view.buffer, index: (7 * PAGE) / 4 } },
  );
  const stored = new Promise((resolve) => worker.once('message', resolve));
  await sleep(200);
  assert.equal(copy.word(7), 0, 'the store waits while frozen');
  copy.release(seq);
  await stored;
  assert.equal(copy.word(7), 77);
  assert.deepEqual([...copy.take().pages], [7]);
  await worker.terminate();

  addon.trackUnregister(data);
  Atomics.store(view, (9 * PAGE) / 4, 99); // read-write again, untracked
  assert.deepEqual([...copy.take().pages], []);
  // The control mapping unmapped under a live registration: zeros, no crash.
  addon.sharedRegister(data, { ...options, mechanism: 'none' });
  addon.unmap(control);
  process.kill(process.pid, SHOOTDOWN_SIGNAL);
  await sleep(50);
  Atomics.store(view, (9 * PAGE) / 4, 100); // a zeroed control area has no regiond: never waits
  addon.unmap(data);
  addon.unmap(readOnly);
  copy.close();
});

for (const pace of ['busy', 'paced'] as const) {
  for (const count of [1, 2, 4, 8]) {
    const how = pace === 'busy' ? 'storing flat out' : `storing once per ms`;
    test(`${count} mapping process(es) ${how}: ${ROUNDS} shootdowns freeze every store, report the dirty pages and release`, async (t) => {
      const copy = new Copy();
      const mappers: Mapper[] = [];
      try {
        for (let slot = 0; slot < count; slot++) mappers.push(await spawnMapper(copy, slot, mechanismOf(slot), pace));
        await until(() => mappers.every((m) => copy.word(m.pageA) !== 0), 'every mapper storing');
        const latencies = await rounds(copy, mappers, ROUNDS);
        const sorted = [...latencies].sort((a, b) => a - b);
        const p90 = sorted[Math.floor(sorted.length * 0.9)]!;
        t.diagnostic(
          `shootdown round trip (signal -> all acks), ${count} process(es) ${how}, 2 threads each, ${os.availableParallelism()} CPUs ` +
            `[${mappers.map((m) => m.mechanism + (m.slot % 2 ? '×2' : '')).join(', ')}]: ` +
            `median ${median(latencies).toFixed(0)} µs, p90 ${p90.toFixed(0)} µs, max ${sorted[sorted.length - 1]!.toFixed(0)} µs over ${ROUNDS} rounds`,
        );
      } finally {
        for (const m of mappers) await stop(m.child);
        copy.close();
      }
    });
  }
}

test('a stopped mapper never acknowledges: regiond times out; after SIGCONT and the release it goes on', async () => {
  const copy = new Copy();
  const mappers = [await spawnMapper(copy, 0, 'segv'), await spawnMapper(copy, 1, UFFD ? 'uffd' : 'segv')];
  try {
    const [stopped, running] = mappers as [Mapper, Mapper];
    await until(() => copy.word(stopped.pageA) !== 0 && copy.word(running.pageA) !== 0, 'both storing');
    process.kill(stopped.pid, 'SIGSTOP');
    await until(() => processState(stopped.pid) === 'T', 'the mapper stopped');
    const seq = copy.request();
    for (const m of mappers) process.kill(m.pid, SHOOTDOWN_SIGNAL);
    const start = performance.now();
    assert.deepEqual(awaitAcks(copy, seq, [0, 1], 300), [0], 'only the stopped mapper is missing');
    assert.ok(performance.now() - start < 2000, 'the wait ends at its deadline');
    const frozenA = copy.word(running.pageA);
    await sleep(20);
    assert.equal(copy.word(running.pageA), frozenA, 'the running mapper is frozen');
    copy.release(seq); // the timeout: regiond releases the others
    await until(() => copy.word(running.pageA) !== frozenA, 'the running mapper goes on');
    const stoppedA = copy.word(stopped.pageA);
    process.kill(stopped.pid, 'SIGCONT');
    await until(() => copy.ack(stopped.slot) === seq, 'the continued mapper acknowledges the old request');
    await until(() => copy.word(stopped.pageA) !== stoppedA, 'the continued mapper goes on (released already)');
    await rounds(copy, mappers, 5);
  } finally {
    for (const m of mappers) await stop(m.child);
    copy.close();
  }
});

test('regiond dies while its mappers are frozen: they go on within about a second', async (t) => {
  const copy = new Copy();
  const mappers = [await spawnMapper(copy, 0, 'segv'), await spawnMapper(copy, 1, UFFD ? 'uffd' : 'none'), await spawnMapper(copy, 2, 'none')];
  try {
    await until(() => mappers.every((m) => copy.word(m.pageA) !== 0), 'every mapper storing');
    const regiond = spawn(process.execPath, [REGIOND, copy.path, ...mappers.map((m) => `${m.slot}:${m.pid}`)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(regiond);
    const line = await firstLine(regiond, 'the stand-in regiond');
    assert.match(line, /^frozen -?\d+$/);
    assert.equal(Atomics.load(copy.words, WORD.regiondPid), regiond.pid);
    const frozen = storing(copy, mappers);
    await sleep(300);
    assert.deepEqual(storing(copy, mappers), frozen, 'frozen while regiond lives');
    const start = performance.now();
    await stop(regiond);
    await until(() => allMoved(copy, mappers, frozen), 'every thread of every mapper storing again', 5000);
    const ms = performance.now() - start;
    t.diagnostic(`mappers went on ${ms.toFixed(0)} ms after regiond was killed (liveness checked every 100 ms)`);
    assert.ok(ms < 1500, `the mappers took ${ms.toFixed(0)} ms`);
    Atomics.store(copy.words, WORD.regiondPid, process.pid); // a new regiond takes over
    await rounds(copy, mappers, 5);
  } finally {
    for (const m of mappers) await stop(m.child);
    copy.close();
  }
});

test('a mapper killed (-9) during a shootdown: regiond sees it dead and stops waiting for it', async () => {
  const copy = new Copy();
  const mappers = [await spawnMapper(copy, 0, 'segv'), await spawnMapper(copy, 1, UFFD ? 'uffd' : 'segv')];
  try {
    const [victim, survivor] = mappers as [Mapper, Mapper];
    await until(() => mappers.every((m) => copy.word(m.pageA) !== 0), 'both storing');
    process.kill(victim.pid, 'SIGSTOP'); // so that it cannot acknowledge before it dies
    await until(() => processState(victim.pid) === 'T', 'the victim stopped');
    const seq = copy.request();
    for (const m of mappers) process.kill(m.pid, SHOOTDOWN_SIGNAL);
    setTimeout(() => victim.child.kill('SIGKILL'), 100);
    const start = performance.now();
    const dead: number[] = [];
    const waiting = new Set(mappers);
    while (waiting.size > 0 && performance.now() - start < ACK_TIMEOUT_MS) {
      for (const m of [...waiting]) {
        const word = slotWord(m.slot, SLOT_WORD.ackSeq);
        const acked = Atomics.load(copy.words, word);
        if (acked === seq) waiting.delete(m);
        else if (!alive(m.pid)) {
          dead.push(m.slot);
          waiting.delete(m);
        } else addon.futexWait(copy.words, word * 4, acked, 20);
      }
      await new Promise((resolve) => setImmediate(resolve)); // lets Node reap the dead child
    }
    const ms = performance.now() - start;
    assert.deepEqual(dead, [victim.slot]);
    assert.equal(waiting.size, 0, 'nobody left to wait for');
    assert.ok(ms < 2000, `regiond waited ${ms.toFixed(0)} ms`);
    assert.equal(copy.ack(survivor.slot), seq);
    const frozenA = copy.word(survivor.pageA);
    copy.release(seq);
    await until(() => copy.word(survivor.pageA) !== frozenA, 'the survivor goes on');
  } finally {
    for (const m of mappers) await stop(m.child);
    copy.close();
  }
});
