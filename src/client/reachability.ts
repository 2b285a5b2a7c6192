// Why a pool cannot be reached, told precisely. A pool file is its owner's only, so another
// user reaches the pool only while its regiond runs, and only if the pool's access setting
// admits them: such a user can neither start regiond nor open the pool exclusively, and each
// of those dead ends gets its own message here instead of a bare EACCES.
//
// Who holds the pool's lock is read from /proc/locks, which every user may read: the pool's
// POSIX "holder" lock (src/pm/pool_file.ts) names the pid of the regiond or exclusive opener. That needs
// no descriptor of the pool file, which another user cannot open.

import fs from 'node:fs';
import { RegionError } from '../errors.js';
import type { SocketAddress } from '../wire/socket_path.js';

/** Whether this process may open the pool file read-write: the owner, root, or (old pools) anyone the file's bits admit. */
export function mayOpenPoolFile(poolPath: string): boolean {
  try {
    fs.accessSync(poolPath, fs.constants.R_OK | fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The pid holding a POSIX lock on the pool file, from /proc/locks; 0 if none is listed. */
export function lockHolderOf(poolPath: string): number {
  let stat: fs.Stats;
  let table: string;
  try {
    stat = fs.statSync(poolPath);
    table = fs.readFileSync('/proc/locks', 'utf8');
  } catch {
    return 0;
  }
  // "1: POSIX  ADVISORY  WRITE 4242 fd:01:123456 1 1": device as hex major:minor, then the inode.
  const major = Number((BigInt(stat.dev) >> 8n) & 0xfffn);
  const minor = Number((BigInt(stat.dev) & 0xffn) | ((BigInt(stat.dev) >> 12n) & 0xfff00n));
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const [, kind, , , pid, where] = fields;
    if (kind !== 'POSIX' || pid === undefined || where === undefined) continue;
    const [devMajor, devMinor, ino] = where.split(':');
    if (Number(ino) === stat.ino && parseInt(devMajor ?? '', 16) === major && parseInt(devMinor ?? '', 16) === minor && Number(pid) > 0) return Number(pid);
  }
  return 0;
}

/** No regiond answers and this user may not start one. */
export function notServed(address: SocketAddress): RegionError {
  const owner = ownerOf(address.poolPath);
  return new RegionError('PERMISSION', `pool ${address.poolPath} is not served: no regiond runs and only its owner (uid ${owner}) can start one: \`regions daemon -p ${address.poolPath}\``);
}

/** The owner or root holds the pool exclusively: no regiond can serve it meanwhile. */
export function heldExclusively(address: SocketAddress, holder: number): RegionError {
  const who = holder > 0 ? `pid ${holder}` : 'another process';
  return new RegionError('BUSY', `pool ${address.poolPath} is held exclusively by ${who}; no regiond can serve it until that process closes it`);
}

/** The lock holder is a regiond, but nothing answers at its socket's name. */
export function socketMissing(address: SocketAddress, holder: number): RegionError {
  return new RegionError(
    'BUSY',
    `pool ${address.poolPath} is held by regiond (pid ${holder}), but its socket ${address.name} in ${address.directory} does not answer ` +
      `(deleted or replaced?); regiond binds it again within about a second unless it is stopped or stuck: retry, or stop it with \`kill ${holder}\``,
  );
}

/** connect() was refused with EACCES: what the socket admits, and who can change it. */
export function accessDenied(address: SocketAddress, cause: unknown): RegionError {
  const uid = process.geteuid?.() ?? -1;
  let socket = 'its socket';
  try {
    const stat = fs.statSync(`${address.directory}/${address.name}`);
    socket = `its socket (mode 0${(stat.mode & 0o777).toString(8)}, group ${stat.gid})`;
  } catch {
    // gone meanwhile: say less
  }
  const message =
    `cannot connect to the regiond of pool ${address.poolPath}: ${socket} does not admit uid ${uid}; ` +
    `who may connect is the pool's setting: its owner (uid ${ownerOf(address.poolPath)}) or root can widen it with \`regions set-access -p ${address.poolPath} --socket-mode 0660 --group GROUP\``;
  return new RegionError('PERMISSION', message, { cause });
}

function ownerOf(poolPath: string): string {
  try {
    return String(fs.statSync(poolPath).uid);
  } catch {
    return 'unknown';
  }
}
