// RegionLevel's iterators. A Cursor reads the map in chunks, each one consistent read of
// PMap.range, and never holds a position inside the B+tree across an await: between two reads
// the map may change (this process or another writes), so each read starts afresh just past
// the last key returned. A single next() reads ahead up to highWaterMarkBytes (as
// classic-level does); nextv(size) and all() read what they ask for in one read, so all()
// sees one state of the map. No snapshot spans two reads (supports.implicitSnapshots false).

import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
import { KeyRange, type RangeOptions } from './key_range.js';

/** A key and its value as stored: raw bytes. */
export type Entry = [key: Uint8Array, value: Uint8Array];

/** What the database gives a cursor: one consistent read of a range. */
export interface RangeReader {
  readRange(range: KeyRange, reverse: boolean, maxEntries: number, maxBytes: number): Entry[];
}

/** The private iterator options abstract-level passes (keys of the range already encoded). */
export interface CursorOptions extends RangeOptions {
  reverse: boolean;
  keyEncoding?: string;
  valueEncoding?: string;
  highWaterMarkBytes?: number;
}

/** How much a single next() reads ahead, as classic-level's default. */
const DEFAULT_HIGH_WATER_MARK_BYTES = 16 * 1024;

/** Bytes in the form abstract-level asked for: a Buffer for 'buffer', a Uint8Array for 'view'. */
export function asFormat(bytes: Uint8Array, format: string | undefined): Uint8Array {
  if (format !== 'buffer' || Buffer.isBuffer(bytes)) return bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A position in a range of the map, read in chunks. */
class Cursor {
  readonly #reader: RangeReader;
  readonly #whole: KeyRange;
  readonly #reverse: boolean;
  readonly #highWaterMarkBytes: number;
  #rest: KeyRange;
  #done = false;
  #buffer: Entry[] = [];
  #position = 0;

  constructor(reader: RangeReader, options: CursorOptions) {
    this.#reader = reader;
    this.#whole = KeyRange.of(options);
    this.#rest = this.#whole;
    this.#reverse = options.reverse;
    const mark = options.highWaterMarkBytes;
    this.#highWaterMarkBytes = typeof mark === 'number' && mark >= 0 ? mark : DEFAULT_HIGH_WATER_MARK_BYTES;
  }

  /** Up to `wanted` entries (fewer only at the end); `remaining` is what the limit still allows. */
  read(wanted: number, remaining: number): Entry[] {
    const out: Entry[] = [];
    while (out.length < wanted) {
      if (this.#position === this.#buffer.length) {
        if (this.#done) break;
        const need = Math.min(wanted - out.length, remaining - out.length);
        if (need <= 0) break;
        if (need === 1) this.#fill(remaining - out.length, this.#highWaterMarkBytes);
        else this.#fill(need, Infinity);
        continue;
      }
      out.push(this.#buffer[this.#position++] as Entry);
    }
    return out;
  }

  /** The next entry (reading ahead up to the high-water mark), or undefined at the end. */
  next(remaining: number): Entry | undefined {
    if (this.#position === this.#buffer.length) {
      if (this.#done || remaining <= 0) return undefined;
      this.#fill(remaining, this.#highWaterMarkBytes);
    }
    return this.#buffer[this.#position++];
  }

  /** Moves to the first key at or past target in the iteration's direction; outside the range: to the end. */
  seek(target: Uint8Array): void {
    this.#buffer = [];
    this.#position = 0;
    this.#done = !this.#whole.contains(target);
    this.#rest = this.#reverse ? this.#whole.upTo(target) : this.#whole.from(target);
  }

  #fill(maxEntries: number, maxBytes: number): void {
    this.#buffer = this.#reader.readRange(this.#rest, this.#reverse, maxEntries, maxBytes);
    this.#position = 0;
    const last = this.#buffer.at(-1);
    if (last === undefined) this.#done = true;
    else this.#rest = this.#reverse ? this.#rest.below(last[0]) : this.#rest.above(last[0]);
  }
}

type Db = ConstructorParameters<typeof AbstractIterator>[0];
type Options = CursorOptions & { limit: number };

/** Entries [key, value]. */
export class RegionIterator extends AbstractIterator<Db, Uint8Array, Uint8Array> {
  readonly #cursor: Cursor;
  readonly #keyFormat: string | undefined;
  readonly #valueFormat: string | undefined;

  constructor(db: Db, reader: RangeReader, options: Options) {
    super(db, options);
    this.#cursor = new Cursor(reader, options);
    this.#keyFormat = options.keyEncoding;
    this.#valueFormat = options.valueEncoding;
  }

  async _next(): Promise<Entry | undefined> {
    const entry = this.#cursor.next(this.limit - this.count);
    if (entry === undefined) return undefined;
    return [asFormat(entry[0], this.#keyFormat), asFormat(entry[1], this.#valueFormat)];
  }

  async _nextv(size: number): Promise<Entry[]> {
    return this.#read(size);
  }

  async _all(): Promise<Entry[]> {
    return this.#read(Infinity);
  }

  _seek(target: Uint8Array): void {
    this.#cursor.seek(target);
  }

  #read(wanted: number): Entry[] {
    return this.#cursor.read(wanted, this.limit - this.count)
      .map(([k, v]) => [asFormat(k, this.#keyFormat), asFormat(v, this.#valueFormat)]);
  }
}

/**
 * One side of each entry (0 the key, 1 the value) in the format abstract-level asked for:
 * the body the key and value iterators share (they extend different base classes).
 */
class SideCursor {
  readonly #cursor: Cursor;

  constructor(
    reader: RangeReader,
    options: CursorOptions,
    readonly side: 0 | 1,
    readonly format: string | undefined,
  ) {
    this.#cursor = new Cursor(reader, options);
  }

  next(remaining: number): Uint8Array | undefined {
    const entry = this.#cursor.next(remaining);
    return entry === undefined ? undefined : asFormat(entry[this.side], this.format);
  }

  read(wanted: number, remaining: number): Uint8Array[] {
    return this.#cursor.read(wanted, remaining).map((entry) => asFormat(entry[this.side], this.format));
  }

  seek(target: Uint8Array): void {
    this.#cursor.seek(target);
  }
}

/** Keys only. */
export class RegionKeyIterator extends AbstractKeyIterator<Db, Uint8Array> {
  readonly #side: SideCursor;

  constructor(db: Db, reader: RangeReader, options: Options) {
    super(db, options);
    this.#side = new SideCursor(reader, options, 0, options.keyEncoding);
  }

  async _next(): Promise<Uint8Array | undefined> {
    return this.#side.next(this.limit - this.count);
  }

  async _nextv(size: number): Promise<Uint8Array[]> {
    return this.#side.read(size, this.limit - this.count);
  }

  async _all(): Promise<Uint8Array[]> {
    return this.#side.read(Infinity, this.limit - this.count);
  }

  _seek(target: Uint8Array): void {
    this.#side.seek(target);
  }
}

/** Values only. */
export class RegionValueIterator extends AbstractValueIterator<Db, Uint8Array, Uint8Array> {
  readonly #side: SideCursor;

  constructor(db: Db, reader: RangeReader, options: Options) {
    super(db, options);
    this.#side = new SideCursor(reader, options, 1, options.valueEncoding);
  }

  async _next(): Promise<Uint8Array | undefined> {
    return this.#side.next(this.limit - this.count);
  }

  async _nextv(size: number): Promise<Uint8Array[]> {
    return this.#side.read(size, this.limit - this.count);
  }

  async _all(): Promise<Uint8Array[]> {
    return this.#side.read(Infinity, this.limit - this.count);
  }

  _seek(target: Uint8Array): void {
    this.#side.seek(target);
  }
}
