// Where a pool's regiond listens: a Unix socket in the pool's own directory, named from a short
// hash of the pool's file name, so every process that can name the pool finds it and the OS
// guards it with the directory's and the socket's permissions.
//
//   data/app.pool  ->  data/.regions-<first 8 hex digits of sha256("app.pool")>.sock
//
// sun_path holds 108 bytes; pool paths may be longer. So nobody binds or connects to the
// socket by its full path: the directory is opened and the socket is reached as
// /proc/self/fd/<dirfd>/<name> (native/socket.c).

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SOCKET_NAME_HASH_HEX, SOCKET_NAME_PREFIX } from '../constants.js';
import { RegionError } from '../errors.js';

export interface SocketAddress {
  /** The pool file, absolute. */
  poolPath: string;
  /** The pool's directory, absolute: the socket lives here. */
  directory: string;
  /** The socket's file name in directory. */
  name: string;
}

export function socketAddress(poolPath: string): SocketAddress {
  const absolute = path.resolve(poolPath);
  const hash = createHash('sha256').update(path.basename(absolute)).digest('hex').slice(0, SOCKET_NAME_HASH_HEX);
  return { poolPath: absolute, directory: path.dirname(absolute), name: `${SOCKET_NAME_PREFIX}${hash}.sock` };
}

/** Opens the socket's directory (close it with fs.closeSync); NOT_FOUND or PERMISSION as the OS says. */
export function openDirectory(address: SocketAddress): number {
  try {
    return fs.openSync(address.directory, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new RegionError('NOT_FOUND', `the directory of pool ${address.poolPath} does not exist`, { cause: error });
    if (code === 'EACCES') throw new RegionError('PERMISSION', `cannot open the directory of pool ${address.poolPath}: permission denied`, { cause: error });
    throw new RegionError('IO', `cannot open the directory of pool ${address.poolPath}: ${(error as Error).message}`, { cause: error });
  }
}

/** A path to `name` in the directory open as dirfd, short whatever the directory's depth. */
export function shortPath(dirfd: number, name: string): string {
  return `/proc/self/fd/${dirfd}/${name}`;
}

/** Runs use with the directory open, and closes it. */
export function withDirectory<T>(address: SocketAddress, use: (dirfd: number) => T): T {
  const dirfd = openDirectory(address);
  try {
    return use(dirfd);
  } finally {
    fs.closeSync(dirfd);
  }
}
