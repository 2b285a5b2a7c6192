// The keys of a PMap as bytes whose byte order (memcmp) is the map's order, so the tree
// compares keys with one native Buffer.compare and never decodes them on the way down.
//
//   number      0x10, then the float64 big-endian with the sign bit flipped (positive) or
//               every bit flipped (negative): -Infinity < ... < -0 = 0 < ... < Infinity
//   string      0x20, then its UTF-8 bytes: code-point order (not JavaScript's UTF-16 `<`)
//   Uint8Array  0x30, then the bytes: unsigned lexicographic, a prefix before a longer key
//
// So every number comes before every string, and every string before every byte key. NaN
// and strings with lone surrogates (UTF-8 cannot hold them: two keys would become one) are
// refused with INVALID.

import { RegionError } from '../errors.js';

/** A PMap key. */
export type PMapKey = string | number | Uint8Array;

/** Longest encoded key (tag byte included). */
export const KEY_BYTES_MAX = 4096;

const TAG_NUMBER = 0x10;
const TAG_STRING = 0x20;
const TAG_BYTES = 0x30;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const numberScratch = new DataView(new ArrayBuffer(8));

/**
 * Encodes keys into one reused scratch buffer (the hot path allocates nothing); the result
 * is valid until the next encode of the same codec.
 */
export class KeyCodec {
  private scratch = Buffer.alloc(256);

  /** The encoded key: a view of the scratch buffer, valid until the next call. */
  encode(key: PMapKey, what = 'key'): Buffer {
    if (typeof key === 'string') return this.encodeString(key, what);
    if (typeof key === 'number') {
      const out = this.room(9);
      out[0] = TAG_NUMBER;
      writeOrderedNumber(out, 1, key, what);
      return out.subarray(0, 9);
    }
    if (key instanceof Uint8Array) {
      if (key.length + 1 > KEY_BYTES_MAX) throw tooLong(what, key.length + 1);
      const out = this.room(key.length + 1);
      out[0] = TAG_BYTES;
      out.set(key, 1);
      return out.subarray(0, key.length + 1);
    }
    throw new RegionError('INVALID', `${what} must be a string, a number or a Uint8Array, got ${describe(key)}`);
  }

  /** The encoded key, copied (survives later encodes). */
  encodeCopy(key: PMapKey, what = 'key'): Buffer {
    return Buffer.from(this.encode(key, what));
  }

  private encodeString(key: string, what: string): Buffer {
    if (!(key as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      throw new RegionError('INVALID', `${what} is a string with a lone surrogate, which UTF-8 cannot hold`);
    }
    const out = this.room(key.length * 3 + 1);
    out[0] = TAG_STRING;
    const { written } = encoder.encodeInto(key, out.subarray(1));
    if (written + 1 > KEY_BYTES_MAX) throw tooLong(what, written + 1);
    return out.subarray(0, written + 1);
  }

  private room(bytes: number): Buffer {
    if (this.scratch.length < bytes) this.scratch = Buffer.alloc(Math.max(bytes, this.scratch.length * 2));
    return this.scratch;
  }
}

/** The key an encoding stands for. Throws CORRUPT for bytes no key encodes to. */
export function decodeKey(bytes: Uint8Array): PMapKey {
  const tag = bytes[0];
  const body = bytes.subarray(1);
  if (tag === TAG_STRING) {
    try {
      return decoder.decode(body);
    } catch {
      throw new RegionError('CORRUPT', 'a stored string key is not valid UTF-8');
    }
  }
  if (tag === TAG_BYTES) return Uint8Array.from(body);
  if (tag === TAG_NUMBER && body.length === 8) return readOrderedNumber(body);
  throw new RegionError('CORRUPT', `a stored key has tag ${tag} and ${body.length} bytes: no key encodes to that`);
}

function writeOrderedNumber(out: Uint8Array, at: number, value: number, what: string): void {
  if (Number.isNaN(value)) throw new RegionError('INVALID', `${what} is NaN, which has no place in the order`);
  numberScratch.setFloat64(0, value === 0 ? 0 : value); // -0 is 0
  const negative = (numberScratch.getUint8(0) & 0x80) !== 0;
  for (let i = 0; i < 8; i++) {
    const byte = numberScratch.getUint8(i);
    out[at + i] = negative ? ~byte & 0xff : i === 0 ? byte | 0x80 : byte;
  }
}

function readOrderedNumber(body: Uint8Array): number {
  const negative = ((body[0] ?? 0) & 0x80) === 0;
  for (let i = 0; i < 8; i++) {
    const byte = body[i] ?? 0;
    numberScratch.setUint8(i, negative ? ~byte & 0xff : i === 0 ? byte & 0x7f : byte);
  }
  return numberScratch.getFloat64(0);
}

function tooLong(what: string, bytes: number): RegionError {
  return new RegionError('INVALID', `${what} is ${bytes} bytes encoded; at most ${KEY_BYTES_MAX}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return typeof value;
}
