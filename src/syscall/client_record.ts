// What regiond knows of one connection: who is at the other end (as the kernel says) and
// what the connection holds (open regions, mappings, stagings), all released when it closes.

import type { Credentials } from '../kernel/permission.js';
import type { RegionRef } from '../kernel/region_manager.js';
import type { ProcessHandle } from './process_handle.js';

/** Who is at the other end of a connection, as the kernel says. */
export interface Peer {
  pid: number;
  uid: number;
  /** Primary group first, then the supplementary groups. */
  gids: number[];
  /** The process itself (a pidfd): signals and liveness never go by the pid alone. */
  process: ProcessHandle;
}

export interface MappingRecord {
  ref: RegionRef;
  pid: number;
  /** A writable mapping makes its process a mapper the shootdown must freeze; a read-only one cannot store. */
  mapper: boolean;
}

export interface Staging {
  ref: RegionRef;
  offset: number;
  bytes: Buffer;
  received: number;
}

/** A connection's resources: released when it closes, whatever the reason. */
export class Client {
  readonly opened = new Set<number>();
  readonly mappings = new Map<number, MappingRecord>();
  readonly stagings = new Map<number, Staging>();
  private nextHandle = 1;

  constructor(
    readonly id: number,
    readonly peer: Peer,
  ) {}

  handle(): number {
    return this.nextHandle++;
  }

  get credentials(): Credentials {
    return { uid: this.peer.uid, gids: this.peer.gids };
  }
}
