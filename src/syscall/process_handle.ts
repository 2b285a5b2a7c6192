// A client's process as regiond holds it: a pidfd taken from the connection itself at accept
// (native/peer.c), never a bare pid. A pid names a process only while it lives; after a
// client exits (its connection may live on in a child it forked) the number can belong to any
// later process, of any user, and the shootdown's signal terminates a process that does not
// handle it. Signals therefore go through the pidfd, which fails once its process has exited.
//
// One handle is shared by the connection and by each working copy that counts the process
// as a mapper; the pidfd is closed when the last of them lets go. In exclusive mode the
// kernel's only caller is its own process, which lives as long as the kernel: it needs no
// pidfd, and its signals are delivered to the calling thread before kill() returns.

import { addon } from '../arch/addon.js';
import { assert } from '../util/assert.js';

export class ProcessHandle {
  private holders = 1;

  private constructor(
    readonly pid: number,
    /** The pidfd; -1 for this process itself (see the header) or after the last release. */
    private fd: number,
    /** This process itself: the kernel and its caller are one (exclusive mode). */
    readonly own = false,
  ) {}

  /** This process (exclusive mode: the kernel and its caller are one). */
  static self(): ProcessHandle {
    return new ProcessHandle(process.pid, -1, true);
  }

  /** The peer of a connected socket, as the kernel recorded it at connect(). */
  static ofPeer(socketFd: number, pid: number): ProcessHandle {
    return new ProcessHandle(pid, addon.peerPidfd(socketFd).pidfd);
  }

  /** True once the process has exited (a zombie has: it stores nothing more). */
  get exited(): boolean {
    if (this.own) return false;
    return this.fd < 0 || addon.pidfdExited(this.fd);
  }

  /** Sends signal to this process and no other: false if it has exited. EPERM throws. */
  signal(signal: number): boolean {
    if (this.own) {
      process.kill(process.pid, signal);
      return true;
    }
    if (this.fd < 0) return false;
    return addon.pidfdSignal(this.fd, signal);
  }

  /** Another holder (a working copy that counts the process as a mapper). */
  acquire(): ProcessHandle {
    assert(this.holders > 0, 'process handle: acquired after its last release');
    this.holders++;
    return this;
  }

  release(): void {
    assert(this.holders > 0, 'process handle: released more often than held');
    if (--this.holders > 0 || this.own) return;
    addon.socketClose(this.fd); // close(2); never retried, as for sockets
    this.fd = -1;
  }
}
