// The entry points of the public API (DESIGN.md section 8): create, open and check a pool.

import fs from 'node:fs';
import path from 'node:path';
import type {
  CheckReport, CreatePoolOptions, OpenPoolOptions, Persistence, Pool, PoolCreateOptions, PoolMode,
} from '../api.js';
import { formatPoolFile, machineLimitProblem, type PoolCreation } from './pool_creation.js';
import { LocalTransport } from './local_transport.js';
import { PoolHandle } from './pool_handle.js';
import { BLOCK_BYTES, DAEMON_LOCK_WAIT_MS, SOCKET_MODE_DEFAULT } from '../constants.js';
import { RegionError } from '../errors.js';
import { changeAccess } from '../kernel/access.js';
import { inspectPool } from '../kernel/check.js';
import { currentCredentials } from '../kernel/permission.js';
import { RegionManager } from '../kernel/region_manager.js';
import { kernelOptionsFromEnvironment } from '../syscall/kernel_options.js';
import { FileDevice } from '../pm/file_device.js';
import { poolHolder, restrictPoolFile, tryLockPool, waitLockPool } from '../pm/pool_file.js';
import { accessChangeOf } from './pool_access.js';
import { Client } from '../syscall/client_record.js';
import { connectRegiond, retireRegiond } from './launcher.js';
import { ProcessHandle } from '../syscall/process_handle.js';
import { isRegiond } from '../regiond/identity.js';
import { socketMissing } from './reachability.js';
import { socketAddress } from '../wire/socket_path.js';
import { Syscalls } from '../syscall/syscalls.js';
import { checkOptions } from '../util/options.js';
import { count } from '../util/count.js';
import { parseSize } from '../util/size.js';
import type { PmDevice } from '../pm/device.js';

/**
 * Formats a new pool: a file of mode 0600 (its owner's only), with `access` saying who may
 * connect to its regiond (default: the owner only). mode 'shared' (the default) then serves
 * it through a regiond started for it; 'exclusive' and 'auto' (no regiond can serve a pool
 * that did not exist) open it in this process. The file appears complete or not at all.
 */
export function createPool(poolPath: string, options: CreatePoolOptions): Pool {
  checkOptions(options, ['size', 'mode', 'persistence', 'access'], 'createPool options');
  if (options === undefined) throw new RegionError('INVALID', 'createPool needs options with a size, e.g. { size: \'64MiB\' }');
  const mode = checkPoolMode(options.mode ?? 'shared');
  const persistence = options.persistence ?? 'auto';
  const creation = creationOf(options);
  if (fs.existsSync(poolPath) || !formatPoolFile(poolPath, creation)) {
    throw new RegionError('EXISTS', `${poolPath} already exists`);
  }
  return openPool(poolPath, { mode: mode === 'shared' ? 'shared' : 'exclusive', persistence });
}

/**
 * Opens a pool. mode 'shared' (the default) connects to the pool's regiond, starting it if
 * none runs; 'exclusive' runs the pool's kernel in this process; 'auto' is shared if a
 * regiond serves the pool, else exclusive (the CLI's default). With `create`, a pool (and
 * directory) that does not exist is created first; of processes doing that at once, one
 * creates it and the others open it.
 */
export function openPool(poolPath: string, options: OpenPoolOptions = {}): Pool {
  checkOptions(options, ['mode', 'persistence', 'create'], 'openPool options');
  const mode = checkPoolMode(options.mode ?? 'shared');
  const persistence = options.persistence ?? 'auto';
  if (options.create !== undefined) createIfMissing(poolPath, options.create);
  if (mode !== 'exclusive') {
    const connection = connectRegiond(poolPath, { start: mode === 'shared', persistence });
    if (connection !== null) return new PoolHandle(poolPath, connection);
  }
  const device = new FileDevice(poolPath, { persistence });
  try {
    lockExclusive(device, poolPath);
    restrictPoolFile(device.fd);
    return kernelHere(poolPath, device);
  } catch (error) {
    device.close();
    throw error;
  }
}

/** openPool's `create`: the directory, then the pool, unless it exists (or another process made it first). */
function createIfMissing(poolPath: string, create: PoolCreateOptions): void {
  checkOptions(create, ['size', 'access'], 'openPool create options');
  const creation = creationOf(create);
  if (fs.existsSync(poolPath)) return;
  fs.mkdirSync(path.dirname(poolPath), { recursive: true });
  formatPoolFile(poolPath, creation); // false: another process created it first; open theirs
}

function creationOf(options: PoolCreateOptions): PoolCreation {
  if (options === null || typeof options !== 'object') {
    throw new RegionError('INVALID', 'pool creation needs a size, e.g. { size: \'64MiB\' }');
  }
  const sizeBytes = parseSize(options.size, 'pool size');
  if (sizeBytes % BLOCK_BYTES !== 0) {
    throw new RegionError('INVALID', `pool size ${sizeBytes} is not a multiple of ${BLOCK_BYTES}`);
  }
  const tooLarge = machineLimitProblem(sizeBytes);
  if (tooLarge !== null) throw new RegionError('INVALID', tooLarge);
  const access = changeAccess({ socketMode: SOCKET_MODE_DEFAULT, group: null }, accessChangeOf(options.access));
  return { sizeBytes, access };
}

/**
 * Exclusive mode: the pool's kernel runs in this process, under its lock (taken by the
 * caller), and this process is its only caller; the pool handle owns the device from here.
 * `kernel` is the pool mounted on the device (or on a ScratchDevice over it).
 */
export function kernelHere(poolPath: string, device: FileDevice, kernel = mountHere(device, poolPath)): PoolHandle {
  const who = currentCredentials();
  const syscalls = new Syscalls(kernel, {
    path: path.resolve(poolPath),
    persistence: device.persistence,
    owner: fs.fstatSync(device.fd).uid,
    mode: 'exclusive',
    server: null,
    applyAccess: () => {}, // no regiond: the one that starts later reads the setting from the pool
  });
  const client = new Client(0, { pid: process.pid, uid: who.uid, gids: [...who.gids], process: ProcessHandle.self() });
  return new PoolHandle(poolPath, new LocalTransport(poolPath, syscalls, client, device));
}

export function mountHere(device: PmDevice, poolPath: string): RegionManager {
  return RegionManager.mount(device, poolPath, kernelOptionsFromEnvironment());
}

/**
 * fsck of a pool that is not open anywhere (it may be too damaged to mount): reports every
 * problem; with repair, fixes what needs no guessing. Without repair, a pool that regiond
 * serves to clients is checked by that regiond (Pool.check of the mounted pool); a repair
 * needs the pool closed (BUSY).
 */
export function checkPool(poolPath: string, options: { repair?: boolean; persistence?: Persistence } = {}): CheckReport {
  checkOptions(options, ['repair', 'persistence'], 'checkPool options');
  const repair = options.repair ?? false;
  const persistence = options.persistence ?? 'auto';
  const device = new FileDevice(poolPath, { persistence });
  try {
    lockExclusive(device, poolPath);
    return inspectPool(device, poolPath, repair);
  } catch (error) {
    if (!(error instanceof PoolServed)) throw error;
    if (repair) {
      throw new RegionError('BUSY', `a repair needs pool ${poolPath} closed, and regiond (pid ${error.pid}) serves it to `
        + `${count(error.clients, 'client')}: close them, then repair; a check without repair runs through regiond`);
    }
    return checkServed(poolPath, persistence) ?? inspectPool(device, poolPath, false);
  } finally {
    device.close();
  }
}

/** The check of the pool's regiond, or null if none answers now. */
function checkServed(poolPath: string, persistence: Persistence): CheckReport | null {
  const connection = connectRegiond(poolPath, { start: false, persistence });
  if (connection === null) return null;
  const pool = new PoolHandle(poolPath, connection);
  try {
    return pool.check();
  } finally {
    pool.close();
  }
}

/** lockExclusive found the pool served by a regiond with clients. */
class PoolServed extends RegionError {
  constructor(poolPath: string, readonly pid: number, readonly clients: number) {
    super('BUSY', `pool ${poolPath} is served by regiond (pid ${pid}) to ${count(clients, 'other client')}; `
      + `open it with mode 'shared' or 'auto'`);
  }
}

export function lockExclusive(device: FileDevice, poolPath: string): void {
  if (tryLockPool(device)) return;
  const regiond = retireRegiond(poolPath); // an idle regiond leaves for an exclusive opener
  if (regiond?.retiring && waitLockPool(device, DAEMON_LOCK_WAIT_MS)) return;
  if (regiond && !regiond.retiring) throw new PoolServed(poolPath, regiond.pid, regiond.clients);
  const holder = poolHolder(device);
  if (holder > 0 && isRegiond(holder)) throw socketMissing(socketAddress(poolPath), holder); // it serves, but its socket does not answer
  if (openedHere(device)) {
    const message = `pool ${poolPath} is already open in exclusive mode in this process; use that pool or close it`;
    throw new RegionError('BUSY', message);
  }
  const who = holder > 0 ? `pid ${holder}` : 'another process';
  throw new RegionError('BUSY', `pool ${poolPath} is held exclusively by ${who}; open it with mode 'shared' or stop that process`);
}

/** Whether another descriptor of this process has the pool file open (a second exclusive open here). */
function openedHere(device: FileDevice): boolean {
  const { dev, ino } = fs.fstatSync(device.fd);
  return fs.readdirSync('/proc/self/fd').some((fd) => {
    if (Number(fd) === device.fd) return false;
    try {
      const st = fs.statSync(`/proc/self/fd/${fd}`);
      return st.dev === dev && st.ino === ino;
    } catch {
      return false; // closed meanwhile, or the directory's own descriptor
    }
  });
}

function checkPoolMode(mode: unknown): PoolMode {
  if (mode !== 'shared' && mode !== 'exclusive' && mode !== 'auto') throw new RegionError('INVALID', `mode must be 'shared', 'exclusive' or 'auto', got ${String(mode)}`);
  return mode;
}
