// A small deterministic PRNG for the simulator (mulberry32: 32 bits of state, full period
// 2^32). Not cryptographic; chosen because a crash failure must be a seed: the same seed
// gives the same sequence on every machine and Node version (only 32-bit integer math).

import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';

const U32_LIMIT = 0x1_0000_0000;

/** Throws INVALID unless `seed` is an integer in [0, 2^32). */
export function checkSeed(seed: number, what: string): void {
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= U32_LIMIT) {
    throw new RegionError('INVALID', `${what}: seed ${seed} is not an integer in [0, 2^32); pass the seed a failed run printed`);
  }
}

export class SimPrng {
  #state: number;

  /** `seed`: an integer in [0, 2^32). */
  constructor(seed: number) {
    checkSeed(seed, 'SimPrng');
    this.#state = seed | 0;
  }

  /** The next value, uniform in [0, 2^32). */
  nextU32(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A value in [0, limit); `limit` in [1, 2^32]. The bias (< limit / 2^32) does not matter here. */
  nextBelow(limit: number): number {
    assert(Number.isSafeInteger(limit) && limit >= 1 && limit <= U32_LIMIT, 'nextBelow limit in [1, 2^32]');
    const value = Math.floor((this.nextU32() / U32_LIMIT) * limit);
    assert(value < limit, 'nextBelow result below limit');
    return value;
  }

  /** True with probability `numerator / denominator`. */
  chance(numerator: number, denominator: number): boolean {
    assert(numerator >= 0 && numerator <= denominator, 'chance is a probability');
    return this.nextBelow(denominator) < numerator;
  }
}
