// Exclusive mode (DESIGN.md section 7): the pool's kernel runs in this process. This layer
// checks arguments and credentials, then calls the region manager and the map layer.

import path from 'node:path';
import type { Access, CheckReport, CreateRegionOptions, MapOptions, Pool, PoolAccess, PoolInfo, Region, RegionInfo, SyncStats } from './api.js';
import { MAP_CHUNK_BYTES, PAGE_BYTES } from './constants.js';
import { RegionError } from './errors.js';
import { type AccessChange, changeAccess, requirePoolOwner } from './kernel/access.js';
import { checkAccess, type Credentials } from './kernel/permission.js';
import { checkMode, checkName, checkRegionSize } from './kernel/names.js';
import type { RegionManager, RegionRef } from './kernel/region_manager.js';
import { Mapping } from './map/mapping.js';
import { WorkingCopy } from './map/working_copy.js';
import { finishMeter, startMeter } from './map/sync_stats.js';
import { poolInfoOf } from './pool_info.js';
import type { PmDevice } from './pm/device.js';
import { assert } from './util/assert.js';
import { parseSize } from './util/size.js';

export class ExclusivePool implements Pool {
  private closed = false;
  readonly mode = 'exclusive' as const;
  /** Working copies of the regions mapped in this process, by slot index. */
  private readonly copies = new Map<number, WorkingCopy>();

  /** @internal */
  constructor(
    readonly path: string,
    private readonly device: PmDevice & { persistence?: string },
    /** @internal */ readonly kernel: RegionManager,
    private readonly who: Credentials,
    /** The pool file's owner: only it (or root) may grow the pool or change who may reach it. */
    private readonly ownerUid: number,
  ) {}

  private live(): RegionManager {
    if (this.closed) throw new RegionError('CLOSED', `pool ${this.path} is closed`);
    return this.kernel;
  }

  create(name: string, options: CreateRegionOptions): RegionInfo {
    const kernel = this.live();
    checkName(name);
    const sizeBytes = checkRegionSize(parseSize(options?.size, 'region size'), kernel.capacityBytes);
    const mode = checkMode(options.mode ?? 0o600);
    return kernel.create(name, sizeBytes, { mode, uid: this.who.uid, gid: this.who.gids[0] ?? 0 });
  }

  open(name: string, options: { access?: Access } = {}): LocalRegion {
    const kernel = this.live();
    const access = options.access ?? 'rw';
    if (access !== 'rw' && access !== 'ro') throw new RegionError('INVALID', `access must be 'rw' or 'ro', got ${String(access)}`);
    const ref = kernel.lookup(checkName(name));
    checkAccess(kernel.info(ref), this.who, access);
    return new LocalRegion(this, ref, access);
  }

  stat(name: string): RegionInfo {
    const kernel = this.live();
    return kernel.info(kernel.lookup(checkName(name)));
  }

  list(): RegionInfo[] {
    return this.live().list();
  }

  rename(from: string, to: string): void {
    const kernel = this.live();
    const ref = kernel.lookup(checkName(from));
    this.requireOwner(kernel.info(ref));
    kernel.rename(ref, checkName(to, 'new region name'));
  }

  resize(name: string, size: number | string): void {
    const kernel = this.live();
    const ref = kernel.lookup(checkName(name));
    checkAccess(kernel.info(ref), this.who, 'rw');
    this.requireUnmapped(ref, 'resize');
    kernel.resize(ref, checkRegionSize(parseSize(size, 'region size'), kernel.capacityBytes));
  }

  remove(name: string): void {
    const kernel = this.live();
    const ref = kernel.lookup(checkName(name));
    this.requireOwner(kernel.info(ref));
    this.requireUnmapped(ref, 'remove');
    kernel.remove(ref);
  }

  grow(size: number | string): void {
    const kernel = this.live();
    requirePoolOwner(this.who.uid, this.ownerUid, 'grow', this.path);
    kernel.grow(parseSize(size, 'pool size'));
  }

  /** @internal setPoolAccess in exclusive mode: who may connect to the regiond that serves the pool later. */
  setAccess(change: AccessChange): PoolAccess {
    const kernel = this.live();
    requirePoolOwner(this.who.uid, this.ownerUid, 'change who may reach', this.path);
    const next = changeAccess(kernel.access, change);
    // The owner's regiond must be able to give its socket to the group: refused now, not at its start.
    if (this.who.uid !== 0 && next.group !== null && !this.who.gids.includes(next.group)) {
      throw new RegionError('PERMISSION', `uid ${this.who.uid} is not a member of group ${next.group}, so its regiond could not give its socket to that group; pick one of its groups, or ask root`);
    }
    kernel.setAccess(next);
    return next;
  }

  info(): PoolInfo {
    const persistence = (this.device.persistence as 'pmem' | 'msync' | undefined) ?? 'sim';
    return poolInfoOf(this.live(), path.resolve(this.path), persistence, this.mode);
  }

  check(options: { repair?: boolean } = {}): CheckReport {
    void options.repair; // a mounted pool has had its journal replayed and its superblocks synced
    return this.live().check();
  }

  /** Unmaps every mapping (stores not pmsynced are dropped, as in a crash) and closes the pool. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const copy of this.copies.values()) copy.close();
    this.copies.clear();
    this.device.close();
  }

  /** @internal the working copy of a region, created at its first map. */
  workingCopy(ref: RegionRef, create: boolean): WorkingCopy | undefined {
    const kernel = this.live();
    let copy = this.copies.get(ref.index);
    if (copy && copy.ref.generation !== ref.generation) {
      copy.close();
      this.copies.delete(ref.index);
      copy = undefined;
    }
    if (!copy && create) {
      const info = kernel.info(ref);
      copy = new WorkingCopy(kernel, ref, info.sizeBytes, info.name);
      this.copies.set(ref.index, copy);
    }
    return copy;
  }

  private requireUnmapped(ref: RegionRef, what: string): void {
    const copy = this.copies.get(ref.index);
    if (copy && copy.mappings.size > 0) {
      throw new RegionError('BUSY', `cannot ${what} region "${copy.label}" while it is mapped (${copy.mappings.size} mappings); unmap it first`);
    }
    if (copy) {
      copy.close();
      this.copies.delete(ref.index);
    }
  }

  private requireOwner(region: RegionInfo): void {
    if (this.who.uid !== 0 && this.who.uid !== region.uid) {
      throw new RegionError('PERMISSION', `uid ${this.who.uid} does not own region "${region.name}" (owner ${region.uid})`);
    }
  }

  /** @internal */
  kernelFor(): RegionManager {
    return this.live();
  }
}

export class LocalRegion implements Region {
  /** @internal */
  constructor(
    /** The pool the region was opened in. */
    readonly pool: ExclusivePool,
    private readonly ref: RegionRef,
    readonly access: Access,
  ) {}

  get name(): string {
    return this.info().name;
  }

  info(): RegionInfo {
    return this.pool.kernelFor().info(this.ref);
  }

  /** Reads the last committed contents (holes read as zeros). */
  read(offset = 0, length?: number): Uint8Array {
    const kernel = this.pool.kernelFor();
    const size = kernel.info(this.ref).sizeBytes;
    const end = checkSpan(offset, length ?? size - offset, size);
    const out = new Uint8Array(end - offset);
    const page = new Uint8Array(PAGE_BYTES);
    for (let p = Math.floor(offset / PAGE_BYTES); p * PAGE_BYTES < end; p++) {
      kernel.readPage(this.ref, p, page);
      const from = Math.max(offset, p * PAGE_BYTES);
      const to = Math.min(end, (p + 1) * PAGE_BYTES);
      out.set(page.subarray(from - p * PAGE_BYTES, to - p * PAGE_BYTES), from - offset);
    }
    return out;
  }

  /** Maps a window of the region (default: all of it) into this address space. */
  map(options: MapOptions = {}): Mapping {
    const info = this.info();
    const offset = options.offset ?? 0;
    const tracking = options.tracking ?? 'fault';
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_BYTES !== 0) throw new RegionError('INVALID', `map offset ${offset} must be a multiple of ${PAGE_BYTES}`);
    const length = options.length ?? info.sizeBytes - offset;
    checkSpan(offset, length, info.sizeBytes);
    if (length === 0) throw new RegionError('INVALID', 'map length is 0');
    if (length > MAP_CHUNK_BYTES) throw new RegionError('INVALID', `map length ${length} exceeds ${MAP_CHUNK_BYTES} bytes (one ArrayBuffer); map windows with offset and length`);
    if (!['fault', 'scan', 'manual'].includes(tracking)) throw new RegionError('INVALID', `tracking must be 'fault', 'scan' or 'manual', got ${String(tracking)}`);
    const copy = this.pool.workingCopy(this.ref, true);
    assert(copy !== undefined, 'region: working copy created');
    return new Mapping(copy, offset, length, tracking, this.access === 'rw');
  }

  /** Persists every dirty page of every mapping of this region, atomically. */
  pmsync(): SyncStats {
    if (this.access !== 'rw') throw new RegionError('PERMISSION', `region "${this.name}" is open read-only`);
    const copy = this.pool.workingCopy(this.ref, false);
    if (copy) return copy.pmsync();
    return { epoch: this.info().epoch, pages: 0, bytes: 0, linesFlushed: 0, fences: 0, ns: 0 };
  }

  /**
   * Writes bytes at offset and commits them atomically in one pmsync. If the region is mapped
   * here, the bytes go into the working copy and the pmsync takes every dirty page with them.
   */
  write(offset: number, bytes: Uint8Array): SyncStats {
    if (this.access !== 'rw') throw new RegionError('PERMISSION', `region "${this.name}" is open read-only`);
    const kernel = this.pool.kernelFor();
    const end = checkSpan(offset, bytes.length, kernel.info(this.ref).sizeBytes);
    const copy = this.pool.workingCopy(this.ref, false);
    if (copy) {
      const touched: number[] = [];
      for (let p = Math.floor(offset / PAGE_BYTES); p * PAGE_BYTES < end; p++) {
        const from = Math.max(offset, p * PAGE_BYTES);
        const to = Math.min(end, (p + 1) * PAGE_BYTES);
        copy.page(p).set(bytes.subarray(from - offset, to - offset), from - p * PAGE_BYTES);
        touched.push(p);
      }
      copy.remember(touched);
      return copy.pmsync();
    }
    const pages: { page: number; bytes: Uint8Array }[] = [];
    for (let p = Math.floor(offset / PAGE_BYTES); p * PAGE_BYTES < end; p++) {
      const page = new Uint8Array(PAGE_BYTES);
      const from = Math.max(offset, p * PAGE_BYTES);
      const to = Math.min(end, (p + 1) * PAGE_BYTES);
      if (from > p * PAGE_BYTES || to < (p + 1) * PAGE_BYTES) kernel.readPage(this.ref, p, page);
      page.set(bytes.subarray(from - offset, to - offset), from - p * PAGE_BYTES);
      pages.push({ page: p, bytes: page });
    }
    return timedCommit(kernel, () => kernel.commitPages(this.ref, pages));
  }
}

function checkSpan(offset: number, length: number, size: number): number {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RegionError('INVALID', `offset ${offset} is not a non-negative integer`);
  if (!Number.isSafeInteger(length) || length < 0) throw new RegionError('INVALID', `length ${length} is not a non-negative integer`);
  if (offset + length > size) throw new RegionError('INVALID', `range [${offset}, ${offset + length}) is outside the region of ${size} bytes`);
  return offset + length;
}

/** Runs a commit and reports its cost from the device counters. */
function timedCommit(kernel: RegionManager, commit: () => { epoch: number; pages: number }): SyncStats {
  const meter = startMeter(kernel.device);
  return finishMeter(kernel.device, meter, commit());
}

