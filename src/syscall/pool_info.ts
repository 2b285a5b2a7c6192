// PoolInfo as both modes report it: the kernel's counts plus how this pool is served.
import type { PoolInfo } from '../api.js';
import { BLOCK_BYTES, FORMAT_VERSION } from '../constants.js';
import type { RegionManager } from '../kernel/region_manager.js';
import { userfaultfdAvailable } from '../map/fault_mechanism.js';

export function poolInfoOf(kernel: RegionManager, path: string, persistence: PoolInfo['persistence'], mode: PoolInfo['mode']): PoolInfo {
  const counts = kernel.poolCounts();
  return {
    path,
    version: FORMAT_VERSION,
    capacityBytes: counts.capacityBytes,
    usedBytes: counts.usedBytes,
    freeBytes: counts.freeBytes,
    blockBytes: BLOCK_BYTES,
    regions: counts.regions,
    slots: { used: counts.regions, allocated: counts.slotsAllocated, max: counts.slotsMax },
    journalBytes: counts.journalBytes,
    persistence,
    mode,
    faultMechanism: userfaultfdAvailable() ? 'userfaultfd' : 'mprotect',
    access: kernel.access,
  };
}
