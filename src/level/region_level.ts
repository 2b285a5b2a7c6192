// RegionLevel: an abstract-level database over a PMap of raw bytes in a region of a pool.
// abstract-level encodes keys and values (utf8, json, view, buffer, custom encodings) down to
// bytes; the PMap keeps them in byte order; every write (put, del, batch) is one PMap write,
// durable and atomic when its promise settles. In shared mode any number of processes open
// the same database at once; PMap serializes their writers and keeps readers from seeing
// half an update.

import { AbstractLevel, type AbstractDatabaseOptions } from 'abstract-level';
import { isRegionError, PMap, RegionError, type Pool, type PoolMode, type SizeSpec } from '../index.js';
import { regionExists } from '../collections/heap_region.js';
import { assert } from '../util/assert.js';
import { KeyRange, type RangeOptions } from './key_range.js';
import { acquirePool, releasePool } from './pool_share.js';
import {
  asFormat, RegionIterator, RegionKeyIterator, RegionValueIterator, type CursorOptions, type Entry, type RangeReader,
} from './region_iterator.js';

/** Options of new RegionLevel: where the database lives, and abstract-level's own options. */
export interface RegionLevelOptions<K, V> extends AbstractDatabaseOptions<K, V> {
  /** The database's name: its PMap (and region) in the pool. */
  region: string;
  /** Where the pool's kernel runs, as openPool's mode (default 'shared'). */
  mode?: PoolMode;
  /** Creates the pool with this size when the pool file does not exist (default: the pool must exist). */
  poolSize?: SizeSpec;
  /**
   * Size of the database's region (default PMap's: 64 MiB, sparse), when it is created, or to grow
   * it to when opened (BUSY while another process has it open). Exclusive mode also grows a full
   * region by itself; shared mode cannot while other processes have it open (NO_SPACE).
   */
  regionSize?: SizeSpec;
}

/** What abstract-level hands _batch, encoded. */
interface BatchOperation {
  type: 'put' | 'del';
  key: Uint8Array;
  value?: Uint8Array;
}

interface FormatOptions {
  keyEncoding?: string;
  valueEncoding?: string;
}

type ClearOptions = RangeOptions & { reverse: boolean; limit: number };

/** Keys deleted per PMap batch by clear(): each chunk is atomic, the whole clear need not be. */
const CLEAR_CHUNK = 1024;

const MANIFEST = {
  encodings: { buffer: true, view: true },
  permanence: true, // every write is durable when its promise settles (sync: true or not)
  seek: true,
  has: true,
  getSync: true,
  createIfMissing: true,
  errorIfExists: true,
  implicitSnapshots: false, // an iterator reads the map as it is at each read, see region_iterator.ts
  explicitSnapshots: false,
  signals: { iterators: false }, // every read is synchronous: nothing to abort half way
};

/**
 * An abstract-level database in a region: `new RegionLevel(poolPath, { region, mode,
 * ...abstract-level options })`. Durable, crash-atomic writes and batches; in shared mode open
 * in several processes at once.
 */
export class RegionLevel<K = string, V = string> extends AbstractLevel<Uint8Array, K, V> implements RangeReader {
  /** The pool file. */
  readonly location: string;
  /** The database's name in the pool. */
  readonly region: string;
  readonly #mode: PoolMode;
  readonly #poolSize: SizeSpec | undefined;
  readonly #regionSize: SizeSpec | undefined;
  #pool: Pool | null = null;
  #map: PMap | null = null;

  constructor(location: string, options: RegionLevelOptions<K, V>) {
    if (typeof location !== 'string' || location === '') {
      throw new RegionError('INVALID', 'RegionLevel needs the path of a pool file as its first argument');
    }
    if (typeof options !== 'object' || options === null || typeof options.region !== 'string') {
      throw new RegionError('INVALID', 'RegionLevel needs options with a region name, e.g. { region: \'users\' }');
    }
    const { region, mode, poolSize, regionSize, ...forward } = options;
    super(MANIFEST, forward);
    this.location = location;
    this.region = region;
    this.#mode = mode ?? 'shared';
    this.#poolSize = poolSize;
    this.#regionSize = regionSize;
  }

  async _open(options: { createIfMissing: boolean; errorIfExists: boolean }): Promise<void> {
    const pool = acquirePool(this.location, this.#mode, options.createIfMissing ? this.#poolSize : undefined);
    try {
      this.#map = this.#openMap(pool, options);
      this.#pool = pool;
    } catch (error) {
      releasePool(pool);
      throw error;
    }
  }

  #openMap(pool: Pool, options: { createIfMissing: boolean; errorIfExists: boolean }): PMap {
    if (options.errorIfExists && regionExists(pool, this.region)) {
      throw new RegionError('EXISTS', `database "${this.region}" already exists in pool ${this.location}`);
    }
    try {
      const create = options.createIfMissing;
      return PMap.open(pool, this.region, { create, encoding: 'binary', size: this.#regionSize });
    } catch (error) {
      if (!isRegionError(error, 'NOT_FOUND') || options.createIfMissing) throw error;
      throw new RegionError('NOT_FOUND', `database "${this.region}" does not exist in pool ${this.location} `
        + '(open it with createIfMissing: true to create it)', { cause: error });
    }
  }

  async _close(): Promise<void> {
    const map = this.#map;
    const pool = this.#pool;
    this.#map = null;
    this.#pool = null;
    map?.close();
    if (pool !== null) releasePool(pool);
  }

  get #open(): PMap {
    assert(this.#map !== null, 'abstract-level calls the private API only while the database is open');
    return this.#map;
  }

  async _get(key: Uint8Array, options: FormatOptions): Promise<Uint8Array | undefined> {
    return this._getSync(key, options);
  }

  _getSync(key: Uint8Array, options: FormatOptions): Uint8Array | undefined {
    const value = this.#open.get(key) as Uint8Array | undefined;
    return value === undefined ? undefined : asFormat(value, options.valueEncoding);
  }

  async _getMany(keys: Uint8Array[], options: FormatOptions): Promise<(Uint8Array | undefined)[]> {
    return this.#consistently((map) => keys.map((key) => {
      const value = map.get(key) as Uint8Array | undefined;
      return value === undefined ? undefined : asFormat(value, options.valueEncoding);
    }));
  }

  async _has(key: Uint8Array): Promise<boolean> {
    return this.#open.has(key);
  }

  async _hasMany(keys: Uint8Array[]): Promise<boolean[]> {
    return this.#consistently((map) => keys.map((key) => map.has(key)));
  }

  async _put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.#open.put(key, value);
  }

  async _del(key: Uint8Array): Promise<void> {
    this.#open.delete(key);
  }

  async _batch(operations: BatchOperation[]): Promise<void> {
    const map = this.#open;
    map.batch(() => {
      for (const op of operations) {
        if (op.type === 'put') map.put(op.key, op.value as Uint8Array);
        else map.delete(op.key);
      }
    });
  }

  async _clear(options: ClearOptions): Promise<void> {
    const map = this.#open;
    let range = KeyRange.of(options);
    let remaining = options.limit >= 0 ? options.limit : Infinity;
    while (remaining > 0) {
      const keys = map.batch(() => {
        const chunk = scan(map, range, options.reverse, Math.min(remaining, CLEAR_CHUNK), Infinity).map(([k]) => k);
        for (const key of chunk) map.delete(key);
        return chunk;
      });
      const last = keys.at(-1);
      if (last === undefined) return;
      remaining -= keys.length;
      range = options.reverse ? range.below(last) : range.above(last);
    }
  }

  _iterator(options: CursorOptions & { limit: number }): RegionIterator {
    return new RegionIterator(this, this, options);
  }

  _keys(options: CursorOptions & { limit: number }): RegionKeyIterator {
    return new RegionKeyIterator(this, this, options);
  }

  _values(options: CursorOptions & { limit: number }): RegionValueIterator {
    return new RegionValueIterator(this, this, options);
  }

  /** One consistent read of up to maxEntries entries of range (stopping once maxBytes are read). */
  readRange(range: KeyRange, reverse: boolean, maxEntries: number, maxBytes: number): Entry[] {
    return this.#consistently((map) => scan(map, range, reverse, maxEntries, maxBytes));
  }

  /** fn's reads of the map see one state of it, whatever other processes write meanwhile. */
  #consistently<T>(fn: (map: PMap) => T): T {
    const map = this.#open;
    return map.read(() => fn(map));
  }
}

/** Up to maxEntries entries of range in the map, stopping once maxBytes are read. */
function scan(map: PMap, range: KeyRange, reverse: boolean, maxEntries: number, maxBytes: number): Entry[] {
  const bounds = range.toMapRange();
  if (bounds === null || maxEntries <= 0) return [];
  const limit = Number.isFinite(maxEntries) ? maxEntries : undefined;
  const entries: Entry[] = [];
  let bytes = 0;
  for (const [key, value] of map.range({ ...bounds, reverse, limit })) {
    entries.push([key as Uint8Array, value as Uint8Array]);
    bytes += (key as Uint8Array).byteLength + (value as Uint8Array).byteLength;
    if (bytes >= maxBytes) break;
  }
  return entries;
}
