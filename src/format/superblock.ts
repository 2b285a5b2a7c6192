// The superblock: pool geometry, kept in two checksummed copies (blocks 0 and 1).
// An update writes copy 0 then copy 1, each persisted, with the sequence number raised; at
// mount the valid copy with the highest sequence wins, so a torn or stale copy costs nothing.
//
//   offset size field
//   0      8    magic "REGIONS\0"
//   8      4    format version (1)
//   12     4    block size in bytes (4096)
//   16     8    sequence: raised by every superblock update
//   24     8    pool size in blocks
//   32     8    first journal block
//   40     8    journal length in blocks (two equal halves)
//   48     8    region-table root block
//   56     8    creation time, ms since the epoch
//   64     16   pool UUID
//   80     44   zero
//   124    4    CRC32C of bytes 0..123
//   128..4095   zero (not read)

import { BLOCK_BYTES, FORMAT_VERSION } from '../constants.js';
import { RegionError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';
import { dataView, readU64, writeU64 } from './le.js';

export const SUPERBLOCK_BYTES = 128;
const MAGIC = new TextEncoder().encode('REGIONS\0');
const CRC_OFFSET = 124;

export interface Superblock {
  version: number;
  blockBytes: number;
  sequence: number;
  poolBlocks: number;
  journalStart: number;
  journalBlocks: number;
  tableRoot: number;
  createdAt: number;
  uuid: Uint8Array;
}

export function encodeSuperblock(sb: Superblock): Uint8Array {
  const bytes = new Uint8Array(SUPERBLOCK_BYTES);
  const view = dataView(bytes);
  bytes.set(MAGIC, 0);
  view.setUint32(8, sb.version, true);
  view.setUint32(12, sb.blockBytes, true);
  writeU64(view, 16, sb.sequence);
  writeU64(view, 24, sb.poolBlocks);
  writeU64(view, 32, sb.journalStart);
  writeU64(view, 40, sb.journalBlocks);
  writeU64(view, 48, sb.tableRoot);
  writeU64(view, 56, sb.createdAt);
  bytes.set(sb.uuid.subarray(0, 16), 64);
  view.setUint32(CRC_OFFSET, crc32c(bytes.subarray(0, CRC_OFFSET)), true);
  return bytes;
}

export type SuperblockResult =
  | { ok: true; superblock: Superblock }
  | { ok: false; reason: 'foreign' | 'checksum' | 'version' | 'geometry'; message: string };

/** Decodes one copy; never throws for bad bytes, so the caller can weigh both copies. */
export function decodeSuperblock(bytes: Uint8Array): SuperblockResult {
  if (bytes.length < SUPERBLOCK_BYTES) return { ok: false, reason: 'foreign', message: 'shorter than a superblock' };
  const view = dataView(bytes);
  if (!MAGIC.every((b, i) => bytes[i] === b)) return { ok: false, reason: 'foreign', message: 'no region-pool magic' };
  if (view.getUint32(CRC_OFFSET, true) !== crc32c(bytes.subarray(0, CRC_OFFSET))) return { ok: false, reason: 'checksum', message: 'checksum mismatch' };
  const version = view.getUint32(8, true);
  if (version !== FORMAT_VERSION) {
    return { ok: false, reason: 'version', message: `format version ${version}; this build reads version ${FORMAT_VERSION}` };
  }
  const sb: Superblock = {
    version,
    blockBytes: view.getUint32(12, true),
    sequence: readU64(view, 16),
    poolBlocks: readU64(view, 24),
    journalStart: readU64(view, 32),
    journalBlocks: readU64(view, 40),
    tableRoot: readU64(view, 48),
    createdAt: readU64(view, 56),
    uuid: bytes.slice(64, 80),
  };
  const problem = geometryProblem(sb);
  if (problem) return { ok: false, reason: 'geometry', message: problem };
  return { ok: true, superblock: sb };
}

/** Names the first inconsistency in the geometry, or returns null. */
export function geometryProblem(sb: Superblock): string | null {
  if (sb.blockBytes !== BLOCK_BYTES) return `block size ${sb.blockBytes}, expected ${BLOCK_BYTES}`;
  for (const key of ['sequence', 'poolBlocks', 'journalStart', 'journalBlocks', 'tableRoot', 'createdAt'] as const) {
    if (sb[key] < 0) return `${key} out of range`;
  }
  if (sb.tableRoot < 2 || sb.tableRoot >= sb.poolBlocks) return `table root ${sb.tableRoot} outside the pool`;
  if (sb.journalBlocks < 2 || sb.journalBlocks % 2 !== 0) return `journal length ${sb.journalBlocks} blocks is not an even number >= 2`;
  if (sb.journalStart < 2 || sb.journalStart + sb.journalBlocks > sb.poolBlocks) return `journal [${sb.journalStart}, +${sb.journalBlocks}) outside the pool`;
  if (sb.tableRoot >= sb.journalStart && sb.tableRoot < sb.journalStart + sb.journalBlocks) return 'table root inside the journal';
  return null;
}

export function superblockOffset(copy: 0 | 1): number {
  return copy * BLOCK_BYTES;
}

export function corruptSuperblock(path: string, message: string): RegionError {
  return new RegionError('CORRUPT', `${path}: superblock (offset 0 and ${BLOCK_BYTES}): ${message}`);
}
