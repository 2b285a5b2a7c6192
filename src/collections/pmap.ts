// PMap: an ordered map in a region: a B+tree (btree.ts) in a Heap (heap.ts), one region per
// map. Each put or delete is one pmsync; a batch is one pmsync for all its updates, and a
// batch that throws is put back, so after any crash the map holds exactly its committed
// updates. Exclusive mode (map_access.ts) and shared mode (shared_access.ts) differ only in
// how writes are serialized and put back and how reads validate.
//
// The map's meta block is the heap's root object: +0 magic "PMAP", +4 layout version (1),
// +8 value encoding (1 v8, 2 binary), +12 tree root, +16 tree height, +20 entry count.

import path from 'node:path';
import v8 from 'node:v8';
import type { Pool } from '../api.js';
import { RegionError } from '../errors.js';
import { checkOptions } from '../util/options.js';
import { BTree } from './btree.js';
import { checkTree } from './btree_check.js';
import { collectRange, type RangeBounds } from './btree_cursor.js';
import { Heap, type HeapReport } from './heap.js';
import { HeapRegion } from './heap_region.js';
import { decodeKey, KeyCodec, type PMapKey } from './key_codec.js';
import { ExclusiveAccess, type MapAccess } from './map_access.js';
import { SharedAccess } from './shared_access.js';

export type { PMapKey } from './key_codec.js';

/** How a PMap stores values: v8 serialization (any structured-clonable value) or raw bytes. */
export type PMapEncoding = 'v8' | 'binary';

/** Options of PMap.open. */
export interface PMapOpenOptions {
  /** Create the region (and the map) if missing (default false). */
  create?: boolean;
  /** Value encoding of a new map (default 'v8'); an existing map must match if given. */
  encoding?: PMapEncoding;
  /** Size of a region created now (default 64 MiB, sparse; exclusive mode grows it when full). */
  size?: number | string;
}

/** Options of PMap.range: keys k with start <= k < end, in order or reversed. */
export interface PMapRangeOptions {
  start?: PMapKey;
  end?: PMapKey;
  reverse?: boolean;
  limit?: number;
}

/** What PMap.check found. */
export interface PMapReport {
  ok: boolean;
  /** Tree problems (order, links, counts) then the heap's (see HeapReport). */
  problems: string[];
  /** Blocks allocated but referenced by nothing in the map. */
  leaks: number[];
  entries: number;
  heap: HeapReport;
}

const MAGIC = 0x50414d50; // "PMAP"
const LAYOUT_VERSION = 1;
const ENCODING_CODE = { v8: 1, binary: 2 } as const;
const META_BYTES = 24;
/** Entries a range reads per validated step. */
const RANGE_CHUNK = 128;

/** Maps open in this process, by pool file and region: one handle each (two would race). */
const openMaps = new Set<string>();

/**
 * An ordered, persistent map in its own region. Keys are numbers, strings or Uint8Arrays
 * (numbers < strings < byte arrays; strings by code point, bytes unsigned); values any
 * structured-clonable value (or Uint8Arrays with `encoding: 'binary'`).
 *
 * ```ts
 * const users = PMap.open(pool, 'users', { create: true });
 * users.put('ada', { born: 1815 });          // durable when it returns
 * users.batch(() => { users.put('a', 1); users.delete('b'); });   // all or nothing
 * for (const [key, value] of users.range({ start: 'a', end: 'm' })) {}
 * ```
 *
 * In shared mode every process may open the same map: writers take a lock in the region,
 * readers never block a writer (they validate a version and retry). One handle per map per
 * process; not for worker threads.
 */
export class PMap<V = unknown> {
  private readonly codec = new KeyCodec();
  private readonly tree: BTree;
  private depth = 0;
  private closed = false;

  private constructor(
    private readonly memory: HeapRegion,
    private readonly heap: Heap,
    private readonly access: MapAccess,
    /** The value encoding. */
    readonly encoding: PMapEncoding,
    private readonly id: string,
  ) {
    this.tree = new BTree(heap, heap.root);
  }

  /** Opens the map in region `name`; with `create`, makes the region and the map if missing. */
  static open<V = unknown>(pool: Pool, name: string, options: PMapOpenOptions = {}): PMap<V> {
    checkOptions(options, ['create', 'encoding', 'size'], 'PMap.open options');
    if (options.encoding !== undefined && !(options.encoding in ENCODING_CODE)) {
      throw new RegionError('INVALID', `PMap.open: encoding '${String(options.encoding)}' is not 'v8' or 'binary'`);
    }
    const id = `${path.resolve(pool.path)}\0${name}`;
    if (openMaps.has(id)) {
      throw new RegionError('BUSY', `PMap "${name}" is already open in this process; use that handle`);
    }
    const regionOptions = { create: options.create, size: options.size, tracking: 'manual' as const };
    const memory = HeapRegion.open(pool, name, regionOptions, 'PMap.open');
    try {
      const access: MapAccess = pool.mode === 'shared' ? new SharedAccess(memory) : new ExclusiveAccess(memory);
      const { heap, encoding } = access.write(() => formatOrCheck(memory, name, options));
      openMaps.add(id);
      return new PMap<V>(memory, heap, access, encoding, id);
    } catch (error) {
      memory.close();
      throw error;
    }
  }

  /** Number of entries. */
  get size(): number {
    this.live('size');
    return this.access.read(() => this.tree.count);
  }

  /** Inserts or replaces; durable when it returns (inside a batch: when the batch returns). */
  put(key: PMapKey, value: V): void {
    this.live('put');
    const bytes = this.encodeValue(value);
    this.write(() => {
      const encoded = this.codec.encode(key);
      this.tree.put(encoded, bytes.length, (at) => this.memory.write(at, bytes));
    });
  }

  /** The value of key, or undefined. */
  get(key: PMapKey): V | undefined {
    this.live('get');
    const encoded = this.codec.encode(key);
    if (this.access.stable) {
      const record = this.tree.find(encoded);
      return record === 0 ? undefined : this.decodeValue(this.valueView(record));
    }
    const copy = this.access.read(() => {
      const record = this.tree.find(encoded);
      return record === 0 ? undefined : Buffer.from(this.valueView(record));
    });
    return copy === undefined ? undefined : this.decodeValue(copy);
  }

  /** Whether key is in the map. */
  has(key: PMapKey): boolean {
    this.live('has');
    const encoded = this.codec.encode(key);
    return this.access.read(() => this.tree.find(encoded) !== 0);
  }

  /** Removes key; returns whether it was there. Durable when it returns (or with its batch). */
  delete(key: PMapKey): boolean {
    this.live('delete');
    return this.write(() => this.tree.remove(this.codec.encode(key)));
  }

  /**
   * Runs fn as one update: its puts and deletes are committed by one pmsync when it returns,
   * and if it throws none of them is (the map is as before; the error is rethrown). fn must
   * be synchronous. In exclusive mode a batch that fills the region is put back, the region
   * grows, and fn runs again: keep fn free of other side effects.
   */
  batch<T>(fn: () => T): T {
    this.live('batch');
    if (typeof fn !== 'function') throw new RegionError('INVALID', 'batch: fn must be a function');
    return this.write(() => {
      const result = fn();
      if (typeof (result as { then?: unknown } | null)?.then === 'function') {
        throw new RegionError(
          'INVALID',
          'batch: fn returned a promise; a batch covers synchronous code only (nothing was committed)',
        );
      }
      return result;
    });
  }

  /**
   * Runs fn as one consistent read: every get, has and range chunk it makes sees the same
   * state of the map. In shared mode writers are not blocked: fn runs again if one committed
   * meanwhile (so keep it free of side effects), and under the writer lock after many tries.
   */
  read<T>(fn: () => T): T {
    this.live('read');
    if (typeof fn !== 'function') throw new RegionError('INVALID', 'read: fn must be a function');
    return this.access.read(fn);
  }

  /**
   * Entries [key, value] with start <= key < end, ascending (or descending with `reverse`),
   * at most `limit`. Read in chunks of consistent snapshots: an update between two chunks is
   * seen by the later one, never half.
   */
  *range(options: PMapRangeOptions = {}): IterableIterator<[PMapKey, V]> {
    this.live('range');
    checkOptions(options, ['start', 'end', 'reverse', 'limit'], 'range options');
    const limit = options.limit ?? Infinity;
    if (!(limit >= 0)) throw new RegionError('INVALID', `range: limit ${String(limit)} is not a non-negative number`);
    const bounds: RangeBounds = {
      lower: options.start === undefined ? null : this.codec.encodeCopy(options.start, 'range start'),
      upper: options.end === undefined ? null : this.codec.encodeCopy(options.end, 'range end'),
      reverse: options.reverse === true,
    };
    let resume: Buffer | null = null;
    for (let yielded = 0; yielded < limit; ) {
      const max = Math.min(RANGE_CHUNK, limit - yielded);
      const chunk = this.access.read(() => {
        const out: Buffer[] = [];
        collectRange(this.tree, bounds, resume, max, out);
        return out;
      });
      for (let i = 0; i < chunk.length; i += 2) {
        yield [decodeKey(chunk[i] as Buffer), this.decodeValue(chunk[i + 1] as Buffer)];
      }
      yielded += chunk.length / 2;
      if (chunk.length < 2 * max) return;
      resume = chunk[chunk.length - 2] ?? null;
    }
  }

  /** Walks the tree and the heap: order, links, counts, leaks and overlaps. */
  check(): PMapReport {
    this.live('check');
    return this.access.read(() => {
      const tree = checkTree(this.tree);
      const heap = this.heap.check([this.heap.root, ...tree.reachable]);
      const problems = [...tree.problems, ...heap.problems];
      const ok = problems.length === 0 && heap.leaks.length === 0;
      return { ok, problems, leaks: heap.leaks, entries: this.tree.count, heap };
    });
  }

  /** Unmaps the map; the handle is unusable after. Committed data stays. Idempotent. */
  close(): void {
    if (this.closed) return;
    if (this.depth > 0) throw new RegionError('INVALID', 'close: inside a batch');
    this.closed = true;
    openMaps.delete(this.id);
    this.memory.close();
  }

  private write<T>(body: () => T): T {
    if (this.depth > 0) return body(); // inside a batch: the batch commits
    this.depth++;
    try {
      return this.access.write(body);
    } finally {
      this.depth--;
    }
  }

  private valueView(record: number): Uint8Array {
    const nodes = this.tree.nodes;
    const length = nodes.valueLength(record);
    const at = nodes.recordKey(record) + nodes.keyLength(record);
    return this.memory.bytes.subarray(at, at + length);
  }

  private encodeValue(value: V): Uint8Array {
    if (this.encoding === 'binary') {
      if (!(value instanceof Uint8Array)) {
        throw new RegionError('INVALID', 'put: a binary PMap takes Uint8Array values');
      }
      return value;
    }
    try {
      return v8.serialize(value);
    } catch (error) {
      throw new RegionError('INVALID', `put: the value cannot be serialized: ${(error as Error).message}`);
    }
  }

  private decodeValue(bytes: Uint8Array): V {
    if (this.encoding === 'binary') return bytes.slice() as V; // a copy: the map's memory changes
    return v8.deserialize(bytes) as V;
  }

  private live(what: string): void {
    if (this.closed) throw new RegionError('CLOSED', `${what} on a closed PMap`);
  }
}

/** Formats an empty region as a map, or checks that it holds one of the right encoding. */
function formatOrCheck(
  memory: HeapRegion,
  name: string,
  options: PMapOpenOptions,
): { heap: Heap; encoding: PMapEncoding } {
  const heap = new Heap(memory);
  let meta = heap.root;
  if (meta === 0) {
    meta = heap.alloc(META_BYTES);
    memory.write(meta, new Uint8Array(META_BYTES));
    memory.setU32(meta, MAGIC);
    memory.setU32(meta + 4, LAYOUT_VERSION);
    memory.setU32(meta + 8, ENCODING_CODE[options.encoding ?? 'v8']);
    heap.root = meta;
  }
  if (memory.u32(meta) !== MAGIC || memory.u32(meta + 4) !== LAYOUT_VERSION) {
    throw new RegionError('CORRUPT', `region "${name}" holds a heap but no PMap (layout ${memory.u32(meta + 4)})`);
  }
  const encoding: PMapEncoding = memory.u32(meta + 8) === ENCODING_CODE.binary ? 'binary' : 'v8';
  if (options.encoding !== undefined && options.encoding !== encoding) {
    throw new RegionError('INVALID', `PMap.open: map "${name}" stores '${encoding}' values, not '${options.encoding}'`);
  }
  return { heap, encoding };
}
