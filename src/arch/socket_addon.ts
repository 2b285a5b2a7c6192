// The addon's Unix-socket calls (native/socket.c, serving.c, peer.c), part of NativeAddon
// (addon.ts, the one module that loads the addon).

export interface SocketAddon {
  // Unix stream sockets for shared mode. Addresses are
  // "/proc/self/fd/<dirfd>/<name>", so the directory may be at any depth; `name` is a plain
  // file name of at most 64 bytes (EINVAL otherwise). Waits poll against a deadline and retry
  // EINTR. Errors carry the errno name: ENOENT / ECONNREFUSED (nobody listens), EACCES,
  // ECONNRESET / EPIPE (the peer closed or died), ETIMEDOUT, EMSGSIZE (frame too long).

  /** A connected, non-blocking, close-on-exec socket; retries a full backlog until timeoutMs. */
  socketConnect(dirfd: number, name: string, timeoutMs: number): number;
  /**
   * A listening socket for net.Server's listen({ fd }): bound under a temporary name, given
   * `mode`, then renamed to `name` (replacing a dead server's socket file).
   */
  socketListen(dirfd: number, name: string, mode: number, backlog: number): number;
  /** Sends every byte before timeoutMs. */
  socketSend(fd: number, bytes: Uint8Array, timeoutMs: number): void;
  /**
   * Receives one frame (u32 LE length + payload): its payload, and the descriptors passed with
   * it (SCM_RIGHTS, close-on-exec; the caller owns and closes them). EMSGSIZE past maxBytes;
   * EPROTO (all closed) if the peer passed more than 4.
   */
  socketReceive(fd: number, maxBytes: number, timeoutMs: number): { data: Uint8Array; fds: number[] };
  /** One non-blocking sendmsg of bytes with passFd attached (-1: none): the bytes sent, 0 if the buffer is full. */
  socketSendSome(fd: number, bytes: Uint8Array, passFd: number): number;
  socketClose(fd: number): void;
  /** SO_PEERCRED of a connected socket: the peer's pid, uid and gid at connect(). */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  /**
   * A close-on-exec pidfd of a connected socket's peer: from the socket (SO_PEERPIDFD, exact)
   * or, on kernels without it, pidfd_open of the peer's pid (exact = false: the pid may have
   * been reused in between).
   */
  peerPidfd(fd: number): { pidfd: number; exact: boolean };
  /** pidfd_send_signal: true if sent, false if that process has exited; EPERM throws. */
  pidfdSignal(pidfd: number, signal: number): boolean;
  /** True once the pidfd's process has exited (zombies included). */
  pidfdExited(pidfd: number): boolean;
  /**
   * Whether any of the sockets (negative entries skipped; at most 1024) has bytes, a hang-up
   * or an error waiting: one poll() that does not wait.
   */
  socketsReadable(fds: Int32Array): boolean;
}
