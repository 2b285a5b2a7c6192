// The public types of DESIGN.md section 8. Names are fixed: add, don't rename.

export type PoolMode = 'shared' | 'exclusive' | 'auto';
export type Persistence = 'pmem' | 'msync' | 'auto';
export type Access = 'rw' | 'ro';
export type Tracking = 'fault' | 'scan' | 'manual';
/** A size in bytes, or a string such as '4096', '64KiB', '64MiB', '1GiB', '1G'. */
export type SizeSpec = number | string;

export interface CreatePoolOptions {
  size: SizeSpec;
  mode?: PoolMode;
  persistence?: Persistence;
}

export interface OpenPoolOptions {
  mode?: PoolMode;
  persistence?: Persistence;
}

export interface CreateRegionOptions {
  size: SizeSpec;
  /** Permission bits, e.g. 0o640 (default 0o600). */
  mode?: number;
}

export interface RegionInfo {
  name: string;
  id: number;
  generation: number;
  sizeBytes: number;
  /** Bytes of PM blocks holding data (holes use none). */
  allocatedBytes: number;
  mode: number;
  uid: number;
  gid: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
  modifiedAt: number;
  /** Number of the last completed pmsync of this region (0 = never). */
  epoch: number;
}

export interface PoolInfo {
  path: string;
  version: number;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  blockBytes: number;
  regions: number;
  /** Region-table slots allocated so far and the most the table can address. */
  slots: { used: number; allocated: number; max: number };
  journalBytes: number;
  persistence: 'pmem' | 'msync' | 'sim';
  mode: 'exclusive' | 'shared';
}

export interface SyncStats {
  epoch: number;
  pages: number;
  bytes: number;
  linesFlushed: number;
  fences: number;
  ns: number;
}

export interface CheckProblem {
  structure: string;
  offset: number;
  message: string;
  repairable: boolean;
  repaired?: boolean;
}

export interface CheckReport {
  ok: boolean;
  problems: CheckProblem[];
  regionsChecked: number;
  blocksReferenced: number;
  blocksFree: number;
}

export interface MapOptions {
  offset?: number;
  length?: number;
  tracking?: Tracking;
}
