// Sizes as users write them: 4096, '64KiB', '64MiB', '1GiB', '1G', '512k'. K/M/G/T are binary.

import { RegionError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/**
 * Bytes from a size: a non-negative integer, or a string such as '4096', '64KiB', '64MiB',
 * '1GiB' or '1G' (K, M, G, T are binary). Throws RegionError INVALID naming `what`.
 */
export function parseSize(spec: number | string, what = 'size'): number {
  if (typeof spec === 'number') {
    if (!Number.isSafeInteger(spec) || spec < 0) throw new RegionError('INVALID', `${what} ${spec} is not a whole number of bytes`);
    return spec;
  }
  if (typeof spec !== 'string') throw new RegionError('INVALID', `${what} must be a number or a string like '64MiB'`);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$/i.exec(spec);
  if (!match) throw new RegionError('INVALID', `${what} "${spec}" is not a size (examples: 4096, 64KiB, 64MiB, 1GiB, 1G)`);
  const unit = UNITS[(match[2] ?? '').toLowerCase()] ?? 1;
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new RegionError('INVALID', `${what} "${spec}" is not a whole number of bytes`);
  return bytes;
}

/**
 * A byte count for people, in the largest unit it reaches: '64 KiB', '63.5 MiB', '1.5 GiB'. Never
 * rounded into one that reads as exact: 4097 is '4.001 KiB', and where three decimals cannot
 * tell, the bytes themselves ('3145735 B').
 */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let unit = 0;
  while (unit < units.length - 1 && bytes >= 1024 ** (unit + 1)) unit++;
  const value = bytes / 1024 ** unit;
  if (Number.isInteger(value)) return `${value} ${units[unit]}`;
  // Never round a size into one that reads as exact (4097 bytes is not "4.0 KiB").
  for (const digits of [1, 2, 3]) {
    const shown = value.toFixed(digits);
    if (!/\.0+$/.test(shown)) return `${shown} ${units[unit]}`;
  }
  return `${bytes} B`;
}
