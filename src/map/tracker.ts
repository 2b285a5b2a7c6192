// Dirty tracking (DESIGN.md section 6): every tracker reports the pages of its mapping stored
// to since the last pmsync into the working copy's shared bitmap (the shootdown handler does
// so for 'fault' tracking), so the kernel's pmsync finds them wherever the mapping lives.

import type { Mechanism } from '../api.js';

export type { Mechanism } from '../api.js';

export interface DirtyTracker {
  readonly mechanism: Mechanism;
  /** The kernel (read(2) etc.) will write [firstPage, endPage): make that possible and count it. */
  prepareWrite(firstPage: number, endPage: number): void;
  /** The application says it wrote [firstPage, endPage). */
  markDirty(firstPage: number, endPage: number): void;
  /** Another thread may store into the mapping from now on (its SharedArrayBuffer was handed out). */
  threadsMayStore(): void;
  /** Stop tracking (before unmap). */
  close(): void;
}
