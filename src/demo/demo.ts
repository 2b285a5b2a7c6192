// `regions demo`: the whole system in half a minute. On DIR/demo.pool (created if missing) it
// makes a ledger region (src/demo/ledger.ts), lets three workers move money between accounts
// on different pages under a RegionLock and pmsync from each of them, kills one worker and
// the pool's kernel with SIGKILL in the middle of the work, reopens the pool (recovery) and
// verifies that the ledger is exactly the state of the last completed pmsync, as the workers
// reported it, and that every invariant holds. The workers' reports stay in DIR/demo.reports
// so that the recovered pool can be checked against them by someone other than the demo.
//
// Shared mode (regiond) makes the workers processes and regiond the kernel; with --threads,
// or where shared mode is unsupported, they are threads of one host process
// (src/demo/cluster.ts).

import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from '../api.js';
import { isRegionError } from '../errors.js';
import { createPool, openPool } from '../client/pool.js';
import { formatSize, parseSize } from '../util/size.js';
import { formatNs } from '../util/duration.js';
import { startProgress } from '../util/progress.js';
import { LEDGER_REGION, processCluster, Reports, threadCluster, WORKERS, type Cluster } from './cluster.js';
import {
  formatLedger, LEDGER_ACCOUNTS, LEDGER_OPENING_BALANCE, ledgerBytes, ledgerHash, ledgerProblems, ledgerSeq,
  ledgerSummary,
} from './ledger.js';

export const DEMO_DIR_DEFAULT = 'data';
export const DEMO_POOL_FILE = 'demo.pool';
/** The workers' report lines (src/demo/report.ts), one per line, in the order they arrived. */
export const DEMO_REPORTS_FILE = 'demo.reports';
const DEMO_POOL_SIZE = '16MiB';
/** How long the workers run before the first kill. */
const WORK_MS = 1500;
/** How long the demo waits to catch the victim holding the lock. */
const HOLD_WAIT_MS = 500;
/** How long the survivors work on between the worker's kill and the kernel's. */
const KILL_GAP_MS = 400;
const VICTIM = 1;

export interface DemoOptions {
  dir: string;
  /** Run the workers as threads even where shared mode works. */
  threads: boolean;
  /** No progress bar (the caller prints one JSON document). */
  json: boolean;
  /** One line of the narration. */
  say: (line: string) => void;
}

export interface DemoResult {
  pool: string;
  reports: string;
  mode: 'processes' | 'threads';
  workers: number;
  pmsyncs: number;
  lastAcknowledged: number;
  recoveredPmsync: number;
  inFlight: boolean;
  pagesPerPmsync: number;
  pmsyncLatencyNsMedian: number;
  linesFlushedPerPmsync: number;
  fencesPerPmsync: number;
  recoveryNs: number;
  killedWorker: { worker: number; pid: number; holding: boolean } | null;
  killedKernelPid: number;
  takeovers: number;
  transfers: number;
  workerErrors: number;
  verified: boolean;
  failures: string[];
}

interface Setup {
  poolPath: string;
  created: boolean;
  persistence: string;
  /** The demo's own handle in shared mode (kept open: regiond stays up), else null. */
  shared: Pool | null;
  initialHash: string;
}

/** Creates the pool if missing, picks the mode (shared if it works), and writes a fresh ledger (pmsync #0). */
function setUp(dir: string, threads: boolean): Setup {
  const poolPath = path.join(dir, DEMO_POOL_FILE);
  fs.mkdirSync(dir, { recursive: true });
  const created = !fs.existsSync(poolPath);
  if (created) createPool(poolPath, { size: DEMO_POOL_SIZE, mode: 'exclusive' }).close();
  let shared: Pool | null = null;
  try {
    if (!threads) shared = openPool(poolPath, { mode: 'shared' });
  } catch (error) {
    if (!isRegionError(error, 'UNSUPPORTED')) throw error;
  }
  const pool = shared ?? openPool(poolPath, { mode: 'exclusive' });
  try {
    if (pool.list().some((r) => r.name === LEDGER_REGION)) pool.remove(LEDGER_REGION);
    pool.create(LEDGER_REGION, { size: ledgerBytes(WORKERS) });
    const m = pool.open(LEDGER_REGION).map();
    formatLedger(m.buffer, WORKERS);
    m.pmsync();
    const initialHash = ledgerHash(new Uint8Array(m.buffer));
    m.unmap();
    return { poolPath, created, persistence: pool.info().persistence, shared, initialHash };
  } finally {
    if (!shared) pool.close();
  }
}

/** The pid of regiond from the pool's info (shared mode reports it as info().server.pid). */
function regiondPid(pool: Pool): number {
  const pid = (pool.info() as { server?: { pid?: number } }).server?.pid;
  if (pid === undefined) throw new Error('demo: the pool in shared mode does not report regiond\'s pid (server.pid)');
  return pid;
}

interface Outcome {
  killedWorker: DemoResult['killedWorker'];
  killedKernel: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the workers, then the two kills, narrating each step. */
async function runAndKill(cluster: Cluster, reports: Reports, options: DemoOptions): Promise<Outcome> {
  const { say, json } = options;
  await cluster.start();
  const pids = [...reports.workerPids.entries()].sort(([a], [b]) => a - b).map(([, pid]) => pid);
  say(cluster.kind === 'processes'
    ? `${WORKERS} worker processes (pids ${pids.join(', ')}) map the ledger; `
      + `regiond (pid ${cluster.kernelPid()}) is the pool's kernel`
    : `${WORKERS} worker threads of host process ${reports.hostPid} map the ledger; `
      + 'the host holds the pool (it plays regiond)');
  say('each moves money between accounts on different pages under a RegionLock and pmsyncs while holding it');
  await withProgress(reports, json, () => sleep(WORK_MS));
  const victimPid = reports.workerPids.get(VICTIM) ?? 0;
  const holding = await nextIntent(reports, VICTIM); // it holds the lock and its pmsync begins
  let killedWorker: Outcome['killedWorker'] = null;
  if (cluster.killWorker(VICTIM) !== null) {
    killedWorker = { worker: VICTIM, pid: victimPid, holding };
    const when = holding ? ' holding the lock, as its pmsync began,' : '';
    say(`SIGKILL worker ${VICTIM} (pid ${victimPid})${when} after ${reports.synced.length} pmsyncs`);
  } else {
    say('(a worker thread cannot be killed alone: the lock word names the host\'s pid, '
      + 'so the host\'s death takes all three)');
  }
  const takeoversBefore = reports.takeovers.length;
  await withProgress(reports, json, () => sleep(KILL_GAP_MS));
  for (const t of reports.takeovers.slice(takeoversBefore)) {
    const undone = t.undone === 0
      ? 'no update was half done'
      : `rolled back ${t.undone} logged stores of its half-done update`;
    say(`worker ${t.worker} took the lock over from dead pid ${t.deadPid}: ${undone}`);
  }
  const killedKernel = cluster.killKernel();
  const acknowledged = reports.synced.length;
  await cluster.exited();
  say(`SIGKILL ${cluster.kernel} (pid ${killedKernel}) in the middle of the work, `
    + `after ${acknowledged} acknowledged pmsyncs`);
  return { killedWorker, killedKernel };
}

/** Shows the pmsync count on a TTY while `wait` runs. */
async function withProgress(reports: Reports, json: boolean, wait: () => Promise<void>): Promise<void> {
  const progress = startProgress({ label: 'demo: pmsyncs', json, unit: 'items' });
  reports.onSynced = () => progress.update(reports.synced.length);
  try {
    await wait();
  } finally {
    reports.onSynced = () => {};
    progress.stop();
  }
}

/** Resolves true at worker's next `intent` report (false after HOLD_WAIT_MS). */
function nextIntent(reports: Reports, worker: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const done = (seen: boolean): void => {
      clearTimeout(timer);
      reports.onIntent = () => {};
      resolve(seen);
    };
    const timer = setTimeout(() => done(false), HOLD_WAIT_MS);
    reports.onIntent = (w) => void (w === worker && done(true));
  });
}

interface Recovery {
  recoveryNs: number;
  bytes: Uint8Array;
  fsckOk: boolean;
}

function recover(poolPath: string, mode: 'shared' | 'exclusive'): Recovery {
  const started = process.hrtime.bigint();
  const pool = openPool(poolPath, { mode }); // mount: superblocks, journal replay, page-table walk
  const recoveryNs = Number(process.hrtime.bigint() - started);
  try {
    const region = pool.open(LEDGER_REGION, { access: 'ro' });
    return { recoveryNs, bytes: region.read(0, region.info().sizeBytes), fsckOk: pool.check().ok };
  } finally {
    pool.close();
  }
}

/** What failed, [] if the ledger is exactly a reported pmsync state and every invariant holds. */
function verify(recovery: Recovery, reports: Reports): { failures: string[]; seq: number; inFlight: boolean } {
  const seq = ledgerSeq(recovery.bytes);
  const hash = ledgerHash(recovery.bytes);
  const failures: string[] = [];
  if (seq < reports.lastAcked) {
    const lost = `#${reports.lastAcked} was acknowledged: a durable pmsync was lost`;
    failures.push(`the ledger is at pmsync #${seq} but ${lost}`);
  }
  const expected = reports.intents.get(seq);
  if (expected === undefined) failures.push(`no worker reported a pmsync #${seq}`);
  else if (expected !== hash) {
    failures.push(`the ledger differs from the state pmsync #${seq} captured (hash ${hash}, expected ${expected})`);
  }
  failures.push(...ledgerProblems(recovery.bytes));
  if (!recovery.fsckOk) failures.push('fsck found problems in the pool');
  return { failures, seq, inFlight: seq > reports.lastAcked };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : (sorted[Math.floor((sorted.length - 1) / 2)] ?? 0);
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((s, v) => s + v, 0) / values.length;
}

interface Run {
  setup: Setup;
  reports: Reports;
  cluster: Cluster;
  outcome: Outcome;
}

/** Sets up the pool, runs the workers and the kills; the workers' reports are kept in DIR. */
async function runWorkers(options: DemoOptions): Promise<Run> {
  const { dir, threads, say } = options;
  const setup = setUp(dir, threads);
  const made = setup.created ? `created, ${formatSize(parseSize(DEMO_POOL_SIZE))}` : 'reused';
  say(`pool ${setup.poolPath} (${made}, persistence ${setup.persistence})`);
  say(`region "${LEDGER_REGION}" (${formatSize(ledgerBytes(WORKERS))}): `
    + `${LEDGER_ACCOUNTS} accounts of ${LEDGER_OPENING_BALANCE} on pages 1-${LEDGER_ACCOUNTS}, `
    + 'each worker\'s counters on its own page; pmsync #0 committed it');
  if (!setup.shared) {
    say(threads
      ? '--threads: the workers run as threads of one host process'
      : 'shared mode (regiond) is not in this build: the workers run as threads of one host process');
  }
  const reports = new Reports();
  reports.intents.set(0, setup.initialHash);
  const cluster = setup.shared
    ? processCluster(setup.poolPath, regiondPid(setup.shared), reports)
    : threadCluster(setup.poolPath, reports);
  try {
    const outcome = await runAndKill(cluster, reports, options);
    return { setup, reports, cluster, outcome };
  } catch (error) {
    cluster.abort();
    throw error;
  } finally {
    fs.writeFileSync(path.join(dir, DEMO_REPORTS_FILE), reports.lines.map((line) => `${line}\n`).join(''));
    try {
      setup.shared?.close();
    } catch {
      // regiond is gone: the handle can only fail now
    }
  }
}

/** The whole demo; the result says whether the recovered ledger verified. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { say } = options;
  const { setup, reports, cluster, outcome } = await runWorkers(options);
  const recovery = recover(setup.poolPath, setup.shared ? 'shared' : 'exclusive');
  const by = cluster.kind === 'processes' ? 'a new regiond ' : '';
  say(`reopened the pool: ${by}recovered it in ${formatNs(recovery.recoveryNs)}`);
  const { failures, seq, inFlight } = verify(recovery, reports);
  const summary = ledgerSummary(recovery.bytes);
  if (failures.length === 0) {
    const which = inFlight
      ? 'the one in flight when the kernel died (its commit point was durable)'
      : 'the last acknowledged';
    say(`the ledger is exactly pmsync #${seq}, ${which}`);
    say(`invariants hold: balances sum to ${summary.total}; ${summary.transfers} transfers = `
      + `${summary.transfersByWorker.join(' + ')} by worker; no update half done; fsck clean`);
  }
  return {
    pool: path.resolve(setup.poolPath),
    reports: path.resolve(options.dir, DEMO_REPORTS_FILE),
    mode: cluster.kind,
    workers: WORKERS,
    pmsyncs: reports.synced.length,
    lastAcknowledged: reports.lastAcked,
    recoveredPmsync: seq,
    inFlight,
    pagesPerPmsync: mean(reports.synced.map((s) => s.pages)),
    pmsyncLatencyNsMedian: median(reports.synced.map((s) => s.ns)),
    linesFlushedPerPmsync: mean(reports.synced.map((s) => s.linesFlushed)),
    fencesPerPmsync: mean(reports.synced.map((s) => s.fences)),
    recoveryNs: recovery.recoveryNs,
    killedWorker: outcome.killedWorker,
    killedKernelPid: outcome.killedKernel,
    takeovers: reports.takeovers.length,
    transfers: summary.transfers,
    workerErrors: reports.failures.length,
    verified: failures.length === 0,
    failures,
  };
}
