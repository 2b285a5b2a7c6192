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
  /** What tracking 'fault' uses on this machine: 'userfaultfd' (Linux >= 6.7) or 'mprotect'. */
  faultMechanism: 'userfaultfd' | 'mprotect';
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

/** A mapped window of a region (src/map/mapping.ts implements it). */
export interface MappingApi {
  readonly buffer: ArrayBuffer;
  readonly shared: SharedArrayBuffer;
  readonly offset: number;
  readonly length: number;
  readonly tracking: Tracking;
  pmsync(): SyncStats;
  markDirty(offset: number, length: number): void;
  prepareWrite(offset: number, length: number): void;
  /** futex wait on the 32-bit word at index (4-byte units); cross-process. */
  wait(index: number, value: number, timeoutMs?: number): 'ok' | 'not-equal' | 'timed-out';
  /** futex wake of up to count waiters on the word at index. */
  notify(index: number, count?: number): number;
  unmap(): void;
}

/** An open region; the same surface in exclusive and shared mode. */
export interface Region {
  readonly access: Access;
  readonly name: string;
  info(): RegionInfo;
  /** The committed bytes (holes read as zeros). */
  read(offset?: number, length?: number): Uint8Array;
  /** Store bytes and commit them in one pmsync. */
  write(offset: number, bytes: Uint8Array): SyncStats;
  map(options?: MapOptions): MappingApi;
  pmsync(): SyncStats;
}

/** An open pool; the same surface in exclusive and shared mode. */
export interface Pool {
  readonly path: string;
  readonly mode: 'exclusive' | 'shared';
  create(name: string, options: CreateRegionOptions): RegionInfo;
  open(name: string, options?: { access?: Access }): Region;
  stat(name: string): RegionInfo;
  list(): RegionInfo[];
  rename(from: string, to: string): void;
  resize(name: string, size: SizeSpec): void;
  remove(name: string): void;
  grow(size: SizeSpec): void;
  info(): PoolInfo;
  check(options?: { repair?: boolean }): CheckReport;
  close(): void;
}
