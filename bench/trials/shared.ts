// Workload shared: P processes share one region, each committing its own 16 pages per pmsync
// (fault tracking) for the trial's budget. Shared mode (regiond) is what makes a region
// shareable; until openPool(path, { mode: 'shared' }) exists the workload reports
// "needs shared mode (regiond)" and skips.
//
// The trial child is the coordinator: it builds the pool, then starts P workers (this file
// with argv 'worker') at once and sums their commits over the wall time.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isRegionError } from '../../src/errors.js';
import { openPool } from '../../src/index.js';
import { ensureRegionPool, mapRegion, NO_MAP, REGION_NAME } from './regions.js';
import { errorLine, fillUnit, nowNs, numberParam, PAGE_BYTES, runOps, type TrialResult, type TrialSpec } from '../workload.js';

export const SHARED_SKIP = 'needs shared mode (regiond)';
const WORKER_TIMEOUT_MS = 5 * 60_000;

export async function runShared(spec: TrialSpec): Promise<TrialResult> {
  const processes = numberParam(spec, 'processes');
  const count = numberParam(spec, 'count');
  const dataBytes = numberParam(spec, 'dataBytes');
  if (processes * count * PAGE_BYTES > dataBytes) throw new RangeError('the region is too small for every process to have its own pages');
  ensureRegionPool(spec.file, dataBytes, 'pmem');
  try {
    openPool(spec.file, { mode: 'shared', persistence: 'pmem' }).close();
  } catch (error) {
    if (isRegionError(error, 'UNSUPPORTED')) return { skipped: SHARED_SKIP };
    throw error;
  }
  const start = nowNs();
  const results = await Promise.all(Array.from({ length: processes }, (_, index) => startWorker(spec, index)));
  const wallNs = nowNs() - start;
  const skipped = results.find((r): r is { skipped: string } => 'skipped' in r);
  if (skipped) return skipped;
  const measured = results.filter((r) => !('skipped' in r)) as Exclude<TrialResult, { skipped: string }>[];
  const ops = measured.reduce((sum, r) => sum + r.ops, 0);
  return {
    ops,
    opNs: measured.flatMap((r) => r.opNs),
    userBytesPerOp: count * PAGE_BYTES,
    extra: { processes, commitsPerSecond: ops / (wallNs / 1e9), bytesPerSecond: (ops * count * PAGE_BYTES) / (wallNs / 1e9) },
  };
}

function startWorker(spec: TrialSpec, index: number): Promise<TrialResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'worker', JSON.stringify(spec), String(index)], { stdio: ['ignore', 'pipe', 'pipe'], timeout: WORKER_TIMEOUT_MS });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`shared worker ${index} of ${numberParam(spec, 'processes')} exited ${code}: ${errorLine(err)}`));
      resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as TrialResult);
    });
  });
}

/** A worker: map the shared region and commit its own pages until the budget is spent. */
function worker(spec: TrialSpec, index: number): TrialResult {
  const count = numberParam(spec, 'count');
  const pool = openPool(spec.file, { mode: 'shared', persistence: 'pmem' });
  try {
    const mapping = mapRegion(pool.open(REGION_NAME), 'fault');
    if (mapping === undefined) return { skipped: NO_MAP };
    const bytes = new Uint8Array(mapping.buffer);
    const first = index * count;
    const opNs = runOps(spec, {
      prepare: () => {},
      run: (op) => {
        for (let j = 0; j < count; j++) fillUnit(bytes, (first + j) * PAGE_BYTES, PAGE_BYTES, op, spec.stamp);
        mapping.pmsync();
      },
      reset: () => {},
    });
    mapping.unmap();
    return { ops: opNs.length, opNs, userBytesPerOp: count * PAGE_BYTES };
  } finally {
    pool.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'worker') {
  const result = worker(JSON.parse(process.argv[3] ?? '{}') as TrialSpec, Number(process.argv[4]));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
