// The public types of DESIGN.md section 8. Names are fixed: add, don't rename. The ones the
// kernel and the on-PM format define are theirs, re-exported here.

import type { Access, CheckReport, RegionInfo } from './kernel/types.js';
import type { PoolAccess } from './format/superblock.js';

export type { Access, CheckProblem, CheckReport, RegionInfo } from './kernel/types.js';
export type { PoolAccess } from './format/superblock.js';

/**
 * Where a pool's kernel runs: 'shared' in regiond (one daemon per pool, started on demand),
 * 'exclusive' in this process, 'auto' shared if a regiond runs, else exclusive.
 */
export type PoolMode = 'shared' | 'exclusive' | 'auto';
/**
 * How a pool file is made durable: 'pmem' with CPU cache-line flushes (DAX, or tmpfs as
 * emulated PM), 'msync' with msync of the touched pages (ordinary file systems), 'auto' picks
 * by file system.
 */
export type Persistence = 'pmem' | 'msync' | 'auto';
/**
 * How pmsync learns which pages were stored to: 'fault' (write-protect, first store per page
 * faults), 'scan' (compare with the committed copy), 'manual' (markDirty).
 */
export type Tracking = 'fault' | 'scan' | 'manual';
/** A size in bytes, or a string such as '4096', '64KiB', '64MiB', '1GiB', '1G'. */
export type SizeSpec = number | string;

/** Options of createPool. */
export interface CreatePoolOptions {
  /** Pool capacity: a multiple of 4096 bytes, e.g. '1GiB'. The file is created sparse. */
  size: SizeSpec;
  /** Where the pool's kernel runs once created (default 'shared'). */
  mode?: PoolMode;
  /** How the file is made durable (default 'auto'). */
  persistence?: Persistence;
  /** Who may connect to the pool's regiond (default: socket mode 0o600, no group: the owner only). */
  access?: PoolAccessOptions;
}

/** A change of PoolAccess (setPoolAccess, createPool): fields left out keep their value. */
export interface PoolAccessOptions {
  /** Permission bits of regiond's socket, 0o600 to 0o666. */
  socketMode?: number;
  /** A group name or gid; null removes the group. */
  group?: string | number | null;
}

/** Options of openPool and checkPool. */
export interface OpenPoolOptions {
  /** Where the pool's kernel runs (default 'shared'). */
  mode?: PoolMode;
  /** How the file is made durable (default 'auto'). */
  persistence?: Persistence;
  /**
   * Create the pool, and its directory, if the pool does not exist: `openPool(path, { create:
   * { size: '1GiB' } })`. A pool that exists is opened as it is (its size and access are not
   * changed). Race-free between processes: the pool file appears complete or not at all, so of
   * several processes doing this at once one creates the pool and the others open it (in mode
   * 'exclusive' they then find it held, as they would any exclusive pool).
   */
  create?: PoolCreateOptions;
}

/** What openPool creates a missing pool with (its `create` option). */
export interface PoolCreateOptions {
  /** Pool capacity: a multiple of 4096 bytes, e.g. '1GiB'. The file is created sparse. */
  size: SizeSpec;
  /** Who may connect to the pool's regiond (default: socket mode 0o600, no group: the owner only). */
  access?: PoolAccessOptions;
}

/** Options of Pool.create. */
export interface CreateRegionOptions {
  /** Region size; sparse: pages never written use no PM. */
  size: SizeSpec;
  /** Permission bits, e.g. 0o640 (default 0o600). */
  mode?: number;
}

/** Options of Pool.open. */
export interface OpenRegionOptions {
  /** 'rw' (the default: map writable, pmsync) or 'ro' (read and map read-only). */
  access?: Access;
  /**
   * Create the region if it does not exist, with this size and mode; a region that exists is
   * opened as it is (its size and mode are not changed). Race-free: of processes doing this at
   * once, one creates the region and every one opens it.
   */
  create?: CreateRegionOptions;
}

/** What Pool.info reports about a pool. */
export interface PoolInfo {
  /** The pool file, absolute. */
  path: string;
  /** On-PM format version (1). */
  version: number;
  /** Pool size: every block, metadata included. */
  capacityBytes: number;
  /** Bytes of blocks in use (metadata, page tables, data). */
  usedBytes: number;
  /** Bytes of free blocks. */
  freeBytes: number;
  /** Block (and page) size: 4096. */
  blockBytes: number;
  /** Number of regions. */
  regions: number;
  /** Region-table slots allocated so far and the most the table can address. */
  slots: {
    /** Slots holding a region. */
    used: number;
    /** Slots in region-table blocks allocated so far. */
    allocated: number;
    /** The most slots the region table can address. */
    max: number;
  };
  /** Size of the redo journal (both halves). */
  journalBytes: number;
  /** How this pool is made durable: 'pmem', 'msync', or 'sim' (a SimDevice). */
  persistence: 'pmem' | 'msync' | 'sim';
  /** Where this pool's kernel runs. */
  mode: 'exclusive' | 'shared';
  /** What tracking 'fault' uses on this machine: 'userfaultfd' (Linux >= 6.7) or 'mprotect'. */
  faultMechanism: 'userfaultfd' | 'mprotect';
  /** Who may connect to the pool's regiond (the default for pools that never set it). */
  access: PoolAccess;
  /** Shared mode: the regiond serving the pool and its clients. */
  server?: ServerInfo;
}

/** The regiond serving a pool in shared mode. */
export interface ServerInfo {
  /** regiond's pid. */
  pid: number;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** One entry per connection: regions opened through it, mappings it holds. */
  clients: {
    /** The client's pid (SO_PEERCRED). */
    pid: number;
    /** The client's uid (SO_PEERCRED). */
    uid: number;
    /** Regions opened through the connection. */
    regions: number;
    /** Mappings it holds. */
    mappings: number;
  }[];
}

/** What one pmsync did and cost. */
export interface SyncStats {
  /** The region's epoch after this pmsync (unchanged if nothing was dirty). */
  epoch: number;
  /** Pages committed. */
  pages: number;
  /** Bytes of data committed (pages x 4096). */
  bytes: number;
  /** Cache lines flushed: data, journal record, commit line and page-table entries. */
  linesFlushed: number;
  /** Store fences: at most 2, 0 when nothing was dirty. */
  fences: number;
  /** Wall time of the commit in nanoseconds. */
  ns: number;
}

/**
 * What a mapping's dirty tracking runs on: 'userfaultfd' (async write-protect + PAGEMAP_SCAN)
 * or 'mprotect' (SIGSEGV) for tracking 'fault', 'compare' for 'scan', 'manual' for 'manual'.
 */
export type Mechanism = 'userfaultfd' | 'mprotect' | 'compare' | 'manual';

/** Options of Region.map: the window of the region to map and its dirty tracking. */
export interface MapOptions {
  /** Start of the window in the region: a multiple of 4096 (default 0). */
  offset?: number;
  /** Window length (default: to the end of the region); at most 1 GiB per mapping. */
  length?: number;
  /** Dirty tracking (default 'fault'). */
  tracking?: Tracking;
}

/** A mapped window of a region: Region.map returns one (the Mapping class implements it). */
export interface MappingApi {
  /**
   * An ArrayBuffer over the window: ordinary stores into the region's working copy. Detached by
   * unmap.
   */
  readonly buffer: ArrayBuffer;
  /**
   * A SharedArrayBuffer over the same memory: for Atomics, RegionLock and worker threads (their
   * stores are tracked too). Reads zeros after unmap.
   */
  readonly shared: SharedArrayBuffer;
  /** Where the window starts in the region. */
  readonly offset: number;
  /** Window length in bytes. */
  readonly length: number;
  /** The dirty tracking of this mapping. */
  readonly tracking: Tracking;
  /**
   * What does the tracking here: 'userfaultfd' or 'mprotect' for 'fault', 'compare' for
   * 'scan', 'manual' for 'manual'; 'read-only' for a read-only mapping.
   */
  readonly mechanism: Mechanism | 'read-only';
  /**
   * Makes every page of the region stored to since the last pmsync, through any mapping in any
   * process, durable atomically; after a crash the region is exactly the state of the last
   * completed pmsync.
   */
  pmsync(): SyncStats;
  /**
   * The opposite of pmsync: puts every page of the region stored to since the last pmsync,
   * through any mapping in any process, back to its committed bytes, with the same freeze
   * (no store lands half way). Stats count the pages put back; nothing is written to PM.
   * Whole pages go back, whatever they hold, a RegionLock's words in the region included: do
   * not call it while holding such a lock.
   */
  discard(): SyncStats;
  /**
   * Tells pmsync that [offset, offset + length) of the window was written: required with
   * tracking 'manual', harmless otherwise.
   */
  markDirty(offset: number, length: number): void;
  /**
   * Call before the kernel writes into the window (fs.readSync into buffer): marks the pages
   * dirty and makes them writable.
   */
  prepareWrite(offset: number, length: number): void;
  /** futex wait on the 32-bit word at index (4-byte units); cross-process. */
  wait(index: number, value: number, timeoutMs?: number): 'ok' | 'not-equal' | 'timed-out';
  /** futex wake of up to count waiters on the word at index. */
  notify(index: number, count?: number): number;
  /**
   * Unmaps the window: buffer is detached (access throws), shared reads zeros. Stores not yet
   * pmsynced stay in the working copy. Idempotent.
   */
  unmap(): void;
}

/** An open region (Pool.open); the same surface in exclusive and shared mode. */
export interface Region {
  /** 'rw' or 'ro', as opened. */
  readonly access: Access;
  /** The region's name when it was opened. */
  readonly name: string;
  /** The region's metadata now. */
  info(): RegionInfo;
  /** The committed bytes (holes read as zeros). */
  read(offset?: number, length?: number): Uint8Array;
  /** Store bytes and commit them in one pmsync. */
  write(offset: number, bytes: Uint8Array): SyncStats;
  /** Maps a window of the region into this process (read-only if opened 'ro'). */
  map(options?: MapOptions): MappingApi;
  /**
   * The same as pmsync on any of its mappings: commits the dirty pages of every mapping of the
   * region.
   */
  pmsync(): SyncStats;
  /** The same as discard on any of its mappings: every dirty page goes back to its committed bytes. */
  discard(): SyncStats;
}

/** An open pool (createPool, openPool); the same surface in exclusive and shared mode. */
export interface Pool {
  /** The pool file as given. */
  readonly path: string;
  /** Where this pool's kernel runs: in this process or in regiond. */
  readonly mode: 'exclusive' | 'shared';
  /** The regiond serving the pool (shared mode): its pid and start time; null in exclusive mode. */
  readonly server: Pick<ServerInfo, 'pid' | 'startedAt'> | null;
  /**
   * Creates an empty (all-zero, sparse) region. Throws EXISTS if the name is taken, NO_SPACE if
   * the region table is full.
   */
  create(name: string, options: CreateRegionOptions): RegionInfo;
  /**
   * Opens a region by name, checking its permission bits (PERMISSION); access 'rw' by default.
   * With `create`, a region that does not exist is created first.
   */
  open(name: string, options?: OpenRegionOptions): Region;
  /** A region's metadata by name (NOT_FOUND if there is none). */
  stat(name: string): RegionInfo;
  /** Every region, sorted by name. */
  list(): RegionInfo[];
  /** Renames a region atomically (owner or root only). */
  rename(from: string, to: string): void;
  /**
   * Grows (sparse) or shrinks (frees pages past the end) a region; not while it is mapped
   * (BUSY).
   */
  resize(name: string, size: SizeSpec): void;
  /** Removes a region and frees its blocks; not while it is mapped (BUSY). */
  remove(name: string): void;
  /** Sets a region's permission bits (its owner or root only); later opens and maps obey them. */
  chmod(name: string, mode: number): void;
  /** Grows the pool file to size, online. */
  grow(size: SizeSpec): void;
  /** The pool's capacity, usage and mode. */
  info(): PoolInfo;
  /** fsck of the open pool: checks every invariant and reports every problem. */
  check(options?: { repair?: boolean }): CheckReport;
  /**
   * Closes the pool: unmaps every mapping of this process (stores not pmsynced are dropped, as
   * in a crash). Idempotent.
   */
  close(): void;
}
