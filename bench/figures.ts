// Which rows answer which question: the report's figures, one question each, built from a
// run's summaries with the spec builders of plots.ts and written as SVG beside the report.
// Each figure shows the few series its question needs (the tables keep every system).

import fs from 'node:fs';
import path from 'node:path';
import { type Analysis, GOALS, kOf, measured, pagePoints } from './analysis.js';
import {
  KIND, linesVsK, linesVsSize, phaseBars, ratioVsK, renderSvg, type Row, setSeriesOrder, sideBySide, type Spec,
} from './plots.js';
import type { SuiteResults, SystemSummary } from './suite.js';
import { SYSTEMS } from './systems.js';

const MiB = 1 << 20;

export type FigureName = 'latency' | 'floor' | 'ratios' | 'flushes' | 'trackers' | 'records' | 'map' | 'mount';

/** Against the peers one would pick instead: ours (manual tracking, tmpfs and disk), the durable peers, the limit. */
const VERSUS_PEERS = [
  'regions-manual', 'regions-manual-msync', 'pmdk-per-unit', 'pmdk-one-range',
  'lmdb-tmpfs-sync', 'lmdb-disk-sync', 'sqlite-full', 'limit-clwb',
];
/** Against what is not atomic: plain stores + msync and the physical limit. */
const VERSUS_FLOOR = ['regions-manual', 'mmap-tmpfs', 'mmap-disk', 'limit-clwb', 'limit-nt', 'limit-device'];
/** Peers of the analysis that do not commit durably (or atomically): the floor figure shows them, not the ratios. */
const NOT_DURABLE = ['lmdb-js tmpfs noSync', 'SQLite WAL NORMAL', 'mmap + msync tmpfs'];
/** Lines and fences: the four trackers flush the same, so one of them. */
const FLUSHERS = ['regions-manual', 'pmdk-per-unit', 'pmdk-one-range', 'limit-clwb', 'limit-nt', 'limit-device'];

export interface Figures {
  files: Partial<Record<FigureName, string>>;
  skipped?: string;
}

export async function renderFigures(results: SuiteResults, analysis: Analysis, dir: string, name: string,
): Promise<Figures> {
  setSeriesOrder([...SYSTEMS.map((s) => s.label), ...results.points.flatMap((p) => p.systems.map((s) => s.label))]);
  const specs = figureSpecs(results, analysis);
  const files: Partial<Record<FigureName, string>> = {};
  for (const [figure, spec] of Object.entries(specs) as [FigureName, Spec][]) {
    const rendered = await renderSvg(spec);
    if ('skipped' in rendered) return { files, skipped: rendered.skipped };
    fs.writeFileSync(path.join(dir, `${figure}.svg`), rendered.svg);
    files[figure] = `${name}/${figure}.svg`;
  }
  return { files };
}

function figureSpecs(results: SuiteResults, analysis: Analysis): Partial<Record<FigureName, Spec>> {
  const specs: Partial<Record<FigureName, Spec>> = {};
  const pages = pageRows(results);
  const among = (names: string[]): Row[] => pages.filter((r) => names.includes(String(r['name'])));
  const perCommit = { field: 'us', title: 'µs per commit (median, log)' };
  const peers = among(VERSUS_PEERS);
  const latency = 'How long does a commit of k pages take, against the atomic peers?';
  if (peers.length > 0) specs.latency = linesVsK(latency, peers, perCommit);
  const floor = among(VERSUS_FLOOR);
  const floorTitle = 'How far is pmsync from stores that are not atomic, and from the limit?';
  if (floor.length > 0) specs.floor = linesVsK(floorTitle, floor, perCommit);
  const ratios = ratioRows(analysis);
  const faster = 'How many times faster is pmsync (manual)? Higher is better (16 MiB region)';
  if (ratios.length > 0) specs.ratios = ratioVsK(faster, ratios, ratioGoals(ratios), 'speed ratio (log)');
  const counted = among(FLUSHERS).filter((r) => r['lines'] !== undefined && String(r['panel']).startsWith('16 MiB'));
  const flushRows = counted.flatMap((r) => [
    { ...r, panel: `lines flushed per commit — ${r['panel']}`, y: r['lines'] ?? 0 },
    { ...r, panel: `fences per commit — ${r['panel']}`, y: r['fences'] ?? 0 },
  ]);
  const flushes = 'How many cache lines and fences does a commit cost? (16 MiB region)';
  const perCommitCount = { field: 'y', title: 'per commit (log)' };
  if (flushRows.length > 0) specs.flushes = linesVsK(flushes, flushRows, perCommitCount, true);
  const phases = phaseRows(results);
  const phasesTitle = 'Where does a commit spend its time, per tracker? (16 MiB region, random pages)';
  if (phases.length > 0) specs.trackers = phaseBars(phasesTitle, phases);
  Object.assign(specs, sizeSpecs(results));
  return specs;
}

/** The figures against a size or a count: records, map, mount. */
function sizeSpecs(results: SuiteResults): Partial<Record<FigureName, Spec>> {
  const specs: Partial<Record<FigureName, Spec>> = {};
  const records = recordRows(results);
  const perUserByte = { field: 'wa', title: 'bytes written ÷ user bytes (log)' };
  const recordsTitle = 'How many bytes are written per byte of user data? (64-byte records)';
  const perCommitRecords = { field: 'r', title: 'records per commit (log)' };
  if (records.length > 0) specs.records = linesVsSize(recordsTitle, records, perCommitRecords, perUserByte);
  const maps = mapRows(results);
  const mapX = { field: 'mib', title: 'region size (MiB, log)' };
  const mapY = { field: 'ms', title: 'ms per map (log)' };
  if (maps.length > 0) specs.map = linesVsSize('How long does the first map of a region take?', maps, mapX, mapY);
  const mounts = mountRows(results);
  if (mounts.length > 0) {
    const ms = { field: 'ms', title: 'ms per mount (log)' };
    specs.mount = sideBySide('How long does a mount take, after a clean close and after a crash?', [
      { rows: mounts.filter((r) => r['by'] === 'data'), x: { field: 'x', title: 'MiB of data (log)' }, y: ms },
      { rows: mounts.filter((r) => r['by'] === 'regions'), x: { field: 'x', title: 'regions of 4 KiB (log)' }, y: ms },
    ]);
  }
  return specs;
}

export function sizeName(bytes: number): string {
  if (bytes >= 1 << 30) return `${bytes / (1 << 30)} GiB`;
  if (bytes >= MiB) return `${bytes / MiB} MiB`;
  return `${bytes / 1024} KiB`;
}

function kindOf(s: SystemSummary): string {
  if (s.family === 'regions') return KIND.ours;
  return s.atomic ? KIND.peer : KIND.floor;
}

function pageRows(results: SuiteResults): Row[] {
  const rows: Row[] = [];
  for (const point of pagePoints(results)) {
    const pattern = point.params['pattern'] === 'seq' ? 'sequential' : 'random';
    const panel = `${sizeName(Number(point.params['dataBytes']))} region, ${pattern} pages`;
    for (const s of point.systems) {
      if (measured(point, s.system) === undefined) continue;
      const row: Row = { k: kOf(point), name: s.system, system: s.label, kind: kindOf(s), panel, us: s.medianNs / 1e3 };
      if (s.linesPerOp !== undefined) row['lines'] = s.linesPerOp;
      if (s.fencesPerOp !== undefined) row['fences'] = s.fencesPerOp;
      rows.push(row);
    }
  }
  return rows;
}

/** Every ratio as "how many times faster pmsync is": peer ÷ ours, limit ÷ ours (the analysis has ours ÷ limit). */
function ratioRows(analysis: Analysis): Row[] {
  const shown = analysis.ratios
    .filter((r) => r.dataBytes === 16 * MiB && r.basis === 'commit' && !NOT_DURABLE.includes(r.against));
  const isLimit = (r: { against: string }): boolean => r.against.startsWith('limit');
  const peersFirst = [...shown.filter((r) => !isLimit(r)), ...shown.filter(isLimit)];
  return peersFirst.map((r) => {
    const limit = r.against.startsWith('limit');
    const pattern = r.pattern === 'seq' ? 'sequential' : 'random';
    const panel = limit ? `against the physical limit — ${pattern} pages` : `against the peers — ${pattern} pages`;
    return { k: r.k, ratio: limit ? 1 / r.ratio : r.ratio, peer: r.against, panel };
  });
}

/** The goals of the analysis (bench/analysis.ts goalRows), as lines on the ratio panels they belong to. */
function ratioGoals(ratios: Row[]): Row[] {
  const panels = [...new Set(ratios.map((r) => String(r['panel'])))];
  return panels.flatMap((panel) => (panel.startsWith('against the physical limit')
    ? [
      { panel, goal: 1, label: 'as fast as the limit', place: 'above' },
      { panel, goal: 1 / GOALS.vsLimit, label: `goal: within ${GOALS.vsLimit}× of the limit (k ≥ 16)`, place: 'below' },
    ]
    : [
      ...(GOALS.vsLmdb === GOALS.vsPmdk
        ? [{ panel, goal: GOALS.vsPmdk, label: `goal vs PMDK and lmdb-js: ${GOALS.vsPmdk}× (k ≥ 16)`, place: 'above' }]
        : [
          { panel, goal: GOALS.vsLmdb, label: `goal vs lmdb-js: ${GOALS.vsLmdb}× (k ≥ 16)`, place: 'above' },
          { panel, goal: GOALS.vsPmdk, label: `goal vs PMDK: ${GOALS.vsPmdk}× (k ≥ 16)`, place: 'below' },
        ]),
      { panel, goal: 1, label: 'as fast as the peer', place: 'below' },
    ]));
}

function phaseRows(results: SuiteResults): Row[] {
  const rows: Row[] = [];
  for (const point of pagePoints(results)) {
    if (Number(point.params['dataBytes']) !== 16 * MiB || point.params['pattern'] !== 'random') continue;
    for (const tracker of ['manual', 'scan', 'fault']) {
      const s = measured(point, `regions-${tracker}`);
      if (s?.storeMedianNs === undefined || s.syncMedianNs === undefined) continue;
      const panel = `k = ${kOf(point)}`;
      rows.push({ panel, tracker, phase: 'store loop', us: s.storeMedianNs / 1e3 });
      rows.push({ panel, tracker, phase: 'pmsync', us: s.syncMedianNs / 1e3 });
    }
  }
  return rows;
}

function recordRows(results: SuiteResults): Row[] {
  return results.points
    .filter((p) => p.workload === 'records')
    .flatMap((p) => p.systems.filter((s) => measured(p, s.system) !== undefined && s.writeAmplification !== undefined)
      .map((s) => ({ r: Number(p.params['count']), system: s.label, kind: kindOf(s), wa: s.writeAmplification ?? 0 })));
}

function mapRows(results: SuiteResults): Row[] {
  return results.points
    .filter((p) => p.workload === 'map')
    .flatMap((p) => p.systems.filter((s) => measured(p, s.system) !== undefined)
      .map((s) => ({ mib: Number(p.params['dataBytes']) / MiB, system: s.label, kind: kindOf(s), 
        ms: Math.max(s.medianNs / 1e6, 1e-3) })));
}

function mountRows(results: SuiteResults): Row[] {
  return results.points
    .filter((p) => p.workload === 'mount')
    .flatMap((p) => {
      const regions = Number(p.params['regions']);
      const dataMiB = Number(p.params['dataBytes']) / MiB;
      const by = dataMiB === 0 ? 'regions' : 'data';
      return p.systems
        .filter((s) => measured(p, s.system) !== undefined)
        .map((s) => ({ x: by === 'regions' ? regions : dataMiB, by, system: s.label, kind: KIND.ours,
          ms: s.medianNs / 1e6 }));
    });
}
