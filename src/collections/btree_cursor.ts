// Range reads of a BTree: up to `max` entries in key order (or reverse) from a bound or
// from just past the last key of the previous chunk, copied out so that the caller can
// check them against the map's version before it decodes anything. Bounded in steps, so a
// torn read ends in an exception, never in a loop.

import { RegionError } from '../errors.js';
import type { BTree } from './btree.js';

/** Which keys a range covers: lower <= key < upper (null = unbounded). */
export interface RangeBounds {
  lower: Buffer | null;
  upper: Buffer | null;
  reverse: boolean;
}

/**
 * Pushes key, value copies (alternately) of up to `max` entries onto `out`, starting after
 * `resume` (the last key returned before) or at the range's first key.
 */
export function collectRange(
  tree: BTree,
  bounds: RangeBounds,
  resume: Buffer | null,
  max: number,
  out: Buffer[],
): void {
  if (tree.root === 0) return;
  if (bounds.reverse) backward(tree, bounds, resume, max, out);
  else forward(tree, bounds, resume, max, out);
}

function forward(tree: BTree, { lower, upper }: RangeBounds, resume: Buffer | null, max: number, out: Buffer[]): void {
  const nodes = tree.nodes;
  const from = resume ?? lower;
  let leaf = from === null ? tree.edge(false) : tree.descend(from);
  let slot = from === null ? 0 : tree.leafSlot;
  if (resume !== null && slot < nodes.count(leaf)) {
    if (nodes.compareRecord(resume, nodes.record(leaf, slot)) === 0) slot++; // start after it
  }
  for (let hops = 0; leaf !== 0 && out.length < 2 * max; ) {
    if (slot >= nodes.count(leaf)) {
      leaf = nodes.next(leaf);
      slot = 0;
      if (++hops > max + 2) throw new RegionError('CORRUPT', 'PMap: the leaf chain runs through empty leaves');
      continue;
    }
    const record = nodes.record(leaf, slot);
    if (upper !== null && nodes.compareRecord(upper, record) <= 0) return;
    push(tree, record, out);
    slot++;
  }
}

function backward(tree: BTree, { lower, upper }: RangeBounds, resume: Buffer | null, max: number, out: Buffer[]): void {
  const nodes = tree.nodes;
  const from = resume ?? upper;
  let leaf = from === null ? tree.edge(true) : tree.descend(from);
  let slot = from === null ? nodes.count(leaf) - 1 : tree.leafSlot - 1; // the last key < from
  for (let hops = 0; leaf !== 0 && out.length < 2 * max; ) {
    if (slot < 0) {
      leaf = nodes.previous(leaf);
      if (leaf !== 0) slot = nodes.count(leaf) - 1;
      if (++hops > max + 2) throw new RegionError('CORRUPT', 'PMap: the leaf chain runs through empty leaves');
      continue;
    }
    const record = nodes.record(leaf, slot);
    if (lower !== null && nodes.compareRecord(lower, record) > 0) return;
    push(tree, record, out);
    slot--;
  }
}

function push(tree: BTree, record: number, out: Buffer[]): void {
  const nodes = tree.nodes;
  const keyLength = nodes.keyLength(record);
  const valueLength = nodes.valueLength(record);
  const key = nodes.recordKey(record);
  out.push(nodes.copy(key, keyLength), nodes.copy(key + keyLength, valueLength));
}
