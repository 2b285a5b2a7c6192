// A write larger than one request, staged: the kernel reserves its length, receives its bytes
// in pieces of at most DATA_CHUNK_BYTES (in order), and commits them in one pmsync, so it is
// as atomic as a small write. The bytes may come from the caller in pieces of any size, as
// they arrive (`regions write` streams stdin), so the caller never holds them all at once.

import type { SyncStats } from '../api.js';
import { DATA_CHUNK_BYTES } from '../constants.js';
import { isRegionError, RegionError } from '../errors.js';
import type { WireRef } from '../wire/protocol.js';
import type { PoolHandle } from './pool_handle.js';

export class StagedWrite {
  readonly #pool: PoolHandle;
  readonly #staging: number;
  readonly #length: number;
  #received = 0;
  #done = false;

  constructor(pool: PoolHandle, region: WireRef, offset: number, length: number) {
    this.#pool = pool;
    this.#length = length;
    this.#staging = pool.call<{ staging: number }>('stage', { region, offset, length }).result.staging;
  }

  /** Bytes received so far. */
  get received(): number {
    return this.#received;
  }

  /** The next bytes, in order; more than the length given at the start is INVALID. */
  append(bytes: Uint8Array): void {
    this.#guard(() => {
      if (this.#received + bytes.length > this.#length) {
        const given = this.#received + bytes.length;
        throw new RegionError('INVALID', `a staged write of ${this.#length} bytes was given ${given}`);
      }
      for (let at = 0; at < bytes.length; at += DATA_CHUNK_BYTES) {
        const piece = bytes.subarray(at, at + DATA_CHUNK_BYTES);
        this.#pool.call('stageData', { staging: this.#staging, at: this.#received }, piece);
        this.#received += piece.length;
      }
    });
  }

  /** Commits every byte in one pmsync; fewer bytes than the length is INVALID and writes nothing. */
  commit(): SyncStats {
    const stats = this.#guard(() => this.#pool.call<SyncStats>('stageCommit', { staging: this.#staging }).result);
    this.#done = true;
    return stats;
  }

  /** Drops what was staged; nothing is written. Idempotent. */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#pool.call('stageAbort', { staging: this.#staging });
    } catch {
      // already dropped (a failed commit drops it), or the connection is gone
    }
  }

  /** On any failure the staged bytes are dropped (but not after SERVER_GONE or TIMEOUT: nothing to ask). */
  #guard<T>(step: () => T): T {
    if (this.#done) throw new RegionError('INVALID', 'this staged write was committed or aborted already');
    try {
      return step();
    } catch (error) {
      if (isRegionError(error, 'SERVER_GONE') || isRegionError(error, 'TIMEOUT')) this.#done = true;
      else this.abort();
      throw error;
    }
  }
}
