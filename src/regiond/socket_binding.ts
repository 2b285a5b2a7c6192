// regiond's socket: bound next to the pool with the pool's access setting, and kept bound.
//
// Who may connect is a pool setting (PoolAccess, in the superblock), not the pool file's
// mode: the file is its owner's only. The socket is bound with mode 0600 (native/socket.c
// binds under a temporary name and renames it into place), then given the pool owner (when
// regiond runs as root) and the pool's group, and only then its mode: at no moment does it
// admit more than the setting says.
//
// The socket's name is only a directory entry: anyone who may write the directory can delete
// or replace it, which would leave the pool unreachable until regiond idles out (and a start
// would find the pool locked by a regiond nobody can reach). So regiond looks up its name
// every SOCKET_CHECK_MS and binds again if it no longer leads to its own socket.
//
// Changing the socket's owner, group and mode goes through an O_PATH descriptor of the
// socket opened with O_NOFOLLOW and checked (a socket, ours): a path could be swapped for a
// symlink to any file between the check and the change, and regiond may run as root.

import fs from 'node:fs';
import net from 'node:net';
import type { PoolAccess } from '../api.js';
import { addon } from '../arch/addon.js';
import { LISTEN_BACKLOG, SOCKET_CHECK_MS } from '../constants.js';
import { RegionError } from '../errors.js';
import { shortPath, type SocketAddress } from '../wire/socket_path.js';

/** Linux's O_PATH (fs.constants lacks it): a descriptor that names a file without opening it. */
const O_PATH = 0o10000000;
/** The mode a socket is bound with, before it is given its group and the pool's mode. */
const BIND_MODE = 0o600;

/** The permission bits the socket gets: with no group named, group bits equal other bits, so the socket's group is irrelevant. */
export function effectiveSocketMode(access: PoolAccess): number {
  if (access.group !== null) return access.socketMode;
  return (access.socketMode & ~0o070) | ((access.socketMode & 0o007) << 3);
}

/** Whether a process with these credentials may connect (write permission on the socket), as the kernel decides it. */
export function socketAdmits(access: PoolAccess, ownerUid: number, uid: number, gids: readonly number[]): boolean {
  if (uid === 0 || uid === ownerUid) return true; // the owner bits always hold rw (accessProblem)
  const mode = effectiveSocketMode(access);
  const inGroup = access.group !== null && gids.includes(access.group);
  return ((inGroup ? mode >> 3 : mode) & 0o2) !== 0;
}

export interface BindingOptions {
  dirfd: number;
  address: SocketAddress;
  access: PoolAccess;
  /** The pool file's owner: the socket's owner too when regiond runs as root. */
  ownerUid: number;
  /** Each listener, the first and each one bound again, is handed over to be served. */
  serve: (listener: net.Server) => void;
  log: (line: string) => void;
}

export class SocketBinding {
  private listener: net.Server | undefined;
  private identity = { dev: -1, ino: -1 };
  private access: PoolAccess;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: BindingOptions) {
    this.access = options.access;
    this.bind();
    this.timer = setInterval(() => this.check(), SOCKET_CHECK_MS);
    this.timer.unref(); // the listener keeps regiond alive, not this check
  }

  /** A new setting for the bound socket (bound again if its name is gone); throws, changing nothing, if it cannot be applied. */
  apply(access: PoolAccess): void {
    if (this.ours()) {
      this.change(access);
      this.access = access;
      return;
    }
    const previous = this.access;
    this.access = access;
    try {
      this.bind();
    } catch (error) {
      this.access = previous;
      throw error;
    }
  }

  /** Binds again if the socket's name no longer leads to our socket. */
  check(): void {
    if (this.listener === undefined || this.ours()) return;
    try {
      this.bind();
      this.options.log(`regiond: the socket ${this.options.address.name} was deleted or replaced; bound it again`);
    } catch (error) {
      this.options.log(`regiond: cannot bind ${this.options.address.name} again (retrying): ${(error as Error).message}`);
    }
  }

  /** Stops serving: closes the listener and removes the socket if its name is still ours. */
  close(): void {
    clearInterval(this.timer);
    this.listener?.close();
    const mine = this.listener !== undefined && this.ours();
    this.listener = undefined;
    if (mine) fs.unlinkSync(shortPath(this.options.dirfd, this.options.address.name));
  }

  private bind(): void {
    const { dirfd, address } = this.options;
    const fd = addon.socketListen(dirfd, address.name, BIND_MODE, LISTEN_BACKLOG);
    const listener = net.createServer();
    listener.on('error', (error) => this.options.log(`regiond: listener: ${error.message}`));
    listener.listen({ fd });
    try {
      this.identity = this.change(this.access);
    } catch (error) {
      listener.close();
      throw error;
    }
    const previous = this.listener;
    this.listener = listener;
    this.options.serve(listener);
    previous?.close(); // unreachable by name now; its accepted connections live on
  }

  private ours(): boolean {
    try {
      const stat = fs.lstatSync(shortPath(this.options.dirfd, this.options.address.name));
      return stat.dev === this.identity.dev && stat.ino === this.identity.ino;
    } catch {
      return false;
    }
  }

  /** Gives the socket at our name the setting's owner, group and mode; returns its identity. */
  private change(access: PoolAccess): { dev: number; ino: number } {
    const { dirfd, address, ownerUid } = this.options;
    const fd = fs.openSync(shortPath(dirfd, address.name), O_PATH | fs.constants.O_NOFOLLOW);
    try {
      const stat = fs.fstatSync(fd);
      const euid = process.geteuid?.() ?? 0;
      if (!stat.isSocket() || stat.uid !== (euid === 0 ? stat.uid : euid)) {
        throw new RegionError('IO', `${address.name} in ${address.directory} is not regiond's socket any more`);
      }
      const target = `/proc/self/fd/${fd}`; // the socket itself, whatever its name now leads to
      try {
        fs.chownSync(target, euid === 0 ? ownerUid : -1, access.group ?? (process.getegid?.() ?? -1)); // no group: back to regiond's own
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
        const message = `regiond (uid ${euid}) may not give its socket to group ${access.group}: it is not a member; run regiond as root or set another group with \`regions set-access\``;
        throw new RegionError('PERMISSION', message, { cause: error });
      }
      fs.chmodSync(target, effectiveSocketMode(access));
      return { dev: stat.dev, ino: stat.ino };
    } finally {
      fs.closeSync(fd);
    }
  }
}
