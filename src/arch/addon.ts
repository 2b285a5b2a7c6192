// The one module that loads the native addon (build/Release/regions_native.node) and types it.
// Nothing else imports the .node file. The addon is the arch layer: it maps, protects,
// tracks stores (a SIGSEGV handler, or userfaultfd + PAGEMAP_SCAN), freezes (in process, or
// across processes by regiond's shootdown signal), flushes, locks, waits and checksums; it
// holds no policy.
//
// Native errors arrive as JS Errors with `code` set to the errno name (e.g. 'EBADF',
// 'EINVAL', 'ERANGE', 'EOPNOTSUPP') and `syscall` naming the call; a MapHandle used after
// unmap throws code 'ECLOSED'; a wrong argument type (or a foreign object passed as a
// MapHandle) is a TypeError. The addon never crashes the process on bad arguments.
// Out of its reach (documented in native/map.c): truncating a file under a live mapping
// (SIGBUS on access past the new end) and storing through buffers of a read-only mapping
// (SIGSEGV; registered with trackRegister mode 'readonly' it first prints which region).

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { markAsUntransferable } from 'node:worker_threads';
import path from 'node:path';
import type { SocketAddon } from './socket_addon.js';

/** A type-tagged native handle for one mmap'ed range; unusable after unmap. */
export interface MapHandle {
  readonly __mapHandle: unique symbol;
}

/** The CPU instruction that writes a cache line back towards the persistence domain. */
/** The cache-line write-back in use; 'none' on CPUs without one (only msync persistence is durable there). */
export type FlushInstruction = 'clwb' | 'clflushopt' | 'clflush' | 'none';

export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out';

/** Memory holding a futex word: the word's byteOffset counts from the start of the view. */
export type FutexMemory = ArrayBuffer | SharedArrayBuffer | ArrayBufferView;

/** The largest chunkBytes buffers() accepts (1 GiB): an ArrayBuffer size every Node >= 20 takes. */
export const CHUNK_BYTES_MAX = 1 << 30;

/** Page protection for protect(). */
export type PageAccess = 'none' | 'r' | 'rw';

/**
 * How the SIGSEGV handler serves a registered mapping (native/track.c):
 * - 'segv': trackRegister makes the whole mapping read-only; the first store to each page
 *   faults, sets its bit in `bitmap` and makes the page writable. After faultPagesMax pages
 *   the whole mapping is made writable and trackStatus().overflow is true: treat every page
 *   as dirty. Kernel writes into a protected page (fs.readSync into the mapping) fail with
 *   EFAULT; that is what prepareWrite (mark, then unprotect) is for.
 * - 'uffd': the userfaultfd tracker (uffdRegister/pagemapWritten) tracks; only the freeze here.
 * - 'none': no tracking (scan and manual modes); only the freeze.
 * - 'readonly': trackRegister makes the mapping read-only; a store prints
 *   `regions: store into read-only region "<label>" at offset <n>` on stderr and the process
 *   dies by SIGSEGV.
 */
export type TrackMode = 'segv' | 'uffd' | 'none' | 'readonly';

export interface TrackOptions {
  mode: TrackMode;
  /** Names the region in fatal messages (at most 127 UTF-8 bytes; control characters print as '?'). */
  label: string;
  /**
   * 'segv' only, required there: 1 bit per page of the mapping (page i is bit i % 8 of byte
   * i >> 3), set by the handler with an atomic or; the caller clears it. The addon keeps a
   * reference. It must not be a view of a buffers() ArrayBuffer (unmap would free it under
   * the handler): use a plain (made untransferable here) or shared buffer.
   */
  bitmap?: Uint8Array;
  /** 'segv': pages marked one by one before the overflow fallback (default 16384, at most 30000). */
  faultPagesMax?: number;
  /** Bytes of the mapping before region offset 0 (e.g. a control page); messages report offsets after it. Default 0. */
  dataOffset?: number;
}

/** How a shared mapping's stores are noticed (sharedRegister); names the TrackMode used. */
export type SharedMechanism = 'uffd' | 'segv' | 'none';

/**
 * A writable mapping of a shared working copy (src/map/control_area.ts), linked to the copy's
 * control area for regiond's shootdown (native/shootdown.c).
 */
export interface SharedOptions {
  /**
   * A writable mapping of the control area (header, mapper slots, dirty bitmap at byte 4096).
   * The addon keeps it alive while registered; unmapping it early leaves zeros, never a crash.
   */
  control: MapHandle;
  /** This process's mapper slot (0 .. 62): the shootdown acknowledges in its ackSeq word. */
  slot: number;
  /** The region page of the mapping's first page: page i of the mapping is bitmap bit firstPage + i. */
  firstPage: number;
  /**
   * 'segv': registering makes the mapping read-only; the first store to each page sets its
   * bit in the shared bitmap (atomic or) and unprotects it; past faultPagesMax pages the
   * whole mapping is unprotected and the control area's overflow word is set (regiond then
   * counts every page). 'uffd': the caller uffdRegister's the mapping (before or after);
   * the shootdown scans it (PAGEMAP_SCAN, reprotect) into the bitmap. 'none': freeze only.
   */
  mechanism: SharedMechanism;
  /** Names the region in fatal messages (at most 127 UTF-8 bytes). */
  label: string;
  /** 'segv': pages marked one by one between shootdowns before the overflow fallback (default 16384, at most 30000). */
  faultPagesMax?: number;
}

export interface TrackStatus {
  /** 'segv': pages marked since trackRegister or trackReset. */
  faults: number;
  /** 'segv': the whole mapping was made writable; every page must be treated as dirty. */
  overflow: boolean;
}

export interface NativeAddon extends SocketAddon {
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
  /**
   * One journal commit's data path (native/commit.c, the plan of src/pm/commit_plan.ts): copy
   * and write back the fresh pages, write back the fresh metadata, store and write back the
   * record, fence, the commit word, fence, the entries and ranges in place. Returns the lines
   * written back. `numbers` and `buffers`: see commit_plan.ts encodeNumbers.
   * `trace` (tests) receives each line written back in order and -1 for each fence.
   */
  commit(
    handle: MapHandle,
    numbers: Float64Array,
    buffers: readonly Uint8Array[],
    record: Uint8Array,
    words: Uint32Array,
    ranges: Uint8Array[],
    trace?: Float64Array,
  ): number;
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
  /**
   * The C side of every layout shared with TypeScript (native/layout.c), for
   * test/07-native-layout: the TypeScript constant's name (`WORD.requestSeq` for a field of
   * WORD) -> the value C computes from its own definitions; accepted names map to 1.
   */
  layout(): Record<string, number>;

  /** memfd_create(name, MFD_CLOEXEC) + ftruncate(sizeBytes): a working copy's file; close it with fs.closeSync. */
  memfdCreate(name: string, sizeBytes: number): number;
  /**
   * fallocate(fd, 0, offset, length): allocates the file's blocks in the range, extending the
   * file if it passes the end. Throws an Error whose code is the errno name (ENOSPC when the
   * file system is full, EOPNOTSUPP where it cannot).
   */
  fallocate(fd: number, offset: number, length: number): void;
  /**
   * A SharedArrayBuffer over [offset, offset+length) of the mapping (length 1 .. CHUNK_BYTES_MAX):
   * works with Atomics and can be posted to workers (shared, not moved). It cannot be
   * detached: after unmap it reads zeros and writes go nowhere (the range is replaced by
   * anonymous memory and freed when the last SharedArrayBuffer over it is collected).
   */
  sharedBuffer(handle: MapHandle, offset: number, length: number): SharedArrayBuffer;
  /** mprotect of [offset, offset+length): both page-aligned (EINVAL); 'rw' on a read-only mapping is EACCES. */
  protect(handle: MapHandle, offset: number, length: number, access: PageAccess): void;

  /**
   * Registers the mapping with the SIGSEGV handler (installed on first use; faults outside
   * registered mappings go to the previous handler, e.g. V8's WebAssembly traps, or kill the
   * process as before). EEXIST if already registered. unmap() unregisters.
   */
  trackRegister(handle: MapHandle, options: TrackOptions): void;
  /** Drops the registration (no-op if none), gives the mapping back its mapped protection, releases frozen threads. */
  trackUnregister(handle: MapHandle): void;
  /** EINVAL if the mapping is not registered. */
  trackStatus(handle: MapHandle): TrackStatus;
  /** Zeroes faults and overflow (the caller clears the bitmap first, while frozen). */
  trackReset(handle: MapHandle): void;
  /**
   * Freeze: sets the entry's frozen flag, then mprotect(whole mapping, PROT_READ), which
   * shoots down every thread's TLB. A thread that stores meanwhile waits (futex) until
   * trackThaw, then its store retries. The freezing thread itself must not store: it would
   * wait for itself, so the handler prints a message and the process dies by SIGSEGV.
   * EINVAL if not registered or already frozen.
   */
  trackFreeze(handle: MapHandle): void;
  /**
   * mprotect(whole mapping, access), then clears the frozen flag and wakes every waiter.
   * 'segv' thaws with 'r' after clearing the bitmap and trackReset (every page protected
   * again, split VMAs merged); 'uffd'/'none' with 'rw'. Works unfrozen too.
   */
  trackThaw(handle: MapHandle, access: 'r' | 'rw'): void;

  /**
   * Installs the shootdown handler for a real-time signal (SIGRTMIN..SIGRTMAX; the project
   * uses SHOOTDOWN_SIGNAL), SA_SIGINFO|SA_RESTART|SA_ONSTACK. Once per process: the same
   * signal again is a no-op, another is EINVAL. Blocking system calls of any thread may see
   * EINTR (or restart) when a shootdown arrives. On the signal the handler serves every
   * sharedRegister'ed mapping whose control area's request sequence (word 2) is new to its
   * group (the mappings with one control file and one slot): it holds them, reports their
   * dirty pages into the shared bitmap ('uffd': PAGEMAP_SCAN; 'segv': already there,
   * tracking starts over), then stores the request into the slot's ackSeq (word 1) and
   * FUTEX_WAKEs it (shared). Holding: a quiet group (REGISTERED, control_area.ts) made by
   * the main thread parks it in the handler until the release sequence (word 3) reaches the
   * request (or does nothing if regiond is this process); any other group freezes (frozen +
   * mprotect PROT_READ, one call each): a store into a frozen mapping waits
   * (FUTEX_WAIT, shared) until the release, or regiond (pid in word 4) is gone, checked every
   * 100 ms; then the mapping thaws and the store runs. If regiond released before the
   * handler ran, it still acknowledges and thaws at once.
   */
  shootdownInstall(signal: number): void;
  /**
   * Registers a writable mapping of a shared working copy with the fault registry in shared
   * mode (see SharedOptions). EINVAL before shootdownInstall, for a read-only mapping or
   * control, or the control being the mapping itself; ERANGE if the bitmap bits of its pages
   * lie past the control mapping; EEXIST if registered already. trackUnregister and unmap
   * undo it (the mapping gets back read-write access; threads waiting on a freeze go on).
   * trackStatus/trackReset work on it; trackFreeze/trackThaw refuse it (EINVAL): the
   * shootdown freezes it.
   */
  sharedRegister(handle: MapHandle, options: SharedOptions): void;
  /** A shared 'uffd' mapping's written pages go into the shared bitmap now, as the shootdown handler's. */
  sharedCollect(handle: MapHandle): void;

  /** Whether uffdOpen() works here: userfaultfd with WP_ASYNC, WP_HUGETLBFS_SHMEM and WP_UNPOPULATED (probed once). */
  uffdAvailable(): boolean;
  /**
   * userfaultfd(O_CLOEXEC|O_NONBLOCK|UFFD_USER_MODE_ONLY) with asynchronous write-protect;
   * EOPNOTSUPP naming the missing feature if the kernel lacks one. Close it with fs.closeSync.
   */
  uffdOpen(): number;
  /** Registers the whole mapping for write-protect and protects every page (touched or not). */
  uffdRegister(uffd: number, handle: MapHandle): void;
  uffdUnregister(uffd: number, handle: MapHandle): void;
  /**
   * PAGEMAP_SCAN of [offset, offset+length) (page-aligned): indexes, from the mapping's
   * start and ascending, of the pages written since they were last protected; with
   * `reprotect` those pages are protected again in the same walk (EPERM if the range is not
   * uffdRegister'ed). Kernel writes (read(2) into the mapping) count as writes.
   */
  pagemapWritten(handle: MapHandle, offset: number, length: number, reprotect: boolean): Uint32Array;
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

// The handler writes into a 'segv' bitmap until unregistered: its memory must not go away first.
function checkBitmap(options: TrackOptions, mapped: WeakSet<ArrayBuffer>): void {
  if (typeof options !== 'object' || options === null || !(options.bitmap instanceof Uint8Array)) return;
  const buffer = options.bitmap.buffer;
  if (buffer instanceof SharedArrayBuffer) return; // never detached
  if (mapped.has(buffer)) {
    throw new TypeError('trackRegister: options.bitmap must not be a view of mapped memory from buffers() (unmap would free it); use a plain or shared buffer');
  }
  markAsUntransferable(buffer); // a transfer to a worker would detach it under the handler
}

function wrap(raw: RawAddon): NativeAddon {
  const mapped = new WeakSet<ArrayBuffer>();
  return Object.freeze({
    ...raw,
    buffers(handle: MapHandle, chunkBytes: number): ArrayBuffer[] {
      const list = raw.buffers(handle, chunkBytes);
      // A buffer moved to a worker would escape unmap's detach and outlive the mapping.
      for (const buffer of list) {
        markAsUntransferable(buffer);
        mapped.add(buffer);
      }
      return list;
    },
    trackRegister(handle: MapHandle, options: TrackOptions): void {
      checkBitmap(options, mapped);
      raw.trackRegister(handle, options);
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
  // REGIONS_NATIVE_BUILD=asan picks the AddressSanitizer build (binding.gyp's Debug
  // configuration, made by tools/test-asan.sh). Any other value is refused rather than
  // silently testing the Release build.
  const build = process.env['REGIONS_NATIVE_BUILD'] ?? '';
  if (build !== '' && build !== 'release' && build !== 'asan') {
    throw new Error(`REGIONS_NATIVE_BUILD=${build} is not a build: use 'asan' (build/Debug) or leave it unset (build/Release)`);
  }
  const asan = build === 'asan';
  const file = path.join(root, 'build', asan ? 'Debug' : 'Release', 'regions_native.node');
  const shown = path.relative(process.cwd(), file) || file;
  const { existsSync } = require('node:fs') as typeof import('node:fs');
  if (asan && !existsSync(file)) {
    throw new Error(`REGIONS_NATIVE_BUILD=asan, but the AddressSanitizer build ${shown} is missing: run \`npm run test:asan\`, or \`node-gyp configure && node-gyp build --debug\``);
  }
  // It links libasan, which must be the process's first library: loaded without the preload,
  // ASan would not throw but end the process with a message about library order.
  if (asan && !/libasan/.test(process.env['LD_PRELOAD'] ?? '')) {
    throw new Error('REGIONS_NATIVE_BUILD=asan needs libasan preloaded: run node with LD_PRELOAD=$(gcc -print-file-name=libasan.so), as tools/test-asan.sh does');
  }
  try {
    return wrap(require(file) as RawAddon);
  } catch (error) {
    const fix = asan ? 'rebuild it with `npm run test:asan`' : 'run `npm install` to build it';
    throw new Error(`the native addon ${shown} is missing or broken: ${fix}`, { cause: error });
  }
}

export const addon: NativeAddon = load();
