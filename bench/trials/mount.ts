// Workload mount: the time openPool takes (map, lock, mount: superblocks, journal replay,
// the walk of the region table and every page table that rebuilds the free map) as the
// region count and the data grow, after a clean close and after a crash.
//
// Each op mounts a fresh copy of a template pool (the copy is untimed). The crash template
// is made by a child that commits to the pool and kills itself with SIGKILL mid-session,
// so the pool was never closed: its last journal record is replayed at mount.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createPool, openPool, type Pool } from '../../src/index.js';
import { numberParam, PAGE_BYTES, runOps, type TrialResult, type TrialSpec } from '../workload.js';
import { poolBytesFor } from './regions.js';

const DATA_REGION = 'data';
/** Commits the crash child makes before it kills itself. */
const CRASH_COMMITS = 8;
const CRASH_CHILD_TIMEOUT_MS = 10 * 60_000;

export function runMount(spec: TrialSpec): TrialResult {
  const regions = numberParam(spec, 'regions');
  const dataBytes = numberParam(spec, 'dataBytes');
  const crashed = spec.system === 'regions-crash';
  const template = ensureTemplate(spec.file, regions, dataBytes, crashed);
  const work = `${spec.scratch}/mount-${process.pid}.pool`;
  let pool: Pool | undefined;
  const close = (): void => {
    pool?.close();
    pool = undefined;
  };
  try {
    const opNs = runOps(spec, {
      prepare: () => {
        close();
        fs.copyFileSync(template, work);
      },
      run: () => void (pool = openPool(work, { mode: 'exclusive', persistence: 'pmem' })),
      reset: () => {},
    });
    return { ops: opNs.length, opNs, userBytesPerOp: dataBytes, extra: { poolBytes: fs.statSync(template).size } };
  } finally {
    close();
    fs.rmSync(work, { force: true });
  }
}

/** The clean template (built once), and for crashed, a crashed copy of it (built once). */
function ensureTemplate(file: string, regions: number, dataBytes: number, crashed: boolean): string {
  const clean = `${file}.clean`;
  if (!fs.existsSync(clean)) buildClean(clean, regions, dataBytes);
  if (!crashed) return clean;
  const crash = `${file}.crash`;
  if (fs.existsSync(crash)) return crash;
  fs.copyFileSync(clean, `${crash}.partial`);
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'crash', `${crash}.partial`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: CRASH_CHILD_TIMEOUT_MS, env: { ...process.env, REGIONS_QUIET: '1' } });
  if (child.signal !== 'SIGKILL') throw new Error(`the crash child should have been killed by SIGKILL, got ${child.signal ?? `exit ${child.status}`}: ${child.stderr.toString()}`);
  fs.renameSync(`${crash}.partial`, crash);
  return crash;
}

function buildClean(clean: string, regions: number, dataBytes: number): void {
  const partial = `${clean}.partial`;
  fs.rmSync(partial, { force: true });
  const tableBytes = Math.ceil(regions / 8) * PAGE_BYTES * 2;
  const pool = createPool(partial, { size: poolBytesFor(dataBytes + tableBytes), mode: 'exclusive', persistence: 'pmem' });
  try {
    for (let i = 0; i < regions; i++) pool.create(`r${i}`, { size: PAGE_BYTES });
    const dataSize = Math.max(dataBytes, PAGE_BYTES * CRASH_COMMITS);
    pool.create(DATA_REGION, { size: dataSize });
    const region = pool.open(DATA_REGION);
    const chunk = new Uint8Array(Math.min(4 << 20, dataSize)).fill(0x5a);
    for (let offset = 0; offset < dataBytes; offset += chunk.length) region.write(offset, chunk.subarray(0, Math.min(chunk.length, dataBytes - offset)));
  } finally {
    pool.close();
  }
  fs.renameSync(partial, clean);
}

/** The crash child: commit a few pages, then die without closing the pool. */
function crashChild(file: string): void {
  const pool = openPool(file, { mode: 'exclusive', persistence: 'pmem' });
  const region = pool.open(DATA_REGION);
  for (let i = 0; i < CRASH_COMMITS; i++) region.write(i * PAGE_BYTES, new Uint8Array(PAGE_BYTES).fill(i + 1));
  process.kill(process.pid, 'SIGKILL');
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'crash') crashChild(process.argv[3] ?? '');
