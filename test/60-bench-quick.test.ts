// The benchmark suite runs: `regions bench --quick` writes the JSON, the Markdown report and
// its SVG figures, and every row of the Region System that the quick plan (bench/plan.ts)
// schedules is there and ran every trial: a Region System row that is missing, skipped or
// failed fails the test. Peers that are not installed here may be skipped, but only with a
// reason, which the report repeats. The figures need bench/'s own packages (`npm run
// bench:peers`): without them the report must say the plots were skipped and how to get them.
// Never a timing: speed is not asserted anywhere in the tests.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { peerVersion } from '../bench/peer_modules.js';
import { buildPlan, type Point } from '../bench/plan.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
const root = path.resolve(here, '..', '..');
const BIN = path.join(root, 'bin', 'regions.js');
const RUN_TIMEOUT_MS = 12 * 60_000;
const TMPFS_MAGIC = 0x01021994;
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-bench-test-'));
after(() => fs.rmSync(outDir, { recursive: true, force: true }));

interface SystemRow {
  system: string;
  family: string;
  trials: number;
  ops: number;
  trialMedianNs: number[];
  skipped?: string;
  failed?: string;
  extra?: Record<string, number>;
}
interface PointRow {
  workload: string;
  params: Record<string, number | string>;
  trials: number;
  systems: SystemRow[];
}
interface Document {
  report: string;
  json: string;
  svgs: string[];
  machine: { cpu: { flushInstruction: string }; versions: Record<string, string> };
  skipped: { system: string; reason: string }[];
  points: PointRow[];
}

function runQuick(): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const args = [BIN, 'bench', '--quick', '--no-install', '--json', '--out', outDir];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: 'true' },
      timeout: RUN_TIMEOUT_MS,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const isOurs = (name: string): boolean => name === 'regions' || name.startsWith('regions-');

/**
 * Whether the suite has an ordinary (non-tmpfs) file system for its disk systems, decided as
 * bench/suite.ts decides it; without one the Region System's msync row may be skipped.
 */
function diskAvailable(): boolean {
  const base = process.env['REGIONS_BENCH_DISK_DIR'] ?? os.tmpdir();
  return fs.existsSync(base) && fs.statfsSync(base).type !== TMPFS_MAGIC;
}

/** What is wrong with one planned row of a point; [] if nothing. */
function rowProblems(point: Point, row: SystemRow | undefined, name: string, where: string): string[] {
  if (row === undefined) return [`${name} has no row at ${where}`];
  if (row.failed !== undefined) return [`${name} failed at ${where}: ${row.failed}`];
  if (row.skipped !== undefined) {
    if (!isOurs(name)) return row.skipped.trim() === '' ? [`${name} skipped at ${where} without a reason`] : [];
    const excused = name === 'regions-manual-msync' && !diskAvailable() && /file system/.test(row.skipped);
    return excused ? [] : [`the Region System's ${name} was skipped at ${where}: ${row.skipped}`];
  }
  const trials = point.settings.trials;
  const problems: string[] = [];
  if (row.trials !== trials || row.trialMedianNs.length !== trials || row.ops < trials) {
    problems.push(`${name} at ${where}: ${row.trials} of ${trials} trials, ${row.ops} ops`);
  }
  if (!isOurs(name)) return problems;
  if (row.family !== 'regions') problems.push(`${name} at ${where} is labelled ${row.family}, not the Region System`);
  const missed = row.extra?.['opsWithMissedPages'] ?? 0;
  if (missed > 0) problems.push(`${name} at ${where}: pmsync committed fewer pages than were stored in ${missed} ops`);
  return problems;
}

const title = 'regions bench --quick writes the JSON, the report and its figures';
test(title, { timeout: RUN_TIMEOUT_MS + 60_000 }, async (t) => {
  const run = await runQuick();
  assert.equal(run.status, 0, run.stderr);
  const doc = JSON.parse(run.stdout) as Document;
  assert.ok(fs.existsSync(doc.json), 'the JSON file exists');
  assert.ok(fs.existsSync(doc.report), 'the Markdown report exists');
  assertFigures(doc, t);
  assert.equal(path.dirname(doc.report), outDir);
  assert.match(doc.machine.cpu.flushInstruction, /^(clwb|clflushopt|clflush)$/);
  assert.ok(doc.machine.versions['region-system'] !== undefined);
  const saved = JSON.parse(fs.readFileSync(doc.json, 'utf8')) as Document;
  assert.deepEqual(saved.points, doc.points, 'the JSON file holds the same rows');

  await t.test('every planned Region System row ran every trial; peers ran or say why not', () => {
    const plan = buildPlan(true);
    const problems: string[] = [];
    let ours = 0;
    for (const point of plan.points) {
      const where = `${point.workload} ${JSON.stringify(point.params)}`;
      const found = doc.points.find((p) => p.workload === point.workload && sameParams(p.params, point.params));
      if (found === undefined) {
        problems.push(`no results for ${where}`);
        continue;
      }
      for (const name of point.systems) {
        problems.push(...rowProblems(point, found.systems.find((s) => s.system === name), name, where));
        if (isOurs(name)) ours++;
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(ours > 0, 'the plan has Region System rows');
  });

  await t.test('the report shows the Region System and names each skipped peer with its reason', () => {
    const report = fs.readFileSync(doc.report, 'utf8');
    assert.match(report, /## What this means/);
    assert.match(report, /\| Region System \(manual\) \|/);
    if (doc.svgs.length > 0) assert.match(report, /\]\([^)]+\.svg\)/, 'the report links its figures');
    const rows = doc.points.flatMap((p) => p.systems);
    const skipped = new Map(rows.filter((s) => s.skipped !== undefined).map((s) => [s.system, s]));
    for (const [name, row] of skipped) {
      // the suite lists a skip under the system's name, or `name (workload)` for one workload
      const listed = doc.skipped.find((s) => s.system.split(' ')[0] === name);
      const line = listed === undefined ? undefined : `- skipped ${listed.system}: ${listed.reason}`;
      assert.ok(line !== undefined && report.includes(line), `the report says why ${name} was skipped`);
      t.diagnostic(`skipped ${name}: ${row.skipped ?? ''}`);
    }
  });
});

/** SVG figures when the renderer is installed, else a report that says why there are none. */
function assertFigures(doc: Document, t: { diagnostic(message: string): void }): void {
  if (peerVersion('vega') === undefined || peerVersion('vega-lite') === undefined) {
    t.diagnostic('vega is not installed (npm run bench:peers): checking that the report says the plots were skipped');
    assert.deepEqual(doc.svgs, []);
    const report = fs.readFileSync(doc.report, 'utf8');
    assert.match(report, /Plots were skipped: vega and vega-lite are not installed \(npm run bench:peers\)/);
    return;
  }
  const svgs = doc.svgs.filter((file) => fs.existsSync(file) && fs.readFileSync(file, 'utf8').startsWith('<svg'));
  assert.ok(doc.svgs.length >= 1 && svgs.length === doc.svgs.length, 'at least one SVG figure exists');
}

function sameParams(a: Record<string, number | string>, b: Record<string, number | string>): boolean {
  const keys = Object.keys(b);
  return Object.keys(a).length === keys.length && keys.every((key) => a[key] === b[key]);
}
