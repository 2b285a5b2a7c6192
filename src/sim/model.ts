// The reference model of a pool's committed state: what each region must hold after a
// sequence of operations, written as plainly as possible (a map of names to attributes and
// to the pages ever committed) so that it is obviously right and shares no code with the
// kernel. compareWithModel reads a mounted kernel and names the first difference.

import { isRegionError } from '../errors.js';
import { PAGE_BYTES } from '../constants.js';
import type { RegionManager } from '../kernel/region_manager.js';

/** A name as reports show it: long ones cut, so a 255-byte name does not flood a line. */
export function shortName(name: string): string {
  return JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name);
}

export interface ModelRegion {
  sizeBytes: number;
  mode: number;
  uid: number;
  gid: number;
  /** Committed pages that may hold non-zero bytes; every other page reads as zeros. */
  pages: Map<number, Uint8Array>;
}

export class PoolModel {
  readonly regions = new Map<string, ModelRegion>();

  constructor(public capacityBytes: number) {}

  clone(): PoolModel {
    const copy = new PoolModel(this.capacityBytes);
    // Page buffers are never modified in place (every change replaces the page), so sharing them is safe.
    for (const [name, r] of this.regions) copy.regions.set(name, { ...r, pages: new Map(r.pages) });
    return copy;
  }

  get(name: string): ModelRegion {
    const region = this.regions.get(name);
    if (!region) throw new Error(`model: no region "${name}"`);
    return region;
  }

  /** The committed bytes of one page (zeros for a page never committed). */
  page(name: string, page: number): Uint8Array {
    return this.get(name).pages.get(page) ?? new Uint8Array(PAGE_BYTES);
  }

  create(name: string, sizeBytes: number, owner: { mode: number; uid: number; gid: number }): void {
    this.regions.set(name, { sizeBytes, ...owner, pages: new Map() });
  }

  remove(name: string): void {
    this.regions.delete(name);
  }

  rename(from: string, to: string): void {
    const region = this.get(from);
    this.regions.delete(from);
    this.regions.set(to, region);
  }

  /** Shrink drops the pages past the end and zeroes the last page's tail; grow adds holes. */
  resize(name: string, sizeBytes: number): void {
    const region = this.get(name);
    if (sizeBytes < region.sizeBytes) {
      const pages = Math.ceil(sizeBytes / PAGE_BYTES);
      for (const page of [...region.pages.keys()]) if (page >= Math.max(pages, 1)) region.pages.delete(page);
      const tail = sizeBytes % PAGE_BYTES;
      const last = region.pages.get(Math.floor(sizeBytes / PAGE_BYTES));
      if (tail !== 0 && last) {
        const zeroed = last.slice();
        zeroed.fill(0, tail);
        region.pages.set(Math.floor(sizeBytes / PAGE_BYTES), zeroed);
      }
    }
    region.sizeBytes = sizeBytes;
  }

  commit(name: string, pages: { page: number; bytes: Uint8Array }[]): void {
    const region = this.get(name);
    for (const { page, bytes } of pages) region.pages.set(page, bytes);
  }

  /** A short description of the state, for failure reports. */
  describe(): string {
    const parts = [...this.regions].map(
      ([name, r]) => `${shortName(name)}:${r.sizeBytes}B/${r.pages.size}p/${r.mode.toString(8)}`,
    );
    return `capacity ${this.capacityBytes}; ${parts.join(', ') || 'no regions'}`;
  }
}

/**
 * Null if the kernel's regions equal the model's (names, sizes, modes, owners, every byte),
 * else the first difference.
 */
export function compareWithModel(kernel: RegionManager, model: PoolModel): string | null {
  const infos = kernel.list();
  const names = infos.map((i) => i.name).sort();
  const expected = [...model.regions.keys()].sort();
  if (names.join('\u0000') !== expected.join('\u0000')) {
    return `regions [${names.map(shortName)}] instead of [${expected.map(shortName)}]`;
  }
  if (kernel.capacityBytes !== model.capacityBytes) {
    return `capacity ${kernel.capacityBytes} instead of ${model.capacityBytes}`;
  }
  for (const info of infos) {
    const want = model.get(info.name);
    const got = { sizeBytes: info.sizeBytes, mode: info.mode, uid: info.uid, gid: info.gid };
    const wanted = { sizeBytes: want.sizeBytes, mode: want.mode, uid: want.uid, gid: want.gid };
    if (JSON.stringify(got) !== JSON.stringify(wanted)) {
      return `region ${shortName(info.name)}: ${JSON.stringify(got)} instead of ${JSON.stringify(wanted)}`;
    }
    const problem = compareContents(kernel, info.name, want, info.damaged);
    if (problem) return `region ${shortName(info.name)}: ${problem}`;
  }
  return null;
}

/** A damaged (quarantined) region's page that says it cannot be read, rather than reading as zeros. */
function unreadable(kernel: RegionManager, name: string, page: number): boolean {
  try {
    kernel.readPage(kernel.lookup(name), page, new Uint8Array(PAGE_BYTES));
    return false;
  } catch (error) {
    return isRegionError(error, 'CORRUPT');
  }
}

/**
 * Byte for byte, without reading every hole of a 1 GiB region: every committed page of the
 * kernel must equal the model's page, and every model page the kernel does not hold must be
 * all zeros (a hole reads as zeros).
 */
function compareContents(kernel: RegionManager, name: string, want: ModelRegion, damaged: boolean): string | null {
  const regionPages = Math.max(1, Math.ceil(want.sizeBytes / PAGE_BYTES));
  const seen = new Set<number>();
  let problem: string | null = null;
  kernel.forEachCommittedPage(kernel.lookup(name), (page, view) => {
    seen.add(page);
    if (problem !== null) return;
    if (page >= regionPages) problem = `page ${page} is mapped past the end (${regionPages} pages)`;
    else problem = differ(view, want.pages.get(page), page);
  });
  if (problem !== null) return problem;
  for (const [page, bytes] of want.pages) {
    const missing = !seen.has(page) && page < regionPages && bytes.some((b) => b !== 0);
    if (missing && !(damaged && unreadable(kernel, name, page))) return `page ${page} reads as a hole`;
  }
  return null;
}

function differ(got: Uint8Array, want: Uint8Array | undefined, page: number): string | null {
  for (let i = 0; i < PAGE_BYTES; i++) {
    const expected = want?.[i] ?? 0;
    if (got[i] !== expected) return `page ${page} byte ${i} is ${got[i]}, not ${expected}`;
  }
  return null;
}
