// Reserving a pool file's blocks when it is created or grown.
//
// A pool file is mapped MAP_SHARED. A store into a page the file system then cannot allocate
// (a full disk, a full tmpfs) is SIGBUS: the process dies in the middle of whatever it was
// doing, a commit included. Reserving every block of the file up front moves that failure to
// the one call that asked for the space, as NO_SPACE, before anything else has changed.
//
// The addon's `fallocate(fd, offset, length)` (fallocate(2), mode 0: allocates and extends the
// file, without writing) does it in one call. Where the file system refuses it (EOPNOTSUPP,
// ENOSYS), the range is written with zeros instead, which allocates the same blocks (slower:
// it writes every page). Either way the range must lie at or past the file's end, where
// zeros are what it holds anyway.

import fs from 'node:fs';
import { addon } from '../arch/addon.js';
import { RegionError } from '../errors.js';
import { errnoCode } from './file_support.js';

/** fallocate(2) with mode 0 on [offset, offset + length); throws an Error whose `code` is the errno name. */
export type Fallocate = (fd: number, offset: number, length: number) => void;

const ZERO_CHUNK_BYTES = 1 << 20;

/**
 * Allocates [from, to) of the open file `fd` (the file's end is at or before `from`) and
 * extends the file to `to`. A full file system is RegionError NO_SPACE, any other failure IO;
 * on failure the file is cut back to `from` bytes, so a failed grow leaves it as it was.
 */
export function reserveSpace(fd: number, file: string, from: number, to: number, fallocate: Fallocate = addon.fallocate): void {
  if (to <= from) return;
  try {
    if (!tryFallocate(fallocate, fd, from, to - from)) writeZeros(fd, from, to);
  } catch (error) {
    try {
      fs.ftruncateSync(fd, from);
    } catch {
      // the error below is the one to report; the caller removes or keeps the file
    }
    throw reserveError(error, file, from, to);
  }
}

/** false if the file system does not support fallocate. */
function tryFallocate(fallocate: Fallocate, fd: number, offset: number, length: number): boolean {
  try {
    fallocate(fd, offset, length);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'EOPNOTSUPP' || errnoCode(error) === 'ENOSYS') return false;
    throw error;
  }
}

function writeZeros(fd: number, from: number, to: number): void {
  const zeros = new Uint8Array(Math.min(ZERO_CHUNK_BYTES, to - from));
  for (let at = from; at < to; ) {
    const written = fs.writeSync(fd, zeros, 0, Math.min(zeros.length, to - at), at);
    if (written <= 0) throw Object.assign(new Error(`write of zeros at ${at} made no progress`), { code: 'EIO' });
    at += written;
  }
}

function reserveError(error: unknown, file: string, from: number, to: number): RegionError {
  const code = errnoCode(error) ?? String(error);
  const cause = { cause: error };
  const what = `${to - from} bytes for pool file ${file} (to ${to} bytes)`;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    const why = code === 'ENOSPC' ? 'the file system is full' : 'the disk quota is used up';
    return new RegionError('NO_SPACE', `cannot reserve ${what}: ${why} (${code}); nothing changed`, cause);
  }
  if (code === 'EFBIG') {
    return new RegionError('INVALID', `cannot reserve ${what}: more than the file system allows (EFBIG)`, cause);
  }
  return new RegionError('IO', `cannot reserve ${what}: ${code}`, cause);
}
