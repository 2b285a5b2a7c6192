// How a pool handle reaches the pool's kernel (one kernel, two transports): in this process
// (exclusive mode, local_transport.ts) or through the pool's regiond (shared mode,
// connection.ts). Both run the same argument checks (protocol.ts) and the same system calls
// (src/syscall/syscalls.ts), so a pool behaves the same in both modes; only who else can
// reach the pool at the same time differs.

import type { PoolMode, ServerInfo } from '../api.js';
import type { Op } from '../wire/protocol.js';

export interface Response<T> {
  result: T;
  data: Uint8Array;
}

/** A reply that passed a descriptor (a working copy): the caller owns `fd` and closes it. */
export interface FdResponse<T> extends Response<T> {
  fd: number;
}

/** The regiond that runs the pool's kernel, and since when (ms since the epoch). */
export type KernelHost = Pick<ServerInfo, 'pid' | 'startedAt'>;

export interface Transport {
  readonly mode: Exclude<PoolMode, 'auto'>;
  /** regiond (shared mode); null when the kernel runs in this process. */
  readonly server: KernelHost | null;
  readonly closed: boolean;
  /** One system call; a descriptor passed with the reply (none is expected) is closed. */
  request<T>(op: Op, args?: Record<string, unknown>, data?: Uint8Array): Response<T>;
  /** One system call whose reply passes exactly one descriptor, which the caller owns. */
  requestFd<T>(op: Op, args?: Record<string, unknown>): FdResponse<T>;
  /** Leaves the kernel: what this caller held is released. Idempotent. */
  close(): void;
}
