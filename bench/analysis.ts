// From the summaries to the claims: the ratios of the Region System to each peer and to the
// physical limit, the goals of the design (met or missed, from the numbers), the cost of each
// dirty-page tracker, and the "what this means" paragraph. Nothing here is hand-written per
// run: every sentence is built from the figures.

import type { PointResult, SuiteResults, SystemSummary } from './suite.js';
import { geometricMean, median } from './stats.js';
import { PAGE_BYTES } from './workload.js';

/** The Region System variant the goals are stated for. */
export const OURS = 'regions-manual';
const LMDB_SAME_FS = 'lmdb-tmpfs-sync';
const LIMIT = 'limit-clwb';
const KiB = 1024;
const MiB = 1024 * KiB;

export interface GoalRow {
  goal: string;
  target: string;
  measured: string;
  /** The measured value in a few words, for the summary paragraph. */
  headline: string;
  /** undefined: could not be judged (a peer was skipped). */
  met: boolean | undefined;
}

export interface RatioRow {
  dataBytes: number;
  pattern: string;
  k: number;
  against: string;
  /** For peers: peer time / our time (above 1: we are faster). For limits: our time / limit time. */
  ratio: number;
  /** Our time as the whole commit (store loop + pmsync), or pmsync alone. */
  basis: 'commit' | 'pmsync';
}

export interface TrackerCost {
  dataBytes: number;
  pattern: string;
  k: number;
  /** Extra store-loop time per page of 'fault' over 'manual' (first-store faults). */
  faultStoreNsPerPage?: number;
  /** Extra pmsync time per page of 'fault' over 'manual' (re-protection). */
  faultSyncNsPerPage?: number;
  /** Extra pmsync time of 'scan' over 'manual' (comparing every mapped page). */
  scanSyncNs?: number;
}

export interface Analysis {
  goals: GoalRow[];
  ratios: RatioRow[];
  trackers: TrackerCost[];
  meaning: string[];
}

/** A system's summary at a point, if it was measured. */
export function measured(point: PointResult, system: string): SystemSummary | undefined {
  const found = point.systems.find((s) => s.system === system);
  return found !== undefined && found.trials > 0 && found.skipped === undefined && found.failed === undefined ? found : undefined;
}

function best(point: PointResult, systems: string[]): SystemSummary | undefined {
  const candidates = systems.map((s) => measured(point, s)).filter((s): s is SystemSummary => s !== undefined);
  return candidates.sort((a, b) => a.medianNs - b.medianNs)[0];
}

export function pagePoints(results: SuiteResults): PointResult[] {
  return results.points.filter((p) => p.workload === 'pages');
}

export function kOf(point: PointResult): number {
  return Number(point.params['count']);
}

export function analyse(results: SuiteResults): Analysis {
  const ratios = ratioRows(results);
  const trackers = trackerCosts(results);
  const goals = goalRows(results, ratios);
  return { goals, ratios, trackers, meaning: meaning(results, goals, ratios, trackers) };
}

const PEER_GROUPS: { against: string; systems: string[] }[] = [
  { against: 'PMDK (best variant)', systems: ['pmdk-per-unit', 'pmdk-one-range'] },
  { against: 'lmdb-js tmpfs sync', systems: [LMDB_SAME_FS] },
  { against: 'lmdb-js tmpfs noSync', systems: ['lmdb-tmpfs-nosync'] },
  { against: 'lmdb-js disk sync', systems: ['lmdb-disk-sync'] },
  { against: 'SQLite WAL FULL', systems: ['sqlite-full'] },
  { against: 'SQLite WAL NORMAL', systems: ['sqlite-normal'] },
  { against: 'mmap + msync tmpfs', systems: ['mmap-tmpfs'] },
];
const LIMIT_GROUPS: { against: string; systems: string[] }[] = [
  { against: 'limit: copy + flush + sfence (C)', systems: [LIMIT] },
  { against: 'limit: nt stores + sfence (C)', systems: ['limit-nt'] },
  { against: 'limit: FileDevice (JS)', systems: ['limit-device'] },
];

function ratioRows(results: SuiteResults): RatioRow[] {
  const rows: RatioRow[] = [];
  for (const point of pagePoints(results)) {
    const ours = measured(point, OURS);
    if (ours === undefined) continue;
    const where = { dataBytes: Number(point.params['dataBytes']), pattern: String(point.params['pattern']), k: kOf(point) };
    const bases: ['commit' | 'pmsync', number | undefined][] = [['commit', ours.medianNs], ['pmsync', ours.syncMedianNs]];
    for (const [basis, oursNs] of bases) {
      if (oursNs === undefined) continue;
      for (const group of PEER_GROUPS) {
        const peer = best(point, group.systems);
        if (peer !== undefined) rows.push({ ...where, against: group.against, ratio: peer.medianNs / oursNs, basis });
      }
      for (const group of LIMIT_GROUPS) {
        const limit = best(point, group.systems);
        if (limit !== undefined) rows.push({ ...where, against: group.against, ratio: oursNs / limit.medianNs, basis });
      }
    }
  }
  return rows;
}

function trackerCosts(results: SuiteResults): TrackerCost[] {
  const costs: TrackerCost[] = [];
  for (const point of pagePoints(results)) {
    const manual = measured(point, 'regions-manual');
    if (manual?.storeMedianNs === undefined || manual.syncMedianNs === undefined) continue;
    const k = kOf(point);
    const cost: TrackerCost = { dataBytes: Number(point.params['dataBytes']), pattern: String(point.params['pattern']), k };
    const fault = measured(point, 'regions-fault');
    if (fault?.storeMedianNs !== undefined && fault.syncMedianNs !== undefined) {
      cost.faultStoreNsPerPage = (fault.storeMedianNs - manual.storeMedianNs) / k;
      cost.faultSyncNsPerPage = (fault.syncMedianNs - manual.syncMedianNs) / k;
    }
    const scan = measured(point, 'regions-scan');
    if (scan?.syncMedianNs !== undefined) cost.scanSyncNs = scan.syncMedianNs - manual.syncMedianNs;
    costs.push(cost);
  }
  return costs;
}

interface RangeOf {
  min: number;
  max: number;
  geo: number;
  n: number;
}

function rangeOf(values: number[]): RangeOf | undefined {
  const usable = values.filter((v) => Number.isFinite(v));
  if (usable.length === 0) return undefined;
  return { min: Math.min(...usable), max: Math.max(...usable), geo: geometricMean(usable), n: usable.length };
}

export function times(x: number): string {
  return `${x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toFixed(3)}×`;
}

function rangeText(r: RangeOf): string {
  return r.n === 1 ? times(r.min) : `${times(r.min)}–${times(r.max)} (geometric mean ${times(r.geo)}, ${r.n} points)`;
}

function ratiosFor(ratios: RatioRow[], against: string, kFilter: (k: number) => boolean, basis: 'commit' | 'pmsync' = 'commit'): number[] {
  return ratios.filter((r) => r.against === against && kFilter(r.k) && r.basis === basis).map((r) => r.ratio);
}

/** ", pmsync alone: ..." for a goal's measured text. */
function aloneText(ratios: RatioRow[], against: string, kFilter: (k: number) => boolean, invert = false): string {
  const alone = rangeOf(ratiosFor(ratios, against, kFilter, 'pmsync').map((r) => (invert ? 1 / r : r)));
  return alone === undefined ? '' : `; pmsync alone: ${rangeText(alone)}`;
}

/** The speed goals (the targets of the speed issue), which the goal table and the ratio plots both show. */
export const GOALS = {
  /** pmsync (manual) commit throughput over PMDK's, k ≥ 16: at least. */
  vsPmdk: 3,
  /** ... over lmdb-js's durable transactions on tmpfs, k ≥ 16: at least. */
  vsLmdb: 3,
  /** pmsync (manual) time over the C limit's (copy + flush + sfence), k ≥ 16: at most. */
  vsLimit: 1.3,
  /** k = 1 latency over PMDK's: at most (no slower). */
  k1VsPmdk: 1,
  /** Lines flushed beyond the data lines and ⌈k/4⌉ (the record's entries): at most. */
  extraLines: 4,
} as const;

function goalRows(results: SuiteResults, ratios: RatioRow[]): GoalRow[] {
  const goals: GoalRow[] = [];
  const atLeast = (goal: string, target: number, against: string, kFilter: (k: number) => boolean): void => {
    const r = rangeOf(ratiosFor(ratios, against, kFilter));
    goals.push({ goal, target: `≥ ${target}×`, measured: r === undefined ? `not measured (${against} skipped)` : `${rangeText(r)}${aloneText(ratios, against, kFilter)}`, headline: r === undefined ? '' : `worst ${times(r.min)}, geometric mean ${times(r.geo)}`, met: r === undefined ? undefined : r.min >= target });
  };
  const atMost = (goal: string, target: number, against: string, kFilter: (k: number) => boolean): void => {
    const r = rangeOf(ratiosFor(ratios, against, kFilter));
    goals.push({ goal, target: `≤ ${target}×`, measured: r === undefined ? `not measured (${against} skipped)` : `${rangeText(r)}${aloneText(ratios, against, kFilter)}`, headline: r === undefined ? '' : `worst ${times(r.max)}, geometric mean ${times(r.geo)}`, met: r === undefined ? undefined : r.max <= target });
  };
  atLeast('commit throughput, pmsync (manual) vs PMDK, k ≥ 16', GOALS.vsPmdk, 'PMDK (best variant)', (k) => k >= 16);
  atLeast('commit throughput, pmsync (manual) vs lmdb-js (tmpfs, sync), k ≥ 16', GOALS.vsLmdb, 'lmdb-js tmpfs sync', (k) => k >= 16);
  atMost('commit time, pmsync (manual) vs the physical limit (copy + flush + sfence, C), k ≥ 16', GOALS.vsLimit, 'limit: copy + flush + sfence (C)', (k) => k >= 16);
  const k1 = rangeOf(ratiosFor(ratios, 'PMDK (best variant)', (k) => k === 1).map((r) => 1 / r));
  goals.push({ goal: 'k = 1 commit latency vs PMDK (ours / PMDK)', target: `≤ ${GOALS.k1VsPmdk}×`, measured: k1 === undefined ? 'not measured (PMDK skipped)' : `${rangeText(k1)}${aloneText(ratios, 'PMDK (best variant)', (k) => k === 1, true)}`, headline: k1 === undefined ? '' : `worst ${times(k1.max)}, geometric mean ${times(k1.geo)}`, met: k1 === undefined ? undefined : k1.max <= GOALS.k1VsPmdk });
  const fences = results.points
    .filter((p) => p.workload === 'pages' || p.workload === 'records')
    .flatMap((p) => p.systems.filter((s) => s.family === 'regions' && s.fencesPerOp !== undefined && s.trials > 0).map((s) => s.fencesPerOp ?? 0));
  goals.push({ goal: 'fences per pmsync (every tracker, every k)', target: '≤ 2', measured: fences.length === 0 ? 'not measured' : `${Math.min(...fences).toFixed(2)}–${Math.max(...fences).toFixed(2)}`, headline: fences.length === 0 ? '' : `at most ${Math.max(...fences).toFixed(2)}`, met: fences.length === 0 ? undefined : Math.max(...fences) <= 2 });
  goals.push(linesGoal(results));
  return goals;
}

/** Lines flushed beyond the data: the goal allows ⌈k/4⌉ (16-byte entries in the record) plus GOALS.extraLines. */
function linesGoal(results: SuiteResults): GoalRow {
  const overheads: { k: number; extra: number }[] = [];
  for (const point of pagePoints(results)) {
    const ours = measured(point, OURS);
    if (ours?.linesPerOp === undefined) continue;
    const k = kOf(point);
    overheads.push({ k, extra: ours.linesPerOp - k * (PAGE_BYTES / 64) - Math.ceil((16 * k) / 64) });
  }
  const goal = 'lines flushed per pmsync − data lines − ⌈k/4⌉';
  const target = `≤ ${GOALS.extraLines}`;
  if (overheads.length === 0) return { goal, target, measured: 'not measured', headline: '', met: undefined };
  const byK = new Map<number, number[]>();
  for (const o of overheads) byK.set(o.k, [...(byK.get(o.k) ?? []), o.extra]);
  const text = [...byK].sort((a, b) => a[0] - b[0]).map(([k, values]) => `k=${k}: ${median(values).toFixed(0)}`).join(', ');
  const all = overheads.map((o) => o.extra);
  return { goal, target, measured: text, headline: text, met: Math.max(...all) <= GOALS.extraLines };
}

function us(ns: number): string {
  return ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(ns >= 1e5 ? 0 : 1)} µs`;
}

function sizeName(bytes: number): string {
  return bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GiB` : bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`;
}

function meaning(results: SuiteResults, goals: GoalRow[], ratios: RatioRow[], trackers: TrackerCost[]): string[] {
  const m = results.machine;
  const out: string[] = [];
  out.push(
    `These numbers come from ${m.cpu.cores} cores of ${m.cpu.model}${m.cpu.virtualized ? ' in a virtual machine' : ''}, flushing with ${m.cpu.flushInstruction}, with the pool on ${m.fileSystems.pool} standing in for PM: flushes reach the page cache, not a persistence domain, so absolute times are those of DRAM plus the CPU's flush instructions, and ratios are what carry over.${results.quick ? ' This is a --quick run: few points and trials, a smoke check only.' : ''}`,
  );
  const met = goals.filter((g) => g.met === true).map((g) => `${g.goal} (${g.headline})`);
  const missed = goals.filter((g) => g.met === false).map((g) => `${g.goal} (${g.target}; ${g.headline})`);
  const unjudged = goals.filter((g) => g.met === undefined).map((g) => g.goal);
  if (met.length > 0) out.push(`Goals met: ${met.join('; ')}.`);
  if (missed.length > 0) out.push(`Goals missed: ${missed.join('; ')}.`);
  if (unjudged.length > 0) out.push(`Not judged here (a peer or a feature was missing): ${unjudged.join('; ')}.`);
  out.push(...whereTimeGoes(results));
  out.push(...trackerSentences(trackers));
  const msync = rangeOf(ratiosFor(ratios, 'mmap + msync tmpfs', () => true));
  if (msync !== undefined) out.push(`mmap + msync on tmpfs (no atomicity, msync almost free there) takes ${rangeText(msync)} the time of pmsync: that is the price of atomicity plus durability over plain stores on this machine.`);
  return out;
}

function whereTimeGoes(results: SuiteResults): string[] {
  const shares: number[] = [];
  let example: string | undefined;
  for (const point of pagePoints(results)) {
    const ours = measured(point, OURS);
    const limit = measured(point, LIMIT);
    if (ours?.syncMedianNs === undefined || ours.storeMedianNs === undefined) continue;
    shares.push(ours.syncMedianNs / (ours.syncMedianNs + ours.storeMedianNs));
    if (kOf(point) === 256 && point.params['pattern'] === 'random' && Number(point.params['dataBytes']) === 16 * MiB) {
      example = `At k = 256 random pages in 16 MiB, the store loop takes ${us(ours.storeMedianNs)} and pmsync ${us(ours.syncMedianNs)}${limit === undefined ? '' : `, against ${us(limit.medianNs)} for the C limit to copy and flush the same bytes`}.`;
    }
  }
  if (shares.length === 0) return ['No Region System commit was measured (region.map missing?), so nothing can be said about pmsync itself.'];
  const low = Math.round(Math.min(...shares) * 100);
  const high = Math.round(Math.max(...shares) * 100);
  const lines = [`pmsync is ${low === high ? low : `${low}–${high}`}% of a manual-tracking commit; the rest is the application's own stores and markDirty calls.`];
  if (example !== undefined) lines.push(example);
  return lines;
}

function trackerSentences(trackers: TrackerCost[]): string[] {
  const out: string[] = [];
  const faultStore = trackers.map((t) => t.faultStoreNsPerPage).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const faultSync = trackers.map((t) => t.faultSyncNsPerPage).filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (faultStore.length > 0) {
    out.push(
      `The 'fault' tracker costs about ${us(median(faultStore))} per dirtied page in the store loop (the first-store fault; range ${us(Math.min(...faultStore))}–${us(Math.max(...faultStore))}) and ${us(median(faultSync))} per page in pmsync (re-protecting it), measured against 'manual'.`,
    );
  }
  const fixed = trackers.filter((t) => t.k === 1 && t.faultSyncNsPerPage !== undefined);
  const fixedBySize = new Map<number, number[]>();
  for (const t of fixed) fixedBySize.set(t.dataBytes, [...(fixedBySize.get(t.dataBytes) ?? []), t.faultSyncNsPerPage ?? 0]);
  if (fixedBySize.size > 0) {
    const parts = [...fixedBySize].sort((a, b) => a[0] - b[0]).map(([bytes, values]) => `${us(median(values))} in a ${sizeName(bytes)} region`);
    out.push(`At k = 1 its pmsync costs ${parts.join(' and ')} more than manual's: a part of it grows with the region, not with k.`);
  }
  const bySize = new Map<number, number[]>();
  for (const t of trackers) if (t.scanSyncNs !== undefined) bySize.set(t.dataBytes, [...(bySize.get(t.dataBytes) ?? []), t.scanSyncNs]);
  if (bySize.size > 0) {
    const parts = [...bySize].sort((a, b) => a[0] - b[0]).map(([bytes, values]) => `${us(median(values))} per pmsync for a ${sizeName(bytes)} region (${(median(values) / (bytes / PAGE_BYTES)).toFixed(1)} ns per mapped page)`);
    out.push(`The 'scan' tracker adds ${parts.join(' and ')}, whatever k is: it pays for the region's size, not for what changed.`);
  }
  return out;
}
