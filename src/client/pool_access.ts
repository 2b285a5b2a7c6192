// Who may reach a pool, changed in either mode (README, "Trust model"). A pool file is its
// owner's only; other users reach the pool through its regiond, whose socket admits whom the
// pool's access setting says. Only the pool's owner or root may change that setting.

import type { Pool, PoolAccess, PoolAccessOptions } from '../api.js';
import { RegionError } from '../errors.js';
import { PoolHandle } from './pool_handle.js';
import type { AccessChange } from '../kernel/access.js';
import { groupId } from '../util/groups.js';
import { checkOptions } from '../util/options.js';

/**
 * Sets who may connect to the pool's regiond: its socket's mode (0o600 to 0o666) and group.
 * Fields left out keep their value; `group: null` removes the group. Only the pool's owner or
 * root may; a running regiond applies it to its socket at once and closes the connections it
 * no longer admits. Kept in the pool (one atomic superblock update). Returns the new setting.
 */
export function setPoolAccess(pool: Pool, options: PoolAccessOptions): PoolAccess {
  const change = accessChangeOf(options);
  if (pool instanceof PoolHandle) return pool.call<PoolAccess>('setAccess', { ...change }).result; // the kernel checks who asks
  throw new RegionError('INVALID', 'setPoolAccess takes a pool returned by createPool or openPool');
}

/** @internal Options as the caller gives them, group names resolved to gids here (the caller's view of the system's groups). */
export function accessChangeOf(options: PoolAccessOptions | undefined): AccessChange {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new RegionError('INVALID', 'access must be an object { socketMode?, group? }');
  checkOptions(options, ['socketMode', 'group'], 'access options');
  const change: AccessChange = {};
  if (options.socketMode !== undefined) {
    if (typeof options.socketMode !== 'number') throw new RegionError('INVALID', `socketMode must be a number such as 0o660, got ${typeof options.socketMode}`);
    change.socketMode = options.socketMode;
  }
  if (options.group !== undefined) {
    if (options.group !== null && typeof options.group !== 'string' && typeof options.group !== 'number') throw new RegionError('INVALID', 'group must be a name, a gid or null');
    change.group = options.group === null ? null : groupId(options.group);
  }
  return change;
}
