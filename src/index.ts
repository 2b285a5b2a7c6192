// The package root: everything a user of the Region System imports.

/**
 * The Region System: named, persistent, byte-addressable regions of a persistent-memory pool.
 * Map a region and store into it like memory; `pmsync()` makes every page dirtied since the
 * last pmsync, by any process mapping it, durable atomically.
 *
 * ```ts
 * import { createPool } from 'region-system';
 * const pool = createPool('data/app.pool', { size: '1GiB' });
 * pool.create('counters', { size: '64MiB' });
 * const m = pool.open('counters').map();
 * new BigUint64Array(m.buffer)[0] += 1n;
 * m.pmsync();
 * ```
 *
 * Start with {@link createPool} and {@link openPool}, then {@link Pool}, {@link Region} and
 * {@link MappingApi}; {@link RegionLock} for a lock shared by every process mapping a region;
 * {@link SimDevice} to check your own PM code against every crash state.
 *
 * @packageDocumentation
 */
export { createPool, openPool, checkPool } from './client/pool.js';
export { setPoolAccess } from './client/pool_access.js';
export { PoolHandle } from './client/pool_handle.js';
export { RegionHandle } from './client/region_handle.js';
export type { KernelHost } from './client/transport.js';
export { Mapping } from './map/mapping.js';
export type { FlushInstruction } from './arch/addon.js';
export { RegionLock, type LockState } from './sync/region_lock.js';
export { SharedWords, type LockMemory } from './sync/shared_words.js';
export { Heap, type HeapOpenOptions, type HeapReport } from './collections/heap.js';
export {
  PMap, type PMapEncoding, type PMapKey, type PMapOpenOptions, type PMapRangeOptions, type PMapReport,
} from './collections/pmap.js';
export { SimDevice } from './pm/sim_device.js';
export type { CrashImageOptions, FenceHook, SimDeviceOptions, SimEvents } from './pm/sim_device.js';
export { FileDevice, type FileDeviceCreateOptions, type FileDeviceOptions } from './pm/file_device.js';
export { DeviceCounters, type PmDevice } from './pm/device.js';
export { RegionError, ERROR_CODES, isRegionError, type ErrorCode } from './errors.js';
export { parseSize, formatSize } from './util/size.js';
export type * from './api.js';
