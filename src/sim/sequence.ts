// Runs one generated operation sequence directly on a RegionManager over a SparseSimDevice,
// crashing at randomly chosen fences into randomly chosen crash images. Each crash image is
// mounted, checked by fsck (inspectPool) and compared with the reference model: a crash
// during operation k must leave exactly the model after k-1 or after k (atomicity), and a
// crash after k returned exactly the model after k (durability).
//
// pmsync is modelled as RegionManager.commitPages of the dirty pages (partial pages carry
// the rest of their committed bytes, as the working copy does): that is the call a pmsync of
// the full stack ends in. Mapped stores, dirty tracking and the shootdown need the native
// addon and a FileDevice, and are covered by the map and kill tests, not here.

import { RegionError } from '../errors.js';
import { inspectPool } from '../kernel/check.js';
import { RegionManager } from '../kernel/region_manager.js';
import { SimPrng } from '../pm/sim_prng.js';
import { compareWithModel, PoolModel } from './model.js';
import { applicable, applyToKernel, applyToModel, type Op, type Sequence } from './ops.js';
import { SparseSimDevice } from './sparse_device.js';

export const SIM_NOW = 1_700_000_000_000;

export interface CrashPolicy {
  /** Seeds the choice of fences and images (independent of the sequence's own seed). */
  seed: number;
  /** Chance, in 1/1024, that a fence (or the end of an operation) becomes a crash point. */
  per1024: number;
  /** Sampled images per crash point, beyond the two extremes (fewer when fewer exist). */
  images: number;
}

export interface SimFailure {
  /** Index of the operation in progress (or just done) in the sequence run. */
  op: number;
  message: string;
}

export interface SequenceResult {
  opsRun: number;
  crashPoints: number;
  images: number;
  failure: SimFailure | null;
}

/** A crash image taken during or after an operation, checked once the operation's outcome is known. */
interface Pending {
  device: SparseSimDevice;
  /** Taken after the operation returned: only the state after it is allowed. */
  after: boolean;
}

export function runSequence(sequence: Sequence, policy: CrashPolicy): SequenceResult {
  const device = SparseSimDevice.create(sequence.poolBytes);
  RegionManager.format(device, SIM_NOW);
  const kernel = RegionManager.mount(device, 'sim', { checkInvariants: true });
  const prng = new SimPrng(policy.seed >>> 0);
  const result: SequenceResult = { opsRun: 0, crashPoints: 0, images: 0, failure: null };
  let pending: Pending[] = [];
  const crashPoint = (dev: SparseSimDevice, after: boolean): void => {
    if (!prng.chance(policy.per1024, 1024)) return;
    result.crashPoints++;
    const options = { unitsMax: 64, imagesMax: policy.images + 2, samples: policy.images, seed: prng.nextU32() };
    for (const image of dev.crashDevices(options)) pending.push({ device: image, after });
  };
  device.onFence((dev) => crashPoint(dev, false));
  let model = new PoolModel(sequence.poolBytes);
  for (const op of sequence.ops) {
    if (!applicable(op, model)) continue;
    const index = result.opsRun++;
    const failure = (message: string): SequenceResult => ({ ...result, failure: { op: index, message } });
    const before = model;
    let outcome: 'done' | 'refused';
    try {
      outcome = applyToKernel(kernel, before, op, SIM_NOW + index);
    } catch (error) {
      return failure(`the operation threw: ${describeError(error)}`);
    }
    model = outcome === 'done' ? nextModel(before, op) : before;
    crashPoint(device, true);
    for (const { device: image, after } of pending) {
      result.images++;
      const problem = checkImage(image, after || outcome === 'refused' ? [model] : [before, model]);
      if (problem) return failure(`crash image ${after ? 'after' : 'during'} the operation: ${problem}`);
    }
    pending = [];
    const live = compareWithModel(kernel, model);
    if (live) return failure(`the running kernel differs from the model after the operation: ${live}`);
  }
  device.onFence(null);
  const final = checkImage(device.snapshot(), [model]);
  return final ? { ...result, failure: { op: result.opsRun - 1, message: `clean remount: ${final}` } } : result;
}

function nextModel(before: PoolModel, op: Op): PoolModel {
  const next = before.clone();
  applyToModel(next, op);
  return next;
}

/** Mounts one image, runs fsck on it and compares it with the allowed states; null if it is one of them. */
export function checkImage(device: SparseSimDevice, allowed: PoolModel[]): string | null {
  let kernel: RegionManager;
  try {
    kernel = RegionManager.mount(device, 'crash image', { checkInvariants: true });
  } catch (error) {
    return `mount failed: ${describeError(error)}`;
  }
  const report = inspectPool(device, 'crash image', false);
  if (!report.ok) return `fsck: ${report.problems.map((p) => `${p.structure}@${p.offset}: ${p.message}`).join('; ')}`;
  const differences = allowed.map((model) => compareWithModel(kernel, model));
  if (differences.includes(null)) return null;
  const which = allowed.length === 1 ? ['after'] : ['before', 'after'];
  return differences.map((d, i) => `vs ${which[i]}: ${d}`).join('; ');
}

export function describeError(error: unknown): string {
  if (error instanceof RegionError) return `RegionError ${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message} @ ${error.stack?.split('\n')[1]?.trim() ?? '?'}`;
  return String(error);
}

/** Crash at every fence with a few images each: what a shortened sequence is judged by. */
export function thoroughPolicy(seed: number): CrashPolicy {
  return { seed, per1024: 1024, images: 6 };
}

/**
 * Delta debugging (ddmin) over the operations: the shortest sequence found that still fails
 * under `policy` or under the thorough policy. Bounded by `runsMax` runs.
 */
export function shortenSequence(sequence: Sequence, policy: CrashPolicy, runsMax = 300): Sequence {
  let runs = 0;
  const fails = (ops: Op[]): boolean => {
    runs++;
    const candidate = { ...sequence, ops };
    if (runSequence(candidate, policy).failure !== null) return true;
    return runSequence(candidate, thoroughPolicy(policy.seed)).failure !== null;
  };
  let ops = sequence.ops;
  let chunks = 2;
  while (ops.length >= 2 && runs < runsMax) {
    const size = Math.ceil(ops.length / chunks);
    let reduced = false;
    for (let start = 0; start < ops.length && runs < runsMax; start += size) {
      const complement = [...ops.slice(0, start), ...ops.slice(start + size)];
      if (complement.length > 0 && fails(complement)) {
        ops = complement;
        chunks = Math.max(chunks - 1, 2);
        reduced = true;
        break;
      }
    }
    if (reduced) continue;
    if (size === 1) break;
    chunks = Math.min(ops.length, chunks * 2);
  }
  return { ...sequence, ops };
}
