// The workers of `regions demo` (src/demo/demo.ts). Each maps the ledger region
// (src/demo/ledger.ts) and loops until its deadline: take the RegionLock, roll back a dead
// holder's half-done update if it took the lock over, move money between accounts, raise the
// sync sequence, report the ledger's hash, pmsync, report the pmsync, release the lock.
// Updates and pmsyncs both happen under the lock, so the hash is the state the pmsync captures.
//
//   worker.js process POOL REGION W DEADLINE   a worker process in shared mode (regiond);
//       after `ready` it waits for a line on stdin (every worker mapped) before it starts
//   worker.js host POOL REGION N DEADLINE      thread mode (--threads, or no shared mode):
//       this process opens the pool exclusively (it plays regiond), runs N worker threads on
//       mapping.shared and serves their pmsync requests
// DEADLINE is in ms since the epoch. Reports go to stdout (src/demo/report.ts).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { MappingApi, SyncStats } from '../api.js';
import { openPool } from '../client/pool.js';
import { RegionLock } from '../sync/region_lock.js';
import { SharedWords, type LockMemory } from '../sync/shared_words.js';
import { LEDGER_LOCK_WORD, ledgerHash, LedgerWriter } from './ledger.js';
import { formatReport, type DemoReport } from './report.js';

/** Transfers per lock hold: 1 .. this many (each moves money between two account pages). */
const TRANSFERS_PER_HOLD_MAX = 3;
/** Work outside the lock between holds, up to this long: lets a woken waiter in (futexes are not fair). */
const THINK_MS_MAX = 1;
const thinking = new Int32Array(new SharedArrayBuffer(4));

interface WorkerContext {
  worker: number;
  /** Returns once every worker is ready (they all map before any pmsyncs). */
  awaitGo(): void;
  shared: SharedArrayBuffer;
  memory: LockMemory;
  deadline: number;
  /** pmsync of the whole ledger; reports intent before and synced after. */
  sync(seq: number, hash: string): void;
  report(report: DemoReport): void;
}

/** The loop every worker runs, in a process or a thread. */
function work(ctx: WorkerContext): void {
  const lock = new RegionLock(ctx.memory, LEDGER_LOCK_WORD);
  const ledger = new LedgerWriter(ctx.shared, ctx.worker);
  const bytes = new Uint8Array(ctx.shared);
  ctx.report({ kind: 'ready', worker: ctx.worker, pid: process.pid });
  ctx.awaitGo();
  while (Date.now() < ctx.deadline) {
    lock.withLock((state) => {
      const takeover = state === 'owner-died';
      if (takeover) {
        ctx.report({ kind: 'takeover', worker: ctx.worker, deadPid: lock.lastDeadOwner, undone: ledger.rollBack() });
      }
      const seq = ledger.update(1 + Math.floor(Math.random() * TRANSFERS_PER_HOLD_MAX), Math.random, takeover);
      ctx.sync(seq, ledgerHash(bytes)); // holding the lock: nothing changes until it returns
    });
    Atomics.wait(thinking, 0, 0, Math.random() * THINK_MS_MAX);
  }
  ctx.report({ kind: 'done', worker: ctx.worker });
}

function writeReport(report: DemoReport): void {
  process.stdout.write(`${formatReport(report)}\n`); // synchronous on a pipe: written before what follows
}

function syncedReport(worker: number, seq: number, stats: SyncStats): DemoReport {
  const { pages, linesFlushed, fences, ns } = stats;
  return { kind: 'synced', worker, seq, pages, linesFlushed, fences, ns };
}

/** Blocks until the demo writes a line on stdin: every worker has mapped the ledger. */
function readGo(): void {
  const buffer = new Uint8Array(1);
  while (fs.readSync(0, buffer, 0, 1, null) === 1 && buffer[0] !== 0x0a);
}

/** Shared mode: one worker per process; the pmsync is regiond's cross-process one. */
function runProcess(poolPath: string, region: string, worker: number, deadline: number): void {
  const pool = openPool(poolPath, { mode: 'shared' });
  try {
    const m = pool.open(region).map();
    work({
      worker, shared: m.shared, memory: m, deadline, report: writeReport, awaitGo: readGo,
      sync(seq, hash) {
        writeReport({ kind: 'intent', worker, seq, hash });
        writeReport(syncedReport(worker, seq, m.pmsync()));
      },
    });
  } finally {
    pool.close();
  }
}

// Thread mode. A worker thread asks the host for a pmsync and sleeps on its reply word:
// 0 waiting, 1 done, 2 failed.
interface ThreadData {
  role: 'demo-thread';
  worker: number;
  shared: SharedArrayBuffer;
  reply: SharedArrayBuffer;
  deadline: number;
}
type ThreadMessage = { report: DemoReport } | { sync: { seq: number; hash: string } };
const REPLY_WAITING = 0;
const REPLY_DONE = 1;

function runThread(data: ThreadData, port: NonNullable<typeof parentPort>): void {
  const reply = new Int32Array(data.reply);
  const post = (message: ThreadMessage): void => port.postMessage(message);
  work({
    worker: data.worker, shared: data.shared, memory: new SharedWords(data.shared), deadline: data.deadline,
    awaitGo: () => {}, // the host starts its threads at once: one mapping serves them all
    report: (report) => post({ report }),
    sync(seq, hash) {
      Atomics.store(reply, 0, REPLY_WAITING);
      post({ sync: { seq, hash } });
      Atomics.wait(reply, 0, REPLY_WAITING);
      if (Atomics.load(reply, 0) !== REPLY_DONE) throw new Error('the host failed the pmsync');
    },
  });
}

/** Thread mode's host: the pool's kernel for N worker threads; exits when they are done. */
async function runHost(poolPath: string, region: string, workers: number, deadline: number): Promise<void> {
  const pool = openPool(poolPath, { mode: 'exclusive' });
  const m = pool.open(region).map();
  writeReport({ kind: 'host', pid: process.pid });
  const file = fileURLToPath(import.meta.url);
  await Promise.all(Array.from({ length: workers }, (_, worker) => hostThread(file, m, worker, deadline)));
  pool.close();
}

function hostThread(file: string, m: MappingApi, worker: number, deadline: number): Promise<void> {
  const reply = new SharedArrayBuffer(4);
  const data: ThreadData = { role: 'demo-thread', worker, shared: m.shared, reply, deadline };
  const thread = new Worker(file, { workerData: data });
  thread.on('message', (message: ThreadMessage) => {
    if ('report' in message) return writeReport(message.report);
    writeReport({ kind: 'intent', worker, seq: message.sync.seq, hash: message.sync.hash });
    let state = 2;
    try {
      writeReport(syncedReport(worker, message.sync.seq, m.pmsync()));
      state = REPLY_DONE;
    } catch (error) {
      writeReport({ kind: 'failed', worker, message: (error as Error).message });
    }
    Atomics.store(new Int32Array(reply), 0, state);
    Atomics.notify(new Int32Array(reply), 0);
  });
  return new Promise((resolve, reject) => {
    thread.once('error', reject);
    thread.once('exit', () => resolve());
  });
}

async function main(args: string[]): Promise<void> {
  const [role, poolPath, region, count, deadline] = args;
  if (poolPath === undefined || region === undefined) {
    throw new Error(`usage: worker.js process|host POOL REGION N DEADLINE; got ${args.join(' ')}`);
  }
  const worker = Number(count);
  try {
    if (role === 'process') runProcess(poolPath, region, worker, Number(deadline));
    else if (role === 'host') await runHost(poolPath, region, worker, Number(deadline));
    else throw new Error(`unknown role ${String(role)}`);
  } catch (error) {
    writeReport({ kind: 'failed', worker: role === 'process' ? worker : -1, message: (error as Error).message });
    process.exitCode = 1;
  }
}

const isEntry = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (!isMainThread && (workerData as ThreadData | undefined)?.role === 'demo-thread' && parentPort) {
  runThread(workerData as ThreadData, parentPort);
} else if (isMainThread && isEntry) {
  await main(process.argv.slice(2));
}
