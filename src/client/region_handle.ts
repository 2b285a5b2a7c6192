// An open region, in either mode: reads and writes of committed bytes are system calls;
// a mapping is the kernel's working copy, passed as a descriptor and mapped here.
//
// What is not one call: a read longer than DATA_CHUNK_BYTES is read in chunks and retried
// if a pmsync lands between them (every chunk names the region's version), so it still
// returns one committed snapshot; a write longer than DATA_CHUNK_BYTES is staged in the
// kernel chunk by chunk and committed at the end in one pmsync, so it stays atomic.

import type { Access, MapOptions, Region, RegionInfo, SyncStats, Tracking } from '../api.js';
import { addon } from '../arch/addon.js';
import { DATA_CHUNK_BYTES, MAP_CHUNK_BYTES, PAGE_BYTES, READ_RETRIES_MAX, SHOOTDOWN_SIGNAL } from '../constants.js';
import { isRegionError, RegionError } from '../errors.js';
import type { Mapping } from '../map/mapping.js';
import { mapShared, reportOwnWrites } from '../map/shared_copy.js';
import type { WireRef } from '../wire/protocol.js';
import type { MapResult } from '../syscall/syscalls.js';
import { checkOptions } from '../util/options.js';
import { StagedWrite } from './staged_write.js';
import type { PoolHandle } from './pool_handle.js';

export class RegionHandle implements Region {
  /** @internal */
  constructor(
    /** The pool the region was opened in. */
    readonly pool: PoolHandle,
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
    let at = 0;
    try {
      for (const piece of this.pieces(offset, total)) {
        out.set(piece, at);
        at += piece.length;
      }
    } catch (error) {
      if (error instanceof TornRead) return null;
      throw error;
    }
    return out;
  }

  /**
   * @internal The committed bytes [offset, offset+length) in pieces of at most
   * DATA_CHUNK_BYTES, for a caller that passes each on (`regions read`); BUSY (a TornRead) if
   * a pmsync lands between two pieces, since the pieces would then not be one snapshot.
   */
  *pieces(offset: number, length: number): Generator<Uint8Array> {
    let version = '';
    for (let at = 0; at === 0 || at < length; at += DATA_CHUNK_BYTES) {
      const args = { region: this.ref, offset: offset + at, length: Math.min(DATA_CHUNK_BYTES, length - at) };
      const { result, data } = this.pool.call<{ epoch: number; modifiedAt: number; sizeBytes: number }>('read', args);
      const stamp = `${result.epoch}/${result.modifiedAt}/${result.sizeBytes}`;
      if (at > 0 && stamp !== version) throw new TornRead(this.label, offset + at);
      version = stamp;
      yield data;
      if (length === 0) break;
    }
  }

  /** Stores bytes at offset and commits them in one pmsync (staged in chunks if large: still atomic). */
  write(offset: number, bytes: Uint8Array): SyncStats {
    this.requireWritable();
    checkInteger(offset, 'offset');
    if (bytes.length <= DATA_CHUNK_BYTES) return this.pool.call<SyncStats>('write', { region: this.ref, offset }, bytes).result;
    const staged = this.stage(offset, bytes.length);
    staged.append(bytes);
    return staged.commit();
  }

  /**
   * @internal A write of `length` bytes at offset whose bytes arrive in pieces (`regions write`
   * streams stdin): staged in the kernel as they come, committed in one pmsync, so atomic.
   */
  stage(offset: number, length: number): StagedWrite {
    this.requireWritable();
    checkInteger(offset, 'offset');
    checkInteger(length, 'length');
    return new StagedWrite(this.pool, this.ref, offset, length);
  }

  /** Maps a window of the region: the shared working copy that every mapping process sees. */
  map(options: MapOptions = {}): Mapping {
    checkOptions(options, ['offset', 'length', 'tracking'], 'map options');
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
      const mapped = mapShared(fd, granted.description, {
        offset, length, tracking, writable: granted.writable, slot: granted.slot,
        pmsync: () => this.remotePmsync(), discard: () => this.remoteDiscard(),
      });
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
    // This thread waits for the reply: with its own pages reported, regiond need not stop it.
    return this.pool.call<SyncStats>('pmsync', { region: this.ref, reported: reportOwnWrites() }).result;
  }

  /** Puts every dirty page of every mapping of the region, in every process, back to its committed bytes. */
  discard(): SyncStats {
    this.requireWritable();
    return this.remoteDiscard();
  }

  private remoteDiscard(): SyncStats {
    return this.pool.call<SyncStats>('discard', { region: this.ref, reported: reportOwnWrites() }).result;
  }

  private requireWritable(): void {
    if (this.access !== 'rw') throw new RegionError('PERMISSION', `region "${this.label}" is open read-only`);
  }
}

/** A read in pieces saw the region change between two of them. */
class TornRead extends RegionError {
  constructor(label: string, at: number) {
    super('BUSY', `region "${label}" changed (a pmsync) while it was read, at offset ${at}: what was read is not one `
      + 'snapshot; read it again, or read less at once');
  }
}

function checkInteger(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RegionError('INVALID', `${what} ${value} is not a non-negative integer`);
}
