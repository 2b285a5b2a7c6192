// Where each on-PM structure of a committed pool lives, for the corruption campaign: the two
// superblock copies, the region table's interior blocks, every used slot, every page-table
// block of every region, and the used part of each journal half. Found by reading the pool
// as mount does (the format codecs and the kernel's own walks), never by guessing offsets.

import { BLOCK_BYTES, ENTRIES_PER_BLOCK, SLOT_BYTES, SLOTS_PER_BLOCK } from '../constants.js';
import { decodeSuperblock, SUPERBLOCK_BYTES } from '../format/superblock.js';
import { RECORD_BODY_OFFSET, RECORD_HEADER_OFFSET } from '../format/journal_record.js';
import { readEntryAt } from '../kernel/page_table.js';
import type { RegionManager } from '../kernel/region_manager.js';
import type { PmDevice } from '../pm/device.js';
import { shortName } from './model.js';

export type StructureKind = 'superblock' | 'region-table block' | 'slot' | 'page-table block' | 'journal half';
export const STRUCTURE_KINDS: readonly StructureKind[] = [
  'superblock', 'region-table block', 'slot', 'page-table block', 'journal half',
];

export interface Structure {
  kind: StructureKind;
  /** e.g. "superblock copy 1", "slot 3", "page-table block 41 of \"a\"". */
  name: string;
  /** The bytes that mean something (flips land here). */
  offset: number;
  length: number;
  /** The 4 KiB blocks a zeroing may hit (those holding the structure's meaningful bytes). */
  blocks: number[];
}

function blocksOf(offset: number, length: number): number[] {
  const first = Math.floor(offset / BLOCK_BYTES);
  const last = Math.floor((offset + length - 1) / BLOCK_BYTES);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

function structure(kind: StructureKind, name: string, offset: number, length: number): Structure {
  return { kind, name, offset, length, blocks: blocksOf(offset, length) };
}

/** Every structure of the pool the kernel has mounted on `device`. */
export function findStructures(device: PmDevice, kernel: RegionManager): Structure[] {
  const decoded = decodeSuperblock(device.read(0, SUPERBLOCK_BYTES));
  if (!decoded.ok) throw new Error(`structures: superblock copy 0 does not decode: ${decoded.message}`);
  const sb = decoded.superblock;
  const found: Structure[] = [
    structure('superblock', 'superblock copy 0', 0, SUPERBLOCK_BYTES),
    structure('superblock', 'superblock copy 1', BLOCK_BYTES, SUPERBLOCK_BYTES),
  ];
  found.push(...tableStructures(device, sb.tableRoot, sb.poolBlocks));
  for (const info of kernel.list()) {
    for (const block of kernel.pageTableBlocks(kernel.lookup(info.name))) {
      const name = `page-table block ${block} of ${shortName(info.name)}`;
      found.push(structure('page-table block', name, block * BLOCK_BYTES, BLOCK_BYTES));
    }
  }
  const halfBytes = (sb.journalBlocks / 2) * BLOCK_BYTES;
  for (const half of [0, 1]) {
    const offset = sb.journalStart * BLOCK_BYTES + half * halfBytes;
    const header = new DataView(device.read(offset + RECORD_HEADER_OFFSET, 64).buffer);
    const magic = header.getUint32(0, true) === 0x4c4e4a52; // 'RJNL'
    const body = magic ? header.getUint32(24, true) : 0;
    const used = Math.min(halfBytes, magic ? RECORD_BODY_OFFSET + body : RECORD_HEADER_OFFSET);
    found.push(structure('journal half', `journal half ${half}`, offset, used));
  }
  return found;
}

/** The root and middle blocks of the region table, and every slot ever used. */
function tableStructures(device: PmDevice, root: number, poolBlocks: number): Structure[] {
  const found = [structure('region-table block', `region-table root (block ${root})`, root * BLOCK_BYTES, BLOCK_BYTES)];
  for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
    const middle = readEntryAt(device, root * BLOCK_BYTES + i * 8, poolBlocks);
    if (middle === 0) continue;
    const name = `region-table middle block ${middle}`;
    found.push(structure('region-table block', name, middle * BLOCK_BYTES, BLOCK_BYTES));
    for (let j = 0; j < ENTRIES_PER_BLOCK; j++) {
      const leaf = readEntryAt(device, middle * BLOCK_BYTES + j * 8, poolBlocks);
      if (leaf === 0) continue;
      for (let s = 0; s < SLOTS_PER_BLOCK; s++) {
        const position = leaf * BLOCK_BYTES + s * SLOT_BYTES;
        const index = (i * ENTRIES_PER_BLOCK + j) * SLOTS_PER_BLOCK + s;
        if (device.read(position, SLOT_BYTES).some((b) => b !== 0)) {
          found.push(structure('slot', `slot ${index} (block ${leaf})`, position, SLOT_BYTES));
        }
      }
    }
  }
  return found;
}
