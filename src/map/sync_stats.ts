// SyncStats of one commit, from the device counters around it: every pmsync path (local
// working copy, regiond's shared copy, region.write) reports its cost the same way.
import type { SyncStats } from '../api.js';
import { PAGE_BYTES } from '../constants.js';
import type { PmDevice } from '../pm/device.js';

export interface CommitMeter {
  readonly start: bigint;
  readonly before: { linesFlushed: number; fences: number };
}

/** Starts measuring; `start` may be earlier than now (a pmsync that froze mappings first). */
export function startMeter(device: PmDevice, start = process.hrtime.bigint()): CommitMeter {
  return { start, before: device.counters.snapshot() };
}

export function finishMeter(device: PmDevice, meter: CommitMeter, result: { epoch: number; pages: number }): SyncStats {
  const after = device.counters;
  return {
    epoch: result.epoch,
    pages: result.pages,
    bytes: result.pages * PAGE_BYTES,
    linesFlushed: after.linesFlushed - meter.before.linesFlushed,
    fences: after.fences - meter.before.fences,
    ns: Number(process.hrtime.bigint() - meter.start),
  };
}
