// The four dirty trackers. Each registers its mapping with the addon's fault registry (so a
// pmsync can freeze it) and yields the mapping's written pages at collect().
//
//   userfaultfd  asynchronous write-protect; PAGEMAP_SCAN returns the written pages and
//                re-protects them in one ioctl; the kernel resolves faults itself.
//   mprotect     the page is read-only; the addon's SIGSEGV handler marks it in the bitmap
//                and unprotects it; past a fault budget the whole mapping is unprotected and
//                every page counts as written (never out of VMAs).
//   compare      no protection; at pmsync every page is compared with its committed copy.
//   manual       no protection; the application calls markDirty().

import { addon, type MapHandle } from '../arch/addon.js';
import { PAGE_BYTES } from '../constants.js';
import { type DirtyTracker, type Mechanism, PageBitmap } from './tracker.js';

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

abstract class BaseTracker implements DirtyTracker {
  abstract readonly mechanism: Mechanism;
  protected readonly marked: PageBitmap;

  constructor(
    protected readonly handle: MapHandle,
    protected readonly pages: number,
  ) {
    this.marked = new PageBitmap(pages);
  }

  abstract collect(): Iterable<number>;

  protected *withMarked(pages: Iterable<number>): Iterable<number> {
    yield* pages;
    yield* this.marked.pagesSet();
  }

  rearm(frozen: boolean): void {
    this.marked.clear();
    if (frozen) addon.trackThaw(this.handle, 'rw');
  }

  prepareWrite(firstPage: number, endPage: number): void {
    this.marked.set(firstPage, endPage);
  }

  markDirty(firstPage: number, endPage: number): void {
    this.marked.set(firstPage, endPage);
  }

  close(): void {
    addon.trackUnregister(this.handle);
  }
}

export class UserfaultfdTracker extends BaseTracker {
  readonly mechanism = 'userfaultfd';
  constructor(handle: MapHandle, pages: number, label: string) {
    super(handle, pages);
    addon.trackRegister(handle, { mode: 'none', label });
    addon.uffdRegister(processUffd(), handle);
  }
  collect(): Iterable<number> {
    return this.withMarked(addon.pagemapWritten(this.handle, 0, this.pages * PAGE_BYTES, true));
  }
  override close(): void {
    addon.uffdUnregister(processUffd(), this.handle);
    super.close();
  }
}

export class MprotectTracker extends BaseTracker {
  readonly mechanism = 'mprotect';
  constructor(handle: MapHandle, pages: number, label: string) {
    super(handle, pages);
    addon.trackRegister(handle, { mode: 'segv', label, bitmap: this.marked.bytes, faultPagesMax: SEGV_FAULT_PAGES_MAX });
    addon.protect(handle, 0, pages * PAGE_BYTES, 'r');
  }
  collect(): Iterable<number> {
    if (addon.trackStatus(this.handle).overflow) return Array.from({ length: this.pages }, (_, p) => p);
    return this.marked.pagesSet();
  }
  override rearm(): void {
    this.marked.clear();
    addon.trackReset(this.handle);
    addon.trackThaw(this.handle, 'r'); // one mprotect re-protects every page and merges the VMAs
  }
  /** Kernel writes into a read-only page fail with EFAULT: unprotect the range first. */
  override prepareWrite(firstPage: number, endPage: number): void {
    this.marked.set(firstPage, endPage);
    addon.protect(this.handle, firstPage * PAGE_BYTES, (endPage - firstPage) * PAGE_BYTES, 'rw');
  }
}

export class CompareTracker extends BaseTracker {
  readonly mechanism = 'compare';
  constructor(
    handle: MapHandle,
    pages: number,
    label: string,
    private readonly changed: (page: number) => boolean,
  ) {
    super(handle, pages);
    addon.trackRegister(handle, { mode: 'none', label });
  }
  collect(): Iterable<number> {
    const pages: number[] = [];
    for (let p = 0; p < this.pages; p++) if (this.changed(p)) pages.push(p);
    return this.withMarked(pages);
  }
}

export class ManualTracker extends BaseTracker {
  readonly mechanism = 'manual';
  constructor(handle: MapHandle, pages: number, label: string) {
    super(handle, pages);
    addon.trackRegister(handle, { mode: 'none', label });
  }
  collect(): Iterable<number> {
    return this.marked.pagesSet();
  }
}

/** Read-only mappings: a store stops the process with a message naming region and offset. */
export function registerReadOnly(handle: MapHandle, label: string): void {
  addon.trackRegister(handle, { mode: 'readonly', label });
}
