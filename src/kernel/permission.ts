// Region modes, checked like a file's: owner bits if the uid matches, else group bits if a
// gid matches, else other bits. uid 0 may do anything.

import { RegionError } from '../errors.js';
import type { Access } from './types.js';

export interface Credentials {
  uid: number;
  gids: readonly number[];
}

export function currentCredentials(): Credentials {
  const uid = process.getuid?.() ?? 0;
  const gids = [process.getgid?.() ?? 0, ...(process.getgroups?.() ?? [])];
  return { uid, gids };
}

type Protected = { name: string; mode: number; uid: number; gid: number };

export function checkAccess(region: Protected, who: Credentials, access: Access): void {
  const denied = accessDenied(region, who, access);
  if (denied) throw denied;
}

/** Why `who` may not have `access` to the region (PERMISSION), or null if it may. */
export function accessDenied(region: Protected, who: Credentials, access: Access): RegionError | null {
  if (who.uid === 0) return null;
  const shift = who.uid === region.uid ? 6 : who.gids.includes(region.gid) ? 3 : 0;
  const bits = (region.mode >> shift) & 0o7;
  const needed = access === 'rw' ? 0o6 : 0o4;
  if ((bits & needed) === needed) return null;
  const modeText = region.mode.toString(8).padStart(4, '0');
  return new RegionError('PERMISSION', `uid ${who.uid} may not open region "${region.name}" ${access === 'rw' ? 'read-write' : 'read-only'} (mode ${modeText}, owner ${region.uid}:${region.gid})`);
}
