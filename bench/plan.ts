// What a run measures: the workloads, their points, the systems at each point, and the trial
// settings, for the full run and for --quick. Points that share a store (same workload and
// data size) are consecutive, so each store is built once and removed when its series ends.

import { SYSTEMS, type SystemDef } from './systems.js';
import { PAGE_BYTES, RECORD_BYTES } from './workload.js';

export type WorkloadName = 'pages' | 'records' | 'shared' | 'map' | 'mount' | 'opcosts';

export interface TrialSettings {
  trials: number;
  /** Warm-up: at least `warmup` ops, and until `warmupMs` have passed (JIT tiers settle). */
  warmup: number;
  warmupMs: number;
  opsMin: number;
  opsMax: number;
  budgetMs: number;
}

/** One point of one workload, measured for each of `systems` in interleaved rounds. */
export interface Point {
  workload: WorkloadName;
  params: Record<string, number | string>;
  systems: string[];
  settings: TrialSettings;
  /** Points with the same series share stores; the runner removes them when it changes. */
  series: string;
}

export interface Plan {
  quick: boolean;
  points: Point[];
}

const MiB = 1 << 20;
const GiB = 1 << 30;

const SETTINGS_FULL: TrialSettings = { trials: 5, warmup: 3, warmupMs: 250, opsMin: 5, opsMax: 2000, budgetMs: 250 };
const SETTINGS_QUICK: TrialSettings = { trials: 3, warmup: 2, warmupMs: 0, opsMin: 3, opsMax: 300, budgetMs: 40 };

const UNIT_SYSTEMS = SYSTEMS.map((s) => s.name);
/** Small records: the systems whose unit can be 64 bytes. */
const RECORD_SYSTEMS = ['regions-fault', 'regions-scan', 'regions-manual', 'pmdk-per-unit', 'lmdb-tmpfs-sync', 'lmdb-disk-sync', 'sqlite-full', 'sqlite-normal', 'mmap-tmpfs', 'limit-clwb'];
/** Systems too slow to populate at 1 GiB for every trial budget, left out of the 1 GiB series. */
const SKIP_AT_1GIB = new Set<string>([]);

export function buildPlan(quick: boolean, only?: Set<WorkloadName>, systems?: Set<string>): Plan {
  const settings = quick ? SETTINGS_QUICK : SETTINGS_FULL;
  const points: Point[] = [];
  const want = (w: WorkloadName): boolean => only === undefined || only.has(w);
  if (want('pages')) points.push(...pagePoints(quick, settings));
  if (want('records')) points.push(...recordPoints(quick, settings));
  if (want('shared')) points.push(...sharedPoints(quick, settings));
  if (want('map')) points.push(...mapPoints(quick, settings));
  if (want('mount')) points.push(...mountPoints(quick));
  if (want('opcosts')) points.push({ workload: 'opcosts', params: {}, systems: ['regions'], settings: { ...settings, trials: 1 }, series: 'opcosts' });
  if (systems === undefined) return { quick, points };
  const kept = points.map((p) => ({ ...p, systems: p.systems.filter((name) => systems.has(name)) })).filter((p) => p.systems.length > 0);
  return { quick, points: kept };
}

function pagePoints(quick: boolean, settings: TrialSettings): Point[] {
  const sizes = quick ? [16 * MiB] : [16 * MiB, GiB];
  const counts = quick ? [1, 256] : [1, 16, 256, 4096];
  const points: Point[] = [];
  for (const dataBytes of sizes) {
    for (const pattern of ['seq', 'random'] as const) {
      for (const count of counts) {
        const systems = UNIT_SYSTEMS.filter((name) => applies(name, pattern) && !(dataBytes >= GiB && SKIP_AT_1GIB.has(name)));
        points.push({ workload: 'pages', params: { unitBytes: PAGE_BYTES, count, pattern, dataBytes }, systems, settings, series: `pages-${dataBytes}` });
      }
    }
  }
  return points;
}

function recordPoints(quick: boolean, settings: TrialSettings): Point[] {
  const counts = quick ? [16] : [1, 16, 256];
  return counts.map((count) => ({
    workload: 'records' as const,
    params: { unitBytes: RECORD_BYTES, count, pattern: 'random', dataBytes: 16 * MiB },
    systems: RECORD_SYSTEMS,
    settings,
    series: 'records',
  }));
}

function sharedPoints(quick: boolean, settings: TrialSettings): Point[] {
  const processes = quick ? [2] : [1, 2, 4, 8];
  return processes.map((count) => ({
    workload: 'shared' as const,
    params: { processes: count, count: 16, dataBytes: 16 * MiB },
    systems: ['regions-shared'],
    settings,
    series: `shared-${count}`,
  }));
}

function mapPoints(quick: boolean, settings: TrialSettings): Point[] {
  const sizes = quick ? [MiB, 16 * MiB] : [MiB, 16 * MiB, 256 * MiB, GiB, 4 * GiB];
  const mapSettings: TrialSettings = { ...settings, warmup: 1, warmupMs: 0, opsMin: 2, opsMax: quick ? 10 : 50, budgetMs: quick ? 50 : 300 };
  return sizes.map((dataBytes) => ({
    workload: 'map' as const,
    params: { dataBytes },
    systems: ['regions-map-fault', 'regions-map-scan', 'regions-map-manual', 'regions-map-sparse', 'mmap-map'],
    settings: mapSettings,
    series: `map-${dataBytes}`,
  }));
}

function mountPoints(quick: boolean): Point[] {
  const shapes = quick
    ? [{ regions: 1000, dataBytes: 0 }, { regions: 1, dataBytes: 64 * MiB }]
    : [
        { regions: 1000, dataBytes: 0 },
        { regions: 10_000, dataBytes: 0 },
        { regions: 100_000, dataBytes: 0 },
        { regions: 1, dataBytes: 64 * MiB },
        { regions: 1, dataBytes: 256 * MiB },
        { regions: 1, dataBytes: GiB },
      ];
  const opsMax = quick ? 2 : 3;
  const settings: TrialSettings = { trials: quick ? 3 : 5, warmup: 0, warmupMs: 0, opsMin: 1, opsMax, budgetMs: 0 };
  return shapes.map((shape) => ({
    workload: 'mount' as const,
    params: shape,
    systems: ['regions-clean', 'regions-crash'],
    settings,
    series: `mount-${shape.regions}-${shape.dataBytes}`,
  }));
}

function applies(name: string, pattern: 'seq' | 'random'): boolean {
  const system: SystemDef | undefined = SYSTEMS.find((s) => s.name === name);
  return system !== undefined && !(system.seqOnly === true && pattern !== 'seq');
}

/** How many child processes the plan starts (for the progress bar). */
export function trialCount(plan: Plan): number {
  return plan.points.reduce((sum, p) => sum + p.systems.length * p.settings.trials, 0);
}
