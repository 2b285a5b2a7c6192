// heap.check(): a walk of every block from the first to top and of every free list, against
// the invariants of heap_layout.ts. Reads only; every step is bounded, so a damaged heap
// yields problems, never a hang or an exception.

import {
  ALLOCATED, BLOCK_CHECK, BLOCK_HEADER_BYTES, BLOCK_MIN_BYTES, classOf, CLASSES, FIRST_BLOCK, HEADER, HEAP_START,
  PREVIOUS_ALLOCATED, SIZE_MASK,
} from './heap_layout.js';

/** What heap.check() found. */
export interface HeapReport {
  /** No problems and no leaks. */
  ok: boolean;
  /** Broken invariants: overlapping or torn blocks, bad free lists, wrong counts, bad references. */
  problems: string[];
  /** Payload offsets of allocated blocks that nothing reachable references (with `reachable`). */
  leaks: number[];
  /** Allocated blocks. */
  blocks: number;
  /** Bytes in allocated blocks, headers included. */
  allocatedBytes: number;
  /** Bytes in free blocks (the wilderness above top not included). */
  freeBytes: number;
}

/** The words a check reads. */
interface HeapWords {
  readonly end: number;
  u32(offset: number): number;
}

const PROBLEMS_MAX = 50;

export function checkHeap(memory: HeapWords, reachable?: Iterable<number>): HeapReport {
  const problems: string[] = [];
  const report = (problem: string): void => void (problems.length < PROBLEMS_MAX && problems.push(problem));
  const top = memory.u32(HEAP_START + HEADER.top);
  const allocated = new Set<number>();
  const free = new Set<number>();
  let allocatedBytes = 0;
  let freeBytes = 0;
  if (top < FIRST_BLOCK || top > memory.end || top % 8 !== 0) {
    report(`top ${top} is outside [${FIRST_BLOCK}, ${memory.end}]`);
    return { ok: false, problems, leaks: [], blocks: 0, allocatedBytes: 0, freeBytes: 0 };
  }
  let previousAllocated = true;
  let block = FIRST_BLOCK;
  while (block < top) {
    const word = memory.u32(block);
    const size = (word & SIZE_MASK) >>> 0;
    if (size < BLOCK_MIN_BYTES || block + size > top || memory.u32(block + 4) !== (size ^ BLOCK_CHECK) >>> 0) {
      report(`block at ${block}: size ${size} or its check word is wrong (overlap or torn block); walk stopped`);
      break;
    }
    const isAllocated = (word & ALLOCATED) !== 0;
    if (((word & PREVIOUS_ALLOCATED) !== 0) !== previousAllocated) {
      report(`block at ${block}: previous-allocated bit disagrees with the block before it`);
    }
    if (isAllocated) {
      allocated.add(block + BLOCK_HEADER_BYTES);
      allocatedBytes += size;
    } else {
      if (!previousAllocated) report(`block at ${block}: two free blocks are neighbours (not coalesced)`);
      if (memory.u32(block + size - 4) !== size) {
        report(`free block at ${block}: footer ${memory.u32(block + size - 4)} is not its size ${size}`);
      }
      free.add(block);
      freeBytes += size;
    }
    previousAllocated = isAllocated;
    block += size;
  }
  if (!previousAllocated) report('the block below top is free (it belongs to the wilderness)');
  checkLists(memory, free, report);
  if (memory.u32(HEAP_START + HEADER.blocks) !== allocated.size) {
    report(`header counts ${memory.u32(HEAP_START + HEADER.blocks)} allocated blocks; walk found ${allocated.size}`);
  }
  if (memory.u32(HEAP_START + HEADER.bytes) !== allocatedBytes) {
    report(`header counts ${memory.u32(HEAP_START + HEADER.bytes)} allocated bytes; the walk found ${allocatedBytes}`);
  }
  const root = memory.u32(HEAP_START + HEADER.root);
  if (root !== 0 && !allocated.has(root)) report(`root ${root} is not an allocated block`);
  const leaks = reachable === undefined ? [] : findLeaks(allocated, reachable, root, report);
  const ok = problems.length === 0 && leaks.length === 0;
  return { ok, problems, leaks, blocks: allocated.size, allocatedBytes, freeBytes };
}

/** Every free block is on the list of its class exactly once, with consistent links. */
function checkLists(memory: HeapWords, free: Set<number>, report: (problem: string) => void): void {
  const listed = new Set<number>();
  for (let cls = 0; cls < CLASSES; cls++) {
    const head = memory.u32(HEAP_START + HEADER.heads + cls * 4);
    const bit = (memory.u32(HEAP_START + HEADER.nonEmpty + (cls >>> 5) * 4) >>> (cls & 31)) & 1;
    if ((head !== 0) !== (bit === 1)) report(`free list ${cls}: non-empty bit ${bit} but head ${head}`);
    let previous = 0;
    for (let at = head; at !== 0; at = memory.u32(at + 8)) {
      if (!free.has(at)) {
        report(`free list ${cls} holds ${at}, which is not a free block`);
        break;
      }
      if (listed.has(at)) {
        report(`free block ${at} is listed twice (a cycle or two lists)`);
        break;
      }
      listed.add(at);
      const size = (memory.u32(at) & SIZE_MASK) >>> 0;
      if (classOf(size) !== cls) report(`free block ${at} of ${size} bytes is on list ${cls}, not ${classOf(size)}`);
      if (memory.u32(at + 12) !== previous) {
        report(`free block ${at}: back link ${memory.u32(at + 12)}, expected ${previous}`);
      }
      previous = at;
    }
  }
  for (const block of free) if (!listed.has(block)) report(`free block ${block} is on no free list (lost)`);
}

type Report = (problem: string) => void;

function findLeaks(allocated: Set<number>, reachable: Iterable<number>, root: number, report: Report): number[] {
  const seen = new Set<number>();
  if (root !== 0) seen.add(root);
  for (const offset of reachable) {
    if (offset === root) continue; // the root is reachable by definition
    if (!allocated.has(offset)) report(`reference to ${offset}, which is not an allocated block`);
    else if (seen.has(offset)) report(`block ${offset} is referenced twice (two owners would overlap)`);
    seen.add(offset);
  }
  return [...allocated].filter((offset) => !seen.has(offset)).sort((a, b) => a - b);
}
