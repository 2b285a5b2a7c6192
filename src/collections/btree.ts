// The B+tree of a PMap, in a Heap (node layout: btree_node.ts). Keys are encoded bytes in
// memcmp order (key_codec.ts). Entries live in records that leaves point to; leaves are
// linked both ways for range scans. A full node takes one more entry and splits in two; a
// leaf left empty by a delete is unlinked and freed, and so is an inner node left without
// children (nodes are not merged when merely under-full: the tree stays valid and shallow
// enough, and a delete touches few pages). The root, height and entry count are in the
// map's meta block (the heap's root object, pmap.ts).

import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';
import type { Heap } from './heap.js';
import type { HeapRegion } from './heap_region.js';
import {
  HEIGHT_MAX, INNER, INNER_BYTES, INNER_CAPACITY, LEAF, LEAF_BYTES, LEAF_CAPACITY, NodeAccess,
} from './btree_node.js';

/** Meta block fields the tree owns (byte offsets in the heap's root object). */
export const META = { root: 12, height: 16, count: 20 } as const;

export class BTree {
  readonly nodes: NodeAccess;
  /** The descent of the last `descend`: node and slot per level (0 = root). */
  private readonly pathNodes = new Int32Array(HEIGHT_MAX);
  private readonly pathSlots = new Int32Array(HEIGHT_MAX);
  private readonly memory: HeapRegion;

  constructor(
    private readonly heap: Heap,
    private readonly meta: number,
  ) {
    this.memory = heap.memory;
    this.nodes = new NodeAccess(heap.memory);
  }

  get count(): number {
    return this.memory.u32(this.meta + META.count);
  }

  get height(): number {
    const height = this.memory.u32(this.meta + META.height);
    if (height > HEIGHT_MAX) throw new RegionError('CORRUPT', `PMap: tree height ${height}`);
    return height;
  }

  get root(): number {
    return this.memory.u32(this.meta + META.root);
  }

  /** The slot `descend` found in its leaf. */
  get leafSlot(): number {
    return this.pathSlots[this.height - 1] ?? 0;
  }

  /** The record holding `key`, or 0. */
  find(key: Buffer): number {
    const leaf = this.descend(key);
    if (leaf === 0) return 0;
    const slot = this.pathSlots[this.height - 1] ?? 0;
    if (slot >= this.nodes.count(leaf)) return 0;
    const record = this.nodes.record(leaf, slot);
    return this.nodes.compareRecord(key, record) === 0 ? record : 0;
  }

  /**
   * Walks from the root to the leaf where `key` belongs, recording the path; the leaf's slot is
   * the first entry >= key. Returns the leaf (0 for an empty tree).
   */
  descend(key: Buffer): number {
    const height = this.height;
    let node = this.root;
    if (node === 0) return 0;
    const nodes = this.nodes;
    for (let level = 0; level < height; level++) {
      this.pathNodes[level] = node;
      const leafLevel = level === height - 1;
      if (nodes.kind(node) !== (leafLevel ? LEAF : INNER)) {
        throw new RegionError('CORRUPT', `PMap: node ${node} at level ${level}`);
      }
      const count = nodes.count(node);
      let low = 0;
      let high = count;
      while (low < high) {
        const mid = (low + high) >>> 1;
        const order = leafLevel
          ? -nodes.compareRecord(key, nodes.record(node, mid))
          : nodes.compareSeparator(key, nodes.separator(node, mid));
        // leaf: first record >= key; inner: first separator > key
        if (leafLevel ? order < 0 : order >= 0) low = mid + 1;
        else high = mid;
      }
      this.pathSlots[level] = low;
      if (leafLevel) return node;
      node = nodes.child(node, low);
    }
    return 0;
  }

  /** The first (or last) leaf. */
  edge(last: boolean): number {
    let node = this.root;
    const height = this.height;
    for (let level = 0; node !== 0 && level < height - 1; level++) {
      node = this.nodes.child(node, last ? this.nodes.count(node) : 0);
    }
    return node;
  }

  /**
   * Inserts or replaces key's value: `write(at)` fills `valueLength` bytes at `at`. Returns
   * true if the key is new.
   */
  put(key: Buffer, valueLength: number, write: (at: number) => void): boolean {
    const need = 8 + key.length + valueLength;
    const leaf = this.descend(key);
    if (leaf === 0) {
      const first = this.heap.alloc(LEAF_BYTES);
      this.nodes.init(first, LEAF);
      this.memory.setU32(this.meta + META.root, first);
      this.memory.setU32(this.meta + META.height, 1);
      return this.put(key, valueLength, write);
    }
    const level = this.height - 1;
    const slot = this.pathSlots[level] ?? 0;
    const count = this.nodes.count(leaf);
    if (slot < count && this.nodes.compareRecord(key, this.nodes.record(leaf, slot)) === 0) {
      const old = this.nodes.record(leaf, slot);
      const record = this.heap.sizeOf(old) >= need ? old : this.heap.realloc(old, need);
      this.memory.setU32(record + 4, valueLength);
      write(record + 8 + key.length);
      if (record !== old) this.nodes.setRecord(leaf, slot, record);
      return false;
    }
    const record = this.heap.alloc(need);
    this.memory.setU32(record, key.length);
    this.memory.setU32(record + 4, valueLength);
    this.memory.write(record + 8, key);
    write(record + 8 + key.length);
    this.nodes.openGap(this.nodes.recordsBase(leaf), slot, count);
    this.nodes.setRecord(leaf, slot, record);
    this.nodes.setCount(leaf, count + 1);
    this.memory.setU32(this.meta + META.count, this.count + 1);
    if (count + 1 > LEAF_CAPACITY) this.splitLeaf(leaf, level);
    return true;
  }

  /** Removes key; returns whether it was there. */
  remove(key: Buffer): boolean {
    const leaf = this.descend(key);
    if (leaf === 0) return false;
    const level = this.height - 1;
    const slot = this.pathSlots[level] ?? 0;
    const count = this.nodes.count(leaf);
    if (slot >= count || this.nodes.compareRecord(key, this.nodes.record(leaf, slot)) !== 0) return false;
    this.heap.free(this.nodes.record(leaf, slot));
    this.nodes.closeGap(this.nodes.recordsBase(leaf), slot, count);
    this.nodes.setCount(leaf, count - 1);
    this.memory.setU32(this.meta + META.count, this.count - 1);
    if (count - 1 === 0) this.removeNode(level);
    return true;
  }

  private splitLeaf(leaf: number, level: number): void {
    const nodes = this.nodes;
    const count = nodes.count(leaf);
    const keep = count >>> 1;
    const right = this.heap.alloc(LEAF_BYTES);
    nodes.init(right, LEAF);
    this.memory.move(nodes.recordsBase(right), nodes.recordsBase(leaf) + 4 * keep, 4 * (count - keep));
    nodes.setCount(right, count - keep);
    nodes.setCount(leaf, keep);
    const after = nodes.next(leaf);
    nodes.setNext(right, after);
    nodes.setPrevious(right, leaf);
    if (after !== 0) nodes.setPrevious(after, right);
    nodes.setNext(leaf, right);
    const first = nodes.record(right, 0);
    const length = nodes.keyLength(first);
    const separator = this.heap.alloc(4 + length);
    this.memory.setU32(separator, length);
    this.memory.move(separator + 4, nodes.recordKey(first), length);
    this.insertAbove(level, separator, right);
  }

  /** After the node at `level` split: separator and the new right node go into its parent. */
  private insertAbove(level: number, separator: number, right: number): void {
    const nodes = this.nodes;
    const left = this.pathNodes[level] ?? 0;
    if (level === 0) {
      const root = this.heap.alloc(INNER_BYTES);
      nodes.init(root, INNER);
      nodes.setChild(root, 0, left);
      nodes.setChild(root, 1, right);
      nodes.setSeparator(root, 0, separator);
      nodes.setCount(root, 1);
      this.memory.setU32(this.meta + META.root, root);
      const height = this.height + 1;
      if (height > HEIGHT_MAX) throw new RegionError('NO_SPACE', `PMap: the tree would be ${height} levels deep`);
      this.memory.setU32(this.meta + META.height, height);
      return;
    }
    const parent = this.pathNodes[level - 1] ?? 0;
    const slot = this.pathSlots[level - 1] ?? 0;
    const count = nodes.count(parent);
    nodes.openGap(nodes.separatorsBase(parent), slot, count);
    nodes.setSeparator(parent, slot, separator);
    nodes.openGap(nodes.childrenBase(parent), slot + 1, count + 1);
    nodes.setChild(parent, slot + 1, right);
    nodes.setCount(parent, count + 1);
    if (count + 1 > INNER_CAPACITY) this.splitInner(parent, level - 1);
  }

  private splitInner(node: number, level: number): void {
    const nodes = this.nodes;
    const count = nodes.count(node);
    const keep = count >>> 1; // left keeps separators [0, keep) and children [0, keep]
    const up = nodes.separator(node, keep);
    const right = this.heap.alloc(INNER_BYTES);
    nodes.init(right, INNER);
    const moved = count - keep - 1;
    this.memory.move(nodes.separatorsBase(right), nodes.separatorsBase(node) + 4 * (keep + 1), 4 * moved);
    this.memory.move(nodes.childrenBase(right), nodes.childrenBase(node) + 4 * (keep + 1), 4 * (moved + 1));
    nodes.setCount(right, moved);
    nodes.setCount(node, keep);
    this.insertAbove(level, up, right);
  }

  /** The node at `level` of the path is empty: take it out of its parent (and up), free it. */
  private removeNode(level: number): void {
    const nodes = this.nodes;
    const node = this.pathNodes[level] ?? 0;
    if (level === 0) {
      if (nodes.kind(node) === LEAF) return; // an empty root leaf stays
      assert(false, 'PMap: an inner root is never emptied (it collapses at one child)');
    }
    if (nodes.kind(node) === LEAF) {
      const before = nodes.previous(node);
      const after = nodes.next(node);
      if (before !== 0) nodes.setNext(before, after);
      if (after !== 0) nodes.setPrevious(after, before);
    }
    this.heap.free(node);
    const parent = this.pathNodes[level - 1] ?? 0;
    const slot = this.pathSlots[level - 1] ?? 0;
    const count = nodes.count(parent);
    if (count === 0) {
      this.removeNode(level - 1);
      return;
    }
    const dropped = slot > 0 ? slot - 1 : 0; // the separator bounding the removed child
    this.heap.free(nodes.separator(parent, dropped));
    nodes.closeGap(nodes.separatorsBase(parent), dropped, count);
    nodes.closeGap(nodes.childrenBase(parent), slot, count + 1);
    nodes.setCount(parent, count - 1);
    if (level - 1 === 0) this.collapseRoot();
  }

  /** An inner root with one child gives way to it. */
  private collapseRoot(): void {
    for (let root = this.root; this.nodes.kind(root) === INNER && this.nodes.count(root) === 0; root = this.root) {
      this.memory.setU32(this.meta + META.root, this.nodes.child(root, 0));
      this.memory.setU32(this.meta + META.height, this.height - 1);
      this.heap.free(root);
    }
  }
}
