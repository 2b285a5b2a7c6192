// How a pool file comes to exist: formatted whole under a temporary name beside it, then
// linked to its name in one step. Whoever finds the name finds a complete pool; two processes
// creating one pool at once cannot both succeed nor see each other's half-made file; a
// failure on the way leaves nothing under the name (and removes the temporary file). A
// creator killed on the way leaves its temporary file (as large as the pool, its blocks
// reserved): the next creation of that pool removes it, once its process is gone.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BLOCK_BYTES } from '../constants.js';
import { RegionError } from '../errors.js';
import type { PoolAccess } from '../format/superblock.js';
import { RegionManager } from '../kernel/region_manager.js';
import { FileDevice } from '../pm/file_device.js';
import { syncDirectory } from '../pm/file_support.js';
import { formatSize } from '../util/size.js';

export interface PoolCreation {
  sizeBytes: number;
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
  removeDeadTemporaries(directory, path.basename(poolPath));
  try {
    // The format uses msync, durable on every file system (DAX and tmpfs included) before the
    // link; the persistence asked for applies from the open by the pool's name (and its notices
    // name that, not the temporary file).
    const device = FileDevice.create(temporary, { sizeBytes: creation.sizeBytes, persistence: 'msync' });
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

/**
 * Why a pool of this size cannot work on this machine, or null: the pool is mapped whole into
 * the address space, and its kernel keeps a free map of one bit per 4 KiB block in memory.
 * Said before anything is created, rather than failing halfway through.
 */
export function machineLimitProblem(sizeBytes: number): string | null {
  const addressSpace = 2 ** (virtualAddressBits() - 1); // the user half of the address space
  const freeMapBytes = Math.ceil(sizeBytes / BLOCK_BYTES / 8);
  const size = formatSize(sizeBytes);
  if (sizeBytes > addressSpace) {
    return `pool size ${size} is too large for this machine: a pool is mapped whole, and a process here has `
      + `${formatSize(addressSpace)} of address space`;
  }
  if (freeMapBytes > os.totalmem()) {
    return `pool size ${size} is too large for this machine: its free map takes 1 bit of memory per 4 KiB block, `
      + `${formatSize(freeMapBytes)}, and this machine has ${formatSize(os.totalmem())} of memory`;
  }
  return null;
}

/** The CPU's virtual address width (x86-64: 48 bits, 57 with 5-level paging); 48 if unknown. */
function virtualAddressBits(): number {
  try {
    const match = /address sizes\s*:.*?(\d+) bits virtual/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    return match ? Number(match[1]) : 48;
  } catch {
    return 48;
  }
}

/**
 * Removes the temporary files of this pool's name (exactly `.NAME.PID-12HEX.new`, the form
 * above) whose creating process no longer exists. One whose pid is alive is left alone: it may
 * be a creation under way (or the pid was reused: the file waits for a later creation). A file
 * that cannot be removed (another user's, in a sticky directory) is left too.
 */
function removeDeadTemporaries(directory: string, name: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(directory);
  } catch {
    return; // the creation itself will say what is wrong with the directory
  }
  const prefix = `.${name}.`;
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    const match = /^(\d+)-[0-9a-f]{12}\.new$/.exec(entry.slice(prefix.length));
    if (match === null || processAlive(Number(match[1]))) continue;
    try {
      fs.unlinkSync(path.join(directory, entry));
    } catch {
      // not ours to remove, or gone already
    }
  }
}

/** kill(pid, 0): ESRCH means no such process; EPERM means one exists (another user's). */
function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true; // no process's pid: not a file we wrote, leave it
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
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
