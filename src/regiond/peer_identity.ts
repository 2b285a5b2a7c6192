// Who is at the other end of an accepted connection, as the kernel says it (never as the
// client says): SO_PEERCRED, a pidfd of that process, and its supplementary groups.

import fs from 'node:fs';
import type net from 'node:net';
import { addon } from '../arch/addon.js';
import type { Peer } from '../syscall/client_record.js';
import { ProcessHandle } from '../syscall/process_handle.js';

/** The kernel's word on who connected: SO_PEERCRED, a pidfd of that process, the supplementary groups of its pid. */
export function peerOf(socket: net.Socket): Peer {
  const fd = socketFd(socket);
  const credentials = addon.peerCredentials(fd);
  const process = ProcessHandle.ofPeer(fd, credentials.pid);
  const gids = [credentials.gid];
  for (const gid of supplementaryGroups(credentials.pid)) if (!gids.includes(gid)) gids.push(gid);
  if (process.exited) {
    process.release();
    throw new Error(`pid ${credentials.pid} exited before it was accepted`); // its groups may be another process's
  }
  return { pid: credentials.pid, uid: credentials.uid, gids, process };
}

/** net.Socket has no public descriptor; its libuv handle has one (`fd`, on Unix). */
export function socketFd(socket: net.Socket): number {
  const fd = descriptorOf(socket);
  if (fd < 0) throw new Error('the connection has no descriptor');
  return fd;
}

/** The socket's descriptor, or -1 once it has none (destroyed). */
export function descriptorOf(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** The `Groups:` line of /proc/<pid>/status (empty if the process is already gone). */
function supplementaryGroups(pid: number): number[] {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return [];
  }
  const line = status.split('\n').find((l) => l.startsWith('Groups:'));
  if (line === undefined) return [];
  return line
    .slice('Groups:'.length)
    .trim()
    .split(/\s+/)
    .filter((word) => /^\d+$/.test(word))
    .map(Number);
}
