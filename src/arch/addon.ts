// The one module that loads the native addon (build/Release/regions_native.node) and types it.
// Nothing else imports the .node file. The addon is the arch layer: it maps, protects,
// flushes, locks, waits and checksums; it holds no policy.
//
// Native errors arrive as JS Errors with `code` set to the errno name (e.g. 'EBADF',
// 'EINVAL', 'ERANGE') and `syscall` naming the call; the addon never crashes the process on
// bad arguments.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** A type-tagged native handle for one mmap'ed range; unusable after unmap. */
export interface MapHandle {
  readonly __mapHandle: unique symbol;
}

export type FlushInstruction = 'clwb' | 'clflushopt' | 'clflush';

export interface NativeAddon {
  /** mmap(fd, offset) MAP_SHARED; `sync` asks MAP_SHARED_VALIDATE|MAP_SYNC (fails with EOPNOTSUPP off DAX). */
  map(fd: number, offset: number, length: number, writable: boolean, sync: boolean): MapHandle;
  /** External ArrayBuffers covering the mapping in chunks of at most `chunkBytes` (multiple of 4096). */
  buffers(handle: MapHandle, chunkBytes: number): ArrayBuffer[];
  /** munmap; detaches every ArrayBuffer made by buffers() so later access throws. Idempotent. */
  unmap(handle: MapHandle): void;
  /** msync(MS_SYNC) of the pages covering [offset, offset+length) of the mapping. */
  msync(handle: MapHandle, offset: number, length: number): void;
  /** Write back the cache lines of [offset, offset+length) with the best flush instruction. */
  flush(handle: MapHandle, offset: number, length: number): number;
  /** sfence. */
  fence(): void;
  flushInstruction(): FlushInstruction;
  /** OFD lock on [start, start+length): returns true if taken, false if held elsewhere. */
  lockTry(fd: number, start: number, length: number, exclusive: boolean): boolean;
  /** Blocking OFD lock, giving up after timeoutMs (returns false then). */
  lockWait(fd: number, start: number, length: number, exclusive: boolean, timeoutMs: number): boolean;
  unlock(fd: number, start: number, length: number): void;
  /** Classic (per-process) POSIX lock; its holder's pid is visible to lockHolderPid. */
  posixLockTry(fd: number, start: number, length: number): boolean;
  /** Pid holding a conflicting POSIX write lock on the range, or 0 if none. */
  lockHolderPid(fd: number, start: number, length: number): number;
  /** futex(FUTEX_WAIT) on the 32-bit word at byteOffset (4-aligned) of a mapping or SharedArrayBuffer. */
  futexWait(buffer: ArrayBuffer | SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out';
  /** futex(FUTEX_WAKE): returns the number of waiters woken. */
  futexWake(buffer: ArrayBuffer | SharedArrayBuffer, byteOffset: number, count: number): number;
  /** CRC32C (Castagnoli) of bytes, continuing from `seed` (0 for a fresh checksum). */
  crc32c(bytes: Uint8Array, seed: number): number;
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/src/arch -> package root
  const root = path.resolve(here, '..', '..', '..');
  const file = path.join(root, 'build', 'Release', 'regions_native.node');
  try {
    return require(file) as NativeAddon;
  } catch (error) {
    throw new Error(`the native addon ${path.relative(process.cwd(), file) || file} is missing or broken: run \`npm install\` to build it`, { cause: error });
  }
}

export const addon: NativeAddon = load();
