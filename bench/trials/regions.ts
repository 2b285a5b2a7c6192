// Region System trials: commit units through a mapping and pmsync (workloads pages and
// records), and the pool set-up the other Region System workloads share.
//
// The store loop (stores, markDirty for 'manual', first-store faults for 'fault') and pmsync
// are timed apart, so a tracker's cost shows beside the commit's.

import fs from 'node:fs';
import type { SyncStats } from '../../src/api.js';
import { createPool, openPool, type Pool, type Region } from '../../src/index.js';
import { systemNamed } from '../systems.js';
import { fillUnit, nowNs, numberParam, PAGE_BYTES, patternParam, runOps, type TrialResult, type TrialSpec, UnitChooser } from '../workload.js';

export type Tracking = 'fault' | 'scan' | 'manual';
export type Persistence = 'pmem' | 'msync';

/** The mapping interface of DESIGN.md section 6, as this suite uses it. */
export interface Mapping {
  readonly buffer: ArrayBuffer;
  markDirty(offset: number, length: number): void;
  pmsync(): SyncStats;
  unmap(): void;
  /** For 'fault': 'userfaultfd' or 'mprotect'. */
  readonly mechanism?: string;
}

/** The region every single-region workload uses. */
export const REGION_NAME = 'r';
/** Units committed per pmsync while a pool is filled at set-up. */
const FILL_BATCH_BYTES = 4 << 20;

/** Pool bytes for a region of dataBytes: room for a full copy-on-write commit plus metadata. */
export function poolBytesFor(dataBytes: number): number {
  const bytes = dataBytes + Math.ceil(dataBytes / 4) + (64 << 20);
  return Math.ceil(bytes / PAGE_BYTES) * PAGE_BYTES;
}

/** Creates the pool with one region of dataBytes, every page written once (no holes) unless sparse. */
export function ensureRegionPool(file: string, dataBytes: number, persistence: Persistence, sparse = false): void {
  if (fs.existsSync(file)) return;
  const partial = `${file}.partial`;
  fs.rmSync(partial, { force: true });
  const pool = createPool(partial, { size: poolBytesFor(dataBytes), mode: 'exclusive', persistence });
  try {
    pool.create(REGION_NAME, { size: dataBytes });
    if (!sparse) fillRegion(pool.open(REGION_NAME), dataBytes);
  } finally {
    pool.close();
  }
  fs.renameSync(partial, file);
}

function fillRegion(region: Region, dataBytes: number): void {
  const chunk = new Uint8Array(Math.min(FILL_BATCH_BYTES, dataBytes)).fill(0x5a);
  for (let offset = 0; offset < dataBytes; offset += chunk.length) {
    region.write(offset, chunk.subarray(0, Math.min(chunk.length, dataBytes - offset)));
  }
}

/** region.map, or undefined while this build has none (src/map not landed). */
export function mapRegion(region: Region, tracking: Tracking, window: { offset?: number; length?: number } = {}): Mapping | undefined {
  const mappable = region as unknown as { map?: (options: { tracking: Tracking; offset?: number; length?: number }) => Mapping };
  if (typeof mappable.map !== 'function') return undefined;
  return mappable.map.call(region, { tracking, ...window });
}

export const NO_MAP = 'needs region.map (src/map), which this build lacks';

/** Workloads pages and records: `count` units of `unitBytes` per pmsync. */
export function runRegionsUnits(spec: TrialSpec): TrialResult {
  const system = systemNamed(spec.system);
  const options = system.regions;
  if (options === undefined) throw new Error(`${spec.system} is not a Region System variant`);
  const dataBytes = numberParam(spec, 'dataBytes');
  const unitBytes = numberParam(spec, 'unitBytes');
  ensureRegionPool(spec.file, dataBytes, options.persistence);
  const pool = openPool(spec.file, { mode: 'exclusive', persistence: options.persistence });
  try {
    const mapping = mapRegion(pool.open(REGION_NAME), options.tracking);
    if (mapping === undefined) return { skipped: NO_MAP };
    try {
      return measureUnits(spec, mapping, options.tracking, unitBytes);
    } finally {
      mapping.unmap();
    }
  } finally {
    pool.close();
  }
}

function measureUnits(spec: TrialSpec, mapping: Mapping, tracking: Tracking, unitBytes: number): TrialResult {
  const count = numberParam(spec, 'count');
  const chooser = new UnitChooser(numberParam(spec, 'dataBytes'), unitBytes, count, patternParam(spec), spec.seed);
  const bytes = new Uint8Array(mapping.buffer);
  touchPages(bytes);
  const storeNs: number[] = [];
  const syncNs: number[] = [];
  const totals = { lines: 0, fences: 0, pages: 0, short: 0 };
  let units = chooser.chosen;
  let measuring = false;
  const opNs = runOps(spec, {
    prepare: () => void (units = chooser.next()),
    run: (op) => {
      const start = nowNs();
      for (let j = 0; j < count; j++) {
        const offset = (units[j] ?? 0) * unitBytes;
        fillUnit(bytes, offset, unitBytes, op, spec.stamp);
        if (tracking === 'manual') mapping.markDirty(offset, unitBytes);
      }
      const stored = nowNs();
      const stats = mapping.pmsync();
      const synced = nowNs();
      if (!measuring) return;
      storeNs.push(stored - start);
      syncNs.push(synced - stored);
      totals.lines += stats.linesFlushed;
      totals.fences += stats.fences;
      totals.pages += stats.pages;
      if (unitBytes === PAGE_BYTES && stats.pages !== count) totals.short++;
    },
    reset: () => void (measuring = true),
  });
  return {
    ops: opNs.length,
    opNs,
    storeNs,
    syncNs,
    linesFlushed: totals.lines,
    fences: totals.fences,
    pmBytes: totals.lines * 64,
    pmBytesSource: 'lines flushed (SyncStats) x 64',
    userBytesPerOp: count * unitBytes,
    notes: tracking === 'fault' && mapping.mechanism !== undefined ? `fault tracking by ${mapping.mechanism}` : undefined,
    extra: { pagesPerOp: totals.pages / Math.max(1, opNs.length), opsWithMissedPages: totals.short },
  };
}

/**
 * Reads one byte of every page, so the first access of this fresh process to each page (a
 * minor fault, paid once per process) is not timed as part of a commit. A read does not
 * dirty a page: the 'fault' tracker still takes its first-store fault on every store.
 */
export function touchPages(bytes: Uint8Array): number {
  let sum = 0;
  for (let offset = 0; offset < bytes.length; offset += PAGE_BYTES) sum += bytes[offset] ?? 0;
  return sum;
}

/** Opens the single-region pool of a workload (for map, shared). */
export function openRegionPool(file: string, persistence: Persistence): { pool: Pool; region: Region } {
  const pool = openPool(file, { mode: 'exclusive', persistence });
  return { pool, region: pool.open(REGION_NAME) };
}
