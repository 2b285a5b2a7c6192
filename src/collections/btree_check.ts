// PMap.check(): a walk of the whole tree. Every leaf at the same depth, keys strictly
// increasing along the leaf chain and within each node's separator bounds, the chain's links
// both ways, no empty leaf but an empty root, the entry count; and the list of every block
// the tree references, which heap.check() turns into leaks and double references.

import type { BTree } from './btree.js';
import { LEAF } from './btree_node.js';

export interface TreeReport {
  problems: string[];
  /** Payload offsets of every node, record and separator. */
  reachable: number[];
}

const PROBLEMS_MAX = 50;

export function checkTree(tree: BTree): TreeReport {
  const problems: string[] = [];
  const reachable: number[] = [];
  const nodes = tree.nodes;
  let entries = 0;
  let previousLeaf = 0;
  let previousKey: Buffer | null = null;
  const report = (problem: string): void => void (problems.length < PROBLEMS_MAX && problems.push(problem));

  const walk = (node: number, level: number, lower: Buffer | null, upper: Buffer | null): void => {
    reachable.push(node);
    const count = nodes.count(node);
    if (level === tree.height - 1) {
      if (nodes.kind(node) !== LEAF) return report(`node ${node} at the leaf level is not a leaf`);
      if (count === 0 && level > 0) report(`leaf ${node} is empty`);
      if (nodes.previous(node) !== previousLeaf) {
        report(`leaf ${node}: previous link ${nodes.previous(node)}, expected ${previousLeaf}`);
      }
      if (previousLeaf !== 0 && nodes.next(previousLeaf) !== node) {
        report(`leaf ${previousLeaf}: next link is not ${node}`);
      }
      previousLeaf = node;
      for (let i = 0; i < count; i++) {
        const record = nodes.record(node, i);
        reachable.push(record);
        const key = nodes.copy(nodes.recordKey(record), nodes.keyLength(record));
        nodes.valueLength(record);
        if (previousKey !== null && previousKey.compare(key) >= 0) {
          report(`leaf ${node}: key ${i} is not above the key before it`);
        }
        if ((lower !== null && key.compare(lower) < 0) || (upper !== null && key.compare(upper) >= 0)) {
          report(`leaf ${node}: key ${i} lies outside its parent's separators`);
        }
        previousKey = key;
        entries++;
      }
      return;
    }
    if (nodes.kind(node) === LEAF) return report(`node ${node} at level ${level} is a leaf above the leaf level`);
    const keys: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const separator = nodes.separator(node, i);
      reachable.push(separator);
      keys.push(nodes.copy(nodes.separatorKey(separator), nodes.keyLength(separator)));
    }
    for (let i = 0; i <= count; i++) {
      walk(nodes.child(node, i), level + 1, i === 0 ? lower : keys[i - 1] ?? null, keys[i] ?? upper);
    }
  };

  try {
    if (tree.root !== 0) walk(tree.root, 0, null, null);
    if (previousLeaf !== 0 && nodes.next(previousLeaf) !== 0) {
      report(`the last leaf ${previousLeaf} links to ${nodes.next(previousLeaf)}`);
    }
  } catch (error) {
    report(`the walk stopped: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (entries !== tree.count) report(`the map counts ${tree.count} entries; its leaves hold ${entries}`);
  return { problems, reachable };
}
