// The region table: a fixed-depth radix tree (TABLE_LEVELS) rooted at a fixed block whose
// leaves are slot blocks of 8 slots. Slot blocks are created on first use, so a pool with a
// few regions spends a few blocks on its table and a pool can hold MAX_SLOTS regions.
// The DRAM side (slots by index, names) changes only after the update is durable.

import { BLOCK_BYTES, ENTRIES_PER_BLOCK, MAX_SLOTS, SLOT_BYTES, SLOTS_PER_BLOCK, TABLE_LEVELS } from '../constants.js';
import { decodeSlot, encodeSlot, type Slot, SLOT_STATE } from '../format/slot.js';
import { RegionError } from '../errors.js';
import type { PmDevice } from '../pm/device.js';
import { assert } from '../util/assert.js';
import { readEntryAt } from './page_table.js';
import type { Transaction } from './transaction.js';

export interface TableVisitor {
  /** A table block (interior or slot block) referenced from entry `position`. */
  block(block: number, position: number): void;
  slot(index: number, slot: Slot, position: number): void;
  corruptSlot(index: number, position: number, message: string): void;
}

export class RegionTable {
  readonly slots = new Map<number, Slot>(); // live and removed slots
  readonly names = new Map<string, number>();
  private readonly reusable = new Set<number>(); // removed slots
  private nextUnused = 0;
  private leaves = new Map<number, number>(); // leaf index -> slot block
  private slotBlocks = 0;
  /** Where each pmsync encodes its slot (a new 512-byte ArrayBuffer costs ~0.3 µs and garbage). */
  private readonly scratch = new Uint8Array(SLOT_BYTES);

  constructor(
    private readonly device: PmDevice,
    readonly root: number,
    private poolBlocks: number,
  ) {}

  setPoolBlocks(poolBlocks: number): void {
    this.poolBlocks = poolBlocks;
  }

  get allocatedSlots(): number {
    return this.slotBlocks * SLOTS_PER_BLOCK;
  }
  get liveCount(): number {
    return this.names.size;
  }

  /** Walks the whole table, filling the DRAM side; reports blocks and slots to the visitor. */
  load(visitor: TableVisitor): void {
    this.walk(this.root, TABLE_LEVELS, 0, visitor);
  }

  private walk(table: number, level: number, firstLeaf: number, visitor: TableVisitor): void {
    const span = ENTRIES_PER_BLOCK ** (level - 2);
    for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
      const position = table * BLOCK_BYTES + i * 8;
      const child = readEntryAt(this.device, position, this.poolBlocks);
      if (child === 0) continue;
      visitor.block(child, position);
      if (level > 2) this.walk(child, level - 1, firstLeaf + i * span, visitor);
      else this.loadSlotBlock(child, firstLeaf + i, visitor);
    }
  }

  private loadSlotBlock(block: number, leaf: number, visitor: TableVisitor): void {
    this.leaves.set(leaf, block);
    this.slotBlocks++;
    for (let s = 0; s < SLOTS_PER_BLOCK; s++) {
      const index = leaf * SLOTS_PER_BLOCK + s;
      const position = block * BLOCK_BYTES + s * SLOT_BYTES;
      const result = decodeSlot(this.device.view(position, SLOT_BYTES), position);
      if (!result.ok) {
        visitor.corruptSlot(index, position, result.message);
        continue;
      }
      const slot = result.slot;
      if (slot.state === SLOT_STATE.unused) continue;
      // A name PM holds twice is damage the scan reports (unique-names), not a broken
      // assertion: the second holder stays nameless in DRAM, so the pool does not mount.
      if (named(slot) && this.names.has(slot.name)) this.slots.set(index, slot);
      else this.remember(index, slot);
      visitor.slot(index, slot, position);
    }
  }

  /** Updates the DRAM side after a durable update of slot `index`. */
  remember(index: number, slot: Slot): void {
    const previous = this.slots.get(index);
    if (previous && named(previous)) this.names.delete(previous.name);
    this.slots.set(index, slot);
    this.nextUnused = Math.max(this.nextUnused, index + 1);
    if (named(slot)) {
      assert(!this.names.has(slot.name) || this.names.get(slot.name) === index, 'region table: a name is unique', slot.name);
      this.names.set(slot.name, index);
      this.reusable.delete(index);
    } else {
      this.reusable.add(index);
    }
  }

  lookup(name: string): number | undefined {
    return this.names.get(name);
  }

  get(index: number): Slot {
    const slot = this.slots.get(index);
    assert(slot !== undefined, 'region table: a known slot', index);
    return slot;
  }

  /** A slot for a new region: a removed one first, else the next never-used one. */
  chooseFree(): number {
    for (const index of this.reusable) return index;
    if (this.nextUnused >= MAX_SLOTS) throw new RegionError('NO_SPACE', `region table is full: all ${MAX_SLOTS} slots are used`);
    return this.nextUnused;
  }

  /** Pool byte offset of slot `index`, creating its slot block (and middle block) inside tx. */
  stagePosition(tx: Transaction, index: number): number {
    const leaf = Math.floor(index / SLOTS_PER_BLOCK);
    let block = this.leaves.get(leaf) ?? this.findLeaf(tx, leaf);
    if (block === 0) block = this.createLeaf(tx, leaf);
    return block * BLOCK_BYTES + (index % SLOTS_PER_BLOCK) * SLOT_BYTES;
  }

  position(index: number): number {
    const block = this.leaves.get(Math.floor(index / SLOTS_PER_BLOCK));
    assert(block !== undefined, 'region table: the slot block of a slot exists', index);
    return block * BLOCK_BYTES + (index % SLOTS_PER_BLOCK) * SLOT_BYTES;
  }

  private findLeaf(tx: Transaction, leaf: number): number {
    let table = this.root;
    for (let level = TABLE_LEVELS; level >= 2 && table !== 0; level--) {
      const index = Math.floor(leaf / ENTRIES_PER_BLOCK ** (level - 2)) % ENTRIES_PER_BLOCK;
      table = readEntryAt(this.device, table * BLOCK_BYTES + index * 8, this.poolBlocks, tx);
    }
    return table;
  }

  private createLeaf(tx: Transaction, leaf: number): number {
    let table = this.root;
    for (let level = TABLE_LEVELS; level >= 2; level--) {
      const index = Math.floor(leaf / ENTRIES_PER_BLOCK ** (level - 2)) % ENTRIES_PER_BLOCK;
      const position = table * BLOCK_BYTES + index * 8;
      let child = readEntryAt(this.device, position, this.poolBlocks, tx);
      if (child === 0) {
        child = tx.allocateBlock(level > 2 ? 'table' : 'slots');
        tx.setEntry(position, child);
      }
      table = child;
    }
    return table;
  }

  /** After a commit that created slot blocks: learn them (DRAM only). */
  noteLeaf(index: number, position: number): void {
    const leaf = Math.floor(index / SLOTS_PER_BLOCK);
    if (!this.leaves.has(leaf)) {
      this.leaves.set(leaf, Math.floor(position / BLOCK_BYTES));
      this.slotBlocks++;
    }
  }

  /**
   * Stage the whole slot (metadata operations). The slot is stamped with tx's sequence (in
   * DRAM too): every record writes its region's slot, which is how recovery learns what the
   * pool has already applied.
   */
  stageSlot(tx: Transaction, index: number, slot: Slot): number {
    const position = this.stagePosition(tx, index);
    slot.journalSequence = tx.sequence;
    tx.setRange(position, encodeSlot(slot, position));
    return position;
  }

  /** Stage only line 0 of the slot, which holds every field a pmsync changes (the sequence too). */
  stageSlotHead(tx: Transaction, index: number, slot: Slot): void {
    const position = this.position(index);
    slot.journalSequence = tx.sequence;
    tx.setRange(position, encodeSlot(slot, position, this.scratch).subarray(0, 64)); // setRange copies it
  }
}

/** Live and damaged regions keep their names; a removed slot is free for reuse. */
function named(slot: Slot): boolean {
  return slot.state === SLOT_STATE.live || slot.state === SLOT_STATE.damaged;
}

/**
 * Slot `index` as PM holds it now, reached from the table root without DRAM state (recovery
 * reads it before the table is loaded); null if it is not reachable or fails validation.
 */
export function readSlotFromPm(device: PmDevice, root: number, poolBlocks: number, index: number): Slot | null {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_SLOTS) return null;
  const leaf = Math.floor(index / SLOTS_PER_BLOCK);
  let table = root;
  try {
    for (let level = TABLE_LEVELS; level >= 2 && table !== 0; level--) {
      const entry = Math.floor(leaf / ENTRIES_PER_BLOCK ** (level - 2)) % ENTRIES_PER_BLOCK;
      table = readEntryAt(device, table * BLOCK_BYTES + entry * 8, poolBlocks);
    }
  } catch (error) {
    if (error instanceof RegionError && error.code === 'CORRUPT') return null;
    throw error;
  }
  if (table === 0) return null;
  const position = table * BLOCK_BYTES + (index % SLOTS_PER_BLOCK) * SLOT_BYTES;
  const result = decodeSlot(device.view(position, SLOT_BYTES), position);
  return result.ok && result.slot.state !== SLOT_STATE.unused ? result.slot : null;
}
