// Reading and updating the two superblock copies. An update raises the sequence and writes
// copy 0, then copy 1, each persisted: a crash leaves at least one valid copy, and the valid
// copy with the highest sequence is the truth.

import { BLOCK_BYTES } from '../constants.js';
import { RegionError } from '../errors.js';
import { decodeSuperblock, encodeSuperblock, type Superblock, SUPERBLOCK_BYTES, type SuperblockResult } from '../format/superblock.js';
import type { PmDevice } from '../pm/device.js';

export interface SuperblockCopies {
  chosen: Superblock;
  copies: [SuperblockResult, SuperblockResult];
  /** Copies that are invalid or older than the chosen one. */
  stale: (0 | 1)[];
}

export function readSuperblocks(device: PmDevice, label: string): SuperblockCopies {
  const copies = decodeSuperblockCopies(device, label);
  const valid = copies.flatMap((c, i) => (c.ok ? [{ sb: c.superblock, copy: i as 0 | 1 }] : []));
  if (valid.length === 0) throw refusal(label, copies);
  const best = valid.reduce((a, b) => (b.sb.sequence > a.sb.sequence ? b : a));
  const stale = ([0, 1] as const).filter((i) => {
    const c = copies[i];
    return !c.ok || c.superblock.sequence !== best.sb.sequence;
  });
  return { chosen: best.sb, copies, stale };
}

/** Both copies as they decode, neither chosen. */
export function decodeSuperblockCopies(device: PmDevice, label: string): [SuperblockResult, SuperblockResult] {
  if (device.sizeBytes < 2 * BLOCK_BYTES) throw new RegionError('CORRUPT', `${label}: ${device.sizeBytes} bytes is too small to be a region pool`);
  const copy = (index: 0 | 1): SuperblockResult => decodeSuperblock(device.read(index * BLOCK_BYTES, SUPERBLOCK_BYTES));
  return [copy(0), copy(1)];
}

/**
 * Neither copy is valid, yet the file is a region pool of a version this build reads: the
 * superblock was damaged (a copy with no magic at all beside one that has it counts too).
 */
export function bothCopiesDamaged(copies: [SuperblockResult, SuperblockResult]): boolean {
  if (copies.some((c) => c.ok || c.reason === 'version')) return false;
  return copies.some((c) => !c.ok && c.reason !== 'foreign');
}

function refusal(label: string, copies: [SuperblockResult, SuperblockResult]): RegionError {
  const [a, b] = copies;
  if (!a.ok && !b.ok && a.reason === 'foreign' && b.reason === 'foreign') {
    return new RegionError('CORRUPT', `${label} is not a region pool (no superblock magic at offset 0 or ${BLOCK_BYTES})`);
  }
  const version = [a, b].find((c) => !c.ok && c.reason === 'version');
  if (version && !version.ok) return new RegionError('CORRUPT', `${label}: unsupported pool: ${version.message}`);
  const messages = [a, b].map((c, i) => `copy ${i} at offset ${i * BLOCK_BYTES}: ${c.ok ? 'ok' : c.message}`);
  return new RegionError('CORRUPT', `${label}: superblock: no valid copy (${messages.join('; ')}); the pool cannot be mounted`);
}

/** Writes one copy and persists it. */
export function writeSuperblockCopy(device: PmDevice, copy: 0 | 1, sb: Superblock): void {
  const bytes = encodeSuperblock(sb);
  device.write(copy * BLOCK_BYTES, bytes);
  device.persist(copy * BLOCK_BYTES, bytes.length);
}

/** The update protocol: copy 0, then copy 1 (each durable before the next). */
export function writeSuperblocks(device: PmDevice, sb: Superblock): void {
  writeSuperblockCopy(device, 0, sb);
  writeSuperblockCopy(device, 1, sb);
}

/** A journal record may only write the table and page-table area: never the superblocks or the journal. */
export function checkReplayTarget(sb: Superblock, label: string, offset: number, length: number): void {
  const end = offset + length;
  const journalStart = sb.journalStart * BLOCK_BYTES;
  const journalEnd = journalStart + sb.journalBlocks * BLOCK_BYTES;
  const ok = offset >= 2 * BLOCK_BYTES && end <= sb.poolBlocks * BLOCK_BYTES && (end <= journalStart || offset >= journalEnd);
  if (!ok) throw new RegionError('CORRUPT', `${label}: journal record targets [${offset}, ${end}), outside the table and page-table area`);
}
