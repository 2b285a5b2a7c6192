// `regions demo`: the whole system in half a minute. On DIR/demo.pool (created if missing) it
// makes a ledger region (src/cli/demo_ledger.ts), lets three workers move money between
// accounts on different pages under a RegionLock and pmsync from each of them, kills one
// worker and the pool's kernel with SIGKILL in the middle of the work, reopens the pool
// (recovery) and verifies that the ledger is exactly the state of the last completed pmsync,
// as the workers reported it, and that every invariant holds.
//
// Shared mode (regiond) makes the workers processes and regiond the kernel. Until this build
// has it, the demo runs them as worker threads of one host process that holds the pool
// exclusively (src/cli/demo_worker.ts): the host plays regiond and dies with its workers.
// Only the Cluster below differs between the two.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Pool } from '../../api.js';
import { LOCK_PID_MASK } from '../../constants.js';
import { isRegionError } from '../../errors.js';
import { createPool, openPool } from '../../pool.js';
import { formatSize, parseSize } from '../../util/size.js';
import { act, globalsOf, type Status } from '../context.js';
import { formatLedger, LEDGER_ACCOUNTS, LEDGER_LOCK_WORD, LEDGER_OPENING_BALANCE, ledgerBytes, ledgerHash, ledgerProblems, ledgerSeq, ledgerSummary } from '../demo_ledger.js';
import { parseReport, type DemoReport } from '../demo_report.js';
import { emit, formatNs, table } from '../output.js';
import { startProgress } from '../progress.js';

const DEMO_DIR_DEFAULT = 'data';
const DEMO_POOL_FILE = 'demo.pool';
const DEMO_POOL_SIZE = '16MiB';
const LEDGER_REGION = 'ledger';
const WORKERS = 3;
/** How long the workers run before the first kill. */
const WORK_MS = 1500;
/** How long the demo waits to catch the victim holding the lock, and then for a takeover. */
const HOLD_WAIT_MS = 500;
/** How long the survivors work on between the worker's kill and the kernel's. */
const KILL_GAP_MS = 400;
/** Workers never outlive the demo: their own deadline. */
const WORKER_RUN_MS_MAX = 20_000;
/** Children still running this long after the kernel's kill are killed too. */
const EXIT_WAIT_MS = 3000;
const VICTIM = 1;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('three workers share a ledger region under a lock; kill one and the pool kernel; recover and verify')
    .option('--dir <dir>', 'directory for demo.pool', DEMO_DIR_DEFAULT)
    .option('--threads', 'run the workers as threads of one host process that holds the pool (no regiond)')
    .option('--json', 'print one JSON document')
    .action(act(demo));
}

/** Everything the workers reported, gathered as lines arrive. */
class Reports {
  readonly intents = new Map<number, string>();
  readonly synced: Extract<DemoReport, { kind: 'synced' }>[] = [];
  readonly takeovers: Extract<DemoReport, { kind: 'takeover' }>[] = [];
  readonly failures: string[] = [];
  readonly workerPids = new Map<number, number>();
  lastAcked = 0;
  hostPid = 0;
  onSynced: () => void = () => {};
  onIntent: (worker: number) => void = () => {};

  take(report: DemoReport): void {
    switch (report.kind) {
      case 'host': this.hostPid = report.pid; break;
      case 'ready': this.workerPids.set(report.worker, report.pid); break;
      case 'intent': this.intents.set(report.seq, report.hash); this.onIntent(report.worker); break;
      case 'synced': this.synced.push(report); this.lastAcked = Math.max(this.lastAcked, report.seq); this.onSynced(); break;
      case 'takeover': this.takeovers.push(report); break;
      case 'failed': this.failures.push(`worker ${report.worker}: ${report.message}`); break;
      case 'done': break;
    }
  }

  listen(child: ChildProcessWithoutNullStreams): void {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const report = parseReport(line);
      if (report) this.take(report);
      if (process.env['REGIONS_DEBUG'] === '1' && report?.kind !== 'intent' && report?.kind !== 'synced') process.stderr.write(`[worker] ${line}\n`);
    });
    // A worker's own stderr (regiond gone, ...) is expected noise after the kills; REGIONS_DEBUG=1 shows it.
    if (process.env['REGIONS_DEBUG'] === '1') child.stderr.pipe(process.stderr);
    else child.stderr.resume();
  }
}

/** The workers and the pool's kernel, as processes + regiond or as threads of one host. */
interface Cluster {
  readonly kind: 'processes' | 'threads';
  readonly kernel: string;
  /** Resolves when every worker has mapped the ledger. */
  start(): Promise<void>;
  /** SIGKILLs one worker; null where a worker cannot die alone. */
  killWorker(worker: number): number | null;
  /** The pid of the pool's kernel (regiond, or the host). */
  kernelPid(): number;
  /** SIGKILLs the pool's kernel; returns its pid. */
  killKernel(): number;
  /** Resolves when every child is gone (stragglers are killed after EXIT_WAIT_MS). */
  exited(): Promise<void>;
  /** SIGKILLs every child still running (the demo failed). */
  abort(): void;
}

const workerScript = fileURLToPath(new URL('../demo_worker.js', import.meta.url));

function spawnWorker(args: string[], reports: Reports): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [workerScript, ...args], { stdio: 'pipe', env: { ...process.env, REGIONS_QUIET: '1' } });
  reports.listen(child);
  return child;
}

function whenAll<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      const value = check();
      if (value !== undefined) resolve(value);
      else if (Date.now() - started > timeoutMs) reject(new Error(`demo: ${what} did not happen within ${timeoutMs} ms`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

function exitedAll(children: ChildProcessWithoutNullStreams[]): Promise<void> {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  const timer = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), EXIT_WAIT_MS);
  return Promise.all(running.map((c) => new Promise((resolve) => c.once('close', resolve)))).then(() => clearTimeout(timer));
}

/** Shared mode: three worker processes, each mapping the ledger through regiond. */
function processCluster(poolPath: string, regiondPid: number, reports: Reports): Cluster {
  const children: ChildProcessWithoutNullStreams[] = [];
  return {
    kind: 'processes',
    kernel: 'regiond',
    async start() {
      const deadline = String(Date.now() + WORKER_RUN_MS_MAX);
      for (let w = 0; w < WORKERS; w++) children.push(spawnWorker(['process', poolPath, LEDGER_REGION, String(w), deadline], reports));
      await whenAll(() => (reports.workerPids.size === WORKERS ? true : undefined), 'every worker ready');
      for (const child of children) child.stdin.write('go\n'); // all have mapped: start together
    },
    killWorker(worker) {
      children[worker]?.kill('SIGKILL');
      return reports.workerPids.get(worker) ?? null;
    },
    kernelPid: () => regiondPid,
    killKernel() {
      process.kill(regiondPid, 'SIGKILL');
      return regiondPid;
    },
    exited: () => exitedAll(children),
    abort: () => children.forEach((c) => c.kill('SIGKILL')),
  };
}

/** Until shared mode: one host process holds the pool and runs three worker threads. */
function threadCluster(poolPath: string, reports: Reports): Cluster {
  let host: ChildProcessWithoutNullStreams | undefined;
  return {
    kind: 'threads',
    kernel: 'the host process',
    async start() {
      host = spawnWorker(['host', poolPath, LEDGER_REGION, String(WORKERS), String(Date.now() + WORKER_RUN_MS_MAX)], reports);
      await whenAll(() => (reports.workerPids.size === WORKERS && reports.hostPid > 0 ? true : undefined), 'every worker thread ready');
    },
    killWorker: () => null,
    kernelPid: () => reports.hostPid,
    killKernel() {
      host?.kill('SIGKILL');
      return reports.hostPid;
    },
    exited: () => exitedAll(host ? [host] : []),
    abort: () => host?.kill('SIGKILL'),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
  if (pid === undefined) throw new Error('demo: the pool in shared mode does not report regiond\'s pid (info().server.pid)');
  return pid;
}

interface Outcome {
  killedWorker: { worker: number; pid: number; holding: boolean } | null;
  killedKernel: number;
}

/** Runs the workers, then the two kills, narrating each step. */
async function runAndKill(cluster: Cluster, reports: Reports, say: (line: string) => void, json: boolean): Promise<Outcome> {
  await cluster.start();
  const pids = [...reports.workerPids.entries()].sort(([a], [b]) => a - b).map(([, pid]) => pid);
  say(cluster.kind === 'processes'
    ? `${WORKERS} worker processes (pids ${pids.join(', ')}) map the ledger; regiond (pid ${cluster.kernelPid()}) is the pool's kernel`
    : `${WORKERS} worker threads of host process ${reports.hostPid} map the ledger; the host holds the pool (it plays regiond)`);
  say('each moves money between accounts on different pages under a RegionLock and pmsyncs while holding it');
  await withProgress(reports, json, () => sleep(WORK_MS));
  const victimPid = reports.workerPids.get(VICTIM) ?? 0;
  const holding = await nextIntent(reports, VICTIM); // it holds the lock and its pmsync begins
  let killedWorker: Outcome['killedWorker'] = null;
  if (cluster.killWorker(VICTIM) !== null) {
    killedWorker = { worker: VICTIM, pid: victimPid, holding };
    say(`SIGKILL worker ${VICTIM} (pid ${victimPid})${holding ? ' holding the lock, as its pmsync began,' : ''} after ${reports.synced.length} pmsyncs`);
  } else {
    say('(a worker thread cannot be killed alone: the lock word names the host\'s pid, so the host\'s death takes all three)');
  }
  const takeoversBefore = reports.takeovers.length;
  await withProgress(reports, json, () => sleep(KILL_GAP_MS));
  for (const t of reports.takeovers.slice(takeoversBefore)) {
    say(`worker ${t.worker} took the lock over from dead pid ${t.deadPid}: ${t.undone === 0 ? 'no update was half done' : `rolled back ${t.undone} logged stores of its half-done update`}`);
  }
  const killedKernel = cluster.killKernel();
  const acknowledged = reports.synced.length;
  await cluster.exited();
  say(`SIGKILL ${cluster.kernel} (pid ${killedKernel}) in the middle of the work, after ${acknowledged} acknowledged pmsyncs`);
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
  const failures: string[] = [];
  if (seq < reports.lastAcked) failures.push(`the ledger is at pmsync #${seq} but #${reports.lastAcked} was acknowledged: a durable pmsync was lost`);
  const expected = reports.intents.get(seq);
  if (expected === undefined) failures.push(`no worker reported a pmsync #${seq}`);
  else if (expected !== ledgerHash(recovery.bytes)) failures.push(`the ledger differs from the state pmsync #${seq} captured (hash ${ledgerHash(recovery.bytes)}, expected ${expected})`);
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

async function demo(cmd: Command): Promise<Status> {
  const globals = globalsOf(cmd);
  const { dir, threads } = cmd.opts<{ dir: string; threads?: boolean }>();
  const say = (line: string): void => void (globals.json || process.stdout.write(`${line}\n`));
  const setup = setUp(dir, threads === true);
  say(`pool ${setup.poolPath} (${setup.created ? `created, ${formatSize(parseSize(DEMO_POOL_SIZE))}` : 'reused'}, persistence ${setup.persistence})`);
  say(`region "${LEDGER_REGION}" (${formatSize(ledgerBytes(WORKERS))}): ${LEDGER_ACCOUNTS} accounts of ${LEDGER_OPENING_BALANCE} on pages 1-${LEDGER_ACCOUNTS}, each worker's counters on its own page; pmsync #0 committed it`);
  if (!setup.shared) say(threads === true ? '--threads: the workers run as threads of one host process' : 'shared mode (regiond) is not in this build: the workers run as threads of one host process');
  const reports = new Reports();
  reports.intents.set(0, setup.initialHash);
  const cluster = setup.shared ? processCluster(setup.poolPath, regiondPid(setup.shared), reports) : threadCluster(setup.poolPath, reports);
  let outcome: Outcome;
  try {
    outcome = await runAndKill(cluster, reports, say, globals.json);
  } catch (error) {
    cluster.abort();
    throw error;
  } finally {
    try {
      setup.shared?.close();
    } catch {
      // regiond is gone: the handle can only fail now
    }
  }
  const recovery = recover(setup.poolPath, setup.shared ? 'shared' : 'exclusive');
  say(`reopened the pool: ${cluster.kind === 'processes' ? 'a new regiond ' : ''}recovered it in ${formatNs(recovery.recoveryNs)}`);
  const { failures, seq, inFlight } = verify(recovery, reports);
  const summary = ledgerSummary(recovery.bytes);
  if (failures.length === 0) {
    say(`the ledger is exactly pmsync #${seq}, ${inFlight ? 'the one in flight when the kernel died (its commit point was durable)' : 'the last acknowledged'}`);
    say(`invariants hold: balances sum to ${summary.total}; ${summary.transfers} transfers = ${summary.transfersByWorker.join(' + ')} by worker; no update half done; fsck clean`);
  }
  const result = {
    pool: path.resolve(setup.poolPath),
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
  emit(globals, result, () => ['', ...table([
    ['pmsyncs', `${result.pmsyncs} (from ${WORKERS} ${cluster.kind === 'processes' ? 'processes' : 'threads'})`],
    ['pages per pmsync', result.pagesPerPmsync.toFixed(1)],
    ['median pmsync', formatNs(result.pmsyncLatencyNsMedian)],
    ['lines flushed per pmsync', result.linesFlushedPerPmsync.toFixed(1)],
    ['fences per pmsync', result.fencesPerPmsync.toFixed(2)],
    ['recovery', formatNs(result.recoveryNs)],
    ['verified', failures.length === 0 ? 'yes' : `no: ${failures.join('; ')}`],
  ])]);
  return failures.length === 0 ? 0 : 1;
}
