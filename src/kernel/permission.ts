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

export function checkAccess(region: { name: string; mode: number; uid: number; gid: number }, who: Credentials, access: Access): void {
  if (who.uid === 0) return;
  const shift = who.uid === region.uid ? 6 : who.gids.includes(region.gid) ? 3 : 0;
  const bits = (region.mode >> shift) & 0o7;
  const needed = access === 'rw' ? 0o6 : 0o4;
  if ((bits & needed) !== needed) {
    const modeText = region.mode.toString(8).padStart(4, '0');
    throw new RegionError('PERMISSION', `uid ${who.uid} may not open region "${region.name}" ${access === 'rw' ? 'read-write' : 'read-only'} (mode ${modeText}, owner ${region.uid}:${region.gid})`);
  }
}
