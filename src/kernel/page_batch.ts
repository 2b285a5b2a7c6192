// The pages of one pmsync as data: page numbers and where each page's bytes are, in a few
// buffers (a working copy's chunks), so that a commit of k pages builds no object per page.

import { BLOCK_BYTES, PAGE_BYTES } from '../constants.js';
import { assert } from '../util/assert.js';

export interface PageBatch {
  /** Page numbers of the region: distinct, each inside it. */
  readonly pages: ArrayLike<number>;
  /** The buffers the pages' bytes are in. */
  readonly buffers: readonly Uint8Array[];
  /** Page i is the BLOCK_BYTES at byte offset[i] of buffers[buffer[i]]. */
  readonly buffer: ArrayLike<number>;
  readonly offset: ArrayLike<number>;
}

/** One page and its bytes: what a caller with a few pages in hand passes. */
export interface PageBytes {
  page: number;
  bytes: Uint8Array;
}

/** The batch of a list of pages, each its own buffer. */
export function pageBatch(list: readonly PageBytes[]): PageBatch {
  for (const { bytes } of list) assert(bytes.length === BLOCK_BYTES, 'page batch: a page is one block', bytes.length);
  return {
    pages: list.map(({ page }) => page),
    buffers: list.map(({ bytes }) => bytes),
    buffer: list.map((_, i) => i),
    offset: list.map(() => 0),
  };
}

export function isPageBatch(pages: PageBatch | readonly PageBytes[]): pages is PageBatch {
  return !Array.isArray(pages);
}

/**
 * The batch of `pages` of a region held in consecutive chunks of chunkBytes each (a working
 * copy's). A region whose size is not whole pages commits its last page with the bytes past
 * its end zeroed, from a copy.
 */
export function batchInChunks(
  pages: readonly number[],
  chunks: readonly Uint8Array[],
  chunkBytes: number,
  sizeBytes: number,
): PageBatch {
  assert(chunkBytes % PAGE_BYTES === 0, 'page batch: chunks hold whole pages', chunkBytes);
  const buffer = new Float64Array(pages.length);
  const offset = new Float64Array(pages.length);
  const buffers = [...chunks];
  const lastPage = Math.ceil(sizeBytes / PAGE_BYTES) - 1;
  const tail = sizeBytes - lastPage * PAGE_BYTES;
  for (let i = 0; i < pages.length; i++) {
    const at = (pages[i] as number) * PAGE_BYTES;
    const index = Math.floor(at / chunkBytes);
    const within = at % chunkBytes;
    const chunk = chunks[index];
    assert(chunk !== undefined && within + PAGE_BYTES <= chunk.length, 'page batch: a page inside the chunks', at);
    if (pages[i] === lastPage && tail < PAGE_BYTES) {
      buffer[i] = buffers.push(chunk.slice(within, within + PAGE_BYTES).fill(0, tail)) - 1;
      continue;
    }
    buffer[i] = index;
    offset[i] = within;
  }
  return { pages, buffers, buffer, offset };
}
