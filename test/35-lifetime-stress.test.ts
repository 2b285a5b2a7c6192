// Lifetime stress of mappings and the SharedArrayBuffers over them (native/map.c,
// native/shared_buffer.cc). Two paths let go of a mapping and may run at once on different
// threads: its handle's finalizer (JavaScript thread, after a GC) and the deleter of its last
// SharedArrayBuffer backing store (any thread: a worker's, or V8's background ArrayBuffer
// sweeper). When each decided "last reference?" after dropping the mutex, both freed: "double
// free or corruption", or regiond aborting. The loop makes them meet as often as it can: map,
// store, take `m.shared`, hand it to worker threads that store into it and hold it while this
// thread unmaps, region.write, pool close/reopen, with forced GCs and event-loop turns (where
// N-API finalizers run) in between. Every store is modelled; the pool must read back exactly.
//
// Both modes run the same loop. In shared mode regiond also makes and drops a working copy
// (SharedArrayBuffers over a mapping) on every map -> store -> unmap -> region.write of one
// region, so its finalizers and sweeper race too: at the end it must be the same live process.
//
// REGIONS_STRESS_ITERATIONS: loop length per mode (the default suits `npm test`; `npm run
// test:stress` runs many more, `npm run test:asan` runs this under AddressSanitizer).
// REGIONS_STRESS_SEED replays a run: each test prints its seed.

import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { createPool, openPool, type MappingApi, type Pool, type PoolMode, type Region, type Tracking } from '../src/index.js';
import { SimPrng } from '../src/pm/sim_prng.js';

const ITERATIONS = envInteger('REGIONS_STRESS_ITERATIONS', 600, 1); // ~7 s alone; caught the old double free 7 runs of 8
const SEED = envInteger('REGIONS_STRESS_SEED', randomInt(0, 2 ** 32), 0);
const REGIONS = 3; // region 0 is the map -> store -> unmap -> write cycle's alone
const REGION_PAGES = 16;
const PAGE = 4096;
const SCRATCH_PAGE = REGION_PAGES - 1; // workers store here forever: never checked
const CHECKED_BYTES = SCRATCH_PAGE * PAGE;
const LIVE_MAX = 6; // mappings held at once by the main thread
const WORKERS = 2;
// One tracking per region: in shared mode a process's mappings of one region share one
// mechanism word, and a 'scan' mapping's stores are found only while it is mapped (see the
// pmsync in unmap below), so mixing them would lose stores for reasons other than lifetimes.
const TRACKING: Tracking[] = ['fault', 'manual', 'scan'];

process.env['REGIONS_QUIET'] = '1';
process.env['REGIONS_IDLE_EXIT'] = '20'; // a regiond left behind by a failure leaves on its own

// gc() without starting node with --expose-gc: a context made after the flag has it.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function envInteger(name: string, fallback: number, min: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  assert.ok(Number.isSafeInteger(value) && value >= min && value < 2 ** 32, `${name}=${text} is not an integer in [${min}, 2^32)`);
  return value;
}

// A worker holds every SharedArrayBuffer it is given and stores into the scratch page of each
// (mapped, or zeros after the main thread unmapped) until told to drop them, which it does
// with a GC of its own, so the last backing-store deleter often runs on its thread.
const WORKER_SOURCE = `
const { receiveMessageOnPort, workerData } = require('node:worker_threads');
const collect = globalThis.gc ?? require('node:vm').runInNewContext('gc');
const { port, control } = workerData;
let held = [];
for (;;) {
  const got = receiveMessageOnPort(port);
  if (got === undefined) {
    if (Atomics.load(control, 0) !== 0) break;
    for (const h of held) if (h.scratch >= 0) h.bytes[h.scratch + (h.n++ % 4096)]++;
    Atomics.wait(control, 1, 0, 1);
    continue;
  }
  const m = got.message;
  if (m.op === 'take') {
    const bytes = new Uint8Array(m.shared);
    Atomics.store(bytes, m.index, m.value);
    held.push({ bytes, scratch: m.scratch, n: 0 });
    port.postMessage({ id: m.id });
  } else if (m.op === 'drop') {
    held = held.slice(held.length - m.keep);
    collect();
  }
}`;

class StressWorker {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly control = new Int32Array(new SharedArrayBuffer(8));
  private readonly waiting = new Map<number, { resolve: () => void; reject: (error: unknown) => void }>();
  private nextId = 0;
  private failure: unknown;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.port.on('message', (m: { id: number }) => this.waiting.get(m.id)?.resolve());
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { port: port2, control: this.control }, transferList: [port2] });
    this.worker.on('error', (error) => {
      this.failure = error;
      for (const wait of this.waiting.values()) wait.reject(error);
    });
  }

  private send(message: object): void {
    this.port.postMessage(message);
    Atomics.notify(this.control, 1); // ends the worker's idle wait at once
  }

  /** The worker stores value at index of shared, then keeps shared (and stores into scratch). */
  async take(shared: SharedArrayBuffer, index: number, value: number, scratch: number): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const id = this.nextId++;
    const stored = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.send({ op: 'take', shared, index, value, scratch, id });
    await stored;
    this.waiting.delete(id);
  }

  /** Not awaited: the worker's GC is meant to overlap this thread's. */
  drop(keep: number): void {
    this.send({ op: 'drop', keep });
  }

  /** Returns the worker's error, if it had one. */
  async stop(): Promise<unknown> {
    Atomics.store(this.control, 0, 1);
    Atomics.notify(this.control, 1);
    this.port.close();
    await this.worker.terminate(); // its isolate's teardown runs deleters of what it held
    return this.failure;
  }
}

/** A mapping held by the main thread: a window of region `region` from page `firstPage`. */
type Live = { region: number; mapping: MappingApi; firstPage: number };

/** The loop of one mode; `expected` models every byte of every region outside the scratch page. */
class StressRun {
  readonly expected = Array.from({ length: REGIONS }, () => new Uint8Array(CHECKED_BYTES));
  readonly counts = new Map<string, number>();
  private readonly live: Live[] = [];
  private workers: StressWorker[] = [];
  private value = 0;

  constructor(
    public pool: Pool,
    private readonly reopen: () => Pool,
    private readonly prng: SimPrng,
  ) {
    for (let i = 0; i < WORKERS; i++) this.workers.push(new StressWorker());
  }

  private below(limit: number): number {
    return this.prng.nextBelow(limit);
  }

  private chance(percent: number): boolean {
    return this.below(100) < percent;
  }

  private nextValue(): number {
    this.value = (this.value % 255) + 1; // never 0: a lost store cannot pass for an untouched byte
    return this.value;
  }

  private region(index: number): Region {
    return this.pool.open(`r${index}`);
  }

  private map(region: number): Live {
    const firstPage = this.below(REGION_PAGES);
    const pages = 1 + this.below(REGION_PAGES - firstPage);
    const mapping = this.region(region).map({ offset: firstPage * PAGE, length: pages * PAGE, tracking: TRACKING[region] as Tracking });
    return { region, mapping, firstPage };
  }

  /** A checked byte of the window (or -1 if it covers only the scratch page). */
  private checkedIndex(live: Live): number {
    const bytes = Math.min(live.mapping.length, CHECKED_BYTES - live.firstPage * PAGE);
    return bytes > 0 ? this.below(bytes) : -1;
  }

  private record(live: Live, index: number, value: number): void {
    (this.expected[live.region] as Uint8Array)[live.firstPage * PAGE + index] = value;
    if (live.mapping.tracking === 'manual') live.mapping.markDirty(index, 1);
  }

  /** A store by this thread, through buffer or shared. */
  private store(live: Live): void {
    const index = this.checkedIndex(live);
    if (index < 0) return;
    const value = this.nextValue();
    if (this.chance(50)) new Uint8Array(live.mapping.buffer)[index] = value;
    else Atomics.store(new Uint8Array(live.mapping.shared), index, value);
    this.record(live, index, value);
  }

  /** `m.shared` to a worker, which stores once, then holds it and keeps storing into scratch. */
  private async share(live: Live): Promise<void> {
    const index = this.checkedIndex(live);
    const worker = this.workers[this.below(WORKERS)] as StressWorker;
    const scratch = live.firstPage * PAGE + live.mapping.length > CHECKED_BYTES ? (SCRATCH_PAGE - live.firstPage) * PAGE : -1;
    const value = this.nextValue();
    await worker.take(live.mapping.shared, Math.max(index, 0), index < 0 ? 0 : value, scratch);
    if (index >= 0) this.record(live, index, value);
  }

  private unmap(at: number): void {
    const [live] = this.live.splice(at, 1);
    if (live?.mapping.tracking === 'scan') live.mapping.pmsync(); // shared mode compares only mapped pages
    live?.mapping.unmap();
  }

  /** The reproduction: map -> store (maybe through a worker) -> unmap -> region.write, on region 0. */
  async cycle(): Promise<void> {
    const live = this.map(0);
    if (this.chance(50)) await this.share(live);
    else this.store(live);
    if (this.chance(30)) live.mapping.pmsync();
    live.mapping.unmap();
    if (this.chance(30)) gc();
    this.write(0);
  }

  /** region.write commits the stores the unmapped mappings left, then these bytes. */
  private write(region: number): void {
    const length = 1 + this.below(64);
    const offset = this.below(CHECKED_BYTES - length);
    const bytes = new Uint8Array(length).map(() => this.nextValue());
    this.region(region).write(offset, bytes);
    (this.expected[region] as Uint8Array).set(bytes, offset);
  }

  /**
   * Several mappings of region 0 with a SharedArrayBuffer each, unmapped and left to one GC:
   * V8 sweeps their backing stores on a background thread (deleters) while the next event-loop
   * turn runs the handles' finalizers on this one.
   */
  async burst(): Promise<void> {
    for (let i = 4 + this.below(13); i > 0; i--) {
      const live = this.map(0);
      void live.mapping.shared; // the getter makes the SharedArrayBuffer
      this.store(live);
      live.mapping.unmap();
    }
    gc();
    await nextTurn();
  }

  /** One step; returns its name. */
  async step(): Promise<string> {
    const roll = this.below(100);
    if (roll < 25) return this.cycle().then(() => 'cycle');
    if (roll < 33) return this.burst().then(() => 'burst');
    if (roll < 43 && this.live.length < LIVE_MAX) {
      this.live.push(this.map(1 + this.below(REGIONS - 1)));
      return 'map';
    }
    const live = this.live[this.below(Math.max(this.live.length, 1))];
    if (roll < 53 && live) return (this.store(live), 'store');
    if (roll < 63 && live) return this.share(live).then(() => 'share');
    if (roll < 67 && live) return (live.mapping.pmsync(), 'pmsync');
    if (roll < 76 && live) return (this.unmap(this.live.indexOf(live)), 'unmap');
    if (roll < 82) return (this.writeUnmapped(), 'write');
    if (roll < 88) return (gc(), 'gc');
    if (roll < 94) return ((this.workers[this.below(WORKERS)] as StressWorker).drop(this.below(3)), 'worker-drop');
    if (roll < 97) return nextTurn().then(() => 'turn');
    if (roll < 99) return this.respawn().then(() => 'worker-exit');
    return this.closeAndReopen().then(() => 'reopen');
  }

  /** region.write on a region this thread does not map (shared mode refuses BUSY otherwise). */
  private writeUnmapped(): void {
    const region = 1 + this.below(REGIONS - 1);
    for (let i = this.live.length - 1; i >= 0; i--) if (this.live[i]?.region === region) this.unmap(i);
    this.write(region);
  }

  private async respawn(): Promise<void> {
    const at = this.below(WORKERS);
    const failure = await (this.workers[at] as StressWorker).stop();
    this.workers[at] = new StressWorker();
    if (failure !== undefined) throw failure;
  }

  /** Everything committed, then the pool closed and opened again: it must read back exactly. */
  async closeAndReopen(): Promise<void> {
    this.settle();
    this.pool.close();
    gc();
    await nextTurn();
    this.pool = this.reopen();
    this.verify();
  }

  /** Unmaps everything and commits what the unmapped mappings left. */
  settle(): void {
    while (this.live.length > 0) this.unmap(this.live.length - 1);
    for (let r = 0; r < REGIONS; r++) this.region(r).pmsync();
  }

  verify(): void {
    for (let r = 0; r < REGIONS; r++) {
      const committed = this.region(r).read(0, CHECKED_BYTES);
      const expected = this.expected[r] as Uint8Array;
      const first = committed.findIndex((b, i) => b !== expected[i]);
      assert.equal(first, -1, `region r${r} byte ${first}: read ${committed[first]}, stored ${expected[first]} last`);
    }
  }

  async finish(): Promise<void> {
    await this.closeAndReopen();
    const failures = await this.stopWorkers();
    if (failures.length > 0) throw failures[0];
    gc();
    await nextTurn();
    gc();
    await nextTurn();
  }

  /** Also after a failure (a live worker would keep the test process from exiting): their errors. */
  async stopWorkers(): Promise<unknown[]> {
    const workers = this.workers;
    this.workers = [];
    const failures = await Promise.all(workers.map((w) => w.stop()));
    return failures.filter((f) => f !== undefined);
  }
}

function newPoolFile(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-stress-'));
  const file = path.join(dir, 'stress.pool');
  const pool = createPool(file, { size: '16MiB', mode: 'exclusive' });
  for (let r = 0; r < REGIONS; r++) pool.create(`r${r}`, { size: REGION_PAGES * PAGE });
  pool.close();
  return { dir, file };
}

/** Stops the regiond serving the pool, if any, and waits until it is gone. */
async function stopRegiond(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // gone already
  }
  while (alive(pid)) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Running: not gone, and not a zombie (a regiond that crashed may wait to be reaped). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    process.kill(pid, 0);
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function stress(t: TestContext, mode: PoolMode): Promise<void> {
  const { dir, file } = newPoolFile();
  const open = (): Pool => openPool(file, { mode });
  // Shared mode: a second client keeps regiond busy, so every reopen reaches the same one.
  const keeper = mode === 'shared' ? open() : undefined;
  const regiond = keeper?.info().server?.pid;
  t.diagnostic(`seed ${SEED} (replay: REGIONS_STRESS_SEED=${SEED}), ${ITERATIONS} iterations (REGIONS_STRESS_ITERATIONS)`);
  const run = new StressRun(open(), open, new SimPrng(SEED));
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const op = await run.step();
      run.counts.set(op, (run.counts.get(op) ?? 0) + 1);
    }
    await run.finish();
    t.diagnostic(`${ITERATIONS} iterations ran: ${[...run.counts].sort().map(([op, n]) => `${op} ${n}`).join(', ')}`);
    if (keeper) {
      assert.ok(regiond !== undefined && alive(regiond), `regiond ${regiond} is still alive`);
      assert.equal(keeper.info().server?.pid, regiond, 'the same regiond served the whole run');
      const mine = run.expected[0] as Uint8Array;
      assert.ok(Buffer.from(keeper.open('r0').read(0, CHECKED_BYTES)).equals(mine), 'another client reads what was written');
    }
  } finally {
    await run.stopWorkers();
    run.pool.close(); // closing a closed pool, or one whose regiond is gone, does not throw
    keeper?.close();
    await stopRegiond(regiond);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Generous (a few ms per iteration is usual, under ASan too); a hang must still end.
const TIMEOUT_MS = 120_000 + ITERATIONS * 100;

for (const mode of ['exclusive', 'shared'] as const) {
  test(`${mode}: map, unmap, m.shared held by workers, region.write, close/reopen and GC race without a crash`, { timeout: TIMEOUT_MS }, (t) => stress(t, mode));
}
