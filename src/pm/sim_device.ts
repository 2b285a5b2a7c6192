// SimDevice: in-memory persistent memory with an x86-like persistency model (DESIGN.md
// section 3). It is our Yat: it can produce every state a crash could leave, so crash
// consistency is proved by checking each of them, not hoped for.
//
// The model, per aligned 8-byte unit (only aligned 8-byte stores are failure-atomic on x86):
//   - Each unit has an ordered list of candidates: the values PM might hold if the machine
//     crashed now, oldest first. One candidate = decided (durable); more = undecided.
//   - A store appends the unit's new visible value. Stores are split into units: a store
//     spanning units may tear between them; a partial-unit store appends (old visible bytes
//     merged with the new bytes), so a crash never shows half of one unit's update.
//   - flush() of a line records, for each undecided unit in it, the index of its current
//     value. At the next fence() such a unit's candidates become [value at flush time, ...
//     values stored after the flush]. A flush without a fence guarantees nothing.
//   - Units not flushed since their stores stay undecided across fences: an unflushed
//     dirty line may or may not reach PM, at any time, until it is flushed and fenced.
//   - Reads (read/view) see the visible state: the latest stores, as the CPU would.
//
// What is not modelled (the model over-approximates; it never hides a real crash state):
//   - Units are independent: any combination of candidates across units is a crash image,
//     even two units in one cache line, which real hardware writes back together. Code
//     that is correct here does not depend on same-line ordering (nor should it: eADR-less
//     platforms and ARM make no such promise).
//   - Within a unit every intermediate value is a candidate; there is no finer reordering.
//   - No non-temporal stores, no eADR (flush-free persistence), no media errors, no
//     read-from-PM differences: the cache is coherent and reads never miss.
//
// Layout: `#durable` holds every unit's oldest candidate (so it is the "oldest" crash image
// and, for decided units, equals `#visible`); `#undecided` maps unit index -> candidates.
// Costs: two copies of the device in memory; each undecided unit holds one bigint per store
// since it was last decided; fence() costs O(units flushed since the last fence).

import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';
import {
  ATOMIC_UNIT_BYTES, CACHE_LINE_BYTES, DeviceCounters, checkRange, checkWordOffset, type PmDevice,
} from './device.js';
import { type CrashImageOptions, type UnitCandidates, enumerateImages, planImages, sampleImages } from './sim_images.js';

export type { CrashImageOptions } from './sim_images.js';

export const SIM_BLOCK_BYTES = 4096;
/** The largest SimDevice: it keeps two full copies of itself in memory. */
export const SIM_SIZE_BYTES_MAX = 1024 * 1024 * 1024;
const UNITS_PER_LINE = CACHE_LINE_BYTES / ATOMIC_UNIT_BYTES;

/** Options of new SimDevice. */
export interface SimDeviceOptions {
  /** Capacity in bytes: a positive multiple of 4096, at most SIM_SIZE_BYTES_MAX. */
  sizeBytes: number;
}

/** How many stores (write/fill calls), flush calls and fence calls the device has seen. */
export interface SimEvents {
  /** write() and fill() calls. */
  stores: number;
  /** flush() calls (persist() counts one). */
  flushes: number;
  /** fence() calls (persist() counts one). */
  fences: number;
}

/** Called at the start of every fence(), before it takes effect; see SimDevice.onFence. */
export type FenceHook = (device: SimDevice) => void;

interface UnitState {
  /** Values PM might hold for this unit, oldest first; length >= 2. */
  candidates: bigint[];
  /** Index of the value the latest flush since the last fence captured, or -1. */
  flushedIndex: number;
}

function checkSizeBytes(sizeBytes: number, what: string): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % SIM_BLOCK_BYTES !== 0) {
    throw new RegionError('INVALID', `${what}: sizeBytes ${sizeBytes} is not a positive multiple of ${SIM_BLOCK_BYTES}`);
  }
  if (sizeBytes > SIM_SIZE_BYTES_MAX) {
    throw new RegionError('INVALID', `${what}: sizeBytes ${sizeBytes} exceeds the simulator's limit of ${SIM_SIZE_BYTES_MAX}; use a FileDevice`);
  }
}

/**
 * Simulated persistent memory that knows every state a crash could leave.
 *
 * Use it like any PmDevice; at any point call {@link SimDevice.crashImages} to get the
 * possible PM contents after a crash there, and {@link SimDevice.fromImage} to "reboot"
 * from one of them and run recovery. {@link SimDevice.onFence} lets a test inspect every
 * interval between fences, which is where crash states change.
 *
 * @example
 * const device = new SimDevice({ sizeBytes: 4096 });
 * device.onFence((d) => { for (const image of d.crashImages()) check(image); });
 * runMyWriter(device);
 * for (const image of device.crashImages()) check(image); // and the final state
 */
export class SimDevice implements PmDevice {
  /** Lines flushed, fences and bytes written so far. */
  readonly counters = new DeviceCounters();
  #sizeBytes: number;
  #visible: Uint8Array;
  #visibleWords: DataView;
  #durable: Uint8Array;
  #durableWords: DataView;
  readonly #undecided = new Map<number, UnitState>();
  /** Units with flushedIndex >= 0: the work of the next fence. */
  readonly #flushed = new Set<number>();
  readonly #events: SimEvents = { stores: 0, flushes: 0, fences: 0 };
  #hook: FenceHook | null = null;
  #inHook = false;
  #closed = false;

  /** A zeroed, fully durable device. Throws RegionError INVALID for a bad size. */
  constructor(options: SimDeviceOptions) {
    checkSizeBytes(options?.sizeBytes, 'SimDevice');
    this.#sizeBytes = options.sizeBytes;
    this.#visible = new Uint8Array(this.#sizeBytes);
    this.#durable = new Uint8Array(this.#sizeBytes);
    this.#visibleWords = new DataView(this.#visible.buffer);
    this.#durableWords = new DataView(this.#durable.buffer);
  }

  /**
   * A device whose contents are `bytes`, all durable, counters and events zero: how a test
   * continues (recovers) from a crash image. `bytes` is copied.
   */
  static fromImage(bytes: Uint8Array): SimDevice {
    if (!(bytes instanceof Uint8Array)) throw new RegionError('INVALID', 'SimDevice.fromImage: bytes is not a Uint8Array');
    checkSizeBytes(bytes.length, 'SimDevice.fromImage');
    const device = new SimDevice({ sizeBytes: bytes.length });
    device.#visible.set(bytes);
    device.#durable.set(bytes);
    return device;
  }

  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** A copy of the store/flush/fence call counts so far. */
  get events(): SimEvents {
    return { ...this.#events };
  }

  /** A copy of the visible bytes (the latest stores), as the CPU would read them. */
  read(offset: number, length: number): Uint8Array {
    this.#checkOpen('read');
    checkRange(this, offset, length, 'read');
    return this.#visible.slice(offset, offset + length);
  }

  /**
   * A zero-copy view of the visible bytes, valid until the next write/fill/resize/close.
   * Enforces the PmDevice rule (no 4 KiB boundary crossing unless whole aligned blocks), so
   * code tested here does not break on a chunked FileDevice.
   */
  readU32(offset: number): number {
    this.#checkOpen('readU32');
    checkWordOffset(this, offset);
    return this.#visibleWords.getUint32(offset, true);
  }

  view(offset: number, length: number): Uint8Array {
    this.#checkOpen('view');
    checkRange(this, offset, length, 'view');
    const crosses = length > 0 && Math.floor(offset / SIM_BLOCK_BYTES) !== Math.floor((offset + length - 1) / SIM_BLOCK_BYTES);
    if (crosses && (offset % SIM_BLOCK_BYTES !== 0 || length % SIM_BLOCK_BYTES !== 0)) {
      throw new RangeError(`view: range [${offset}, ${offset + length}) crosses a 4 KiB block boundary without being whole aligned blocks; use read()`);
    }
    return this.#visible.subarray(offset, offset + length);
  }

  /** Store `bytes` at `offset`: visible at once, durable only after flush + fence. */
  write(offset: number, bytes: Uint8Array): void {
    this.#checkOpen('write');
    if (!(bytes instanceof Uint8Array)) throw new RangeError('write: bytes is not a Uint8Array');
    checkRange(this, offset, bytes.length, 'write');
    this.#visible.set(bytes, offset);
    this.#noteStore(offset, bytes.length);
  }

  /** Store `length` copies of the byte `value` (default 0) at `offset`. */
  fill(offset: number, length: number, value = 0): void {
    this.#checkOpen('fill');
    checkRange(this, offset, length, 'fill');
    if (!Number.isInteger(value) || value < 0 || value > 255) throw new RangeError(`fill: value ${value} is not a byte`);
    this.#visible.fill(value, offset, offset + length);
    this.#noteStore(offset, length);
  }

  /**
   * Write back every 64-byte line overlapping [offset, offset+length): each undecided unit in
   * those lines will be at least its current value after the next fence. Counts the lines.
   */
  flush(offset: number, length: number): void {
    this.#checkOpen('flush');
    checkRange(this, offset, length, 'flush');
    this.#events.flushes += 1;
    if (length === 0) return;
    const lineFirst = Math.floor(offset / CACHE_LINE_BYTES);
    const lineEnd = Math.floor((offset + length - 1) / CACHE_LINE_BYTES) + 1;
    this.counters.linesFlushed += lineEnd - lineFirst;
    this.#markFlushed(lineFirst * UNITS_PER_LINE, lineEnd * UNITS_PER_LINE);
  }

  /**
   * Complete every flush since the last fence. Runs the fence hook first (unless called
   * from inside it), so the hook sees the crash states of the interval this fence closes.
   */
  fence(): void {
    this.#checkOpen('fence');
    this.#runHook();
    this.#checkOpen('fence'); // the hook may have closed the device
    this.counters.fences += 1;
    this.#events.fences += 1;
    for (const unit of this.#flushed) this.#settle(unit);
    this.#flushed.clear();
  }

  /** flush(offset, length) then fence(). */
  persist(offset: number, length: number): void {
    this.flush(offset, length);
    this.fence();
  }

  /** Grow to `sizeBytes` (a multiple of 4096, >= the current size); new bytes are zero and durable. */
  resize(sizeBytes: number): void {
    this.#checkOpen('resize');
    checkSizeBytes(sizeBytes, 'resize');
    if (sizeBytes < this.#sizeBytes) {
      throw new RegionError('INVALID', `resize: ${sizeBytes} is smaller than the device (${this.#sizeBytes} bytes); a SimDevice only grows`);
    }
    const visible = new Uint8Array(sizeBytes);
    const durable = new Uint8Array(sizeBytes);
    visible.set(this.#visible);
    durable.set(this.#durable);
    this.#visible = visible;
    this.#durable = durable;
    this.#visibleWords = new DataView(visible.buffer);
    this.#durableWords = new DataView(durable.buffer);
    this.#sizeBytes = sizeBytes;
  }

  /** Release the memory; any later use except close() throws RegionError CLOSED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hook = null;
    this.#undecided.clear();
    this.#flushed.clear();
    this.#visible = new Uint8Array(0);
    this.#durable = new Uint8Array(0);
    this.#visibleWords = new DataView(this.#visible.buffer);
    this.#durableWords = new DataView(this.#durable.buffer);
  }

  /**
   * Set (or clear, with null) the hook called at the start of each fence(), before the fence
   * takes effect. Intended use: call crashImages() inside it to check every crash state of
   * the interval. Fences the hook itself causes do not call it again.
   */
  onFence(hook: FenceHook | null): void {
    this.#checkOpen('onFence');
    if (hook !== null && typeof hook !== 'function') throw new RegionError('INVALID', 'onFence: hook is not a function or null');
    this.#hook = hook;
  }

  /** How many 8-byte units have more than one possible crash value. */
  undecidedUnits(): number {
    this.#checkOpen('undecidedUnits');
    return this.#undecided.size;
  }

  /** How many images crashImages(options) would yield now. */
  crashImageCount(options: CrashImageOptions = {}): number {
    this.#checkOpen('crashImageCount');
    return planImages(this.#candidateCounts(), options).count;
  }

  /**
   * The possible PM contents if the machine crashed now. If at most `unitsMax` units are
   * undecided and their combinations number at most `imagesMax`, yields every combination
   * (the product of the units' candidate counts; the first image has every unit at its
   * oldest candidate). Otherwise yields the all-oldest image, the all-newest image, then
   * `samples` combinations drawn by a PRNG seeded with `seed` (same seed, same images).
   *
   * The state is captured at the call (later device calls do not affect the iteration).
   * Each image is a fresh full-size copy: cost is sizeBytes per image, so keep devices small
   * when enumerating. Images may repeat (sampling, or a unit that stored a value twice).
   */
  crashImages(options: CrashImageOptions = {}): Generator<Uint8Array, void, undefined> {
    this.#checkOpen('crashImages');
    const units = this.#snapshotUnits();
    const plan = planImages(
      units.map((u) => u.candidates.length),
      options,
    );
    const base = this.#durable.slice();
    return plan.exhaustive ? enumerateImages(base, units) : sampleImages(base, units, plan.samples, plan.seed);
  }

  /**
   * Verify the model's internal invariants (O(sizeBytes)); throws AssertionError naming the
   * broken one. For tests of the simulator and of code that reaches into it.
   */
  checkInvariants(): void {
    this.#checkOpen('checkInvariants');
    for (const [unit, state] of this.#undecided) {
      const at = unit * ATOMIC_UNIT_BYTES;
      assert(at + ATOMIC_UNIT_BYTES <= this.#sizeBytes, 'undecided unit inside the device');
      assert(state.candidates.length >= 2, 'undecided unit has two or more candidates');
      assert(state.candidates[0] === this.#durableWords.getBigUint64(at, true), 'durable holds the oldest candidate');
      assert(state.candidates.at(-1) === this.#visibleWords.getBigUint64(at, true), 'visible holds the newest candidate');
      assert(state.flushedIndex < state.candidates.length, 'flushedIndex within candidates');
      assert((state.flushedIndex >= 0) === this.#flushed.has(unit), 'flushed set matches flushedIndex');
    }
    for (const unit of this.#flushed) assert(this.#undecided.has(unit), 'flushed units are undecided');
    for (let at = 0; at < this.#sizeBytes; at += ATOMIC_UNIT_BYTES) {
      if (this.#undecided.has(at / ATOMIC_UNIT_BYTES)) continue;
      assert(this.#visibleWords.getBigUint64(at, true) === this.#durableWords.getBigUint64(at, true), 'decided unit visible equals durable');
    }
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new RegionError('CLOSED', `${what}: the SimDevice is closed; create a new one`);
  }

  /** Append the new visible value of every unit [offset, offset+length) touches. */
  #noteStore(offset: number, length: number): void {
    this.counters.bytesWritten += length;
    this.#events.stores += 1;
    if (length === 0) return;
    const unitFirst = Math.floor(offset / ATOMIC_UNIT_BYTES);
    const unitEnd = Math.floor((offset + length - 1) / ATOMIC_UNIT_BYTES) + 1;
    for (let unit = unitFirst; unit < unitEnd; unit++) {
      const next = this.#visibleWords.getBigUint64(unit * ATOMIC_UNIT_BYTES, true);
      const state = this.#undecided.get(unit);
      // A decided unit's durable value is also its previous visible value.
      const previous = state ? state.candidates.at(-1) : this.#durableWords.getBigUint64(unit * ATOMIC_UNIT_BYTES, true);
      if (next === previous) continue; // storing the current value adds no crash state
      if (state) state.candidates.push(next);
      else this.#undecided.set(unit, { candidates: [previous as bigint, next], flushedIndex: -1 });
    }
  }

  /** Record the current value of every undecided unit in [unitFirst, unitEnd) as flushed. */
  #markFlushed(unitFirst: number, unitEnd: number): void {
    const mark = (unit: number, state: UnitState): void => {
      state.flushedIndex = state.candidates.length - 1;
      this.#flushed.add(unit);
    };
    // Walk whichever is smaller: the flushed range or the undecided set.
    if (this.#undecided.size < unitEnd - unitFirst) {
      for (const [unit, state] of this.#undecided) if (unit >= unitFirst && unit < unitEnd) mark(unit, state);
      return;
    }
    for (let unit = unitFirst; unit < unitEnd; unit++) {
      const state = this.#undecided.get(unit);
      if (state) mark(unit, state);
    }
  }

  /** Fence effect on one flushed unit: drop candidates older than the flushed value. */
  #settle(unit: number): void {
    const state = this.#undecided.get(unit);
    assert(state !== undefined && state.flushedIndex >= 0, 'a flushed unit is undecided with a flush index');
    state.candidates = state.candidates.slice(state.flushedIndex);
    state.flushedIndex = -1;
    const oldest = state.candidates[0];
    assert(oldest !== undefined, 'a settled unit keeps a candidate');
    this.#durableWords.setBigUint64(unit * ATOMIC_UNIT_BYTES, oldest, true);
    if (state.candidates.length === 1) {
      assert(oldest === this.#visibleWords.getBigUint64(unit * ATOMIC_UNIT_BYTES, true), 'a decided unit holds its visible value');
      this.#undecided.delete(unit);
    }
  }

  #runHook(): void {
    if (this.#hook === null || this.#inHook) return;
    this.#inHook = true;
    try {
      this.#hook(this);
    } finally {
      this.#inHook = false;
    }
  }

  #candidateCounts(): number[] {
    return Array.from(this.#undecided.values(), (state) => state.candidates.length);
  }

  /** The undecided units in unit order, their candidate lists copied. */
  #snapshotUnits(): UnitCandidates[] {
    const units = Array.from(this.#undecided, ([unit, state]) => ({ unit, candidates: state.candidates.slice() }));
    units.sort((a, b) => a.unit - b.unit);
    return units;
  }
}
