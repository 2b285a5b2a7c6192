// The pool file as processes share it: its lock and its permission bits. Exclusive mode and
// regiond take the same lock, so at most one kernel runs a pool at a time, whichever mode.
//
// Byte 0 carries an OFD lock, the real exclusion (it belongs to the open file, so a second
// open in the same process is excluded too); byte 1 a classic POSIX lock, which exists only
// so that another process can learn the holder's pid (Linux reports -1 for OFD locks).

import fs from 'node:fs';
import { addon } from '../arch/addon.js';
import type { FileDevice } from './file_device.js';

const LOCK_BYTE_EXCLUSIVE = 0;
const LOCK_BYTE_HOLDER = 1;

/** Takes the pool's lock: true if taken, false if held elsewhere. */
export function tryLockPool(device: FileDevice): boolean {
  if (!addon.lockTry(device.fd, LOCK_BYTE_EXCLUSIVE, 1, true)) return false;
  addon.posixLockTry(device.fd, LOCK_BYTE_HOLDER, 1);
  return true;
}

/** Waits up to timeoutMs for the pool's lock (a holder that said it is leaving): true if taken. */
export function waitLockPool(device: FileDevice, timeoutMs: number): boolean {
  if (!addon.lockWait(device.fd, LOCK_BYTE_EXCLUSIVE, 1, true, timeoutMs)) return false;
  addon.posixLockTry(device.fd, LOCK_BYTE_HOLDER, 1);
  return true;
}

/** The pid holding the pool's lock: 0 if none, -1 if it cannot be told. */
export function poolHolder(device: FileDevice): number {
  return addon.lockHolderPid(device.fd, LOCK_BYTE_HOLDER, 1);
}

/**
 * Removes group and other permission bits from a pool file this process owns (or root):
 * whoever could read it could read every region, whatever the region's mode. Pools made
 * before access was a pool setting may carry wider bits.
 */
export function restrictPoolFile(fd: number): void {
  const stat = fs.fstatSync(fd);
  const euid = process.geteuid?.() ?? 0;
  if ((stat.mode & 0o7077) === 0 || (euid !== 0 && euid !== stat.uid)) return;
  fs.fchmodSync(fd, stat.mode & 0o700);
}
