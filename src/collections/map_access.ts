// How a PMap's reads and writes meet: the interface, and exclusive mode's side of it. In
// exclusive mode this process is the pool's only mapper, so a write needs no lock: it runs,
// then one pmsync commits it; if it throws (or the pmsync does), discard() puts back every
// page it wrote, the heap's free lists included. A write that finds the heap full is put
// back the same way, the region grows (unmap, resize, map: nothing is dirty then), and the
// write runs again. The shared-mode side is shared_access.ts.

import { HeapFullError } from './heap.js';
import { HEAP_SIZE_MAX, type HeapRegion } from './heap_region.js';

export interface MapAccess {
  /** Runs body as one update: committed by one pmsync when it returns, put back if it throws. */
  write<T>(body: () => T): T;
  /** Runs body, which reads and copies; in shared mode until it saw one version of the map. */
  read<T>(body: () => T): T;
  /** True when reads see the memory stable (no other writer): values may be decoded in place. */
  readonly stable: boolean;
}

export class ExclusiveAccess implements MapAccess {
  readonly stable = true;

  constructor(private readonly memory: HeapRegion) {}

  write<T>(body: () => T): T {
    for (;;) {
      let result: T;
      try {
        result = body();
        if (this.memory.log.pages.length > 0) this.memory.pmsync();
        return result;
      } catch (error) {
        if (this.memory.log.pages.length > 0) this.memory.discard();
        if (!(error instanceof HeapFullError) || this.memory.end >= HEAP_SIZE_MAX) throw error;
        this.memory.grow(grownSize(this.memory.end, error.needBytes));
      }
    }
  }

  read<T>(body: () => T): T {
    return body();
  }
}

/** Twice the size, or enough for `need` more bytes, in whole pages, at most HEAP_SIZE_MAX. */
export function grownSize(end: number, need: number): number {
  const wanted = Math.max(end * 2, end + 2 * need);
  return Math.min(HEAP_SIZE_MAX, Math.ceil(wanted / 4096) * 4096);
}
