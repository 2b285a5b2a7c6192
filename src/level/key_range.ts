// A range of encoded keys as abstract-level gives it (gt, gte, lt, lte), and its translation
// to PMap.range's inclusive start and exclusive end. Keys are byte strings in lexicographic
// order (a prefix first), so the key right after k is k followed by one zero byte: gt k is
// start k+00 and lte k is end k+00, exactly, with no key skipped or added.

/** One end of a range. */
export interface Bound {
  readonly key: Uint8Array;
  readonly inclusive: boolean;
}

/** The range options of abstract-level's private API, keys already encoded to bytes. */
export interface RangeOptions {
  gt?: Uint8Array;
  gte?: Uint8Array;
  lt?: Uint8Array;
  lte?: Uint8Array;
}

/** What PMap.range takes: start inclusive, end exclusive, either open. */
export interface MapRange {
  start?: Uint8Array;
  end?: Uint8Array;
}

/** Lexicographic order of byte strings, a prefix before its extensions. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** The smallest key greater than `key`: key followed by 0x00. */
function successor(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.byteLength + 1);
  next.set(key);
  return next;
}

/** An immutable range of keys: lower and upper bound, each open (null), inclusive or exclusive. */
export class KeyRange {
  constructor(readonly lower: Bound | null, readonly upper: Bound | null) {}

  /** The range of abstract-level's options (gte wins over gt and lte over lt, as in abstract-level). */
  static of(options: RangeOptions): KeyRange {
    const lower = options.gte !== undefined ? { key: options.gte, inclusive: true }
      : options.gt !== undefined ? { key: options.gt, inclusive: false } : null;
    const upper = options.lte !== undefined ? { key: options.lte, inclusive: true }
      : options.lt !== undefined ? { key: options.lt, inclusive: false } : null;
    return new KeyRange(lower, upper);
  }

  /** True if key lies in the range. */
  contains(key: Uint8Array): boolean {
    if (this.lower !== null) {
      const c = compareKeys(key, this.lower.key);
      if (c < 0 || (c === 0 && !this.lower.inclusive)) return false;
    }
    if (this.upper !== null) {
      const c = compareKeys(key, this.upper.key);
      if (c > 0 || (c === 0 && !this.upper.inclusive)) return false;
    }
    return true;
  }

  /** The part of the range above key (forward iteration went past it). */
  above(key: Uint8Array): KeyRange {
    return new KeyRange({ key, inclusive: false }, this.upper);
  }

  /** The part of the range below key (reverse iteration went past it). */
  below(key: Uint8Array): KeyRange {
    return new KeyRange(this.lower, { key, inclusive: false });
  }

  /** The range from key (inclusive) up: a forward seek to a key in range. */
  from(key: Uint8Array): KeyRange {
    return new KeyRange({ key, inclusive: true }, this.upper);
  }

  /** The range up to key (inclusive): a reverse seek to a key in range. */
  upTo(key: Uint8Array): KeyRange {
    return new KeyRange(this.lower, { key, inclusive: true });
  }

  /** PMap.range's bounds, or null if the range is empty. */
  toMapRange(): MapRange | null {
    const range: MapRange = {};
    if (this.lower !== null) range.start = this.lower.inclusive ? this.lower.key : successor(this.lower.key);
    if (this.upper !== null) range.end = this.upper.inclusive ? successor(this.upper.key) : this.upper.key;
    if (range.start !== undefined && range.end !== undefined && compareKeys(range.start, range.end) >= 0) return null;
    return range;
  }
}
