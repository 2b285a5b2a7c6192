// How a pool file comes to exist: formatted whole under a temporary name beside it, then
// linked to its name in one step. Whoever finds the name finds a complete pool; two processes
// creating one pool at once cannot both succeed nor see each other's half-made file; a
// failure on the way leaves nothing under the name (and removes the temporary file).

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Persistence } from '../api.js';
import { RegionError } from '../errors.js';
import type { PoolAccess } from '../format/superblock.js';
import { RegionManager } from '../kernel/region_manager.js';
import { FileDevice } from '../pm/file_device.js';
import { syncDirectory } from '../pm/file_support.js';

export interface PoolCreation {
  sizeBytes: number;
  persistence: Persistence;
  access: PoolAccess;
}

/**
 * Formats a new pool at poolPath. Returns false, having changed nothing, when poolPath came to
 * exist meanwhile (another process created it first); throws on any other failure.
 */
export function formatPoolFile(poolPath: string, creation: PoolCreation): boolean {
  const directory = path.dirname(poolPath);
  const unique = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const temporary = path.join(directory, `.${path.basename(poolPath)}.${unique}.new`);
  try {
    // 'auto' settles on the pool's own persistence when it is opened by its name; the format
    // uses msync, durable on every file system (DAX and tmpfs included) before the link.
    const persistence = creation.persistence === 'auto' ? 'msync' : creation.persistence;
    const device = FileDevice.create(temporary, { sizeBytes: creation.sizeBytes, persistence });
    try {
      RegionManager.format(device, Date.now(), creation.access);
    } finally {
      device.close();
    }
    if (!linked(temporary, poolPath)) return false;
    syncDirectory(directory);
    return true;
  } catch (error) {
    throw renamed(error, temporary, poolPath);
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/** link(2) fails rather than replace: the pool of a process that linked first is kept. */
function linked(temporary: string, poolPath: string): boolean {
  try {
    fs.linkSync(temporary, poolPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new RegionError('IO', `cannot create pool file ${poolPath}: ${code}`, { cause: error });
  }
}

/** An error about the temporary file speaks of the pool's own name. */
function renamed(error: unknown, temporary: string, poolPath: string): unknown {
  if (!(error instanceof RegionError) || !error.message.includes(temporary)) return error;
  return new RegionError(error.code, error.message.replaceAll(temporary, poolPath), { cause: error });
}
