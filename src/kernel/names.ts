// Validation of what users name and size: the system-call layer of the kernel. Mechanism
// code below it trusts these checks and does not repeat them.

import { NAME_BYTES_MAX, REGION_BYTES_MAX } from '../constants.js';
import { RegionError } from '../errors.js';

export function checkName(name: unknown, what = 'region name'): string {
  if (typeof name !== 'string') throw new RegionError('INVALID', `${what} must be a string, got ${typeof name}`);
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0) throw new RegionError('INVALID', `${what} is empty`);
  if (bytes.length > NAME_BYTES_MAX) throw new RegionError('INVALID', `${what} is ${bytes.length} bytes of UTF-8; the limit is ${NAME_BYTES_MAX}`);
  if (name.includes('\0')) throw new RegionError('INVALID', `${what} contains a NUL character`);
  if (new TextDecoder().decode(bytes) !== name) throw new RegionError('INVALID', `${what} is not valid Unicode (lone surrogate)`);
  return name;
}

/**
 * A name for a new region (create, or the target of a rename): checkName, and none of what
 * makes a name a trap in a path or a terminal: no '/', not '.' or '..', no control character.
 * Names made before this rule still open, rename and remove (checkName alone).
 */
export function checkNewName(name: unknown, what = 'region name'): string {
  const checked = checkName(name, what);
  if (checked === '.' || checked === '..') throw new RegionError('INVALID', `${what} "${checked}" is reserved`);
  if (checked.includes('/')) throw new RegionError('INVALID', `${what} ${JSON.stringify(checked)} contains "/"`);
  const control = /[\u0000-\u001f\u007f-\u009f]/.exec(checked)?.[0];
  if (control !== undefined) {
    const code = `U+${control.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    throw new RegionError('INVALID', `${what} ${JSON.stringify(checked)} contains the control character ${code}`);
  }
  return checked;
}

export function checkRegionSize(sizeBytes: number, capacityBytes: number): number {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1) throw new RegionError('INVALID', `region size ${sizeBytes} is not a positive whole number of bytes`);
  const limit = Math.min(capacityBytes, REGION_BYTES_MAX);
  if (sizeBytes > limit) throw new RegionError('INVALID', `region size ${sizeBytes} exceeds the pool's capacity of ${limit} bytes; grow the pool first`);
  return sizeBytes;
}

export function checkMode(mode: unknown): number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RegionError('INVALID', `mode ${String(mode)} is not a permission mask between 0 and 0o777`);
  }
  return mode;
}
