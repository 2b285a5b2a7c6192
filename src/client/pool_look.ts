// A look at a pool for the commands that only read (regions info, ls, stat, read): never a
// write to the pool file. A pool that regiond serves is read through it (mode 'auto' or
// 'shared'; whatever its mount did, the command did not). Otherwise the pool is mounted in
// this process under its lock, as an exclusive open would, but on a ScratchDevice: what the
// mount writes stays in memory and is listed in `unwritten`, so a damaged superblock copy is
// still there for `regions fsck` to find and `regions fsck --repair` to rewrite.

import type { Persistence, Pool, PoolMode } from '../api.js';
import { FileDevice } from '../pm/file_device.js';
import { connectRegiond } from './launcher.js';
import { kernelHere, lockExclusive, mountHere, openPool } from './pool.js';
import { PoolHandle } from './pool_handle.js';
import { ScratchDevice } from './scratch_device.js';

export interface PoolLook {
  pool: Pool;
  /** What a read-write mount would have written to the pool file and this look did not. */
  unwritten: string[];
}

/** Opens a look at the pool; the caller closes `pool`. */
export function lookAtPool(poolPath: string, options: { mode: PoolMode; persistence?: Persistence }): PoolLook {
  const persistence = options.persistence ?? 'auto';
  if (options.mode === 'shared') return { pool: openPool(poolPath, { mode: 'shared', persistence }), unwritten: [] };
  if (options.mode === 'auto') {
    const connection = connectRegiond(poolPath, { start: false, persistence });
    if (connection !== null) return { pool: new PoolHandle(poolPath, connection), unwritten: [] };
  }
  const device = new FileDevice(poolPath, { persistence });
  try {
    lockExclusive(device, poolPath);
    const kernel = mountHere(new ScratchDevice(device), poolPath);
    const { superblockCopiesRewritten, upgradedFrom } = kernel.mountReport;
    const unwritten = [
      ...superblockCopiesRewritten.map((copy) => `superblock copy ${copy} is damaged or stale and was not rewritten`),
      ...(upgradedFrom === null ? [] : [`the pool's format (version ${upgradedFrom}) was not upgraded`]),
    ];
    return { pool: kernelHere(poolPath, device, kernel), unwritten };
  } catch (error) {
    device.close();
    throw error;
  }
}
