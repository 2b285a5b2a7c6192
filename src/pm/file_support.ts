// What FileDevice needs from the file system around the mapping: its options and their
// checks, tmpfs detection, directory sync, and operating-system failures as RegionErrors
// that name the file and what to do.

import path from 'node:path';
import fs from 'node:fs';
import { CHUNK_BYTES_MAX } from '../arch/addon.js';
import { RegionError } from '../errors.js';

const BLOCK_BYTES = 4096;
const TMPFS_MAGIC = 0x01021994;

/** How a FileDevice reached durability once opened: 'pmem' (CPU cache-line flushes) or 'msync'. */
export type Persistence = 'pmem' | 'msync';
/** What a FileDevice is asked for: 'pmem', 'msync', or 'auto' (DAX or tmpfs: pmem; else msync). */
export type PersistenceOption = Persistence | 'auto';

/** Options of new FileDevice (opening an existing pool file). */
export interface FileDeviceOptions {
  /** Default 'auto'. */
  persistence?: PersistenceOption;
  /** Map the file read-only (fsck without repair); writes throw. */
  readOnly?: boolean;
  /** Tests only: the size of each ArrayBuffer chunk (a multiple of 4096, default 1 GiB). */
  chunkBytes?: number;
}

/** Options of FileDevice.create (a new pool file). */
export interface FileDeviceCreateOptions {
  /** The new file size: a multiple of 4096. */
  sizeBytes: number;
  /** Default 'auto'. */
  persistence?: PersistenceOption;
  /** Tests only, as in FileDeviceOptions. */
  chunkBytes?: number;
}

export function checkSizeOption(sizeBytes: number, what: string): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % BLOCK_BYTES !== 0) {
    throw new RegionError('INVALID', `${what} ${sizeBytes} must be a positive multiple of ${BLOCK_BYTES}`);
  }
}

export function checkChunkOption(chunkBytes: number): void {
  checkSizeOption(chunkBytes, 'chunkBytes');
  if (chunkBytes > CHUNK_BYTES_MAX) {
    throw new RegionError('INVALID', `chunkBytes ${chunkBytes} exceeds ${CHUNK_BYTES_MAX}`);
  }
}

export function checkPersistenceOption(persistence: string): asserts persistence is PersistenceOption {
  if (persistence !== 'pmem' && persistence !== 'msync' && persistence !== 'auto') {
    throw new RegionError('INVALID', `persistence '${persistence}' must be 'pmem', 'msync' or 'auto'`);
  }
}

let tmpfsNoticeShown = false;

/** Once per process (unless REGIONS_QUIET=1): a pool on tmpfs does not survive a reboot. */
export function tmpfsNotice(file: string): void {
  if (tmpfsNoticeShown || process.env['REGIONS_QUIET'] === '1') return;
  tmpfsNoticeShown = true;
  process.stderr.write(`regions: ${file} is on tmpfs: persistence is emulated and does not survive a reboot `
    + '(REGIONS_QUIET=1 hides this)\n');
}

let pmemNoticeShown = false;

/** 'pmem' asked for a file that is neither on DAX nor on tmpfs: flushes do not make it durable. */
export function pmemNotice(file: string): void {
  if (pmemNoticeShown || process.env['REGIONS_QUIET'] === '1') return;
  pmemNoticeShown = true;
  process.stderr.write(`regions: warning: persistence 'pmem' on ${file}, which is on an ordinary file system, not DAX: `
    + 'cache-line flushes reach the page cache, not the disk, so pmsync is not durable there; use \'msync\' or '
    + '\'auto\' (REGIONS_QUIET=1 hides this)\n');
}

export function isTmpfs(file: string): boolean {
  return fs.statfsSync(file).type === TMPFS_MAGIC;
}

/** fsync of a directory, so a file created or renamed in it stays after a crash. */
export function syncDirectory(directory: string): void {
  const fd = fs.openSync(directory, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The errno name a failed Node or addon call carries in `code` ('ENOENT', ...), if any. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** An operating-system failure as a RegionError naming the file and what to do. */
export function fsError(error: unknown, file: string, action: string): RegionError {
  const code = errnoCode(error);
  const cause = { cause: error };
  if (code === 'ENOENT' && action === 'create') {
    const message = `cannot create pool file ${file}: the directory ${path.dirname(file)} does not exist`;
    return new RegionError('NOT_FOUND', message, cause);
  }
  if (code === 'ENOENT') {
    return new RegionError('NOT_FOUND', `pool file ${file} does not exist; create it first`, cause);
  }
  if (code === 'EEXIST') {
    return new RegionError('EXISTS', `pool file ${file} already exists; open it instead of creating it`, cause);
  }
  if (code === 'EISDIR') return new RegionError('INVALID', `${file} is a directory, not a pool file`, cause);
  if (code === 'EACCES' || code === 'EPERM') {
    return new RegionError('PERMISSION', `no permission to ${action} ${file} (${code})`, cause);
  }
  return new RegionError('IO', `cannot ${action} ${file}: ${code ?? String(error)}`, cause);
}
