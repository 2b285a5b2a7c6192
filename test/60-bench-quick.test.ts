// The benchmark suite runs: `regions bench --quick` writes the JSON, the Markdown report and
// its SVG figures, with rows for the Region System. Never a timing: speed is not asserted
// anywhere in the tests. Peers that cannot be had here may be skipped (the report says so).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
const root = path.resolve(here, '..', '..');
const BIN = path.join(root, 'bin', 'regions.js');
const RUN_TIMEOUT_MS = 12 * 60_000;
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-bench-test-'));
after(() => fs.rmSync(outDir, { recursive: true, force: true }));

interface SystemRow {
  system: string;
  trials: number;
  skipped?: string;
  failed?: string;
}
interface Document {
  report: string;
  json: string;
  svgs: string[];
  machine: { cpu: { flushInstruction: string }; versions: Record<string, string> };
  points: { workload: string; systems: SystemRow[] }[];
}

function runQuick(): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'bench', '--quick', '--no-install', '--json', '--out', outDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' }, timeout: RUN_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('regions bench --quick writes the JSON, the report and its figures, with Region System rows', { timeout: RUN_TIMEOUT_MS + 60_000 }, async () => {
  const run = await runQuick();
  assert.equal(run.status, 0, run.stderr);
  const doc = JSON.parse(run.stdout) as Document;
  assert.ok(fs.existsSync(doc.json), 'the JSON file exists');
  assert.ok(fs.existsSync(doc.report), 'the Markdown report exists');
  assert.ok(doc.svgs.length >= 1 && doc.svgs.every((file) => fs.existsSync(file) && fs.readFileSync(file, 'utf8').startsWith('<svg')), 'at least one SVG figure exists');
  assert.equal(path.dirname(doc.report), outDir);
  assert.match(doc.machine.cpu.flushInstruction, /^(clwb|clflushopt|clflush)$/);
  assert.ok(doc.machine.versions['region-system'] !== undefined);

  const saved = JSON.parse(fs.readFileSync(doc.json, 'utf8')) as Document;
  assert.deepEqual(saved.points.map((p) => p.workload), doc.points.map((p) => p.workload));
  const pages = doc.points.filter((p) => p.workload === 'pages');
  assert.ok(pages.length > 0, 'the pages workload ran');
  for (const point of pages) {
    for (const name of ['regions-fault', 'regions-scan', 'regions-manual']) {
      const row = point.systems.find((s) => s.system === name);
      assert.ok(row !== undefined, `${name} has a row`);
      assert.equal(row.failed, undefined, `${name} did not fail`);
      // Until src/map lands the Region System rows say why they were skipped.
      assert.ok(row.trials > 0 || /region\.map/.test(row.skipped ?? ''), `${name} ran (or is waiting for region.map): ${row.skipped ?? ''}`);
    }
  }
  const report = fs.readFileSync(doc.report, 'utf8');
  assert.match(report, /## What this means/);
  assert.match(report, /\| Region System \(manual\) \|/);
  assert.match(report, /\]\([^)]+\.svg\)/, 'the report links its figures');
});
