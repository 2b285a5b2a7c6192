// Option objects are checked strictly: a misspelt key (`{ mdoe: 'exclusive' }`) would
// otherwise be ignored and its default silently used, so it is INVALID, naming the key and
// the closest valid one.

import { closest, distance } from 'fastest-levenshtein';
import { RegionError } from '../errors.js';

/** Throws INVALID unless `options` is undefined or an object whose keys are all in `allowed`. */
export function checkOptions(options: unknown, allowed: readonly string[], what: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new RegionError('INVALID', `${what} must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const near = nearest(key, allowed);
    const hint = near === null ? '' : `; did you mean '${near}'?`;
    throw new RegionError('INVALID', `${what}: unknown option '${key}'${hint} (valid: ${allowed.join(', ')})`);
  }
}

/** The allowed key nearest to `key`, if it is near enough to be a typo. */
function nearest(key: string, allowed: readonly string[]): string | null {
  const best = closest(key, [...allowed]);
  return distance(key, best) <= Math.max(2, Math.floor(best.length / 2)) ? best : null;
}
