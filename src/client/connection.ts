// The client's end of a regiond connection: synchronous requests over a blocking socket
// (native/socket.c), like system calls. One request at a time; the reply names its request.
//
// Failures of the connection become RegionErrors: the peer gone (ECONNRESET, EPIPE) is
// SERVER_GONE, no reply in REQUEST_TIMEOUT_MS is TIMEOUT, a reply that does not parse is
// PROTOCOL. After any of them the connection is closed and every later call is SERVER_GONE:
// a reply may still be on its way, so the stream cannot be trusted again. The data committed
// before is intact; opening the pool again starts a new regiond if none runs.
//
// Who answers: anyone may bind a socket at the name a pool's regiond uses, first, in a shared
// directory. So before a single byte is sent the kernel is asked who listens (SO_PEERCRED):
// only the pool file's owner or root may serve it. Nothing regiond says is used as a path:
// working copies arrive as descriptors (SCM_RIGHTS), and a descriptor this process did not
// ask for is closed at once.

import fs from 'node:fs';
import { addon } from '../arch/addon.js';
import { PROTOCOL_VERSION, REPLY_BYTES_MAX, REQUEST_TIMEOUT_MS } from '../constants.js';
import { ERROR_CODES, type ErrorCode, RegionError } from '../errors.js';
import { decodePayload, encodeFrame, type Op } from '../wire/protocol.js';
import type { HelloResult } from '../regiond/server.js';
import type { FdResponse, Response, Transport } from './transport.js';

/** A reply and the descriptors passed with it (the caller closes them). */
interface Exchanged<T> {
  response: Response<T>;
  fds: number[];
}

const GONE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ENOTCONN', 'ESHUTDOWN', 'EBADF']);

export class Connection implements Transport {
  readonly mode = 'shared' as const;
  private fd: number;
  private nextId = 1;
  private broken: RegionError | null = null;
  /** The regiond at the other end (from its hello). */
  server: HelloResult = { protocol: 0, pid: 0, startedAt: 0, pool: '' };

  private constructor(
    fd: number,
    readonly poolPath: string,
  ) {
    this.fd = fd;
  }

  /**
   * Checks who listens, then says hello on a connected socket (which the connection owns from
   * now on, even on failure).
   */
  static hello(fd: number, poolPath: string): Connection {
    const connection = new Connection(fd, poolPath);
    try {
      authenticateServer(fd, poolPath);
      const { result } = connection.request<HelloResult>('hello', { protocol: PROTOCOL_VERSION });
      if (result?.protocol !== PROTOCOL_VERSION || !Number.isSafeInteger(result.pid)) {
        throw new RegionError('PROTOCOL', `regiond of pool ${poolPath} answered hello with ${JSON.stringify(result)}; expected protocol ${PROTOCOL_VERSION}`);
      }
      connection.server = result;
      return connection;
    } catch (error) {
      connection.close();
      throw error;
    }
  }

  get closed(): boolean {
    return this.broken !== null;
  }

  /** One request; a descriptor passed with the reply (none is expected) is closed. */
  request<T>(op: Op, args: Record<string, unknown> = {}, data?: Uint8Array): Response<T> {
    const { response, fds } = this.exchange<T>(op, args, data);
    closeAll(fds);
    return response;
  }

  /** One request whose reply passes exactly one descriptor (a working copy), which the caller owns. */
  requestFd<T>(op: Op, args: Record<string, unknown> = {}): FdResponse<T> {
    const { response, fds } = this.exchange<T>(op, args);
    const [fd, ...extra] = fds;
    closeAll(extra);
    if (fd === undefined || extra.length > 0) {
      if (fd !== undefined) closeAll([fd]);
      throw this.breakWith(new RegionError('PROTOCOL', `regiond's reply to ${op} passed ${fds.length} descriptors; expected 1`));
    }
    return { result: response.result, data: response.data, fd };
  }

  private exchange<T>(op: Op, args: Record<string, unknown>, data?: Uint8Array): Exchanged<T> {
    if (this.broken) throw new RegionError(this.broken.code === 'CLOSED' ? 'CLOSED' : 'SERVER_GONE', this.broken.message);
    const id = this.nextId++;
    let frame: { data: Uint8Array; fds: number[] };
    try {
      addon.socketSend(this.fd, encodeFrame({ id, op, ...args }, data), REQUEST_TIMEOUT_MS);
      frame = addon.socketReceive(this.fd, REPLY_BYTES_MAX, REQUEST_TIMEOUT_MS);
    } catch (error) {
      throw this.breakWith(this.transportError(op, error));
    }
    try {
      return { response: this.reply<T>(id, op, frame.data), fds: frame.fds };
    } catch (error) {
      closeAll(frame.fds);
      throw error;
    }
  }

  private reply<T>(id: number, op: Op, payload: Uint8Array): Response<T> {
    let header: unknown;
    let data: Uint8Array;
    try {
      ({ header, data } = decodePayload(payload, REPLY_BYTES_MAX));
    } catch (error) {
      throw this.breakWith(new RegionError('PROTOCOL', `regiond's reply to ${op} is malformed: ${(error as Error).message}`));
    }
    const reply = header as { id?: unknown; ok?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
    if (reply?.ok === false && reply.error !== undefined) {
      const code = ERROR_CODES.includes(reply.error.code as ErrorCode) ? (reply.error.code as ErrorCode) : 'PROTOCOL';
      const error = new RegionError(code, String(reply.error.message ?? 'regiond gave no reason'));
      if (reply.id !== id) throw this.breakWith(error); // refused before reading our request (e.g. too many clients)
      throw error;
    }
    if (reply?.id !== id || reply.ok !== true) throw this.breakWith(new RegionError('PROTOCOL', `regiond's reply to ${op} (request ${id}) is out of step: ${JSON.stringify(header).slice(0, 200)}`));
    return { result: reply.result as T, data };
  }

  private transportError(op: Op, error: unknown): RegionError {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const who = `regiond${this.server.pid > 0 ? ` (pid ${this.server.pid})` : ''} of pool ${this.poolPath}`;
    if (GONE_CODES.has(code)) return new RegionError('SERVER_GONE', `${who} is gone (${code} during ${op}); committed data is intact; open the pool again to start a new regiond`, { cause: error });
    if (code === 'ETIMEDOUT') return new RegionError('TIMEOUT', `${who} did not answer ${op} within ${REQUEST_TIMEOUT_MS} ms; the connection is closed; open the pool again`, { cause: error });
    if (code === 'EMSGSIZE') return new RegionError('PROTOCOL', `${who} sent a reply to ${op} larger than ${REPLY_BYTES_MAX} bytes`, { cause: error });
    return new RegionError('IO', `talking to ${who} (${op}): ${(error as Error).message}`, { cause: error });
  }

  /** The connection is unusable from now on; later calls get the same error as SERVER_GONE. */
  private breakWith(error: RegionError): RegionError {
    if (!this.broken) {
      this.broken = error;
      this.release();
    }
    return error;
  }

  /** Ends the connection (regiond forgets the client and its mappings). Idempotent. */
  close(): void {
    if (this.broken) return;
    this.broken = new RegionError('CLOSED', `pool ${this.poolPath} is closed`);
    this.release();
  }

  private release(): void {
    if (this.fd < 0) return;
    try {
      addon.socketClose(this.fd);
    } finally {
      this.fd = -1;
    }
  }
}

function closeAll(fds: number[]): void {
  for (const fd of fds) fs.closeSync(fd);
}

/**
 * The process listening at the pool's socket must be the pool file's owner (who alone can
 * open the pool and so run its regiond) or root; anyone else who took the socket's name is
 * refused before it receives anything.
 */
function authenticateServer(fd: number, poolPath: string): void {
  let server: { pid: number; uid: number };
  let owner: number;
  try {
    server = addon.peerCredentials(fd);
    owner = fs.statSync(poolPath).uid;
  } catch (error) {
    throw new RegionError('IO', `cannot tell who serves pool ${poolPath}: ${(error as Error).message}`, { cause: error });
  }
  if (server.uid === owner || server.uid === 0) return;
  throw new RegionError('PERMISSION', `the process listening at the socket of pool ${poolPath} (pid ${server.pid}, uid ${server.uid}) is neither the pool file's owner (uid ${owner}) nor root: it cannot be the pool's regiond, so nothing was sent to it; remove that socket file, or ask uid ${server.uid} why it took the name`);
}
