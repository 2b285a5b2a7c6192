// regiond's connections: framing, the hello, one reply per request, and the end of a client.
//
// The server runs on Node's event loop (net.Server over the socket regiond bound natively); a
// request is served synchronously in the 'data' callback that completes its frame (a pmsync
// at the end of that turn, with the others of its region: sync_queue.ts), so requests run one
// at a time, like system calls on one CPU. Who a client is comes from the kernel (SO_PEERCRED).
//
// What a hostile or broken client can do: send frames that fail the checks in protocol.ts
// (it gets a PROTOCOL or INVALID reply), send a frame that is too long, speak before its
// hello or with another protocol version, or stall in the middle of a frame (its connection
// is closed), leave replies unread (closed past REPLY_BACKLOG_BYTES_MAX), or die (forgotten:
// its mappings and staged writes are released). None of these stops regiond. Nor can it hold
// every place: a connection that says no hello within helloTimeoutMs is closed (however it
// dribbles bytes), and a uid other than root and the pool's owner holds at most
// CLIENTS_PER_UID_MAX connections. Asking regiond to leave (retire) and changing who may
// connect (setAccess) are the pool owner's or root's.

import fs from 'node:fs';
import type net from 'node:net';
import { addon } from '../arch/addon.js';
import type { PoolAccess } from '../api.js';
import { CLIENTS_MAX, CLIENTS_PER_UID_MAX, FRAME_TIMEOUT_MS, PROTOCOL_VERSION, REPLY_BACKLOG_BYTES_MAX, REQUEST_BYTES_MAX } from '../constants.js';
import { RegionError } from '../errors.js';
import { requirePoolOwner } from '../kernel/access.js';
import { assert } from '../util/assert.js';
import { decodePayload, encodeFrame, FrameReader, parseRequest, type Request, requestId } from '../wire/protocol.js';
import { descriptorOf, peerOf, socketFd } from './peer_identity.js';
import { socketAdmits } from './socket_binding.js';
import { type SyncOutcome, SyncQueue } from './sync_queue.js';
import { Client, type Peer } from '../syscall/client_record.js';
import type { Syscalls } from '../syscall/syscalls.js';

export interface HelloResult {
  protocol: number;
  pid: number;
  startedAt: number;
  pool: string;
}

export interface ServerOptions {
  pool: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** Called when the last client has been gone for idleExitMs (0: never), or an exclusive opener asks an idle regiond to leave. */
  idleExitMs: number;
  onIdle: () => void;
  /** The kernel stopped (fail-stop after a device error in a commit): regiond must exit. */
  onFailure: (error: RegionError) => void;
  /** Internal errors (bugs) are logged here, and answered; regiond goes on. */
  log: (line: string) => void;
  /** The pool file's owner: not limited per uid; may retire regiond and change access. */
  ownerUid: number;
  /** A connection that has not said hello this long after it was accepted is closed. */
  helloTimeoutMs: number;
}

export class RegiondServer {
  readonly pid = process.pid;
  readonly syncs: SyncQueue;
  private readonly connections = new Set<Connection>();
  /** Every accepted socket until it closes, served or not (stop ends them all). */
  private readonly sockets = new Set<net.Socket>();
  private idleTimer: NodeJS.Timeout | undefined;
  private nextClient = 1;
  private stopped = false;

  constructor(
    readonly syscalls: Syscalls,
    readonly options: ServerOptions,
  ) {
    this.syncs = new SyncQueue(syscalls, (client) => this.othersReadable(client));
    this.armIdle();
  }

  attach(server: net.Server): void {
    server.on('connection', (socket: net.Socket) => this.accept(socket));
  }

  clients(): Client[] {
    return [...this.connections].map((c) => c.client);
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => {}); // 'close' follows every error
    if (this.stopped) return void socket.destroy();
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    let peer: Peer;
    try {
      peer = peerOf(socket);
    } catch (error) {
      this.options.log(`regiond: dropped a connection whose peer is unknown: ${(error as Error).message}`);
      return void socket.destroy();
    }
    const refusal = this.refusal(peer);
    if (refusal !== null) {
      peer.process.release();
      return void socket.end(encodeFrame({ id: null, ok: false, error: { code: 'BUSY', message: refusal } }), () => socket.destroy());
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const connection = new Connection(this, socket, new Client(this.nextClient++, peer));
    this.connections.add(connection);
  }

  /** Why a new connection of peer is refused (BUSY), or null: places are bounded in all and per uid. */
  private refusal(peer: Peer): string | null {
    if (this.connections.size >= CLIENTS_MAX) return `regiond (pid ${this.pid}) serves ${CLIENTS_MAX} clients already; retry when one has closed its pool`;
    if (peer.uid === 0 || peer.uid === this.options.ownerUid) return null;
    let held = 0;
    for (const connection of this.connections) if (connection.client.peer.uid === peer.uid) held++;
    if (held < CLIENTS_PER_UID_MAX) return null;
    return `regiond (pid ${this.pid}) serves ${held} connections of uid ${peer.uid} already, the most one user may hold (${CLIENTS_PER_UID_MAX}); close some of its pools first`;
  }

  /** Whether a connection other than client's has bytes in its socket (see sync_queue.ts). */
  private othersReadable(client: Client): boolean {
    if (this.connections.size <= 1) return false;
    const fds = new Int32Array(this.connections.size);
    let i = 0;
    for (const connection of this.connections) fds[i++] = connection.client === client ? -1 : descriptorOf(connection.socket);
    return addon.socketsReadable(fds);
  }

  /** After an access change, connections the socket would not admit now are closed, as the kernel would refuse them. */
  dropUnadmitted(access: PoolAccess): void {
    for (const { client, socket } of this.connections) {
      if (!socketAdmits(access, this.options.ownerUid, client.peer.uid, client.peer.gids)) socket.destroy();
    }
  }

  /** The connection closed, for whatever reason: release what its client held. */
  forget(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    this.syscalls.forget(connection.client);
    connection.client.peer.process.release(); // after the copies have let go of it as a mapper
    if (this.connections.size === 0) this.armIdle();
  }

  private armIdle(): void {
    if (this.options.idleExitMs <= 0 || this.stopped) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.options.onIdle(), this.options.idleExitMs);
  }

  /**
   * Fail-stop: the kernel refuses every call from now on, so regiond leaves and the next open
   * mounts the pool afresh (recovery by the journal). The reply that carried the error is
   * flushed first, or given up after FRAME_TIMEOUT_MS if its client does not read it.
   */
  failStop(error: RegionError, last: Connection): void {
    if (this.stopped) return;
    this.stopped = true;
    this.options.log(`regiond: the pool's kernel stopped; exiting so that the next open recovers the pool: ${error.message}`);
    let done = false;
    const leave = (): void => {
      if (done) return;
      done = true;
      this.options.onFailure(error);
    };
    setTimeout(leave, FRAME_TIMEOUT_MS).unref();
    last.endThen(leave);
  }

  /** Ends every connection and releases every working copy (regiond is exiting). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    for (const connection of [...this.connections]) this.forget(connection);
    for (const socket of this.sockets) socket.destroy();
    this.syscalls.closeAll();
  }
}

class Connection {
  private readonly reader = new FrameReader(REQUEST_BYTES_MAX);
  private greeted = false;
  private ended = false;
  private syncing = false; // a pmsync waits for its group; requests after it wait too, so replies keep their order
  private timing = false; // the socket's frame timeout is armed (set only when that changes: each call costs)
  private readonly held: Buffer[] = [];
  /** A deadline, not an idle timeout: bytes dribbled before hello do not extend it. */
  private readonly helloTimer: NodeJS.Timeout;
  /** socket.write calls not yet completed. */
  private inFlight = 0;
  /** Replies waiting for inFlight to reach 0 (one with a descriptor is first among them). */
  private readonly queued: { frame: Uint8Array; fd: number }[] = [];

  constructor(
    private readonly server: RegiondServer,
    readonly socket: net.Socket,
    readonly client: Client,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('timeout', () => socket.destroy()); // a frame begun and not finished in time
    this.helloTimer = setTimeout(() => void (this.greeted || socket.destroy()), server.options.helloTimeoutMs);
    socket.on('close', () => {
      clearTimeout(this.helloTimer);
      server.forget(this);
      for (const { fd } of this.queued.splice(0)) closeFd(fd);
    });
  }

  private receive(chunk: Buffer): void {
    if (this.ended) return;
    let payloads: Buffer[];
    try {
      payloads = this.reader.push(chunk);
    } catch (error) {
      return this.fail(null, error); // the stream cannot be resynchronised
    }
    for (const payload of payloads) {
      if (this.ended) return;
      if (this.syncing) this.held.push(payload);
      else this.serve(payload);
    }
    if (this.ended || this.timing === this.reader.partial) return;
    this.timing = this.reader.partial;
    this.socket.setTimeout(this.timing ? FRAME_TIMEOUT_MS : 0);
  }

  private serve(payload: Buffer): void {
    let id: number | null = null;
    try {
      const { header, data } = decodePayload(payload);
      id = requestId(header);
      const op = (header as { op?: unknown } | null)?.op;
      if (!this.greeted && op !== 'hello') throw new RegionError('PROTOCOL', `the first request must be hello, got ${typeof op === 'string' ? op.slice(0, 40) : typeof op}`);
      this.dispatch(parseRequest(header, data));
    } catch (error) {
      if (!this.greeted) return this.fail(id, error); // no hello, no conversation
      this.send({ id, ok: false, error: this.errorBody(error) });
    }
    const failure = this.server.syscalls.failure;
    if (failure !== null) this.server.failStop(failure, this);
  }

  private dispatch(request: Request): void {
    if (request.op === 'hello') return this.hello(request.id, request.protocol);
    if (request.op === 'retire') return this.retire(request.id);
    if (request.op === 'close') {
      this.server.forget(this);
      this.send({ id: request.id, ok: true, result: null });
      return this.end();
    }
    if (MUTATING.has(request.op) && this.client.peer.process.exited) return void this.socket.destroy(); // a dead process's last request: dropped, as a kernel drops a killed process's system call
    if (request.op === 'pmsync') return this.waitForSync(request);
    const reply = this.server.syscalls.call(this.client, request);
    this.send({ id: request.id, ok: true, result: reply.result ?? null }, reply.data, reply.fd);
    // The reply goes out first; then connections the new setting no longer admits are closed.
    if (request.op === 'setAccess') this.server.dropUnadmitted(reply.result as PoolAccess);
  }

  private waitForSync(request: Request & { op: 'pmsync' }): void {
    this.syncing = true;
    const live = (): boolean => !this.ended && !this.socket.destroyed;
    const answer = (outcome: SyncOutcome): void => this.synced(request.id, outcome);
    this.server.syncs.add({ client: this.client, request, live, answer });
  }

  private synced(id: number, outcome: SyncOutcome): void {
    this.syncing = false;
    if (outcome.ok) this.send({ id, ok: true, result: outcome.stats });
    else this.send({ id, ok: false, error: this.errorBody(outcome.error) });
    const failure = this.server.syscalls.failure;
    if (failure !== null) return this.server.failStop(failure, this);
    while (!this.syncing && !this.ended && this.held.length > 0) this.serve(this.held.shift() as Buffer);
  }

  private hello(id: number, protocol: number): void {
    if (this.greeted) throw new RegionError('PROTOCOL', 'hello was already received on this connection');
    if (protocol !== PROTOCOL_VERSION) {
      const message = `regiond (pid ${this.server.pid}) speaks protocol ${PROTOCOL_VERSION}, this client ${protocol}: use one version of region-system for the pool's clients and its regiond (stop regiond with \`kill ${this.server.pid}\`; the next open starts the client's version)`;
      return this.fail(id, new RegionError('PROTOCOL', message));
    }
    this.greeted = true;
    clearTimeout(this.helloTimer);
    const result: HelloResult = { protocol: PROTOCOL_VERSION, pid: this.server.pid, startedAt: this.server.options.startedAt, pool: this.server.options.pool };
    this.send({ id, ok: true, result });
  }

  /** An exclusive opener (only the owner or root can open the file) asks an idle regiond to leave: it does if this is its only client. */
  private retire(id: number): void {
    requirePoolOwner(this.client.peer.uid, this.server.options.ownerUid, 'stop the regiond of', this.server.options.pool);
    const others = this.server.clients().length - 1;
    this.send({ id, ok: true, result: { retiring: others === 0, clients: others } });
    if (others > 0) return;
    this.end();
    setImmediate(() => this.server.options.onIdle());
  }

  private fail(id: number | null, error: unknown): void {
    this.send({ id, ok: false, error: this.errorBody(error) });
    this.end();
  }

  /**
   * Replies go out in order. Node's sockets cannot pass descriptors, so a reply that carries
   * one (a working copy) is sent with sendmsg natively, and only once every earlier reply has
   * left Node's queue; the descriptor is this reply's own and is closed once sent or dropped.
   */
  private send(header: unknown, data?: Uint8Array, fd = -1): void {
    const frame = encodeFrame(header, data);
    if (this.ended || this.socket.destroyed) return closeFd(fd);
    if (fd < 0 && this.queued.length === 0) return this.write(frame);
    this.queued.push({ frame, fd });
    this.flushQueued();
  }

  private write(frame: Uint8Array): void {
    this.inFlight++;
    this.socket.write(frame, () => {
      this.inFlight--;
      this.flushQueued();
    });
    if (this.socket.writableLength > REPLY_BACKLOG_BYTES_MAX) this.socket.destroy(); // it does not read its replies
  }

  private flushQueued(): void {
    while (this.queued.length > 0 && this.inFlight === 0) {
      const next = this.queued.shift();
      assert(next !== undefined, 'regiond: a queued reply');
      if (this.ended || this.socket.destroyed) {
        closeFd(next.fd);
        continue;
      }
      if (next.fd < 0) {
        this.write(next.frame);
        continue;
      }
      let sent = 0;
      try {
        sent = addon.socketSendSome(socketFd(this.socket), next.frame, next.fd);
      } catch {
        sent = 0; // the peer is gone: 'close' follows
      } finally {
        closeFd(next.fd);
      }
      // Its earlier replies were all read (Node's queue is empty), yet no room for a small
      // one: a client that asks for descriptors and reads nothing is not served.
      if (sent === 0) return void this.socket.destroy();
      if (sent < next.frame.length) this.write(next.frame.subarray(sent));
    }
  }

  /** Our last reply goes out, then the socket closes, whether or not the peer ever closes its side. */
  private end(): void {
    this.endThen(() => {});
  }

  /** Like end(), then `after` once the last reply has left. */
  endThen(after: () => void): void {
    this.ended = true;
    this.socket.end(() => {
      this.socket.destroy();
      after();
    });
  }

  private errorBody(error: unknown): { code: string; message: string } {
    if (error instanceof RegionError) return { code: error.code, message: error.message };
    const message = error instanceof Error ? error.message : String(error);
    this.server.options.log(`regiond: internal error serving pid ${this.client.peer.pid}: ${error instanceof Error ? (error.stack ?? message) : message}`);
    return { code: 'IO', message: `regiond: internal error: ${message}` };
  }
}

/** Requests that change the pool: not run for a client that died after sending them. */
const MUTATING = new Set<Request['op']>(['create', 'rename', 'resize', 'remove', 'chmod', 'grow', 'write', 'stageCommit', 'pmsync', 'setAccess']);

function closeFd(fd: number): void {
  if (fd >= 0) fs.closeSync(fd);
}
