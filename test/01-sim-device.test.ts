// SimDevice: the persistency model's laws, the PmDevice contract, and the crash-test triple
// (a correct writer passes in every crash image at every fence; wrong writers are caught).
// Randomized tests print their seed; replay one with SIM_SEED=<seed>.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { isRegionError } from '../src/errors.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { runOracle } from './fixtures/sim-oracle.js';
import {
  WRITER_DEVICE_BYTES,
  badWriterOneFence,
  badWriterUnflushedData,
  checkFlagImage,
  crashCheck,
  goodWriter,
} from './fixtures/sim-writers.js';

const BLOCK = 4096;
const SEED = process.env['SIM_SEED'] !== undefined ? Number(process.env['SIM_SEED']) : randomInt(2 ** 32);

function u64(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, value, true);
  return bytes;
}

function u64At(image: Uint8Array, offset: number): bigint {
  return new DataView(image.buffer, image.byteOffset).getBigUint64(offset, true);
}

function imagesOf(device: SimDevice, options = {}): Uint8Array[] {
  return [...device.crashImages(options)];
}

function valuesAt(device: SimDevice, offset: number): bigint[] {
  return imagesOf(device).map((image) => u64At(image, offset));
}

const isCode = (code: Parameters<typeof isRegionError>[1]) => (error: unknown) => isRegionError(error, code);

test('constructor and fromImage: size must be a positive multiple of 4096', () => {
  for (const sizeBytes of [0, -4096, 4095, 4097, 1.5 * BLOCK, Number.NaN]) {
    assert.throws(() => new SimDevice({ sizeBytes }), isCode('INVALID'), `sizeBytes ${sizeBytes}`);
  }
  assert.throws(() => SimDevice.fromImage(new Uint8Array(100)), isCode('INVALID'));
  const device = new SimDevice({ sizeBytes: 2 * BLOCK });
  assert.equal(device.sizeBytes, 2 * BLOCK);
  assert.equal(device.undecidedUnits(), 0);
  assert.deepEqual(imagesOf(device), [new Uint8Array(2 * BLOCK)]);
});

test('a persisted store survives in every image', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.write(64, u64(0x1122_3344_5566_7788n));
  device.persist(64, 8);
  assert.equal(device.undecidedUnits(), 0);
  assert.deepEqual(valuesAt(device, 64), [0x1122_3344_5566_7788n]);
});

test('an unflushed store survives in some images and not in others, across fences', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.write(128, u64(7n));
  assert.deepEqual(valuesAt(device, 128), [0n, 7n]);
  device.fence(); // no flush: the dirty line may still be in the cache
  assert.deepEqual(valuesAt(device, 128), [0n, 7n]);
  assert.equal(device.undecidedUnits(), 1);
});

test('a flush without a fence guarantees nothing; the fence decides', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.write(0, u64(9n));
  device.flush(0, 8);
  assert.deepEqual(valuesAt(device, 0), [0n, 9n]);
  device.fence();
  assert.deepEqual(valuesAt(device, 0), [9n]);
  assert.equal(device.undecidedUnits(), 0);
});

test('stores tear only between aligned 8-byte units', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  const bytes = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
  device.write(0, bytes);
  const halves = imagesOf(device).map((image) => {
    const low = image.subarray(0, 8);
    const high = image.subarray(8, 16);
    const lowNew = low.every((b, i) => b === bytes[i]);
    const highNew = high.every((b, i) => b === bytes[8 + i]);
    assert.ok(lowNew || low.every((b) => b === 0), 'low unit is all old or all new');
    assert.ok(highNew || high.every((b) => b === 0), 'high unit is all old or all new');
    return `${Number(lowNew)}${Number(highNew)}`;
  });
  assert.deepEqual(halves.sort(), ['00', '01', '10', '11']);

  // An unaligned 8-byte store spans two units: 4 images, each unit's part atomic.
  const unaligned = new SimDevice({ sizeBytes: BLOCK });
  unaligned.write(4, u64(0xffff_ffff_ffff_ffffn));
  const words = imagesOf(unaligned).map((image) => [u64At(image, 0), u64At(image, 8)]);
  assert.equal(words.length, 4);
  for (const [low, high] of words) {
    assert.ok(low === 0n || low === 0xffff_ffff_0000_0000n);
    assert.ok(high === 0n || high === 0x0000_0000_ffff_ffffn);
  }

  // A partial-unit store: the unit is the old bytes or the merged bytes, never in between.
  const partial = new SimDevice({ sizeBytes: BLOCK });
  partial.write(0, u64(0x1111_1111_1111_1111n));
  partial.persist(0, 8);
  partial.write(2, Uint8Array.of(0xee, 0xee, 0xee));
  assert.deepEqual(valuesAt(partial, 0), [0x1111_1111_1111_1111n, 0x1111_11ee_eeee_1111n]);
});

test('a fenced sequence keeps its order; an unflushed one does not', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.write(0, u64(1n)); // A
  device.persist(0, 8);
  device.write(256, u64(2n)); // B
  const images = imagesOf(device);
  assert.ok(images.some((image) => u64At(image, 256) === 2n), 'B may be durable');
  assert.ok(images.every((image) => u64At(image, 0) === 1n), 'no image has B without A');

  const unordered = new SimDevice({ sizeBytes: BLOCK });
  unordered.write(0, u64(1n)); // A, never flushed
  unordered.write(256, u64(2n)); // B
  unordered.persist(256, 8);
  assert.ok(
    imagesOf(unordered).some((image) => u64At(image, 256) === 2n && u64At(image, 0) === 0n),
    'B persisted without A: A is not ordered before it',
  );
});

test('a flush captures the value at flush time', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.write(0, u64(1n)); // v1
  device.flush(0, 8);
  device.write(0, u64(2n)); // v2, after the flush
  device.fence();
  assert.deepEqual(valuesAt(device, 0), [1n, 2n], 'v1 or v2, never the value before v1');
  assert.equal(device.undecidedUnits(), 1);
  device.persist(0, 8);
  assert.deepEqual(valuesAt(device, 0), [2n]);
});

test('exhaustive enumeration yields the product of candidate counts, all distinct', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  for (const value of [1n, 2n, 3n]) device.write(0, u64(value)); // 4 candidates
  for (const value of [4n, 5n]) device.write(8, u64(value)); // 3 candidates
  device.write(40, u64(6n)); // 2 candidates
  device.write(40, u64(6n)); // storing the current value adds nothing
  assert.equal(device.undecidedUnits(), 3);
  assert.equal(device.crashImageCount(), 4 * 3 * 2);
  const combos = imagesOf(device).map((image) => `${u64At(image, 0)},${u64At(image, 8)},${u64At(image, 40)}`);
  assert.equal(combos.length, 24);
  assert.equal(new Set(combos).size, 24);
  assert.equal(combos[0], '0,0,0', 'the first image is every unit at its oldest candidate');
});

test('beyond unitsMax: both extremes, then seeded samples, reproducible', (t) => {
  t.diagnostic(`seed ${SEED} (replay: SIM_SEED=${SEED})`);
  const device = new SimDevice({ sizeBytes: BLOCK });
  for (let unit = 0; unit < 20; unit++) device.write(unit * 8, u64(BigInt(unit + 1)));
  const options = { seed: SEED };
  assert.equal(device.crashImageCount(options), 2 + 64);
  const images = imagesOf(device, options);
  assert.equal(images.length, 66);
  assert.deepEqual(images[0], new Uint8Array(BLOCK), 'oldest extreme');
  assert.deepEqual(images[1], device.read(0, BLOCK), 'newest extreme');
  assert.deepEqual(imagesOf(device, options), images, 'same seed, same images');
  const other = imagesOf(device, { seed: (SEED + 1) % 2 ** 32 });
  assert.notDeepEqual(other.slice(2), images.slice(2), 'another seed, other samples');
  assert.equal(device.crashImageCount({ unitsMax: 20 }), 2 ** 20 > 65_536 ? 66 : 2 ** 20, 'imagesMax caps enumeration');
  assert.equal(device.crashImageCount({ unitsMax: 20, imagesMax: 2 ** 20 }), 2 ** 20);
  assert.throws(() => device.crashImageCount({ seed: -1 }), isCode('INVALID'));
  assert.throws(() => device.crashImageCount({ samples: 1.5 }), isCode('INVALID'));
  t.diagnostic(`20 undecided units: ${images.length} images (2 extremes + 64 samples)`);
});

test('crashImages captures the state at the call', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.write(0, u64(1n));
  const iterator = device.crashImages();
  device.persist(0, 8);
  device.write(0, u64(5n));
  assert.deepEqual([...iterator].map((image) => u64At(image, 0)), [0n, 1n]);
});

test('fromImage continues from a crash image', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.write(0, u64(3n));
  device.flush(0, 8);
  const [before] = imagesOf(device);
  assert.ok(before !== undefined);
  const rebooted = SimDevice.fromImage(before);
  before.fill(0xff); // fromImage copied it
  assert.equal(u64At(rebooted.read(0, 8), 0), 0n);
  assert.equal(rebooted.undecidedUnits(), 0);
  assert.deepEqual(rebooted.counters.snapshot(), { linesFlushed: 0, fences: 0, bytesWritten: 0 });
  assert.deepEqual(rebooted.events, { stores: 0, flushes: 0, fences: 0 });
  rebooted.write(0, u64(4n));
  rebooted.persist(0, 8);
  assert.deepEqual(valuesAt(rebooted, 0), [4n]);
});

test('counters count lines per flush, fences and bytes; events count calls', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.flush(0, 64);
  assert.equal(device.counters.linesFlushed, 1);
  device.flush(63, 2); // straddles two lines
  assert.equal(device.counters.linesFlushed, 3);
  device.flush(10, 0);
  assert.equal(device.counters.linesFlushed, 3);
  device.flush(10, 200); // lines 0..3
  assert.equal(device.counters.linesFlushed, 7);
  device.fence();
  device.persist(BLOCK - 64, 64);
  device.write(5, new Uint8Array(10));
  device.fill(100, 100, 7);
  assert.deepEqual(device.counters.snapshot(), { linesFlushed: 8, fences: 2, bytesWritten: 110 });
  assert.deepEqual(device.events, { stores: 2, flushes: 5, fences: 2 });
  device.counters.reset();
  assert.deepEqual(device.counters.snapshot(), { linesFlushed: 0, fences: 0, bytesWritten: 0 });
});

test('resize grows only; new bytes are zero and durable; undecided units stay', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.write(0, u64(1n));
  device.resize(3 * BLOCK);
  assert.equal(device.sizeBytes, 3 * BLOCK);
  assert.deepEqual(device.read(BLOCK, 2 * BLOCK), new Uint8Array(2 * BLOCK));
  assert.equal(device.undecidedUnits(), 1);
  const images = imagesOf(device);
  assert.equal(images.length, 2);
  for (const image of images) assert.deepEqual(image.subarray(BLOCK), new Uint8Array(2 * BLOCK));
  device.write(2 * BLOCK, u64(2n)); // the new space is usable
  device.persist(0, 3 * BLOCK);
  assert.equal(device.undecidedUnits(), 0);
  assert.throws(() => device.resize(BLOCK), isCode('INVALID'));
  assert.throws(() => device.resize(3 * BLOCK + 1), isCode('INVALID'));
});

test('close: later use throws CLOSED; close is idempotent', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  device.close();
  device.close();
  const uses: Array<() => unknown> = [
    () => device.read(0, 1),
    () => device.view(0, 1),
    () => device.write(0, new Uint8Array(1)),
    () => device.fill(0, 1),
    () => device.flush(0, 1),
    () => device.fence(),
    () => device.persist(0, 1),
    () => device.resize(2 * BLOCK),
    () => device.crashImages(),
    () => device.crashImageCount(),
    () => device.undecidedUnits(),
    () => device.onFence(null),
  ];
  for (const use of uses) assert.throws(use, isCode('CLOSED'), use.toString());
});

test('bad ranges throw RangeError naming the call', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  assert.throws(() => device.read(BLOCK - 4, 8), /read: range/);
  assert.throws(() => device.write(-1, new Uint8Array(1)), RangeError);
  assert.throws(() => device.flush(Number.NaN, 1), RangeError);
  assert.throws(() => device.fill(0, 1, 256), /fill: value/);
  assert.throws(() => device.view(BLOCK - 8, 16), RangeError);
});

test('view is a zero-copy view of the visible state; read is a copy', () => {
  const device = new SimDevice({ sizeBytes: 2 * BLOCK });
  device.write(100, u64(42n));
  const view = device.view(96, 16);
  const copy = device.read(96, 16);
  assert.deepEqual(view, copy);
  device.fill(100, 8, 0);
  assert.equal(u64At(view, 4), 0n, 'the view sees the later store');
  assert.equal(u64At(copy, 4), 42n, 'the copy does not');
  assert.equal(device.view(0, 2 * BLOCK).length, 2 * BLOCK, 'whole aligned blocks may cross');
  assert.throws(() => device.view(BLOCK - 8, 16), /crosses a 4 KiB block/);
});

test('onFence runs before each fence takes effect and is not re-entered', () => {
  const device = new SimDevice({ sizeBytes: BLOCK });
  const seen: number[] = [];
  device.onFence((d) => {
    seen.push(d.crashImageCount());
    d.persist(512, 8); // a fence inside the hook must not call the hook again
  });
  device.write(0, u64(1n));
  device.persist(0, 8);
  assert.deepEqual(seen, [2]);
  assert.equal(device.undecidedUnits(), 0);
  assert.equal(device.counters.fences, 2);
  device.onFence(null);
  device.fence();
  assert.deepEqual(seen, [2]);
});

test('a known-good writer passes in every image at every fence point', (t) => {
  const device = new SimDevice({ sizeBytes: WRITER_DEVICE_BYTES });
  const result = crashCheck(device, goodWriter, checkFlagImage);
  assert.equal(result.failures, 0, result.firstFailure ?? '');
  assert.equal(result.checkPoints, 3, 'two fences and the final state');
  assert.deepEqual(result.imagesPerPoint, [66, 2, 1], '32 data units sampled; the flag alone; decided');
  assert.deepEqual(device.counters.snapshot(), { linesFlushed: 5, fences: 2, bytesWritten: 264 });
  t.diagnostic(`good writer: ${result.images} images over ${result.checkPoints} check points ${JSON.stringify(result.imagesPerPoint)}`);
  t.diagnostic(`good writer: ${device.counters.linesFlushed} lines flushed, ${device.counters.fences} fences`);
});

test('known-bad writers are caught', (t) => {
  for (const writer of [badWriterOneFence, badWriterUnflushedData]) {
    const device = new SimDevice({ sizeBytes: WRITER_DEVICE_BYTES });
    const result = crashCheck(device, writer, checkFlagImage);
    assert.ok(result.failures > 0, `${writer.name} must be caught`);
    t.diagnostic(
      `${writer.name}: caught in ${result.failures} of ${result.images} images ${JSON.stringify(result.imagesPerPoint)}; first: ${result.firstFailure}`,
    );
  }
});

test('randomized: the model agrees with a naive oracle and replays from its seed', (t) => {
  t.diagnostic(`seed ${SEED} (replay: SIM_SEED=${SEED})`);
  const first = runOracle(SEED);
  const again = runOracle(SEED);
  assert.deepEqual(again, first, 'the same seed replays the same images');
  t.diagnostic(`seed ${SEED}: ${first.images} images over ${first.fences} fences, digest ${first.hash.toString(16)}`);
  for (const seed of [1, 2, 3]) runOracle(seed);
});
