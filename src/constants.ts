// Every limit of the region system in one table. Derived limits are written as formulas of
// the ones above them, so changing one number keeps the rest consistent.

export const BLOCK_BYTES = 4096;
export const PAGE_BYTES = BLOCK_BYTES; // a region page is one PM block
export const CACHE_LINE_BYTES = 64;
export const ENTRIES_PER_BLOCK = BLOCK_BYTES / 8; // 512 u64 entries per page-table block
export const ENTRY_INDEX_BITS = 9; // log2(ENTRIES_PER_BLOCK)

/** Block numbers fit in 40 bits (4 PiB pools); the top 24 bits of an entry are its check code. */
export const BLOCK_NUMBER_BITS = 40;
export const MAX_POOL_BLOCKS = 2 ** BLOCK_NUMBER_BITS - 1;

// Fixed blocks at the start of every pool.
export const SUPERBLOCK_BLOCKS = [0, 1] as const;
export const TABLE_ROOT_BLOCK = 2;
export const JOURNAL_START_BLOCK_INITIAL = 3;

// Region table: a fixed-depth radix tree of blocks; its leaves hold slots.
export const SLOT_BYTES = 512;
export const SLOTS_PER_BLOCK = BLOCK_BYTES / SLOT_BYTES; // 8
export const TABLE_LEVELS = 3; // root -> middle -> slot blocks
export const MAX_SLOTS = ENTRIES_PER_BLOCK ** (TABLE_LEVELS - 1) * SLOTS_PER_BLOCK; // 2,097,152

export const NAME_BYTES_MAX = 255;
export const REGION_BYTES_MAX = 2 ** 48; // 256 TiB: keeps page indexes and offsets exact in doubles
export const REGION_LEVELS_MAX = 4; // 512^4 pages of 4 KiB = 256 TiB

// Journal: two halves used in turn (record seq N lives in half N mod 2). A half holds the
// largest record the pool can need: one 16-byte entry per block of the pool, plus one block
// for the commit line, header and metadata ranges.
export const JOURNAL_ENTRY_BYTES = 16;
export const JOURNAL_HALF_OVERHEAD_BLOCKS = 1;
export function journalHalfBlocks(poolBlocks: number): number {
  return Math.ceil((poolBlocks * JOURNAL_ENTRY_BYTES) / BLOCK_BYTES) + JOURNAL_HALF_OVERHEAD_BLOCKS;
}
export function journalBlocksFor(poolBlocks: number): number {
  return 2 * journalHalfBlocks(poolBlocks);
}

/** The smallest pool: fixed blocks, a journal, one table middle and leaf, and some data. */
export const POOL_BLOCKS_MIN = 16;
export const POOL_BYTES_MIN = POOL_BLOCKS_MIN * BLOCK_BYTES;

/** 2: holes and never-used slots are check-coded, so zero is never valid metadata. */
export const FORMAT_VERSION = 2;
/** Version 1 stored holes and never-used slots as zeros; mount upgrades it (kernel/upgrade.ts). */
export const FORMAT_VERSION_ZERO_HOLES = 1;

// Working copies and mappings.
/** Largest ArrayBuffer we create over one piece of a mapping. */
export const MAP_CHUNK_BYTES = 2 ** 30;

// Shared mode: the cross-address-space pmsync (shootdown).
/** The real-time signal regiond sends to every mapping process (SIGRTMIN + 6 with glibc). */
export const SHOOTDOWN_SIGNAL = 40;
/** How long regiond waits for every mapper to acknowledge a shootdown before TIMEOUT. */
export const SHOOTDOWN_TIMEOUT_MS = 2000;
/** Poll interval while waiting for acknowledgements (dead mappers are detected between polls). */
export const SHOOTDOWN_POLL_MS = 20;

// Shared mode: regiond, its socket and its protocol (src/regiond, src/wire). Sizes in bytes, times in ms.
export const PROTOCOL_VERSION = 3; // 2: setAccess, PoolInfo.access; 3: discard
/** The socket next to the pool: `.regions-<first 8 hex digits of sha256(pool file name)>.sock`. */
export const SOCKET_NAME_PREFIX = '.regions-';
export const SOCKET_NAME_HASH_HEX = 8;
export const LISTEN_BACKLOG = 128;
/** Connections regiond serves at once; one more is told BUSY and closed. */
export const CLIENTS_MAX = 256;
/**
 * Connections one uid may hold at once, so that one user cannot take every place. Root and
 * the pool's owner are not limited: they can stop regiond anyway, and an application's
 * workers are usually the owner's processes.
 */
export const CLIENTS_PER_UID_MAX = 64;
/** A connection that has not said hello this long after it was accepted is closed (REGIONS_HELLO_TIMEOUT_MS overrides it for the regionds a process starts). */
export const HELLO_TIMEOUT_MS = 5_000;
/** regiond checks this often that its socket's name still leads to its socket, and binds it again if not (deleted, replaced). */
export const SOCKET_CHECK_MS = 1_000;
/** A client that finds the pool locked by a regiond that does not answer waits this long for it to bind again, trying every REBIND_POLL_MS. */
export const REBIND_WAIT_MS = 5 * SOCKET_CHECK_MS;
export const REBIND_POLL_MS = 50;
/** A pool file is its owner's only: other users reach the pool through regiond, which checks region modes. */
export const POOL_FILE_MODE = 0o600;
/** regiond's socket mode when the pool sets none: the pool's owner only (root can always connect). */
export const SOCKET_MODE_DEFAULT = 0o600;
/** Bytes of region data in one read or write request (bigger writes are staged in chunks). */
export const DATA_CHUNK_BYTES = 2 ** 20;
/** The JSON part of a request. */
export const REQUEST_HEADER_BYTES_MAX = 64 * 1024;
/** A request frame's payload: a u32 header length, the header, the data. */
export const REQUEST_BYTES_MAX = 4 + REQUEST_HEADER_BYTES_MAX + DATA_CHUNK_BYTES;
/** Regions in one page of `list` (a page of RegionInfo JSON stays well under REPLY_BYTES_MAX). */
export const LIST_PAGE_REGIONS = 2048;
/** A reply frame's payload (the client's limit: a list page or a data chunk plus its header). */
export const REPLY_BYTES_MAX = 16 * 2 ** 20;
/** Replies regiond holds for a client that does not read them before it drops that client. */
export const REPLY_BACKLOG_BYTES_MAX = 4 * REPLY_BYTES_MAX;
/** Staged (chunked, atomic) writes: bytes reserved at once across all clients, and per client. */
export const STAGING_BYTES_MAX = 2 ** 30;
export const STAGINGS_PER_CLIENT_MAX = 4;
/** Mappings one client may hold (each is a mapper reference on a working copy). */
export const MAPPINGS_PER_CLIENT_MAX = 4096;
/** Chunked reads that saw a pmsync between chunks are retried this often before BUSY. */
export const READ_RETRIES_MAX = 8;
/** The client waits this long for a reply (a pmsync's shootdown has its own, shorter, timeout). */
export const REQUEST_TIMEOUT_MS = 120_000;
/** A frame regiond has begun to receive must be complete within this time, or the client is dropped. */
export const FRAME_TIMEOUT_MS = 30_000;
/** regiond exits after this long without clients (`regions daemon --idle-exit SECONDS`). */
export const IDLE_EXIT_MS_DEFAULT = 30_000;
/** One connect(): a full backlog is retried until this timeout. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** Connect attempts of one open (each failed one may start a regiond), with pauses doubling from MIN to MAX. */
export const CONNECT_ATTEMPTS_MAX = 12;
export const CONNECT_PAUSE_MS_MIN = 5;
export const CONNECT_PAUSE_MS_MAX = 500;
/** A starting regiond waits this long for the pool lock of an exiting one before it gives up. */
export const DAEMON_LOCK_WAIT_MS = 3_000;
export const DAEMON_LOCK_POLL_MS = 10;
/** The starter waits this long for a new regiond to mount the pool and report. */
export const DAEMON_START_TIMEOUT_MS = 120_000;

// RegionLock (src/sync/region_lock.ts): a mutex in two 32-bit words of a mapped region.
/** Words a RegionLock occupies: the lock word (owner pid and a waiters bit) and the owner's start time. */
export const LOCK_WORDS = 2;
/** A waiter re-checks the holder this often; a dead holder is taken over within about 2 slices. */
export const LOCK_WAIT_SLICE_MS = 50;
/** Waiters bit of the lock word; the bits below it hold the owner's pid (Linux pid_max <= 2^22). */
export const LOCK_WAITERS_BIT = 0x4000_0000;
export const LOCK_PID_MASK = LOCK_WAITERS_BIT - 1;
