// The report of a run: <date>-<host>.json (every summary and the machine), <date>-<host>.md
// (tables, goals, "what this means") and its SVG figures in <date>-<host>/. A --quick run
// adds "-quick" to the name so it never replaces a full report.

import fs from 'node:fs';
import path from 'node:path';
import { analyse, kOf, measured, OURS, pagePoints, times, type Analysis } from './analysis.js';
import {
  linesVsK, linesVsSize, ratioVsK, renderSvg, setSystemOrder, stackedPhases, type Row, type Spec,
} from './plots.js';
import { pointLabel, type PointResult, type SuiteResults, type SystemSummary } from './suite.js';
import { SYSTEMS } from './systems.js';

const MiB = 1 << 20;

export async function writeReport(results: SuiteResults, outDir: string, log: (line: string) => void): Promise<{ jsonPath: string; reportPath: string; svgPaths: string[] }> {
  const name = `${results.machine.date.slice(0, 10)}-${results.machine.host.replace(/[^A-Za-z0-9.-]/g, '-')}${results.quick ? '-quick' : ''}`;
  const figureDir = path.join(outDir, name);
  fs.mkdirSync(figureDir, { recursive: true });
  const analysis = analyse(results);
  const jsonPath = path.join(outDir, `${name}.json`);
  fs.writeFileSync(jsonPath, `${JSON.stringify({ ...results, analysis: { goals: analysis.goals, ratios: analysis.ratios, trackers: analysis.trackers } }, null, 1)}\n`);
  const figures = await renderFigures(results, analysis, figureDir, name);
  if (figures.skipped !== undefined) log(`bench: plots skipped: ${figures.skipped}`);
  const reportPath = path.join(outDir, `${name}.md`);
  fs.writeFileSync(reportPath, markdown(results, analysis, figures.files, figures.skipped));
  return { jsonPath, reportPath, svgPaths: Object.values(figures.files).map((file) => path.join(outDir, file)) };
}

// ---------------------------------------------------------------------------------------
// Figures

type FigureName = 'latency' | 'throughput' | 'flushes' | 'trackers' | 'ratios' | 'records' | 'map' | 'mount';

async function renderFigures(results: SuiteResults, analysis: Analysis, dir: string, name: string): Promise<{ files: Partial<Record<FigureName, string>>; skipped?: string }> {
  setSystemOrder([...SYSTEMS.map((s) => s.label), ...results.points.flatMap((p) => p.systems.map((s) => s.label))]);
  const specs: Partial<Record<FigureName, Spec>> = {};
  const pages = pageRows(results);
  if (pages.length > 0) {
    specs.latency = linesVsK('Commit latency (median) vs pages per commit', pages, { field: 'us', title: 'µs per commit' });
    specs.throughput = linesVsK('Throughput vs pages per commit', pages, { field: 'mbps', title: 'MB/s of pages committed' });
    const counted = pages.filter((r) => r['lines'] !== undefined);
    const flushRows = counted.flatMap((r) => [
      { ...r, panel: `lines flushed per commit — ${r['panel']}`, y: r['lines'] ?? 0 },
      { ...r, panel: `fences per commit — ${r['panel']}`, y: r['fences'] ?? 0 },
    ]).filter((r) => String(r.panel).includes('16 MiB'));
    if (flushRows.length > 0) specs.flushes = linesVsK('Cache lines flushed and fences per commit (16 MiB region)', flushRows, { field: 'y', title: 'per commit' }, true);
  }
  const phases = phaseRows(results);
  if (phases.length > 0) specs.trackers = stackedPhases('Store loop and pmsync per tracker (16 MiB region, random pages)', phases);
  const ratios = analysis.ratios.filter((r) => r.dataBytes === 16 * MiB && r.basis === 'commit').map((r) => ({ k: r.k, ratio: r.ratio, peer: r.against, panel: `${r.against.startsWith('limit') ? 'ours ÷ limit' : 'peer ÷ ours'} — ${r.pattern}` }));
  if (ratios.length > 0) specs.ratios = ratioVsK('Time ratios of pmsync (manual) to each peer and to the limit (16 MiB region)', ratios, 'time ratio', [1, 1.5, 2, 3]);
  const records = recordRows(results);
  if (records.length > 0) specs.records = linesVsSize('Bytes written per byte of user data (64-byte records)', records, { field: 'r', title: 'records per commit' }, { field: 'wa', title: 'bytes written ÷ user bytes' });
  const maps = mapRows(results);
  if (maps.length > 0) specs.map = linesVsSize('First map of a region in a process vs region size', maps, { field: 'mib', title: 'region size (MiB)' }, { field: 'ms', title: 'ms per map' });
  const mounts = mountRows(results);
  if (mounts.length > 0) specs.mount = linesVsSize('Mount time', mounts, { field: 'x', title: 'regions / MiB of data' }, { field: 'ms', title: 'ms per mount' }, 'panel');
  const files: Partial<Record<FigureName, string>> = {};
  for (const [figure, spec] of Object.entries(specs) as [FigureName, Spec][]) {
    const rendered = await renderSvg(spec);
    if ('skipped' in rendered) return { files, skipped: rendered.skipped };
    fs.writeFileSync(path.join(dir, `${figure}.svg`), rendered.svg);
    files[figure] = `${name}/${figure}.svg`;
  }
  return { files };
}

function sizeName(bytes: number): string {
  if (bytes >= 1 << 30) return `${bytes / (1 << 30)} GiB`;
  if (bytes >= MiB) return `${bytes / MiB} MiB`;
  return `${bytes / 1024} KiB`;
}

function kindOf(s: SystemSummary): string {
  if (s.family === 'regions') return 'Region System';
  return s.atomic ? 'atomic peer' : 'floor (not atomic)';
}

function pageRows(results: SuiteResults): Row[] {
  const rows: Row[] = [];
  for (const point of pagePoints(results)) {
    const panel = `${sizeName(Number(point.params['dataBytes']))} region, ${point.params['pattern']}`;
    for (const s of point.systems) {
      if (measured(point, s.system) === undefined) continue;
      const row: Row = { k: kOf(point), system: s.label, kind: kindOf(s), panel, us: s.medianNs / 1e3, mbps: s.bytesPerSecond / 1e6 };
      if (s.linesPerOp !== undefined) row['lines'] = s.linesPerOp;
      if (s.fencesPerOp !== undefined) row['fences'] = s.fencesPerOp;
      rows.push(row);
    }
  }
  return rows;
}

function phaseRows(results: SuiteResults): Row[] {
  const rows: Row[] = [];
  for (const point of pagePoints(results)) {
    if (Number(point.params['dataBytes']) !== 16 * MiB || point.params['pattern'] !== 'random') continue;
    for (const tracker of ['manual', 'scan', 'fault']) {
      const s = measured(point, `regions-${tracker}`);
      if (s?.storeMedianNs === undefined || s.syncMedianNs === undefined) continue;
      const panel = `k = ${kOf(point)}`;
      rows.push({ panel, tracker, phase: 'store loop', us: s.storeMedianNs / 1e3 }, { panel, tracker, phase: 'pmsync', us: s.syncMedianNs / 1e3 });
    }
  }
  return rows;
}

function recordRows(results: SuiteResults): Row[] {
  return results.points
    .filter((p) => p.workload === 'records')
    .flatMap((p) => p.systems.filter((s) => measured(p, s.system) !== undefined && s.writeAmplification !== undefined).map((s) => ({ r: Number(p.params['count']), system: s.label, wa: s.writeAmplification ?? 0 })));
}

function mapRows(results: SuiteResults): Row[] {
  return results.points
    .filter((p) => p.workload === 'map')
    .flatMap((p) => p.systems.filter((s) => measured(p, s.system) !== undefined).map((s) => ({ mib: Number(p.params['dataBytes']) / MiB, system: s.label, ms: Math.max(s.medianNs / 1e6, 1e-3) })));
}

function mountRows(results: SuiteResults): Row[] {
  return results.points
    .filter((p) => p.workload === 'mount')
    .flatMap((p) => {
      const regions = Number(p.params['regions']);
      const dataMiB = Number(p.params['dataBytes']) / MiB;
      const byRegions = dataMiB === 0;
      return p.systems
        .filter((s) => measured(p, s.system) !== undefined)
        .map((s) => ({ x: byRegions ? regions : dataMiB, panel: byRegions ? 'vs regions (4 KiB each)' : 'vs MiB of data (one region)', system: s.label, ms: s.medianNs / 1e6 }));
    });
}

// ---------------------------------------------------------------------------------------
// Markdown

function us(ns: number): string {
  if (!Number.isFinite(ns)) return '–';
  if (ns >= 1e7) return `${(ns / 1e6).toFixed(0)} ms`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)} ms`;
  if (ns >= 1e4) return `${(ns / 1e3).toFixed(0)} µs`;
  return `${(ns / 1e3).toFixed(1)} µs`;
}

function num(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function figure(files: Partial<Record<FigureName, string>>, name: FigureName, alt: string): string[] {
  const file = files[name];
  return file === undefined ? [] : [`![${alt}](${file})`, ''];
}

function markdown(results: SuiteResults, analysis: Analysis, files: Partial<Record<FigureName, string>>, plotsSkipped: string | undefined): string {
  const m = results.machine;
  const lines: string[] = [`# Region System benchmarks — ${m.date.slice(0, 10)}${results.quick ? ' (quick)' : ''}`, ''];
  const retried = results.settings.retries > 0 ? ` ${results.settings.retries} failed trials were run again.` : '';
  lines.push(`Generated by \`npm run bench${results.quick ? ':quick' : ''}\` in ${Math.round(results.settings.seconds / 60)} min; the numbers behind every table are in the JSON file of the same name.${retried}`, '');
  lines.push('## What this means', '', analysis.meaning.join(' '), '');
  lines.push('## Goals', '', '| goal | target | measured | met |', '|---|---|---|---|');
  for (const g of analysis.goals) lines.push(`| ${g.goal} | ${g.target} | ${g.measured} | ${g.met === undefined ? 'not judged' : g.met ? 'yes' : '**no**'} |`);
  lines.push('', 'Ratios compare medians at the same point (k, pattern, region size). Against peers: peer time ÷ our time (above 1: the Region System is faster). Against the limit: our time ÷ limit time (1 is the floor).', '');
  lines.push(...machineSection(results), ...methodSection(results));
  if (plotsSkipped !== undefined) lines.push(`Plots were skipped: ${plotsSkipped}.`, '');
  lines.push(...pagesSection(results, analysis, files), ...recordsSection(results, files), ...sharedSection(results), ...mapSection(results, files), ...mountSection(results, files), ...skipSection(results));
  return `${lines.join('\n')}\n`;
}

function machineSection(results: SuiteResults): string[] {
  const m = results.machine;
  const lines = ['## Machine', '', '| | |', '|---|---|'];
  lines.push(`| CPU | ${m.cpu.model}, ${m.cpu.cores} cores${m.cpu.virtualized ? ' (virtual machine)' : ''} |`);
  lines.push(`| flush instruction | ${m.cpu.flushInstruction} + sfence |`);
  const mechanism = results.points.flatMap((p) => p.systems).find((s) => s.notes?.startsWith('fault tracking by') === true)?.notes;
  if (mechanism !== undefined) lines.push(`| 'fault' tracker | ${mechanism.replace('fault tracking by ', '')} |`);
  lines.push(`| memory | ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB |`);
  lines.push(`| kernel | ${m.kernel} |`);
  lines.push(`| pool file system | ${m.fileSystems.pool} (PM emulated: persistence 'pmem' flushes to the page cache) |`);
  lines.push(`| ordinary file system | ${m.fileSystems.disk ?? 'none found'} |`);
  lines.push(`| Node | ${m.node} |`);
  for (const [name, version] of Object.entries(m.versions)) lines.push(`| ${name} | ${version} |`);
  return [...lines, ''];
}

function methodSection(results: SuiteResults): string[] {
  const lines = ['## Method', ''];
  lines.push(
    `Every trial runs in a fresh child process (Node for the Region System, lmdb-js, SQLite, mmap and the FileDevice limit; a C program from bench/peers for PMDK and the C limit). At each point the systems take turns, one trial each per round (A B C … A B C …), so drift of the machine falls on all alike; ${results.settings.trialsPerPoint} rounds per point. A trial warms up, then times ops until a time budget is spent (at least a few ops, at most a few thousand). Reported: the median over trials of each trial's median op time, the spread (min–max) of those medians, and the p99 of all ops pooled. Stores (pools, databases, files) are built untimed by the first trial that needs them and reused by later ones.`,
    '',
    '| system | one commit | atomic |',
    '|---|---|---|',
  );
  for (const s of SYSTEMS) lines.push(`| ${s.label} | ${s.commit} (${s.fs === 'tmpfs' ? 'tmpfs' : 'ordinary file system'}) | ${s.atomic ? 'yes' : 'no'} |`);
  return [...lines, ''];
}

function pagesSection(results: SuiteResults, analysis: Analysis, files: Partial<Record<FigureName, string>>): string[] {
  const points = pagePoints(results);
  if (points.length === 0) return [];
  const lines = ['## (a) Commit k dirty 4 KiB pages', ''];
  lines.push(...figure(files, 'latency', 'latency vs k'), ...figure(files, 'throughput', 'throughput vs k'), ...figure(files, 'ratios', 'ratios'));
  lines.push(...figure(files, 'flushes', 'lines and fences per commit'), ...figure(files, 'trackers', 'tracker phases'));
  const series = new Map<string, PointResult[]>();
  for (const p of points) {
    const key = `${sizeName(Number(p.params['dataBytes']))} region, ${p.params['pattern'] === 'seq' ? 'sequential' : 'random'} pages`;
    series.set(key, [...(series.get(key) ?? []), p]);
  }
  for (const [title, group] of series) {
    const ks = group.map(kOf);
    lines.push(`### ${title}: median time per commit (min–max over trials)`, '', `| system | ${ks.map((k) => `k=${k}`).join(' | ')} |`, `|---|${ks.map(() => '---:').join('|')}|`);
    const names = [...new Set(group.flatMap((p) => p.systems.map((s) => s.system)))];
    for (const name of names) {
      const cells = group.map((p) => {
        const s = p.systems.find((x) => x.system === name);
        if (s === undefined) return 'n/a';
        if (s.skipped !== undefined) return 'skipped';
        if (s.failed !== undefined) return 'failed';
        return `${us(s.medianNs)} (${us(s.minNs)}–${us(s.maxNs)})`;
      });
      lines.push(`| ${group[0]?.systems.find((s) => s.system === name)?.label ?? name} | ${cells.join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push(...ratioTable(analysis), ...trackerTable(analysis), ...pagesDetail(points));
  return lines;
}

function ratioTable(analysis: Analysis): string[] {
  if (analysis.ratios.length === 0) return [];
  const lines = ['### Ratios of the Region System (manual) to each peer and to the limit', '', 'Whole commit = store loop + pmsync; pmsync alone leaves out the application\'s stores (which the peers\' times include).', '', '| region | pattern | k | against | whole commit | pmsync alone |', '|---|---|---:|---|---:|---:|'];
  for (const r of analysis.ratios.filter((x) => x.basis === 'commit')) {
    const alone = analysis.ratios.find((x) => x.basis === 'pmsync' && x.against === r.against && x.k === r.k && x.pattern === r.pattern && x.dataBytes === r.dataBytes);
    lines.push(`| ${sizeName(r.dataBytes)} | ${r.pattern} | ${r.k} | ${r.against} | ${times(r.ratio)} | ${alone === undefined ? '–' : times(alone.ratio)} |`);
  }
  return [...lines, ''];
}

function trackerTable(analysis: Analysis): string[] {
  if (analysis.trackers.length === 0) return [];
  const lines = ['### Cost of each tracker over manual', '', "'fault': extra store-loop time per page (first-store faults) and extra pmsync time per page (re-protection). 'scan': extra pmsync time per commit (comparing every mapped page).", '', '| region | pattern | k | fault: store per page | fault: pmsync per page | scan: pmsync per commit |', '|---|---|---:|---:|---:|---:|'];
  for (const t of analysis.trackers) {
    lines.push(`| ${sizeName(t.dataBytes)} | ${t.pattern} | ${t.k} | ${t.faultStoreNsPerPage === undefined ? '–' : us(t.faultStoreNsPerPage)} | ${t.faultSyncNsPerPage === undefined ? '–' : us(t.faultSyncNsPerPage)} | ${t.scanSyncNs === undefined ? '–' : us(t.scanSyncNs)} |`);
  }
  return [...lines, ''];
}

function pagesDetail(points: PointResult[]): string[] {
  const lines = ['<details><summary>Every point: median, spread, p99, throughput, store loop and pmsync, lines and fences per commit</summary>', '', '| point | system | median | min–max | p99 | MB/s | store loop | pmsync | lines/commit | fences/commit |', '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const p of points) {
    for (const s of p.systems) {
      if (measured(p, s.system) === undefined) continue;
      lines.push(`| ${pointLabel({ workload: '', params: { k: kOf(p), pattern: p.params['pattern'] ?? '', region: sizeName(Number(p.params['dataBytes'])) } }).trim()} | ${s.label} | ${us(s.medianNs)} | ${us(s.minNs)}–${us(s.maxNs)} | ${us(s.p99Ns)} | ${num(s.bytesPerSecond / 1e6, 0)} | ${s.storeMedianNs === undefined ? '' : us(s.storeMedianNs)} | ${s.syncMedianNs === undefined ? '' : us(s.syncMedianNs)} | ${num(s.linesPerOp, 0)} | ${num(s.fencesPerOp, 2)} |`);
    }
  }
  return [...lines, '', '</details>', ''];
}

function recordsSection(results: SuiteResults, files: Partial<Record<FigureName, string>>): string[] {
  const points = results.points.filter((p) => p.workload === 'records');
  if (points.length === 0) return [];
  const lines = ['## (b) Small records: r random 64-byte records per commit', '', ...figure(files, 'records', 'write amplification')];
  lines.push('Write amplification = bytes written toward the persistence domain per byte of user data; how each system\'s bytes are counted is in the last column.', '', '| r | system | median | bytes written per commit | per user byte | counted as |', '|---:|---|---:|---:|---:|---|');
  for (const p of points) {
    for (const s of p.systems) {
      if (measured(p, s.system) === undefined) {
        if (s.skipped !== undefined || s.failed !== undefined) lines.push(`| ${p.params['count']} | ${s.label} | ${s.skipped !== undefined ? 'skipped' : 'failed'} | | | |`);
        continue;
      }
      lines.push(`| ${p.params['count']} | ${s.label} | ${us(s.medianNs)} | ${num(s.pmBytesPerOp, 0)} | ${num(s.writeAmplification, 1)} | ${s.pmBytesSource ?? ''} |`);
    }
  }
  return [...lines, ''];
}

function sharedSection(results: SuiteResults): string[] {
  const points = results.points.filter((p) => p.workload === 'shared');
  if (points.length === 0) return [];
  const lines = ['## (c) P processes sharing one region', ''];
  const skipped = points.flatMap((p) => p.systems).find((s) => s.skipped !== undefined);
  if (skipped !== undefined && points.every((p) => p.systems.every((s) => s.trials === 0))) return [...lines, `Skipped: ${skipped.skipped}. The workload runs as soon as openPool(path, { mode: 'shared' }) works.`, ''];
  lines.push('| processes | median commit (16 pages) | p99 | commits/s (all processes) | MB/s |', '|---:|---:|---:|---:|---:|');
  for (const p of points) {
    for (const s of p.systems) {
      if (measured(p, s.system) === undefined) {
        lines.push(`| ${p.params['processes']} | ${s.skipped ?? s.failed ?? 'not run'} | | | |`);
        continue;
      }
      lines.push(`| ${p.params['processes']} | ${us(s.medianNs)} | ${us(s.p99Ns)} | ${num(s.extra?.['commitsPerSecond'], 0)} | ${num((s.extra?.['bytesPerSecond'] ?? Number.NaN) / 1e6, 0)} |`);
    }
  }
  return [...lines, ''];
}

function mapSection(results: SuiteResults, files: Partial<Record<FigureName, string>>): string[] {
  const points = results.points.filter((p) => p.workload === 'map');
  if (points.length === 0) return [];
  const names = [...new Set(points.flatMap((p) => p.systems.map((s) => s.system)))];
  const lines = ['## (d) Map cost vs region size', '', ...figure(files, 'map', 'map cost')];
  lines.push('The first map of a region in a process builds the working copy from PM (every written page is copied; holes stay zero); later maps reuse it; fault tracking write-protects each mapping. Median first map / later map / unmap.', '');
  lines.push(`| region | ${names.map((n) => points[0]?.systems.find((s) => s.system === n)?.label ?? n).join(' | ')} |`, `|---:|${names.map(() => '---:').join('|')}|`);
  for (const p of points) {
    const cells = names.map((n) => {
      const s = p.systems.find((x) => x.system === n);
      if (s === undefined || measured(p, n) === undefined) return s?.skipped !== undefined ? 'skipped' : s?.failed !== undefined ? 'failed' : '–';
      return `${us(s.medianNs)} / ${us(s.extra?.['remapNs'] ?? Number.NaN)} / ${us(s.extra?.['unmapNs'] ?? Number.NaN)}`;
    });
    lines.push(`| ${sizeName(Number(p.params['dataBytes']))} | ${cells.join(' | ')} |`);
  }
  return [...lines, ''];
}

function mountSection(results: SuiteResults, files: Partial<Record<FigureName, string>>): string[] {
  const points = results.points.filter((p) => p.workload === 'mount');
  const costs = results.points.find((p) => p.workload === 'opcosts')?.systems[0]?.data as { operation: string; linesFlushed: number; fences: number; bytesWritten: number }[] | undefined;
  if (points.length === 0 && costs === undefined) return [];
  const lines = ['## (e) Mount and recovery', '', ...figure(files, 'mount', 'mount time')];
  if (points.length > 0) {
    lines.push('openPool of a copy of the pool: map, lock, superblocks, journal replay, and the walk of the region table and every page table that rebuilds the free map. "After a crash": the pool of a process killed with SIGKILL after its last commits, never closed.', '');
    lines.push('| regions | data | pool | after clean close | after a crash |', '|---:|---:|---:|---:|---:|');
    for (const p of points) {
      const clean = measured(p, 'regions-clean');
      const crash = measured(p, 'regions-crash');
      const poolBytes = clean?.extra?.['poolBytes'] ?? crash?.extra?.['poolBytes'];
      lines.push(`| ${Number(p.params['regions']).toLocaleString('en-US')} | ${sizeName(Number(p.params['dataBytes'])) === '0 KiB' ? '0' : sizeName(Number(p.params['dataBytes']))} | ${poolBytes === undefined ? '–' : `${(poolBytes / MiB).toFixed(0)} MiB`} | ${clean === undefined ? 'failed' : us(clean.medianNs)} | ${crash === undefined ? 'failed' : us(crash.medianNs)} |`);
    }
    lines.push('');
  }
  if (costs !== undefined) {
    lines.push('### Metadata operations (counted on a SimDevice: exact)', '', '| operation | lines flushed | fences | bytes written |', '|---|---:|---:|---:|');
    for (const c of costs) lines.push(`| ${c.operation} | ${c.linesFlushed} | ${c.fences} | ${c.bytesWritten} |`);
    lines.push('');
  }
  return lines;
}

function skipSection(results: SuiteResults): string[] {
  const failed = results.points.flatMap((p) => p.systems.filter((s) => s.failed !== undefined).map((s) => `- ${s.label} at ${pointLabel(p)}: ${s.failed}`));
  const missed = results.points.flatMap((p) =>
    p.systems.filter((s) => (s.extra?.['opsWithMissedPages'] ?? 0) > 0).map((s) => `- **${s.label} at ${pointLabel(p)}: pmsync committed fewer pages than were stored to (in the median trial, ${s.extra?.['opsWithMissedPages']} ops; ${num(s.extra?.['pagesPerOp'], 1)} pages per op)**`),
  );
  if (results.skipped.length === 0 && failed.length === 0 && missed.length === 0) return [];
  const lines = ['## Skipped, failed and wrong', ''];
  for (const s of results.skipped) lines.push(`- skipped ${s.system}: ${s.reason}`);
  lines.push(...failed, ...missed);
  return [...lines, ''];
}

export { OURS };
