// The entry points of the public API (DESIGN.md section 8): create, open and check a pool.

import fs from 'node:fs';
import type { CheckReport, CreatePoolOptions, OpenPoolOptions, Persistence, Pool } from './api.js';
import { addon } from './arch/addon.js';
import { BLOCK_BYTES } from './constants.js';
import { RegionError } from './errors.js';
import { ExclusivePool } from './exclusive_pool.js';
import { inspectPool } from './kernel/check.js';
import { currentCredentials } from './kernel/permission.js';
import { RegionManager } from './kernel/region_manager.js';
import { FileDevice } from './pm/file_device.js';
import { parseSize } from './util/size.js';

const LOCK_BYTE_EXCLUSIVE = 0; // OFD lock: the real exclusion
const LOCK_BYTE_HOLDER = 1; // POSIX lock: lets a second opener learn the holder's pid

export function createPool(poolPath: string, options: CreatePoolOptions): Pool {
  const sizeBytes = parseSize(options.size, 'pool size');
  if (sizeBytes % BLOCK_BYTES !== 0) throw new RegionError('INVALID', `pool size ${sizeBytes} is not a multiple of ${BLOCK_BYTES}`);
  if (fs.existsSync(poolPath)) throw new RegionError('EXISTS', `${poolPath} already exists`);
  const device = FileDevice.create(poolPath, { sizeBytes, persistence: options.persistence ?? 'auto' });
  try {
    lockExclusive(device, poolPath);
    RegionManager.format(device);
  } catch (error) {
    device.close();
    fs.rmSync(poolPath, { force: true });
    throw error;
  }
  return new ExclusivePool(poolPath, device, RegionManager.mount(device, poolPath), currentCredentials());
}

export function openPool(poolPath: string, options: OpenPoolOptions = {}): Pool {
  const mode = options.mode ?? 'auto';
  if (mode === 'shared') throw new RegionError('UNSUPPORTED', `shared mode (regiond) is not available in this version; open ${poolPath} with mode 'exclusive'`);
  const device = new FileDevice(poolPath, { persistence: options.persistence ?? 'auto' });
  try {
    lockExclusive(device, poolPath);
    return new ExclusivePool(poolPath, device, RegionManager.mount(device, poolPath), currentCredentials());
  } catch (error) {
    device.close();
    throw error;
  }
}

/**
 * fsck of a pool that is not open anywhere (it may be too damaged to mount): reports every
 * problem; with repair, fixes what needs no guessing.
 */
export function checkPool(poolPath: string, options: { repair?: boolean; persistence?: Persistence } = {}): CheckReport {
  const device = new FileDevice(poolPath, { persistence: options.persistence ?? 'auto' });
  try {
    lockExclusive(device, poolPath);
    return inspectPool(device, poolPath, options.repair ?? false);
  } finally {
    device.close();
  }
}

function lockExclusive(device: FileDevice, poolPath: string): void {
  if (addon.lockTry(device.fd, LOCK_BYTE_EXCLUSIVE, 1, true)) {
    addon.posixLockTry(device.fd, LOCK_BYTE_HOLDER, 1);
    return;
  }
  const holder = addon.lockHolderPid(device.fd, LOCK_BYTE_HOLDER, 1);
  const who = holder > 0 ? `pid ${holder}` : 'another process';
  throw new RegionError('BUSY', `pool ${poolPath} is held exclusively by ${who}; open it with mode 'shared' or stop that process`);
}

