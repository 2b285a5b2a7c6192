// Floors that are not atomic: mmap + msync of a file, and the physical limit driven from
// JavaScript through FileDevice 'pmem' (write, flush each unit, one fence). The C limit
// (bench/peers/limit_peer.c) is the honest hardware floor; this one adds JavaScript's calls.

import fs from 'node:fs';
import { addon, CHUNK_BYTES_MAX, type MapHandle } from '../../src/arch/addon.js';
import { FileDevice } from '../../src/pm/file_device.js';
import { touchPages } from './regions.js';
import { fillUnit, numberParam, PAGE_BYTES, patternParam, runOps, type TrialResult, type TrialSpec, UnitChooser } from '../workload.js';

/** Bytes written per call while a file is filled at set-up. */
const FILL_CHUNK_BYTES = 8 << 20;

/** Creates the file with dataBytes of data (written, not sparse), unless it has them. */
export function ensureDataFile(file: string, dataBytes: number): void {
  if (fs.existsSync(file) && fs.statSync(file).size === dataBytes) return;
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(Math.min(FILL_CHUNK_BYTES, dataBytes), 0x5a);
    for (let offset = 0; offset < dataBytes; offset += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, dataBytes - offset), offset);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function runMmapUnits(spec: TrialSpec): TrialResult {
  const dataBytes = numberParam(spec, 'dataBytes');
  const unitBytes = numberParam(spec, 'unitBytes');
  const count = numberParam(spec, 'count');
  if (dataBytes > CHUNK_BYTES_MAX) throw new RangeError(`mmap trial maps one ArrayBuffer: at most ${CHUNK_BYTES_MAX} bytes`);
  ensureDataFile(spec.file, dataBytes);
  const fd = fs.openSync(spec.file, 'r+');
  let handle: MapHandle | undefined;
  try {
    handle = addon.map(fd, 0, dataBytes, true, false);
    const mapped = handle;
    const bytes = new Uint8Array(addon.buffers(mapped, CHUNK_BYTES_MAX)[0] ?? new ArrayBuffer(0));
    touchPages(bytes);
    const chooser = new UnitChooser(dataBytes, unitBytes, count, patternParam(spec), spec.seed);
    let chosen = chooser.chosen;
    let syncedBytes = 0;
    let measuring = false;
    const opNs = runOps(spec, {
      prepare: () => void (chosen = chooser.next()),
      run: (op) => {
        for (let j = 0; j < count; j++) fillUnit(bytes, (chosen[j] ?? 0) * unitBytes, unitBytes, op, spec.stamp);
        const synced = msyncRuns(mapped, chosen, count, unitBytes);
        if (measuring) syncedBytes += synced;
      },
      reset: () => void (measuring = true),
    });
    return { ops: opNs.length, opNs, pmBytes: syncedBytes, pmBytesSource: 'pages msynced x 4096', userBytesPerOp: count * unitBytes };
  } finally {
    if (handle !== undefined) addon.unmap(handle);
    fs.closeSync(fd);
  }
}

/** msync of each run of adjacent dirty pages (units are sorted); returns the bytes synced. */
function msyncRuns(handle: MapHandle, units: Float64Array, count: number, unitBytes: number): number {
  let synced = 0;
  let runStart = -1;
  let runEnd = -1;
  for (let j = 0; j < count; j++) {
    const offset = (units[j] ?? 0) * unitBytes;
    const first = Math.floor(offset / PAGE_BYTES) * PAGE_BYTES;
    const end = Math.ceil((offset + unitBytes) / PAGE_BYTES) * PAGE_BYTES;
    if (first <= runEnd) {
      runEnd = Math.max(runEnd, end);
      continue;
    }
    if (runStart >= 0) {
      addon.msync(handle, runStart, runEnd - runStart);
      synced += runEnd - runStart;
    }
    runStart = first;
    runEnd = end;
  }
  if (runStart >= 0) {
    addon.msync(handle, runStart, runEnd - runStart);
    synced += runEnd - runStart;
  }
  return synced;
}

export function runDeviceUnits(spec: TrialSpec): TrialResult {
  const dataBytes = numberParam(spec, 'dataBytes');
  const unitBytes = numberParam(spec, 'unitBytes');
  const count = numberParam(spec, 'count');
  ensureDataFile(spec.file, dataBytes);
  const device = new FileDevice(spec.file, { persistence: 'pmem' });
  try {
    // Like every system, touch each page first: a fresh process's first access is not a commit cost.
    for (let offset = 0; offset < dataBytes; offset += PAGE_BYTES) device.view(offset, 1);
    const chooser = new UnitChooser(dataBytes, unitBytes, count, patternParam(spec), spec.seed);
    const source = new Uint8Array(unitBytes);
    let chosen = chooser.chosen;
    const opNs = runOps(spec, {
      prepare: (op) => {
        chosen = chooser.next();
        fillUnit(source, 0, unitBytes, op, spec.stamp);
      },
      run: () => {
        for (let j = 0; j < count; j++) {
          const offset = (chosen[j] ?? 0) * unitBytes;
          device.write(offset, source);
          device.flush(offset, unitBytes);
        }
        device.fence();
      },
      reset: () => device.counters.reset(),
    });
    const counted = device.counters.snapshot();
    return {
      ops: opNs.length,
      opNs,
      linesFlushed: counted.linesFlushed,
      fences: counted.fences,
      pmBytes: counted.linesFlushed * 64,
      pmBytesSource: 'lines flushed (device counters) x 64',
      userBytesPerOp: count * unitBytes,
    };
  } finally {
    device.close();
  }
}
