// Shared mode, the client's side (DESIGN.md section 7): the Pool and Region interfaces over
// a connection to the pool's regiond. Every call is one or a few synchronous requests; the
// kernel's checks run in regiond, against the credentials the OS gives for this process.
// Mappings are the exception that keeps shared mode fast: regiond hands out a shared working
// copy and this process maps it (src/map/shared_copy.ts), so stores never cross the socket.
//
// What is not one request: a read longer than DATA_CHUNK_BYTES is read in chunks and retried
// if a pmsync lands between them (every chunk names the region's version), so it still
// returns one committed snapshot; a write longer than DATA_CHUNK_BYTES is staged in regiond
// chunk by chunk and committed at the end in one pmsync, so it stays atomic.

import type { Access, ServerInfo, CheckReport, CreateRegionOptions, MapOptions, Persistence, Pool, PoolInfo, Region, RegionInfo, SizeSpec, SyncStats, Tracking } from '../api.js';
import { addon } from '../arch/addon.js';
import { DATA_CHUNK_BYTES, MAP_CHUNK_BYTES, PAGE_BYTES, READ_RETRIES_MAX, SHOOTDOWN_SIGNAL } from '../constants.js';
import { isRegionError, RegionError } from '../errors.js';
import { checkMode, checkName } from '../kernel/names.js';
import type { Mapping } from '../map/mapping.js';
import { closeSharedCopies, mapShared } from '../map/shared_copy.js';
import { userfaultfdAvailable } from '../map/trackers.js';
import { parseSize } from '../util/size.js';
import type { Connection, FdResponse, Response } from './client.js';
import { connectRegiond } from './launcher.js';
import type { Op, WireRef } from './protocol.js';
import type { MapResult } from './syscalls.js';

export class SharedPool implements Pool {
  readonly mode = 'shared' as const;
  private readonly mappings = new Set<Mapping>();
  private readonly copyKeys = new Set<string>();

  /** @internal */
  constructor(
    readonly path: string,
    private readonly connection: Connection,
  ) {}

  /** Connects to the pool's regiond, starting one if `start` (mode 'shared'); null if none runs and not `start`. */
  static connect(poolPath: string, options: { start: boolean; persistence: Persistence }): SharedPool | null {
    const connection = connectRegiond(poolPath, options);
    return connection === null ? null : new SharedPool(poolPath, connection);
  }

  /** The regiond serving this pool: its pid and start time (ms since the epoch). */
  get server(): Pick<ServerInfo, 'pid' | 'startedAt'> {
    return { pid: this.connection.server.pid, startedAt: this.connection.server.startedAt };
  }

  /** @internal one request to regiond */
  call<T>(op: Op, args: Record<string, unknown> = {}, data?: Uint8Array): Response<T> {
    return this.connection.request<T>(op, args, data);
  }

  /** @internal one request whose reply passes a descriptor, which the caller owns */
  callFd<T>(op: Op, args: Record<string, unknown> = {}): FdResponse<T> {
    return this.connection.requestFd<T>(op, args);
  }

  create(name: string, options: CreateRegionOptions): RegionInfo {
    checkName(name);
    const size = parseSize(options?.size, 'region size');
    const mode = checkMode(options.mode ?? 0o600);
    return this.call<RegionInfo>('create', { name, size, mode }).result;
  }

  open(name: string, options: { access?: Access } = {}): SharedRegion {
    const access = options.access ?? 'rw';
    if (access !== 'rw' && access !== 'ro') throw new RegionError('INVALID', `access must be 'rw' or 'ro', got ${String(access)}`);
    const { region, info } = this.call<{ region: WireRef; info: RegionInfo }>('open', { name: checkName(name), access }).result;
    return new SharedRegion(this, region, access, info.name);
  }

  stat(name: string): RegionInfo {
    return this.call<RegionInfo>('stat', { name: checkName(name) }).result;
  }

  /** Every region, sorted by name (fetched a page at a time). */
  list(): RegionInfo[] {
    const regions: RegionInfo[] = [];
    let after: string | undefined;
    for (;;) {
      const page = this.call<{ regions: RegionInfo[]; more: boolean }>('list', after === undefined ? {} : { after }).result;
      regions.push(...page.regions);
      const last = page.regions[page.regions.length - 1];
      if (!page.more || last === undefined) return regions;
      after = last.name;
    }
  }

  rename(from: string, to: string): void {
    this.call('rename', { from: checkName(from), to: checkName(to, 'new region name') });
  }

  resize(name: string, size: SizeSpec): void {
    this.call('resize', { name: checkName(name), size: parseSize(size, 'region size') });
  }

  remove(name: string): void {
    this.call('remove', { name: checkName(name) });
  }

  /** Sets a region's permission bits (its owner or root only). */
  chmod(name: string, mode: number): void {
    this.call('chmod', { name: checkName(name), mode: checkMode(mode) });
  }

  grow(size: SizeSpec): void {
    this.call('grow', { size: parseSize(size, 'pool size') });
  }

  info(): PoolInfo {
    const info = this.call<PoolInfo>('info').result;
    return { ...info, faultMechanism: userfaultfdAvailable() ? 'userfaultfd' : 'mprotect' }; // tracking runs here, not in regiond
  }

  check(options: { repair?: boolean } = {}): CheckReport {
    return this.call<CheckReport>('check', { repair: options.repair ?? false }).result;
  }

  /** Unmaps this pool's mappings (stores not pmsynced stay in the working copy) and leaves regiond. */
  close(): void {
    if (this.connection.closed) return;
    for (const mapping of [...this.mappings]) mapping.unmap();
    closeSharedCopies(this.copyKeys);
    try {
      this.call('close');
    } catch {
      // regiond is gone: there is nothing to leave
    }
    this.connection.close();
  }

  /** @internal a mapping made through this pool: unmapped at close */
  adopt(mapping: Mapping, copyKey: string): void {
    this.mappings.add(mapping);
    this.copyKeys.add(copyKey);
  }

  /** @internal */
  disown(mapping: Mapping): void {
    this.mappings.delete(mapping);
  }
}

export class SharedRegion implements Region {
  /** @internal */
  constructor(
    /** The pool the region was opened in. */
    readonly pool: SharedPool,
    private readonly ref: WireRef,
    readonly access: Access,
    private readonly label: string,
  ) {}

  get name(): string {
    return this.info().name;
  }

  info(): RegionInfo {
    return this.pool.call<RegionInfo>('regionInfo', { region: this.ref }).result;
  }

  /** The committed bytes: one snapshot, even when read in several requests. */
  read(offset = 0, length?: number): Uint8Array {
    checkInteger(offset, 'offset');
    if (length !== undefined) checkInteger(length, 'length');
    for (let attempt = 0; attempt < READ_RETRIES_MAX; attempt++) {
      const bytes = this.readOnce(offset, length);
      if (bytes !== null) return bytes;
    }
    throw new RegionError('BUSY', `region "${this.label}" changed during each of ${READ_RETRIES_MAX} attempts to read it; read less at once or pause its writers`);
  }

  /** null if the region changed between chunks. */
  private readOnce(offset: number, length: number | undefined): Uint8Array | null {
    const total = length ?? Math.max(0, this.info().sizeBytes - offset);
    const out = new Uint8Array(total);
    let version = '';
    for (let at = 0; at === 0 || at < total; at += DATA_CHUNK_BYTES) {
      const n = Math.min(DATA_CHUNK_BYTES, total - at);
      const { result, data } = this.pool.call<{ epoch: number; modifiedAt: number; sizeBytes: number }>('read', { region: this.ref, offset: offset + at, length: n });
      const stamp = `${result.epoch}/${result.modifiedAt}/${result.sizeBytes}`;
      if (at > 0 && stamp !== version) return null;
      version = stamp;
      out.set(data, at);
      if (total === 0) break;
    }
    return out;
  }

  /** Stores bytes at offset and commits them in one pmsync (staged in chunks if large: still atomic). */
  write(offset: number, bytes: Uint8Array): SyncStats {
    this.requireWritable();
    checkInteger(offset, 'offset');
    if (bytes.length <= DATA_CHUNK_BYTES) return this.pool.call<SyncStats>('write', { region: this.ref, offset }, bytes).result;
    const { staging } = this.pool.call<{ staging: number }>('stage', { region: this.ref, offset, length: bytes.length }).result;
    try {
      for (let at = 0; at < bytes.length; at += DATA_CHUNK_BYTES) {
        this.pool.call('stageData', { staging, at }, bytes.subarray(at, at + DATA_CHUNK_BYTES));
      }
      return this.pool.call<SyncStats>('stageCommit', { staging }).result;
    } catch (error) {
      if (!isRegionError(error, 'SERVER_GONE') && !isRegionError(error, 'TIMEOUT')) {
        try {
          this.pool.call('stageAbort', { staging });
        } catch {
          // already dropped (a failed commit drops it)
        }
      }
      throw error;
    }
  }

  /** Maps a window of the region: the shared working copy that every mapping process sees. */
  map(options: MapOptions = {}): Mapping {
    const offset = options.offset ?? 0;
    const tracking: Tracking = options.tracking ?? 'fault';
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_BYTES !== 0) throw new RegionError('INVALID', `map offset ${offset} must be a multiple of ${PAGE_BYTES}`);
    if (!['fault', 'scan', 'manual'].includes(tracking)) throw new RegionError('INVALID', `tracking must be 'fault', 'scan' or 'manual', got ${String(tracking)}`);
    const length = options.length ?? this.info().sizeBytes - offset;
    checkInteger(length, 'length');
    if (length === 0) throw new RegionError('INVALID', 'map length is 0');
    if (length > MAP_CHUNK_BYTES) throw new RegionError('INVALID', `map length ${length} exceeds ${MAP_CHUNK_BYTES} bytes (one ArrayBuffer); map windows with offset and length`);
    // From regiond's answer on, a pmsync anywhere signals this process: the handler must be in first.
    if (this.access === 'rw') addon.shootdownInstall(SHOOTDOWN_SIGNAL);
    const { result: granted, fd } = this.pool.callFd<MapResult>('map', { region: this.ref, access: this.access, offset, length, tracking });
    const release = (): void => {
      try {
        this.pool.call('unmap', { mapping: granted.mapping });
      } catch (error) {
        if (!isRegionError(error, 'SERVER_GONE') && !isRegionError(error, 'CLOSED')) throw error;
      }
    };
    let mapping: Mapping;
    try {
      const mapped = mapShared(fd, granted.description, { offset, length, tracking, writable: granted.writable, slot: granted.slot, pmsync: () => this.remotePmsync() });
      mapping = mapped.mapping;
      this.pool.adopt(mapping, mapped.key);
    } catch (error) {
      release();
      throw error;
    }
    const unmap = mapping.unmap.bind(mapping);
    mapping.unmap = (): void => {
      if (!mapping.isMapped) return;
      unmap();
      this.pool.disown(mapping);
      release(); // regiond drops this process's mapper reference
    };
    return mapping;
  }

  /** Persists every dirty page of every mapping of the region, in every process, atomically. */
  pmsync(): SyncStats {
    this.requireWritable();
    return this.remotePmsync();
  }

  /**
   * The commit a mapping asks for. A process's mappings of one region share one copy (and the
   * first one's callback), whatever region object made them: regiond checks the permission.
   */
  private remotePmsync(): SyncStats {
    return this.pool.call<SyncStats>('pmsync', { region: this.ref }).result;
  }

  private requireWritable(): void {
    if (this.access !== 'rw') throw new RegionError('PERMISSION', `region "${this.label}" is open read-only`);
  }
}

function checkInteger(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RegionError('INVALID', `${what} ${value} is not a non-negative integer`);
}
