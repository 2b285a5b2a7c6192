// Large writes, staged: a client reserves the length (within one budget for all clients),
// sends the bytes in order in chunks, then commits them in one pmsync, so a write larger
// than one request stays atomic. What a connection staged goes when it ends.

import { STAGING_BYTES_MAX, STAGINGS_PER_CLIENT_MAX } from '../constants.js';
import { RegionError } from '../errors.js';
import type { RegionRef } from '../kernel/region_manager.js';
import { assert } from '../util/assert.js';
import type { Client, Staging } from './client_record.js';

export class StagingArea {
  /** Bytes reserved by every client's stagings: the budget is for the process that runs the kernel. */
  private stagedBytes = 0;

  /** Reserves a staging of length bytes for [offset, offset + length) of ref; the caller checked access and range. */
  begin(client: Client, ref: RegionRef, offset: number, length: number): { staging: number } {
    if (client.stagings.size >= STAGINGS_PER_CLIENT_MAX) throw new RegionError('BUSY', `a client may stage at most ${STAGINGS_PER_CLIENT_MAX} writes at once; commit or abort one first`);
    if (this.stagedBytes + length > STAGING_BYTES_MAX) {
      throw new RegionError('BUSY', `the kernel is staging ${this.stagedBytes} bytes of other writes; ${length} more would pass its limit of ${STAGING_BYTES_MAX}; retry later or write less at once`);
    }
    const staging = client.handle();
    // Buffer.alloc of a large size is calloc'ed: pages take memory only as data arrives.
    client.stagings.set(staging, { ref, offset, bytes: Buffer.alloc(length), received: 0 });
    this.stagedBytes += length;
    return { staging };
  }

  /** The next chunk, in order. */
  data(client: Client, staging: number, at: number, data: Uint8Array): { received: number } {
    const entry = stagingOf(client, staging);
    if (at !== entry.received) throw new RegionError('INVALID', `staged write ${staging}: data at ${at}, expected the next byte ${entry.received}`);
    if (at + data.length > entry.bytes.length) throw new RegionError('INVALID', `staged write ${staging}: ${at + data.length} bytes exceed its length of ${entry.bytes.length}`);
    entry.bytes.set(data, at);
    entry.received += data.length;
    return { received: entry.received };
  }

  /** Takes a complete staging out (the caller commits it); an incomplete one is dropped, INVALID. */
  take(client: Client, staging: number): Staging {
    const entry = stagingOf(client, staging);
    this.drop(client, staging);
    if (entry.received !== entry.bytes.length) throw new RegionError('INVALID', `staged write ${staging} is incomplete: ${entry.received} of ${entry.bytes.length} bytes arrived; nothing was written`);
    return entry;
  }

  abort(client: Client, staging: number): null {
    stagingOf(client, staging);
    this.drop(client, staging);
    return null;
  }

  /** The connection ended: its stagings go. */
  forget(client: Client): void {
    for (const staging of [...client.stagings.keys()]) this.drop(client, staging);
  }

  private drop(client: Client, staging: number): void {
    const entry = client.stagings.get(staging);
    if (!entry) return;
    client.stagings.delete(staging);
    this.stagedBytes -= entry.bytes.length;
    assert(this.stagedBytes >= 0, 'staging: staged bytes never negative');
  }
}

function stagingOf(client: Client, staging: number): Staging {
  const entry = client.stagings.get(staging);
  if (!entry) throw new RegionError('NOT_FOUND', `no staged write ${staging} on this connection`);
  return entry;
}
