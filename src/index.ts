// The package root: everything a user of the Region System imports.
export { createPool, openPool, checkPool } from './pool.js';
export { ExclusivePool, LocalRegion } from './exclusive_pool.js';
export { Mapping } from './map/mapping.js';
export { SimDevice } from './pm/sim_device.js';
export type { CrashImageOptions } from './pm/sim_device.js';
export { FileDevice } from './pm/file_device.js';
export { DeviceCounters, type PmDevice } from './pm/device.js';
export { RegionError, ERROR_CODES, isRegionError, type ErrorCode } from './errors.js';
export { parseSize, formatSize } from './util/size.js';
export type * from './api.js';
