// Little-endian field access for on-PM structures. u64 fields are read as doubles and must be
// below 2^53 (block numbers, sizes, offsets, epochs all are); anything larger is corruption.

export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads a u64 that must be exact as a double; returns -1 if it is not (caller reports corruption). */
export function readU64(view: DataView, offset: number): number {
  const lo = view.getUint32(offset, true);
  const hi = view.getUint32(offset + 4, true);
  if (hi >= 0x200000) return -1;
  return hi * 0x1_0000_0000 + lo;
}

export function writeU64(view: DataView, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 field value ${value} is not a safe non-negative integer`);
  view.setUint32(offset, value % 0x1_0000_0000, true);
  view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}

export function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
