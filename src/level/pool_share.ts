// One open pool per pool file in this process, shared by every RegionLevel on it. A pool in
// exclusive mode can be open only once per process (its kernel runs here), and in shared mode
// one connection serves every region, so databases on different regions of one pool (or the
// same region opened twice) share the pool, which closes when the last of them closes.

import path from 'node:path';
import { createPool, isRegionError, openPool, RegionError, type Pool, type PoolMode, type SizeSpec } from '../index.js';

interface Share {
  pool: Pool;
  users: number;
}

const shares = new Map<string, Share>();

/** Opens (or creates, when `createSize` is given and the file is missing) the pool, or shares the one open. */
export function acquirePool(poolPath: string, mode: PoolMode, createSize: SizeSpec | undefined): Pool {
  const key = path.resolve(poolPath);
  const share = shares.get(key);
  if (share !== undefined) {
    if (mode !== 'auto' && mode !== share.pool.mode) {
      throw new RegionError('BUSY', `pool ${poolPath} is already open in ${share.pool.mode} mode in this process; `
        + `open it with mode '${share.pool.mode}' or 'auto'`);
    }
    share.users++;
    return share.pool;
  }
  const pool = openOrCreate(poolPath, mode, createSize);
  shares.set(key, { pool, users: 1 });
  return pool;
}

/** Gives the pool back; the last user closes it. */
export function releasePool(pool: Pool): void {
  const key = path.resolve(pool.path);
  const share = shares.get(key);
  if (share === undefined || share.pool !== pool) return;
  if (--share.users > 0) return;
  shares.delete(key);
  pool.close();
}

function openOrCreate(poolPath: string, mode: PoolMode, createSize: SizeSpec | undefined): Pool {
  try {
    return openPool(poolPath, { mode });
  } catch (error) {
    if (createSize === undefined || !isRegionError(error, 'NOT_FOUND')) throw error;
  }
  try {
    return createPool(poolPath, { size: createSize, mode: mode === 'auto' ? 'exclusive' : mode });
  } catch (error) {
    // Another process created it between our open and our create: open theirs.
    if (!isRegionError(error, 'EXISTS')) throw error;
    return openPool(poolPath, { mode });
  }
}
