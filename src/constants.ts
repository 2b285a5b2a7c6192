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

export const FORMAT_VERSION = 1;

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
