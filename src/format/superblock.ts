// The superblock: pool geometry, kept in two checksummed copies (blocks 0 and 1).
// An update writes copy 0 then copy 1, each persisted, with the sequence number raised; at
// mount the valid copy with the highest sequence wins, so a torn or stale copy costs nothing.
//
//   offset size field
//   0      8    magic "REGIONS\0"
//   8      4    format version (2; 1 is upgraded at mount, kernel/upgrade.ts)
//   12     4    block size in bytes (4096)
//   16     8    sequence: raised by every superblock update
//   24     8    pool size in blocks
//   32     8    first journal block
//   40     8    journal length in blocks (two equal halves)
//   48     8    region-table root block
//   56     8    creation time, ms since the epoch
//   64     16   pool UUID
//   80     4    access flags: bit 0 socket mode set, bit 1 socket group set; 0 in pools made
//               before these fields existed (they read as the default: 0600, no group)
//   84     4    socket mode: permission bits of regiond's socket (0o600 to 0o666)
//   88     4    socket group: a gid (only with flag bit 1)
//   92     32   zero
//   124    4    CRC32C of bytes 0..123 (the access fields included)
//   128..4095   zero (not read)

import { BLOCK_BYTES, FORMAT_VERSION, FORMAT_VERSION_ZERO_HOLES } from '../constants.js';
import { RegionError } from '../errors.js';
import { crc32c } from './crc32c.js';
import { dataView, readU64, writeU64 } from './le.js';

/**
 * Who may connect to a pool's regiond (shared mode): a pool setting, kept in its superblock
 * and applied to regiond's socket. The pool file itself is its owner's only (mode 0600).
 */
export interface PoolAccess {
  /** Permission bits of regiond's socket: 0o600 (the owner only; the default) to 0o666 (everyone). */
  socketMode: number;
  /** The gid the socket belongs to, so that its group bits admit that group; null: none set. */
  group: number | null;
}

export const SUPERBLOCK_BYTES = 128;
const MAGIC = new TextEncoder().encode('REGIONS\0');
const CRC_OFFSET = 124;
const ACCESS_FLAGS_OFFSET = 80;
const ACCESS_MODE_OFFSET = 84;
const ACCESS_GROUP_OFFSET = 88;
const ACCESS_SET = 1;
const ACCESS_GROUP_SET = 2;
/** Largest gid: (gid_t)-1 means "no change" to chown, so it names no group. */
export const GID_MAX = 2 ** 32 - 2;

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
  /** Who may connect to regiond; null in a pool that never set it (the default applies). */
  access: PoolAccess | null;
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
  if (sb.access !== null) {
    view.setUint32(ACCESS_FLAGS_OFFSET, ACCESS_SET | (sb.access.group !== null ? ACCESS_GROUP_SET : 0), true);
    view.setUint32(ACCESS_MODE_OFFSET, sb.access.socketMode, true);
    view.setUint32(ACCESS_GROUP_OFFSET, sb.access.group ?? 0, true);
  }
  view.setUint32(CRC_OFFSET, crc32c(bytes.subarray(0, CRC_OFFSET)), true);
  return bytes;
}

export type SuperblockResult =
  | { ok: true; superblock: Superblock }
  | { ok: false; reason: 'foreign' | 'checksum' | 'version' | 'geometry' | 'access'; message: string };

/** Decodes one copy; never throws for bad bytes, so the caller can weigh both copies. */
export function decodeSuperblock(bytes: Uint8Array): SuperblockResult {
  if (bytes.length < SUPERBLOCK_BYTES) return { ok: false, reason: 'foreign', message: 'shorter than a superblock' };
  const view = dataView(bytes);
  if (!MAGIC.every((b, i) => bytes[i] === b)) return { ok: false, reason: 'foreign', message: 'no region-pool magic' };
  if (view.getUint32(CRC_OFFSET, true) !== crc32c(bytes.subarray(0, CRC_OFFSET))) return { ok: false, reason: 'checksum', message: 'checksum mismatch' };
  const version = view.getUint32(8, true);
  if (version !== FORMAT_VERSION && version !== FORMAT_VERSION_ZERO_HOLES) {
    return { ok: false, reason: 'version', message: `format version ${version}; this build reads versions ${FORMAT_VERSION_ZERO_HOLES} and ${FORMAT_VERSION}` };
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
    access: null,
  };
  const flags = view.getUint32(ACCESS_FLAGS_OFFSET, true);
  if (flags !== 0 && flags !== ACCESS_SET && flags !== (ACCESS_SET | ACCESS_GROUP_SET)) return { ok: false, reason: 'access', message: `access flags ${flags} are not 0, 1 or 3` };
  if (flags !== 0) {
    sb.access = { socketMode: view.getUint32(ACCESS_MODE_OFFSET, true), group: flags & ACCESS_GROUP_SET ? view.getUint32(ACCESS_GROUP_OFFSET, true) : null };
    const wrong = accessProblem(sb.access);
    if (wrong) return { ok: false, reason: 'access', message: wrong };
  }
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

/** Names what is wrong with a pool access setting, or returns null. */
export function accessProblem(access: PoolAccess): string | null {
  const { socketMode, group } = access;
  if (!Number.isInteger(socketMode) || socketMode < 0 || (socketMode & ~0o666) !== 0 || (socketMode & 0o600) !== 0o600) {
    return `socket mode ${typeof socketMode === 'number' ? `0${socketMode.toString(8)}` : String(socketMode)} must give the owner read and write and nothing but read and write to anyone (0600 to 0666)`;
  }
  if (group !== null && (!Number.isInteger(group) || group < 0 || group > GID_MAX)) return `socket group ${String(group)} is not a gid (0 to ${GID_MAX})`;
  // Without a named group the socket's own group (whoever created it) must not matter.
  if (group === null && ((socketMode >> 3) & 0o7) !== (socketMode & 0o7)) {
    return `socket mode 0${socketMode.toString(8)} gives a group other bits than everyone else, but names no group: set a group, or make the group bits equal the other bits`;
  }
  return null;
}

export function superblockOffset(copy: 0 | 1): number {
  return copy * BLOCK_BYTES;
}

export function corruptSuperblock(path: string, message: string): RegionError {
  return new RegionError('CORRUPT', `${path}: superblock (offset 0 and ${BLOCK_BYTES}): ${message}`);
}
