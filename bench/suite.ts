// The runner: plans the points, runs every trial in a fresh child process with the systems
// of a point interleaved round by round (A B C A B C ...) so machine drift cancels, summarises
// the trials, and writes the JSON, the Markdown report and its SVG plots.
//
// Stores (pools, databases, files) live in scratch directories on tmpfs (the pool's file
// system) and on an ordinary file system; a store is built by the first trial that needs it
// (untimed), shared by the later ones of its series, and removed when the series ends.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProgress } from '../src/util/progress.js';
import { fileSystemOf, machineFacts, type Machine } from './machine.js';
import { buildPlan, trialCount, type Plan, type Point, type WorkloadName } from './plan.js';
import { preparePeers, runNativeTrial, unavailableReason, type Peers } from './peers.js';
import { writeReport } from './report.js';
import { median, quantile, spreadOf } from './stats.js';
import { SYSTEMS, type FsKind, type SystemDef } from './systems.js';
import { errorLine, type TrialMeasured, type TrialResult, type TrialSpec } from './workload.js';

export interface SuiteOptions {
  quick: boolean;
  json: boolean;
  /** Where the report goes (default bench/results of the repository). */
  outDir?: string;
  /** Run bench/install-peers.sh for missing peers first. */
  install: boolean;
  only?: Set<WorkloadName>;
  /** Run only these systems (names as in bench/systems.ts and the workloads). */
  systems?: Set<string>;
  log?: (line: string) => void;
}

export interface SystemSummary {
  system: string;
  label: string;
  family: string;
  atomic: boolean;
  skipped?: string;
  failed?: string;
  trials: number;
  ops: number;
  /** Per-trial medians of the op time. */
  trialMedianNs: number[];
  medianNs: number;
  minNs: number;
  maxNs: number;
  p99Ns: number;
  storeMedianNs?: number;
  syncMedianNs?: number;
  linesPerOp?: number;
  fencesPerOp?: number;
  pmBytesPerOp?: number;
  pmBytesSource?: string;
  userBytesPerOp: number;
  /** pmBytesPerOp / userBytesPerOp. */
  writeAmplification?: number;
  bytesPerSecond: number;
  extra?: Record<string, number>;
  notes?: string;
  data?: unknown;
}

export interface PointResult {
  workload: WorkloadName;
  params: Record<string, number | string>;
  trials: number;
  systems: SystemSummary[];
}

export interface SuiteResults {
  quick: boolean;
  machine: Machine;
  settings: { full: boolean; trialsPerPoint: number; seconds: number; retries: number };
  skipped: { system: string; reason: string }[];
  points: PointResult[];
}

export interface SuiteOutput {
  results: SuiteResults;
  jsonPath: string;
  reportPath: string;
  svgPaths: string[];
}

const TRIAL_TIMEOUT_MS = 15 * 60_000;
/**
 * A trial whose child could not load the native addon (a concurrent rebuild of build/) runs
 * again, up to this many times; any other failure marks its system failed at the point.
 */
const TRIAL_RETRIES = 4;
const RETRYABLE = /native addon .* is missing or broken/;
const RETRY_PAUSE_MS = 15_000;
const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const REPO_ROOT = path.resolve(HERE, '..', '..');
const TMPFS_MAGIC = 0x01021994;

export async function runSuite(options: SuiteOptions): Promise<SuiteOutput> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const started = Date.now();
  const dirs = scratchDirs();
  try {
    const peers = preparePeers({ repoRoot: REPO_ROOT, buildDir: path.join(HERE, 'peers-bin'), install: options.install, diskDir: dirs.disk, log });
    const machine = machineFacts(REPO_ROOT, dirs, peers.versions);
    const plan = buildPlan(options.quick, options.only, options.systems);
    const runner = new Runner(plan, peers, dirs, log, options.json);
    const points = runner.run();
    const results: SuiteResults = {
      quick: options.quick,
      machine,
      settings: { full: !options.quick, trialsPerPoint: Math.max(...plan.points.map((p) => p.settings.trials)), seconds: 0, retries: runner.retries },
      skipped: runner.skippedList(),
      points,
    };
    results.settings.seconds = Math.round((Date.now() - started) / 1000);
    const written = await writeReport(results, options.outDir ?? path.join(REPO_ROOT, 'bench', 'results'), log);
    return { results, ...written };
  } finally {
    for (const dir of [dirs.tmpfs, dirs.disk]) if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface ScratchDirs {
  tmpfs: string;
  disk: string | undefined;
}

/** A fresh directory on tmpfs (the pool's file system) and one on an ordinary file system. */
function scratchDirs(): ScratchDirs {
  const tmpfsBase = process.env['REGIONS_BENCH_TMPFS_DIR'] ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
  const tmpfs = fs.mkdtempSync(path.join(tmpfsBase, 'regions-bench-'));
  const diskBase = process.env['REGIONS_BENCH_DISK_DIR'] ?? os.tmpdir();
  const onDisk = fs.existsSync(diskBase) && fs.statfsSync(diskBase).type !== TMPFS_MAGIC;
  return { tmpfs, disk: onDisk ? fs.mkdtempSync(path.join(diskBase, 'regions-bench-')) : undefined };
}

/** Where a system keeps its store for a workload: the file system and the store's name. */
function storeOf(point: Point, name: string): { fs: FsKind; store: string } {
  const system = SYSTEMS.find((s) => s.name === name);
  if ((point.workload === 'pages' || point.workload === 'records') && system !== undefined) return { fs: system.fs, store: system.store };
  if (point.workload === 'map') return { fs: 'tmpfs', store: name === 'regions-map-sparse' ? 'map-sparse' : name === 'mmap-map' ? 'map-file' : 'map-dense' };
  return { fs: 'tmpfs', store: point.workload };
}

/** The SystemDef of a name, or a stand-in for workload-specific systems (map, mount, ...). */
export function describeSystem(name: string): SystemDef {
  const system = SYSTEMS.find((s) => s.name === name);
  if (system !== undefined) return system;
  const labels: Record<string, string> = {
    'regions-map-fault': 'Region System map (fault)',
    'regions-map-scan': 'Region System map (scan)',
    'regions-map-manual': 'Region System map (manual)',
    'regions-map-sparse': 'Region System map (fault, sparse region)',
    'mmap-map': 'mmap of a file',
    'regions-clean': 'mount after clean close',
    'regions-crash': 'mount after a crash (SIGKILL)',
    'regions-shared': 'Region System, shared',
    regions: 'Region System',
  };
  const family = name.startsWith('mmap') ? 'mmap' : 'regions';
  return { name, label: labels[name] ?? name, family, fs: 'tmpfs', store: name, atomic: family === 'regions', commit: '' };
}

class Runner {
  #skipped = new Map<string, string>();
  #done = 0;
  #stamp = 0;
  #retries = 0;

  constructor(
    private readonly plan: Plan,
    private readonly peers: Peers,
    private readonly dirs: ScratchDirs,
    private readonly log: (line: string) => void,
    private readonly json: boolean,
  ) {}

  skippedList(): { system: string; reason: string }[] {
    return [...this.#skipped].map(([system, reason]) => ({ system, reason }));
  }

  run(): PointResult[] {
    const progress = startProgress({ label: 'bench', json: this.json, total: trialCount(this.plan), unit: 'items' });
    const results: PointResult[] = [];
    let series: string | undefined;
    try {
      this.plan.points.forEach((point, index) => {
        if (series !== point.series) this.clearStores();
        series = point.series;
        results.push(this.runPoint(point, index, () => progress.update(++this.#done)));
      });
    } finally {
      progress.stop();
      this.clearStores();
    }
    return results;
  }

  private clearStores(): void {
    for (const dir of [this.dirs.tmpfs, this.dirs.disk]) {
      if (dir === undefined) continue;
      for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
  }

  private runPoint(point: Point, index: number, tick: () => void): PointResult {
    const outcomes = new Map<string, { results: TrialMeasured[]; skipped?: string; failed?: string }>();
    for (const name of point.systems) outcomes.set(name, { results: [] });
    for (let round = 0; round < point.settings.trials; round++) {
      const seed = ((index + 1) * 7919 + round * 104_729) % 2 ** 31;
      for (const name of point.systems) {
        const outcome = outcomes.get(name);
        tick();
        if (outcome === undefined || outcome.skipped !== undefined || outcome.failed !== undefined) continue;
        const known = this.#skipped.get(skipKey(point, name)) ?? this.unavailable(name);
        if (known !== undefined) {
          outcome.skipped = known;
          continue;
        }
        const result = this.trialWithRetries(point, name, seed);
        if ('failed' in result) outcome.failed = result.failed;
        else if ('skipped' in result) {
          outcome.skipped = result.skipped;
          this.skip(point, name, result.skipped);
        } else {
          outcome.results.push(result);
        }
      }
    }
    const systems = point.systems.map((name) => summarize(name, outcomes.get(name) ?? { results: [] }));
    return { workload: point.workload, params: point.params, trials: point.settings.trials, systems };
  }

  /** A trial that failed for a passing reason (RETRYABLE) runs again; every failure is logged. */
  private trialWithRetries(point: Point, name: string, seed: number): TrialResult | { failed: string } {
    for (let attempt = 0; ; attempt++) {
      try {
        return this.trial(point, name, seed);
      } catch (error) {
        const message = (error as Error).message.split('\n')[0] ?? '';
        const retry = attempt < TRIAL_RETRIES && RETRYABLE.test(message);
        this.log(`bench: ${name} failed at ${pointLabel(point)}${retry ? ` (retrying, ${attempt + 1} of ${TRIAL_RETRIES})` : ''}: ${message}`);
        if (!retry) return { failed: message };
        this.#retries++;
        sleepMs(RETRY_PAUSE_MS);
      }
    }
  }

  get retries(): number {
    return this.#retries;
  }

  private unavailable(name: string): string | undefined {
    const system = SYSTEMS.find((s) => s.name === name);
    const reason = system === undefined ? undefined : unavailableReason(this.peers, system);
    if (reason !== undefined && !this.#skipped.has(name)) {
      this.#skipped.set(name, reason);
      this.log(`bench: skip ${name}: ${reason}`);
    }
    return reason;
  }

  private skip(point: Point, name: string, reason: string): void {
    const key = skipKey(point, name);
    if (this.#skipped.has(key)) return;
    this.#skipped.set(key, reason);
    this.log(`bench: skip ${key}: ${reason}`);
  }

  private trial(point: Point, name: string, seed: number): TrialResult {
    const where = storeOf(point, name);
    const dir = where.fs === 'disk' ? this.dirs.disk : this.dirs.tmpfs;
    if (dir === undefined) return { skipped: this.peers.unavailable.disk ?? 'no ordinary file system' };
    const spec: TrialSpec = {
      system: name,
      workload: point.workload,
      params: point.params,
      file: path.join(dir, `${where.store}-${point.series}`),
      scratch: dir,
      seed,
      stamp: ++this.#stamp,
      warmup: point.settings.warmup,
      warmupMs: point.settings.warmupMs,
      opsMin: point.settings.opsMin,
      opsMax: point.settings.opsMax,
      budgetMs: point.settings.budgetMs,
    };
    const system = SYSTEMS.find((s) => s.name === name);
    if (system?.native !== undefined) return runNativeTrial(this.peers, system, spec);
    return runNodeTrial(spec);
  }
}

/** A child's skip holds for its system across the whole workload (e.g. no shared mode). */
function skipKey(point: Point, name: string): string {
  return `${name} (${point.workload})`;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function runNodeTrial(spec: TrialSpec): TrialResult {
  const child = spawnSync(process.execPath, [path.join(HERE, 'trial.js'), JSON.stringify(spec)], {
    env: { ...process.env, REGIONS_QUIET: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: TRIAL_TIMEOUT_MS,
    maxBuffer: 256 << 20,
  });
  if (child.error !== undefined) throw new Error(`trial child: ${child.error.message}`);
  if (child.status !== 0) throw new Error(`trial child ${child.signal ?? `exit ${child.status}`}: ${errorLine(child.stderr.toString())}`);
  const last = child.stdout.toString().trim().split('\n').pop() ?? '';
  return JSON.parse(last) as TrialResult;
}

export function pointLabel(point: { workload: string; params: Record<string, number | string> }): string {
  const parts = Object.entries(point.params).map(([key, value]) => `${key}=${value}`);
  return `${point.workload} ${parts.join(' ')}`;
}

function summarize(name: string, outcome: { results: TrialMeasured[]; skipped?: string; failed?: string }): SystemSummary {
  const system = describeSystem(name);
  const results = outcome.results;
  const trialMedians = results.map((r) => median(r.opNs));
  const spread = spreadOf(trialMedians);
  const ops = results.reduce((sum, r) => sum + r.ops, 0);
  const perOp = (pick: (r: TrialMeasured) => number | undefined): number | undefined => {
    const values = results.map(pick);
    if (values.length === 0 || values.some((v) => v === undefined)) return undefined;
    return (values as number[]).reduce((a, b) => a + b, 0) / ops;
  };
  const userBytesPerOp = results[0]?.userBytesPerOp ?? 0;
  const pmBytesPerOp = perOp((r) => r.pmBytes);
  const summary: SystemSummary = {
    system: name,
    label: system.label,
    family: system.family,
    atomic: system.atomic,
    trials: results.length,
    ops,
    trialMedianNs: trialMedians,
    medianNs: spread.median,
    minNs: spread.min,
    maxNs: spread.max,
    p99Ns: quantile(results.flatMap((r) => r.opNs), 0.99),
    userBytesPerOp,
    bytesPerSecond: userBytesPerOp > 0 ? userBytesPerOp / (spread.median / 1e9) : 0,
  };
  if (outcome.skipped !== undefined) summary.skipped = outcome.skipped;
  if (outcome.failed !== undefined) summary.failed = outcome.failed;
  const store = results.filter((r) => r.storeNs !== undefined).map((r) => median(r.storeNs ?? []));
  const sync = results.filter((r) => r.syncNs !== undefined).map((r) => median(r.syncNs ?? []));
  if (store.length > 0) summary.storeMedianNs = median(store);
  if (sync.length > 0) summary.syncMedianNs = median(sync);
  const lines = perOp((r) => r.linesFlushed);
  const fences = perOp((r) => r.fences);
  if (lines !== undefined) summary.linesPerOp = lines;
  if (fences !== undefined) summary.fencesPerOp = fences;
  if (pmBytesPerOp !== undefined) {
    summary.pmBytesPerOp = pmBytesPerOp;
    if (userBytesPerOp > 0) summary.writeAmplification = pmBytesPerOp / userBytesPerOp;
  }
  const source = results.find((r) => r.pmBytesSource !== undefined)?.pmBytesSource;
  if (source !== undefined) summary.pmBytesSource = source;
  const notes = results.find((r) => r.notes !== undefined)?.notes;
  if (notes !== undefined) summary.notes = notes;
  const extra = medianExtra(results);
  if (extra !== undefined) summary.extra = extra;
  if (results[0]?.data !== undefined) summary.data = results[0].data;
  return summary;
}

function medianExtra(results: TrialMeasured[]): Record<string, number> | undefined {
  const keys = new Set(results.flatMap((r) => Object.keys(r.extra ?? {})));
  if (keys.size === 0) return undefined;
  const extra: Record<string, number> = {};
  for (const key of keys) extra[key] = median(results.map((r) => r.extra?.[key]).filter((v): v is number => v !== undefined));
  return extra;
}

export { fileSystemOf };
