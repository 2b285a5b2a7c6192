// Which mechanism tracks a mapping's stores in this process: userfaultfd write-protect with
// PAGEMAP_SCAN where the kernel offers it, else mprotect and the addon's SIGSEGV handler
// (REGIONS_FAULT_MECHANISM=mprotect forces it, for tests); and read-only mappings, whose
// stores stop the process with a message naming the region. The trackers themselves report
// into a working copy's control area (shared_copy.ts).

import { addon, type MapHandle } from '../arch/addon.js';

/** Faults before the mprotect tracker gives up per-page protection (VMA budget). */
export const SEGV_FAULT_PAGES_MAX = 16_384;

let uffd: number | undefined;
let uffdProbe: boolean | undefined;

/** userfaultfd write-protect with PAGEMAP_SCAN is usable here (probed once). */
export function userfaultfdAvailable(): boolean {
  if (process.env['REGIONS_FAULT_MECHANISM'] === 'mprotect') return false;
  uffdProbe ??= addon.uffdAvailable();
  return uffdProbe;
}

export function processUffd(): number {
  uffd ??= addon.uffdOpen();
  return uffd;
}

/** Read-only mappings: a store stops the process with a message naming region and offset. */
export function registerReadOnly(handle: MapHandle, label: string): void {
  addon.trackRegister(handle, { mode: 'readonly', label });
}
