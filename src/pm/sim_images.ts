// Crash-image generation for SimDevice: given the durable base image (every unit at its
// oldest candidate) and the candidate lists of the undecided units, produce full device
// images, either every combination (mixed-radix odometer) or the two extremes plus seeded
// random combinations. Pure functions over a snapshot, so a caller may keep using the device
// while it iterates.

import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';
import { ATOMIC_UNIT_BYTES } from './device.js';
import { SimPrng, checkSeed } from './sim_prng.js';

/** Options of SimDevice.crashImages and SimDevice.crashImageCount. */
export interface CrashImageOptions {
  /** Enumerate every combination only while at most this many units are undecided. Default 16. */
  unitsMax?: number;
  /** Random combinations yielded (after the two extremes) when not enumerating. Default 64. */
  samples?: number;
  /** Seed of the sampling PRNG, an integer in [0, 2^32). Default 1. */
  seed?: number;
  /** Enumerate only while the number of combinations is at most this. Default 65536. */
  imagesMax?: number;
}

/** One undecided unit of a snapshot: its index and candidate values, oldest first. */
export interface UnitCandidates {
  readonly unit: number;
  readonly candidates: readonly bigint[];
}

export interface ImagePlan {
  readonly exhaustive: boolean;
  /** How many images the plan yields. */
  readonly count: number;
  readonly samples: number;
  readonly seed: number;
}

export const UNITS_MAX_DEFAULT = 16;
export const SAMPLES_DEFAULT = 64;
export const SEED_DEFAULT = 1;
export const IMAGES_MAX_DEFAULT = 65_536;

function checkCount(value: number, what: string, minimum: number): void {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new RegionError('INVALID', `crashImages: ${what} ${value} is not an integer >= ${minimum}`);
  }
}

/** Validates the options and decides between enumeration and sampling. */
export function planImages(candidateCounts: readonly number[], options: CrashImageOptions): ImagePlan {
  const unitsMax = options.unitsMax ?? UNITS_MAX_DEFAULT;
  const samples = options.samples ?? SAMPLES_DEFAULT;
  const seed = options.seed ?? SEED_DEFAULT;
  const imagesMax = options.imagesMax ?? IMAGES_MAX_DEFAULT;
  checkCount(unitsMax, 'unitsMax', 0);
  checkCount(samples, 'samples', 0);
  checkCount(imagesMax, 'imagesMax', 1);
  checkSeed(seed, 'crashImages');
  if (candidateCounts.length <= unitsMax) {
    // The product is computed with an early exit so it never leaves the safe-integer range.
    let product = 1;
    for (const count of candidateCounts) {
      assert(count >= 2, 'an undecided unit has at least two candidates');
      product *= count;
      if (product > imagesMax) break;
    }
    if (product <= imagesMax) return { exhaustive: true, count: product, samples, seed };
  }
  return { exhaustive: false, count: 2 + samples, samples, seed };
}

/** A fresh image: `base` with each unit set to candidates[choice]. */
function composeImage(base: Uint8Array, units: readonly UnitCandidates[], choice: readonly number[]): Uint8Array {
  const image = base.slice();
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  for (let i = 0; i < units.length; i++) {
    const index = choice[i] ?? 0;
    if (index === 0) continue; // the base already holds every unit's oldest candidate
    const value = units[i]?.candidates[index];
    assert(value !== undefined, 'choice indexes an existing candidate');
    view.setBigUint64((units[i]?.unit ?? 0) * ATOMIC_UNIT_BYTES, value, true);
  }
  return image;
}

/** Every combination of candidates, the first unit varying fastest. */
export function* enumerateImages(base: Uint8Array, units: readonly UnitCandidates[]): Generator<Uint8Array, void, undefined> {
  const choice = new Array<number>(units.length).fill(0);
  for (;;) {
    yield composeImage(base, units, choice);
    let digit = 0;
    for (; digit < units.length; digit++) {
      const next = (choice[digit] ?? 0) + 1;
      if (next < (units[digit]?.candidates.length ?? 0)) {
        choice[digit] = next;
        break;
      }
      choice[digit] = 0;
    }
    if (digit === units.length) return;
  }
}

/** The oldest extreme, the newest extreme, then `samples` seeded random combinations of varying density. */
export function* sampleImages(
  base: Uint8Array,
  units: readonly UnitCandidates[],
  samples: number,
  seed: number,
): Generator<Uint8Array, void, undefined> {
  yield composeImage(base, units, new Array<number>(units.length).fill(0));
  yield composeImage(
    base,
    units,
    units.map((u) => u.candidates.length - 1),
  );
  // Each sample draws its own density: the share of units that reached their newest value.
  // Uniform per-unit choices would almost never leave a few units old among many new ones,
  // which is the image an ordering bug shows (a commit mark durable, one data word not).
  const prng = new SimPrng(seed);
  for (let sample = 0; sample < samples; sample++) {
    const newestPer1024 = prng.nextBelow(1025);
    yield composeImage(
      base,
      units,
      units.map((u) => {
        const newest = u.candidates.length - 1;
        if (prng.nextBelow(1024) < newestPer1024) return newest;
        return prng.nextBelow(newest);
      }),
    );
  }
}
