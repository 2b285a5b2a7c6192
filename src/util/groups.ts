// Group names and gids, as the system's name service knows them (getent, so NSS sources such
// as LDAP count; /etc/group if getent is missing). Node has no getgrnam.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { RegionError } from '../errors.js';

interface GroupEntry {
  name: string;
  gid: number;
}

/** The group entry for a name or a numeric gid, or null if the system knows none. */
function lookup(key: string): GroupEntry | null {
  const run = spawnSync('getent', ['group', key], { encoding: 'utf8' });
  const lines = run.error === undefined ? (run.status === 0 ? run.stdout : '') : readEtcGroup(key);
  const [name, , gid] = lines.split('\n')[0]?.split(':') ?? [];
  if (name === undefined || name === '' || gid === undefined || !/^\d+$/.test(gid)) return null;
  return { name, gid: Number(gid) };
}

function readEtcGroup(key: string): string {
  try {
    return fs.readFileSync('/etc/group', 'utf8').split('\n').find((line) => line.split(':')[/^\d+$/.test(key) ? 2 : 0] === key) ?? '';
  } catch {
    return '';
  }
}

/** A gid from a group name or a number; a number needs no entry (a group may exist only as a gid). */
export function groupId(group: string | number): number {
  if (typeof group === 'number' || /^\d+$/.test(group)) return Number(group);
  const entry = lookup(group);
  if (entry === null) throw new RegionError('INVALID', `no group named "${group}" on this system`);
  return entry.gid;
}

/** The name of a gid, or null if it has none. */
export function groupName(gid: number): string | null {
  return lookup(String(gid))?.name ?? null;
}
