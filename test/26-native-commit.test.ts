// The native commit (native/commit.c) against the reference every other device runs
// (src/pm/commit_plan.ts executeCommit, whose crash states SimDevice enumerates): on random
// plans, the same bytes and the same lines written back between the same fences; and random
// kernel operation sequences leave a FileDevice pool (native path) byte for byte equal to a
// SimDevice pool (reference path), with equal flush and fence counts. REGIONS_SEED replays.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { addon, type MapHandle } from '../src/arch/addon.js';
import { BLOCK_BYTES } from '../src/constants.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { type CommitPlan, encodeNumbers, executeCommit } from '../src/pm/commit_plan.js';
import { CACHE_LINE_BYTES, type PmDevice } from '../src/pm/device.js';
import { FileDevice } from '../src/pm/file_device.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { SimPrng } from '../src/pm/sim_prng.js';
import { PoolModel } from '../src/sim/model.js';
import { applicable, applyToKernel, applyToModel, generateSequence } from '../src/sim/ops.js';
import { WrappedDevice } from './fixtures/wrapped-device.js';

const seed = Number(process.env['REGIONS_SEED'] ?? 26_026);
const AREA_BLOCKS = 64;
process.env['REGIONS_QUIET'] = '1';

/** A SimDevice that records every line written back, and -1 for each fence. */
class TracingDevice extends WrappedDevice {
  readonly trace: number[] = [];
  override flush(offset: number, length: number): void {
    const first = Math.floor(offset / CACHE_LINE_BYTES);
    const end = Math.ceil((offset + length) / CACHE_LINE_BYTES);
    for (let line = first; line < end; line++) this.trace.push(line);
    this.inner.flush(offset, length);
  }
  override fence(): void {
    this.trace.push(-1);
    this.inner.fence();
  }
}

function nativeCommit(handle: MapHandle, plan: CommitPlan, trace?: Float64Array): number {
  const { numbers, buffers } = encodeNumbers(plan);
  return addon.commit(handle, numbers, buffers, plan.record, plan.wordValues, plan.rangeBytes, trace);
}

/** The lines written back between fences, each stretch as a sorted set. */
function stretches(trace: ArrayLike<number>, length: number): string[] {
  const out: number[][] = [[]];
  for (let i = 0; i < length; i++) {
    const line = trace[i] as number;
    if (line === -1) out.push([]);
    else (out[out.length - 1] as number[]).push(line);
  }
  return out.map((lines) => [...new Set(lines)].sort((a, b) => a - b).join(','));
}

function bytes(prng: SimPrng, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => prng.nextBelow(256));
}

/** A random plan over AREA_BLOCKS blocks, its fresh metadata already stored in both areas. */
function randomPlan(prng: SimPrng, areas: ((offset: number, b: Uint8Array) => void)[]): CommitPlan {
  const blocks = Array.from({ length: AREA_BLOCKS - 2 }, (_, i) => i + 2).sort(() => prng.nextBelow(3) - 1);
  const copies = prng.nextBelow(6);
  // Pages come from two buffers, at any byte offset (a working copy's are page-aligned).
  const buffers = [bytes(prng, (copies + 1) * BLOCK_BYTES), bytes(prng, 2 * BLOCK_BYTES)];
  const copyTriples = blocks.slice(0, copies).flatMap((b) => {
    const buffer = prng.nextBelow(2);
    const from = prng.nextBelow((buffers[buffer] as Uint8Array).length - BLOCK_BYTES + 1);
    return [b * BLOCK_BYTES, buffer, from];
  });
  const flushes: number[] = [];
  for (let i = prng.nextBelow(3); i > 0; i--) {
    const offset = (blocks[copies + i] as number) * BLOCK_BYTES + prng.nextBelow(BLOCK_BYTES / 2);
    const length = 1 + prng.nextBelow(BLOCK_BYTES / 2);
    const stored = bytes(prng, length);
    for (const store of areas) store(offset, stored);
    flushes.push(offset, length);
  }
  const words = prng.nextBelow(40);
  const wordOffsets = Array.from({ length: words }, () => (BLOCK_BYTES * 40 + prng.nextBelow(BLOCK_BYTES * 20)) & ~7);
  const rangeCount = prng.nextBelow(3);
  const rangeOffsets = Array.from({ length: rangeCount }, () => BLOCK_BYTES * 60 + prng.nextBelow(BLOCK_BYTES * 3));
  return {
    copies: copyTriples,
    buffers,
    flushes,
    recordOffset: BLOCK_BYTES + 64,
    record: bytes(prng, 64 + prng.nextBelow(2000)),
    commitOffset: BLOCK_BYTES,
    sequence: 1 + prng.nextBelow(2 ** 31) * 4096,
    wordOffsets,
    wordValues: Uint32Array.from({ length: 2 * words }, () => prng.nextU32()),
    rangeOffsets,
    rangeBytes: rangeOffsets.map(() => bytes(prng, 1 + prng.nextBelow(200))),
  };
}

test('the native commit equals the reference on random plans: bytes, and lines written back between fences', (t) => {
  t.diagnostic(`seed ${seed} (replay: REGIONS_SEED=${seed})`);
  const size = AREA_BLOCKS * BLOCK_BYTES;
  const fd = addon.memfdCreate('commit-test', size);
  const handle = addon.map(fd, 0, size, true, false);
  try {
    const [buffer] = addon.buffers(handle, size);
    const native = new Uint8Array(buffer as ArrayBuffer);
    const prng = new SimPrng(seed);
    for (let round = 0; round < 200; round++) {
      const reference = new TracingDevice(SimDevice.fromImage(native));
      const plan = randomPlan(prng, [(o, b) => native.set(b, o), (o, b) => reference.write(o, b)]);
      const before = reference.counters.linesFlushed;
      executeCommit(reference, plan);
      const trace = new Float64Array(8192);
      const lines = nativeCommit(handle, plan, trace);
      assert.equal(lines, reference.counters.linesFlushed - before, `round ${round}: lines written back`);
      const natively = stretches(trace, lines + 2); // every line once, and the two fences
      const expected = stretches(reference.trace, reference.trace.length);
      assert.deepEqual(natively, expected, `round ${round}: the same lines between the same fences`);
      assert.ok(Buffer.from(native).equals(reference.read(0, size)), `round ${round}: the same bytes`);
    }
  } finally {
    addon.unmap(handle);
    fs.closeSync(fd);
  }
});

test('a plan outside the mapping is refused with nothing written', () => {
  const size = 8 * BLOCK_BYTES;
  const fd = addon.memfdCreate('commit-refuse', size);
  const handle = addon.map(fd, 0, size, true, false);
  try {
    const [buffer] = addon.buffers(handle, size);
    const area = new Uint8Array(buffer as ArrayBuffer);
    const plan: CommitPlan = {
      copies: [BLOCK_BYTES * 2, 0, 0], buffers: [new Uint8Array(BLOCK_BYTES).fill(7)], flushes: [],
      recordOffset: BLOCK_BYTES + 64, record: new Uint8Array(100).fill(9), commitOffset: BLOCK_BYTES, sequence: 5,
      wordOffsets: [size], wordValues: new Uint32Array(2), rangeOffsets: [], rangeBytes: [],
    };
    const call = (p: CommitPlan): number => nativeCommit(handle, p);
    const erange = (e: unknown): boolean => (e as { code?: string }).code === 'ERANGE';
    const einval = (e: unknown): boolean => (e as { code?: string }).code === 'EINVAL';
    assert.throws(() => call(plan), erange);
    assert.throws(() => call({ ...plan, wordOffsets: [16], recordOffset: size - 50 }), erange);
    const { numbers, buffers } = encodeNumbers({ ...plan, wordOffsets: [16] });
    numbers[8 + 2] = 100; // the page would be read past its source
    const raw = (): number => addon.commit(handle, numbers, buffers, plan.record, plan.wordValues, []);
    assert.throws(raw, /reads outside its source/);
    numbers[8 + 2] = 0;
    numbers[0] = 2; // counts that do not match the lists
    assert.throws(raw, einval);
    assert.throws(() => call({ ...plan, wordOffsets: [12] }), /not 8-aligned/);
    assert.ok(area.every((b) => b === 0), 'nothing was written');
  } finally {
    addon.unmap(handle);
    fs.closeSync(fd);
  }
});

test('kernel operation sequences leave a native-commit pool byte for byte equal to the reference', (t) => {
  t.diagnostic(`seed ${seed} (replay: REGIONS_SEED=${seed})`);
  const dir = fs.mkdtempSync('/dev/shm/regions-native-commit-');
  try {
    let sequences = 0;
    for (let s = 0; sequences < 12; s++) {
      const sequence = generateSequence((seed + s * 7919) >>> 0, 30);
      if (sequence.poolBytes > 4 * 1024 * 1024) continue;
      sequences++;
      const reference = new SimDevice({ sizeBytes: sequence.poolBytes });
      RegionManager.format(reference, 1);
      const file = `${dir}/pool-${s}`;
      fs.writeFileSync(file, reference.read(0, reference.sizeBytes));
      reference.counters.reset(); // count from the same start as the file
      const device = new FileDevice(file, { persistence: 'pmem' });
      const kernels = [RegionManager.mount(reference, 'reference'), RegionManager.mount(device, 'native')];
      const model = new PoolModel(sequence.poolBytes);
      for (const [i, op] of sequence.ops.entries()) {
        if (!applicable(op, model) || (op.kind === 'grow' && op.sizeBytes > 64 * 1024 * 1024)) continue;
        const outcomes = kernels.map((k) => applyToKernel(k, model, op, 1 + i));
        assert.equal(outcomes[0], outcomes[1], `sequence ${s} op ${i}`);
        if (outcomes[0] === 'done') applyToModel(model, op);
      }
      assert.equal(device.sizeBytes, reference.sizeBytes);
      const same = Buffer.from(device.read(0, device.sizeBytes)).equals(reference.read(0, reference.sizeBytes));
      assert.ok(same, `sequence ${s}: the same pool`);
      const counts = (d: PmDevice): number[] => [d.counters.linesFlushed, d.counters.fences];
      assert.deepEqual(counts(device), counts(reference), `sequence ${s}: counts`);
      device.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
