// One journal commit as data: the journal (kernel/journal.ts) decides every byte and block, the
// device runs the plan. executeCommit runs it on any PmDevice through write, flush and fence
// (SimDevice's crash images cover exactly this sequence); a FileDevice with CPU cache flushes
// runs the same plan in one native call (native/commit.c), proven equal to this one byte for
// byte and line for line between fences (test/26-native-commit.test.ts). The order:
//
//   1. fresh data pages copied to their new blocks and written back; fresh metadata (written
//      when the transaction created it) written back;
//   2. the record stored into its half and written back;
//   3. fence: everything above is durable before the commit word exists;
//   4. the commit word stored and written back, fence: the commit point;
//   5. entries and ranges applied in place, each distinct line written back once, no fence:
//      the next commit's first fence orders them (applyInPlace, also what replay does).

import { BLOCK_BYTES } from '../constants.js';
import { COMMIT_WORD_BYTES } from '../format/journal_record.js';
import { CACHE_LINE_BYTES, type PmDevice } from './device.js';
import { assert } from '../util/assert.js';

export interface CommitPlan {
  /**
   * The fresh data pages, three numbers each: the block's pool offset, the index of the
   * page's buffer in `buffers`, and the page's byte offset in that buffer.
   */
  copies: ArrayLike<number>;
  /** The buffers pages are copied from (a working copy's chunks: a few, never one per page). */
  buffers: readonly Uint8Array[];
  /** Fresh metadata already stored: (offset, length) pairs to write back before the record. */
  flushes: number[];
  recordOffset: number;
  record: Uint8Array;
  /** The commit word's offset; it receives `sequence`. */
  commitOffset: number;
  sequence: number;
  /** In-place 8-byte entries: offsets, and (lo, hi) per entry. */
  wordOffsets: ArrayLike<number>;
  wordValues: Uint32Array;
  /** In-place byte ranges (slot rewrites). */
  rangeOffsets: number[];
  rangeBytes: Uint8Array[];
}

/** Runs the plan: natively where the device can (FileDevice with cache flushes), else executeCommit. */
export function runCommit(device: PmDevice, plan: CommitPlan): void {
  if (device.commit) device.commit(plan);
  else executeCommit(device, plan);
}

/** Steps 1-5 on any device, through its write, flush and fence. */
export function executeCommit(device: PmDevice, plan: CommitPlan): void {
  const { copies } = plan;
  assert(copies.length % 3 === 0, 'commit plan: three numbers per copy');
  for (let i = 0; i < copies.length; i += 3) {
    const to = copies[i] as number;
    const from = copies[i + 2] as number;
    const buffer = plan.buffers[copies[i + 1] as number];
    assert(buffer !== undefined && from + BLOCK_BYTES <= buffer.length, 'commit plan: a copy reads a page of a buffer');
    device.write(to, buffer.subarray(from, from + BLOCK_BYTES));
    device.flush(to, BLOCK_BYTES);
  }
  const { flushes } = plan;
  for (let i = 0; i < flushes.length; i += 2) device.flush(flushes[i] as number, flushes[i + 1] as number);
  device.write(plan.recordOffset, plan.record);
  device.flush(plan.recordOffset, plan.record.length);
  // The record (and the previous commit's applies) are durable before the commit word is
  // stored: so a commit word always names an intact record, which recovery relies on.
  device.fence();
  device.write(plan.commitOffset, commitWord(plan.sequence));
  device.persist(plan.commitOffset, COMMIT_WORD_BYTES); // commit point
  applyInPlace(device, plan.wordOffsets, plan.wordValues, plan.rangeOffsets, plan.rangeBytes);
}

/** Step 5: in-place stores, then one write-back per distinct line (a run of lines is one call). */
export function applyInPlace(
  device: PmDevice,
  wordOffsets: ArrayLike<number>,
  wordValues: Uint32Array,
  rangeOffsets: number[],
  rangeBytes: Uint8Array[],
): void {
  assert(wordValues.length === 2 * wordOffsets.length, 'commit plan: (lo, hi) per word');
  const scratch = new Uint8Array(8);
  const view = new DataView(scratch.buffer);
  const lines = new Float64Array(wordOffsets.length);
  for (let i = 0; i < wordOffsets.length; i++) {
    const offset = wordOffsets[i] as number;
    view.setUint32(0, wordValues[2 * i] as number, true);
    view.setUint32(4, wordValues[2 * i + 1] as number, true);
    device.write(offset, scratch);
    lines[i] = Math.floor(offset / CACHE_LINE_BYTES);
  }
  lines.sort();
  for (let i = 0; i < lines.length; ) {
    let end = i + 1;
    while (end < lines.length && (lines[end] as number) <= (lines[end - 1] as number) + 1) end++;
    const first = lines[i] as number;
    device.flush(first * CACHE_LINE_BYTES, ((lines[end - 1] as number) - first + 1) * CACHE_LINE_BYTES);
    i = end;
  }
  for (let i = 0; i < rangeOffsets.length; i++) {
    const bytes = rangeBytes[i] as Uint8Array;
    device.write(rangeOffsets[i] as number, bytes);
    device.flush(rangeOffsets[i] as number, bytes.length);
  }
}

/**
 * The native call's arguments (native/commit.c): `numbers` (counts, offsets, sequence, then
 * the copies' triples, the flushes, words and ranges) and the plan's buffers. With `scratch`,
 * `numbers` is a view of the caller's buffer (grown as needed), valid until its next use.
 */
export function encodeNumbers(
  plan: CommitPlan,
  scratch?: { numbers: Float64Array },
): { numbers: Float64Array; buffers: readonly Uint8Array[] } {
  const { copies, flushes, wordOffsets, rangeOffsets } = plan;
  assert(copies.length % 3 === 0, 'commit plan: three numbers per copy');
  const length = 8 + copies.length + flushes.length + wordOffsets.length + rangeOffsets.length;
  if (scratch !== undefined && scratch.numbers.length < length) {
    scratch.numbers = new Float64Array(2 ** Math.ceil(Math.log2(length)));
  }
  const numbers = scratch === undefined ? new Float64Array(length) : scratch.numbers.subarray(0, length);
  let at = 8;
  for (const list of [copies, flushes, wordOffsets, rangeOffsets]) {
    numbers.set(list, at);
    at += list.length;
  }
  numbers[0] = copies.length / 3;
  numbers[1] = flushes.length / 2;
  numbers[2] = wordOffsets.length;
  numbers[3] = rangeOffsets.length;
  numbers[4] = plan.buffers.length;
  numbers[5] = plan.recordOffset;
  numbers[6] = plan.commitOffset;
  numbers[7] = plan.sequence;
  return { numbers, buffers: plan.buffers };
}

/** Bytes the plan stores (the device's bytesWritten counter). */
export function planBytes(plan: CommitPlan): number {
  let bytes = (plan.copies.length / 3) * BLOCK_BYTES + plan.record.length + COMMIT_WORD_BYTES;
  bytes += plan.wordOffsets.length * 8;
  for (const range of plan.rangeBytes) bytes += range.length;
  return bytes;
}

export function commitWord(sequence: number): Uint8Array {
  const bytes = new Uint8Array(COMMIT_WORD_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, sequence % 0x1_0000_0000, true);
  view.setUint32(4, Math.floor(sequence / 0x1_0000_0000), true);
  return bytes;
}
