// The one module that loads the native addon (build/Release/regions_native.node) and types it.
// Nothing else imports the .node file. The addon is the arch layer: it maps, protects,
// flushes, locks, waits and checksums; it holds no policy.
//
// Native errors arrive as JS Errors with `code` set to the errno name (e.g. 'EBADF',
// 'EINVAL', 'ERANGE', 'EOPNOTSUPP') and `syscall` naming the call; a MapHandle used after
// unmap throws code 'ECLOSED'; a wrong argument type (or a foreign object passed as a
// MapHandle) is a TypeError. The addon never crashes the process on bad arguments.
// Out of its reach (documented in native/map.c): truncating a file under a live mapping
// (SIGBUS on access past the new end) and storing through buffers of a read-only mapping.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { markAsUntransferable } from 'node:worker_threads';
import path from 'node:path';

/** A type-tagged native handle for one mmap'ed range; unusable after unmap. */
export interface MapHandle {
  readonly __mapHandle: unique symbol;
}

export type FlushInstruction = 'clwb' | 'clflushopt' | 'clflush';

export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out';

/** Memory holding a futex word: the word's byteOffset counts from the start of the view. */
export type FutexMemory = ArrayBuffer | SharedArrayBuffer | ArrayBufferView;

/** The largest chunkBytes buffers() accepts (1 GiB): an ArrayBuffer size every Node >= 20 takes. */
export const CHUNK_BYTES_MAX = 1 << 30;

export interface NativeAddon {
  /**
   * mmap(fd, offset) MAP_SHARED, PROT_READ (+PROT_WRITE if writable); `sync` asks
   * MAP_SHARED_VALIDATE|MAP_SYNC (fails with EOPNOTSUPP off DAX). offset must be page-aligned
   * (EINVAL); a range past the end of a regular file is ERANGE (it would SIGBUS on access).
   */
  map(fd: number, offset: number, length: number, writable: boolean, sync: boolean): MapHandle;
  /**
   * External ArrayBuffers covering the mapping in chunks of `chunkBytes` (a multiple of 4096,
   * at most CHUNK_BYTES_MAX); the last may be shorter. They cannot be transferred to workers.
   */
  buffers(handle: MapHandle, chunkBytes: number): ArrayBuffer[];
  /** munmap; detaches every ArrayBuffer made by buffers() so later access throws. Idempotent. */
  unmap(handle: MapHandle): void;
  /** msync(MS_SYNC) of the pages covering [offset, offset+length) of the mapping. */
  msync(handle: MapHandle, offset: number, length: number): void;
  /** Write back the cache lines overlapping [offset, offset+length); returns how many. */
  flush(handle: MapHandle, offset: number, length: number): number;
  /** sfence. */
  fence(): void;
  /** The flush instruction chosen at load from cpuid. */
  flushInstruction(): FlushInstruction;
  /**
   * OFD lock on [start, start+length) (length 0: to the end of the file and beyond):
   * true if taken, false if held by another open file description.
   */
  lockTry(fd: number, start: number, length: number, exclusive: boolean): boolean;
  /** lockTry, retried with short sleeps until timeoutMs (Infinity: no limit); false on timeout. */
  lockWait(fd: number, start: number, length: number, exclusive: boolean, timeoutMs: number): boolean;
  /** Releases this open file description's OFD lock on the range. */
  unlock(fd: number, start: number, length: number): void;
  /**
   * Classic (per-process) POSIX write lock; its holder's pid is visible to lockHolderPid.
   * Closing any descriptor of the file in this process drops it.
   */
  posixLockTry(fd: number, start: number, length: number): boolean;
  posixUnlock(fd: number, start: number, length: number): void;
  /**
   * Pid holding a lock that conflicts with a write lock on the range: 0 if none, -1 if the
   * holder is an OFD lock (the kernel reports no pid for those).
   */
  lockHolderPid(fd: number, start: number, length: number): number;
  /**
   * futex(FUTEX_WAIT), shared (not private), on the 4-aligned 32-bit word at byteOffset:
   * waits while it holds `expected` (signed or unsigned spelling), up to timeoutMs
   * (Infinity: no limit). 'ok' means woken, maybe spuriously: re-check the word.
   * Cross-process only if the memory is a MAP_SHARED mapping; Atomics.notify does not wake it.
   */
  futexWait(memory: FutexMemory, byteOffset: number, expected: number, timeoutMs: number): FutexWaitResult;
  /** futex(FUTEX_WAKE) of up to `count` waiters (Infinity: all); returns how many were woken. */
  futexWake(memory: FutexMemory, byteOffset: number, count: number): number;
  /** CRC32C (Castagnoli) of bytes, continuing from `seed` (0 for a fresh checksum). */
  crc32c(bytes: Uint8Array, seed: number): number;
  /** The same CRC32C by the table path, so tests can hold the instruction path to it. */
  crc32cPortable(bytes: Uint8Array, seed: number): number;
}

/** What the .node file itself exports: it has no N-API access to SharedArrayBuffer memory. */
type RawAddon = Omit<NativeAddon, 'futexWait' | 'futexWake'> & {
  futexWait(memory: ArrayBuffer | ArrayBufferView, byteOffset: number, expected: number, timeoutMs: number): FutexWaitResult;
  futexWake(memory: ArrayBuffer | ArrayBufferView, byteOffset: number, count: number): number;
};

const FUTEX_WAKE_ALL = 0x7fffffff; // INT_MAX: the kernel's "every waiter"

// N-API can read the pointer of a typed array over a SharedArrayBuffer but not of the
// SharedArrayBuffer itself, so it travels as a Uint8Array.
function futexMemory(memory: FutexMemory): ArrayBuffer | ArrayBufferView {
  return memory instanceof SharedArrayBuffer ? new Uint8Array(memory) : memory;
}

function wrap(raw: RawAddon): NativeAddon {
  return Object.freeze({
    ...raw,
    buffers(handle: MapHandle, chunkBytes: number): ArrayBuffer[] {
      const list = raw.buffers(handle, chunkBytes);
      // A buffer moved to a worker would escape unmap's detach and outlive the mapping.
      for (const buffer of list) markAsUntransferable(buffer);
      return list;
    },
    futexWait(memory: FutexMemory, byteOffset: number, expected: number, timeoutMs: number): FutexWaitResult {
      return raw.futexWait(futexMemory(memory), byteOffset, expected, timeoutMs);
    },
    futexWake(memory: FutexMemory, byteOffset: number, count: number): number {
      return raw.futexWake(futexMemory(memory), byteOffset, count === Infinity ? FUTEX_WAKE_ALL : count);
    },
  });
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/src/arch -> package root
  const root = path.resolve(here, '..', '..', '..');
  const file = path.join(root, 'build', 'Release', 'regions_native.node');
  try {
    return wrap(require(file) as RawAddon);
  } catch (error) {
    throw new Error(`the native addon ${path.relative(process.cwd(), file) || file} is missing or broken: run \`npm install\` to build it`, { cause: error });
  }
}

export const addon: NativeAddon = load();
