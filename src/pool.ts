// The public API of DESIGN.md section 8 (exclusive mode: the pool's kernel runs in this
// process). This layer checks arguments and credentials, then calls the region manager.

import fs from 'node:fs';
import path from 'node:path';
import type { Access, CheckReport, CreatePoolOptions, CreateRegionOptions, OpenPoolOptions, Persistence, PoolInfo, RegionInfo, SyncStats } from './api.js';
import { addon } from './arch/addon.js';
import { BLOCK_BYTES, PAGE_BYTES } from './constants.js';
import { RegionError } from './errors.js';
import { inspectPool } from './kernel/check.js';
import { checkAccess, currentCredentials, type Credentials } from './kernel/permission.js';
import { checkMode, checkName, checkRegionSize } from './kernel/names.js';
import { type RegionRef, RegionManager } from './kernel/region_manager.js';
import { FileDevice } from './pm/file_device.js';
import type { PmDevice } from './pm/device.js';
import { parseSize } from './util/size.js';

const LOCK_BYTE_EXCLUSIVE = 0; // OFD lock: the real exclusion
const LOCK_BYTE_HOLDER = 1; // POSIX lock: lets a second opener learn the holder's pid

export function createPool(poolPath: string, options: CreatePoolOptions): Pool {
  const sizeBytes = parseSize(options.size, 'pool size');
  if (sizeBytes % BLOCK_BYTES !== 0) throw new RegionError('INVALID', `pool size ${sizeBytes} is not a multiple of ${BLOCK_BYTES}`);
  if (fs.existsSync(poolPath)) throw new RegionError('EXISTS', `${poolPath} already exists`);
  const device = FileDevice.create(poolPath, { sizeBytes, persistence: options.persistence ?? 'auto' });
  try {
    lockExclusive(device, poolPath);
    RegionManager.format(device);
  } catch (error) {
    device.close();
    fs.rmSync(poolPath, { force: true });
    throw error;
  }
  return new Pool(poolPath, device, RegionManager.mount(device, poolPath), currentCredentials());
}

export function openPool(poolPath: string, options: OpenPoolOptions = {}): Pool {
  const mode = options.mode ?? 'auto';
  if (mode === 'shared') throw new RegionError('UNSUPPORTED', `shared mode (regiond) is not available in this version; open ${poolPath} with mode 'exclusive'`);
  const device = new FileDevice(poolPath, { persistence: options.persistence ?? 'auto' });
  try {
    lockExclusive(device, poolPath);
    return new Pool(poolPath, device, RegionManager.mount(device, poolPath), currentCredentials());
  } catch (error) {
    device.close();
    throw error;
  }
}

/**
 * fsck of a pool that is not open anywhere (it may be too damaged to mount): reports every
 * problem; with repair, fixes what needs no guessing.
 */
export function checkPool(poolPath: string, options: { repair?: boolean; persistence?: Persistence } = {}): CheckReport {
  const device = new FileDevice(poolPath, { persistence: options.persistence ?? 'auto' });
  try {
    lockExclusive(device, poolPath);
    return inspectPool(device, poolPath, options.repair ?? false);
  } finally {
    device.close();
  }
}

function lockExclusive(device: FileDevice, poolPath: string): void {
  if (addon.lockTry(device.fd, LOCK_BYTE_EXCLUSIVE, 1, true)) {
    addon.posixLockTry(device.fd, LOCK_BYTE_HOLDER, 1);
    return;
  }
  const holder = addon.lockHolderPid(device.fd, LOCK_BYTE_HOLDER, 1);
  const who = holder > 0 ? `pid ${holder}` : 'another process';
  throw new RegionError('BUSY', `pool ${poolPath} is held exclusively by ${who}; open it with mode 'shared' or stop that process`);
}

export class Pool {
  private closed = false;
  readonly mode = 'exclusive' as const;

  /** @internal */
  constructor(
    readonly path: string,
    private readonly device: PmDevice & { persistence?: string },
    /** @internal */ readonly kernel: RegionManager,
    private readonly who: Credentials,
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

  open(name: string, options: { access?: Access } = {}): Region {
    const kernel = this.live();
    const access = options.access ?? 'rw';
    if (access !== 'rw' && access !== 'ro') throw new RegionError('INVALID', `access must be 'rw' or 'ro', got ${String(access)}`);
    const ref = kernel.lookup(checkName(name));
    checkAccess(kernel.info(ref), this.who, access);
    return new Region(this, ref, access);
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
    kernel.resize(ref, checkRegionSize(parseSize(size, 'region size'), kernel.capacityBytes));
  }

  remove(name: string): void {
    const kernel = this.live();
    const ref = kernel.lookup(checkName(name));
    this.requireOwner(kernel.info(ref));
    kernel.remove(ref);
  }

  grow(size: number | string): void {
    this.live().grow(parseSize(size, 'pool size'));
  }

  info(): PoolInfo {
    const counts = this.live().poolCounts();
    return {
      path: path.resolve(this.path),
      version: 1,
      capacityBytes: counts.capacityBytes,
      usedBytes: counts.usedBytes,
      freeBytes: counts.freeBytes,
      blockBytes: BLOCK_BYTES,
      regions: counts.regions,
      slots: { used: counts.regions, allocated: counts.slotsAllocated, max: counts.slotsMax },
      journalBytes: counts.journalBytes,
      persistence: (this.device.persistence as 'pmem' | 'msync' | undefined) ?? 'sim',
      mode: this.mode,
    };
  }

  check(options: { repair?: boolean } = {}): CheckReport {
    void options.repair; // a mounted pool has had its journal replayed and its superblocks synced
    return this.live().check();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.device.close();
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

export class Region {
  /** @internal */
  constructor(
    readonly pool: Pool,
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

  /** Writes bytes at offset and commits them atomically in one pmsync. */
  write(offset: number, bytes: Uint8Array): SyncStats {
    if (this.access !== 'rw') throw new RegionError('PERMISSION', `region "${this.name}" is open read-only`);
    const kernel = this.pool.kernelFor();
    const end = checkSpan(offset, bytes.length, kernel.info(this.ref).sizeBytes);
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
export function timedCommit(kernel: RegionManager, commit: () => { epoch: number; pages: number }): SyncStats {
  const before = kernel.device.counters.snapshot();
  const start = process.hrtime.bigint();
  const result = commit();
  const ns = Number(process.hrtime.bigint() - start);
  const after = kernel.device.counters;
  return {
    epoch: result.epoch,
    pages: result.pages,
    bytes: result.pages * PAGE_BYTES,
    linesFlushed: after.linesFlushed - before.linesFlushed,
    fences: after.fences - before.fences,
    ns,
  };
}

export type { Persistence };
