// Workload map: the cost of region.map (and unmap) for a region of 1 MiB to 4 GiB. The first
// map in a process builds the working copy: it copies every written page from PM (holes stay
// zero); later maps reuse it. For 'fault' each map write-protects the mapping. A region larger
// than one ArrayBuffer (MAP_CHUNK_BYTES) is mapped as consecutive windows; the op maps them all. 'sparse' maps a region never written (all holes);
// mmap-map is the floor: mapping a file of the same size with the addon.

import fs from 'node:fs';
import { addon, CHUNK_BYTES_MAX } from '../../src/arch/addon.js';
import { MAP_CHUNK_BYTES } from '../../src/constants.js';
import { ensureRegionPool, type Mapping, mapRegion, NO_MAP, openRegionPool, type Tracking } from './regions.js';
import { ensureDataFile } from './mmap.js';
import { median } from '../stats.js';
import { nowNs, numberParam, runOps, type TrialResult, type TrialSpec } from '../workload.js';

export const MAP_SYSTEMS: Record<string, { tracking: Tracking; sparse: boolean } | undefined> = {
  'regions-map-fault': { tracking: 'fault', sparse: false },
  'regions-map-scan': { tracking: 'scan', sparse: false },
  'regions-map-manual': { tracking: 'manual', sparse: false },
  'regions-map-sparse': { tracking: 'fault', sparse: true },
  'mmap-map': undefined,
};

export function runMap(spec: TrialSpec): TrialResult {
  const dataBytes = numberParam(spec, 'dataBytes');
  const variant = MAP_SYSTEMS[spec.system];
  if (spec.system === 'mmap-map') return runMmapMap(spec, dataBytes);
  if (variant === undefined) throw new Error(`${spec.system} is not a map variant`);
  ensureRegionPool(spec.file, dataBytes, 'pmem', variant.sparse);
  const { pool, region } = openRegionPool(spec.file, 'pmem');
  try {
    if (typeof (region as { map?: unknown }).map !== 'function') return { skipped: NO_MAP };
    return measureMaps(spec, () => {
      // One mapping is one ArrayBuffer (at most MAP_CHUNK_BYTES): a larger region is mapped in windows.
      const windows: Mapping[] = [];
      for (let offset = 0; offset < dataBytes; offset += MAP_CHUNK_BYTES) {
        const mapping = mapRegion(region, variant.tracking, { offset, length: Math.min(MAP_CHUNK_BYTES, dataBytes - offset) });
        if (mapping !== undefined) windows.push(mapping);
      }
      return () => {
        for (const mapping of windows) mapping.unmap();
      };
    });
  } finally {
    pool.close();
  }
}

/**
 * The op is the first map of the region in this process (it builds the working copy); then
 * map/unmap repeats for the budget (extra.remapNs: the working copy is already there) and
 * extra.unmapNs is the mean unmap time.
 */
function measureMaps(spec: TrialSpec, map: () => () => void): TrialResult {
  let unmapNs = 0;
  let unmaps = 0;
  const timedUnmap = (unmap: () => void): void => {
    const start = nowNs();
    unmap();
    unmapNs += nowNs() - start;
    unmaps++;
  };
  const start = nowNs();
  const first = map();
  const firstNs = nowNs() - start;
  timedUnmap(first);
  let unmap: (() => void) | undefined;
  const remapNs = runOps({ ...spec, warmup: 0, warmupMs: 0 }, {
    prepare: () => {
      if (unmap !== undefined) timedUnmap(unmap);
      unmap = undefined;
    },
    run: () => void (unmap = map()),
    reset: () => {},
  });
  if (unmap !== undefined) timedUnmap(unmap);
  return { ops: 1, opNs: [firstNs], userBytesPerOp: numberParam(spec, 'dataBytes'), extra: { remapNs: median(remapNs), unmapNs: unmapNs / Math.max(1, unmaps) } };
}

function runMmapMap(spec: TrialSpec, dataBytes: number): TrialResult {
  ensureDataFile(spec.file, dataBytes);
  const fd = fs.openSync(spec.file, 'r+');
  try {
    return measureMaps(spec, () => {
      const handle = addon.map(fd, 0, dataBytes, true, false);
      addon.buffers(handle, CHUNK_BYTES_MAX);
      return () => addon.unmap(handle);
    });
  } finally {
    fs.closeSync(fd);
  }
}
