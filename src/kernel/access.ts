// Who may reach a pool through regiond, and who may change that: the checks, in one place for
// both modes. The setting itself (PoolAccess) lives in the superblock (src/format/superblock.ts).

import type { PoolAccess } from '../format/superblock.js';
import { RegionError } from '../errors.js';
import { accessProblem } from '../format/superblock.js';

/** A change of the setting as it travels (group names already resolved to gids): fields left out keep their value. */
export interface AccessChange {
  socketMode?: number;
  group?: number | null;
}

/** The setting after a change; INVALID if the result is not a valid setting. */
export function changeAccess(current: PoolAccess, change: AccessChange): PoolAccess {
  const next: PoolAccess = {
    socketMode: change.socketMode ?? current.socketMode,
    group: change.group === undefined ? current.group : change.group,
  };
  const problem = accessProblem(next);
  if (problem !== null) throw new RegionError('INVALID', problem);
  return next;
}

/** Only the pool's owner (the pool file's uid) or root may change its access or grow it. */
export function requirePoolOwner(uid: number, ownerUid: number, what: string, pool: string): void {
  if (uid !== 0 && uid !== ownerUid) throw new RegionError('PERMISSION', `uid ${uid} may not ${what} pool ${pool}: only its owner (uid ${ownerUid}) or root may`);
}

/** "socket 0660, group 1001" as messages and `regions info` say it. */
export function describeAccess(access: PoolAccess, groupName?: (gid: number) => string | null): string {
  const mode = `0${access.socketMode.toString(8)}`;
  if (access.group === null) return `socket mode ${mode}, no group`;
  const name = groupName?.(access.group) ?? null;
  return `socket mode ${mode}, group ${access.group}${name !== null ? ` (${name})` : ''}`;
}
