// The pool's system calls, one method per request op, for both modes: called in-process by
// the local transport (exclusive mode) and by regiond for each request of a connection
// (shared mode). protocol.ts has already checked every argument's type and range in both
// cases; this layer checks what depends on the pool (the caller's permissions, offsets
// against the region's size, budgets) and calls the region manager or a working copy.
// Calls run one at a time: the kernel is synchronous (pmsyncs may come several at once).
//
// Permissions are checked on every call, against the caller's credentials as the kernel gave
// them (SO_PEERCRED and /proc in shared mode, the process's own in exclusive mode), never
// against anything a client says. A region handle on the wire is only a name (slot +
// generation); holding one grants nothing by itself.

import fs from 'node:fs';
import { poolInfoOf } from './pool_info.js';
import type { Access, CheckReport, PoolAccess, PoolInfo, RegionInfo, SyncStats } from '../api.js';
import { LIST_PAGE_REGIONS, MAP_CHUNK_BYTES, MAPPINGS_PER_CLIENT_MAX, PAGE_BYTES } from '../constants.js';
import { RegionError } from '../errors.js';
import { type AccessChange, changeAccess, requirePoolOwner } from '../kernel/access.js';
import { accessDenied, checkAccess } from '../kernel/permission.js';
import { damagedRegion } from '../kernel/quarantine.js';
import { checkNewName, checkRegionSize } from '../kernel/names.js';
import type { RegionManager, RegionRef } from '../kernel/region_manager.js';
import { finishMeter, startMeter } from '../map/sync_stats.js';
import { assert, unreachable } from '../util/assert.js';
import type { Request, WireRef } from '../wire/protocol.js';
import type { Client } from './client_record.js';
import { StagingArea } from './staging.js';
import { type SharedCopyDescription, WorkingCopy } from './working_copy.js';

/** regiond, as `info` reports it (shared mode). */
export interface ServerView {
  pid: number;
  startedAt: number;
  clients(): Client[];
}

/** The pool the calls act on, and how it is served. */
export interface PoolContext {
  path: string;
  persistence: PoolInfo['persistence'];
  /** The pool file's uid: it (or root) alone may grow the pool or change its access. */
  owner: number;
  mode: PoolInfo['mode'];
  /** regiond (shared mode); null in exclusive mode. */
  server: ServerView | null;
  /** Applies a new access setting outside the pool before it is kept (regiond: its socket); undone with the previous one if keeping fails. */
  applyAccess(next: PoolAccess): void;
}

/** The map reply: what the client's mapShared() needs. */
export interface MapResult {
  /** This connection's name for the mapping (unmap takes it). */
  mapping: number;
  /** The process's mapper slot in the copy's control area; -1 for a read-only mapping (never frozen: it cannot store). */
  slot: number;
  description: SharedCopyDescription;
  writable: boolean;
}

export interface Reply {
  result: unknown;
  data?: Uint8Array;
  /** A descriptor passed with the reply (SCM_RIGHTS); the connection closes it once sent. */
  fd?: number;
}

export type SyncCaller = { client: Client; reported: boolean }; // reported: see WorkingCopy.pmsync

export class Syscalls {
  /** Shared working copies of mapped regions, by slot. */
  private readonly copies = new Map<number, WorkingCopy>();
  /** Mappings (read-only ones too) of each copy, by slot. */
  private readonly mapped = new Map<number, number>();
  private readonly stagings = new StagingArea();

  constructor(
    private readonly kernel: RegionManager,
    private readonly pool: PoolContext,
  ) {}

  /** The error that stopped the kernel (fail-stop after a device error in a commit), or null. */
  get failure(): RegionError | null {
    return this.kernel.failure;
  }

  call(client: Client, request: Request): Reply {
    switch (request.op) {
      case 'hello': case 'close': case 'retire':
        throw new RegionError('PROTOCOL', `${request.op} is handled by the transport, not the kernel`);
      case 'setAccess': return { result: this.setAccess(client, { socketMode: request.socketMode, group: request.group }) };
      case 'create': return { result: this.create(client, request.name, request.size, request.mode) };
      case 'open': return { result: this.open(client, request.name, request.access) };
      case 'stat': return { result: this.kernel.info(this.kernel.lookup(request.name)) };
      case 'regionInfo': return { result: this.kernel.info(request.region) };
      case 'list': return { result: this.kernel.listPage(request.after, LIST_PAGE_REGIONS) };
      case 'rename': return { result: this.rename(client, request.from, request.to) };
      case 'resize': return { result: this.resize(client, request.name, request.size) };
      case 'remove': return { result: this.remove(client, request.name) };
      case 'chmod': return { result: this.chmod(client, request.name, request.mode) };
      case 'grow': return { result: this.grow(client, request.size) };
      case 'info': return { result: this.info() };
      case 'check': return { result: this.check(request.repair) };
      case 'read': return this.read(client, request.region, request.offset, request.length);
      case 'write': return { result: this.write(client, request.region, request.offset, request.data) };
      case 'stage': return { result: this.stage(client, request.region, request.offset, request.length) };
      case 'stageData': return { result: this.stagings.data(client, request.staging, request.at, request.data) };
      case 'stageCommit': return { result: this.stageCommit(client, request.staging) };
      case 'stageAbort': return { result: this.stagings.abort(client, request.staging) };
      case 'map': return this.map(client, request.region, request.access, request.offset, request.length);
      case 'unmap': return { result: this.unmap(client, request.mapping) };
      case 'pmsync': case 'discard': return { result: this.sync(client, request) };
      default: return unreachable(request, 'request op');
    }
  }

  // ---- namespace ---------------------------------------------------------------------------

  private create(client: Client, name: string, size: number, mode: number): RegionInfo {
    const owner = { mode, uid: client.peer.uid, gid: client.peer.gids[0] ?? 0 };
    return this.kernel.create(checkNewName(name), checkRegionSize(size, this.kernel.capacityBytes), owner);
  }

  private open(client: Client, name: string, access: Access): { region: WireRef; info: RegionInfo } {
    const ref = this.kernel.lookup(name);
    const info = this.kernel.info(ref);
    checkAccess(info, client.credentials, access);
    client.opened.add(ref.index);
    return { region: ref, info };
  }

  private rename(client: Client, from: string, to: string): null {
    const ref = this.kernel.lookup(from);
    requireOwner(this.kernel.info(ref), client, 'rename');
    this.kernel.rename(ref, checkNewName(to, 'new region name'));
    return null;
  }

  private resize(client: Client, name: string, size: number): null {
    const ref = this.kernel.lookup(name);
    checkAccess(this.kernel.info(ref), client.credentials, 'rw');
    const sizeBytes = checkRegionSize(size, this.kernel.capacityBytes);
    this.requireUnmapped(ref, 'resize');
    this.kernel.resize(ref, sizeBytes);
    return null;
  }

  private remove(client: Client, name: string): null {
    const ref = this.kernel.lookup(name);
    requireOwner(this.kernel.info(ref), client, 'remove');
    this.requireUnmapped(ref, 'remove');
    this.kernel.remove(ref);
    return null;
  }

  private chmod(client: Client, name: string, mode: number): null {
    const ref = this.kernel.lookup(name);
    const info = this.kernel.info(ref);
    requireOwner(info, client, 'chmod');
    this.kernel.setOwner(ref, { mode, uid: info.uid, gid: info.gid });
    return null;
  }

  /** The pool file grows: its owner's (or root's) decision, as for any file. */
  private grow(client: Client, size: number): null {
    requirePoolOwner(client.peer.uid, this.pool.owner, 'grow', this.pool.path);
    this.kernel.grow(size);
    return null;
  }

  /**
   * Who may connect to regiond: the pool owner's (or root's) setting. The process that runs
   * the kernel must be able to give the socket to the group (in exclusive mode it is the one
   * that will start regiond), so a group it is not in is refused now, not at regiond's start.
   */
  private setAccess(client: Client, change: AccessChange): PoolAccess {
    requirePoolOwner(client.peer.uid, this.pool.owner, 'change who may reach', this.pool.path);
    const previous = this.kernel.access;
    const next = changeAccess(previous, change);
    const euid = process.geteuid?.() ?? 0;
    if (euid !== 0 && next.group !== null && next.group !== previous.group && !(process.getgroups?.() ?? []).includes(next.group)) {
      throw new RegionError('PERMISSION', `uid ${euid} is not a member of group ${next.group}, so the pool's regiond could not give its socket to that group; pick one of its groups, or ask root`);
    }
    this.pool.applyAccess(next);
    try {
      this.kernel.setAccess(next);
    } catch (error) {
      this.pool.applyAccess(previous);
      throw error;
    }
    return next;
  }

  private info(): PoolInfo {
    const info = poolInfoOf(this.kernel, this.pool.path, this.pool.persistence, this.pool.mode);
    const server = this.pool.server;
    if (server === null) return info;
    const clients = server.clients().map((c) => ({ pid: c.peer.pid, uid: c.peer.uid, regions: c.opened.size, mappings: c.mappings.size }));
    return { ...info, server: { pid: server.pid, startedAt: server.startedAt, clients } };
  }

  /**
   * fsck of the open pool. Mounting did what repair does (replay, stale superblock copies);
   * anything else needs the pool closed, so repair here is refused, not ignored.
   */
  private check(repair: boolean): CheckReport {
    if (repair) throw new RegionError('INVALID', `check with repair needs pool ${this.pool.path} closed: close it, then checkPool(path, { repair: true }) or regions fsck --repair`);
    return this.kernel.check();
  }

  // ---- data ----------------------------------------------------------------------------------

  /** Committed bytes, and the region's version so a client reading in chunks sees one snapshot. */
  private read(client: Client, ref: WireRef, offset: number, length: number): Reply {
    const info = this.kernel.info(ref);
    checkAccess(info, client.credentials, 'ro');
    checkRange(offset, length, info.sizeBytes);
    const out = new Uint8Array(length);
    const page = new Uint8Array(PAGE_BYTES);
    for (let p = Math.floor(offset / PAGE_BYTES); p * PAGE_BYTES < offset + length; p++) {
      this.kernel.readPage(ref, p, page);
      const from = Math.max(offset, p * PAGE_BYTES);
      const to = Math.min(offset + length, (p + 1) * PAGE_BYTES);
      out.set(page.subarray(from - p * PAGE_BYTES, to - p * PAGE_BYTES), from - offset);
    }
    return { result: { epoch: info.epoch, modifiedAt: info.modifiedAt, sizeBytes: info.sizeBytes }, data: out };
  }

  private write(client: Client, ref: WireRef, offset: number, bytes: Uint8Array): SyncStats {
    const info = this.kernel.info(ref);
    checkAccess(info, client.credentials, 'rw');
    checkRange(offset, bytes.length, info.sizeBytes);
    return this.commitBytes(ref, offset, bytes);
  }

  private stage(client: Client, ref: WireRef, offset: number, length: number): { staging: number } {
    const info = this.kernel.info(ref);
    checkAccess(info, client.credentials, 'rw');
    checkRange(offset, length, info.sizeBytes);
    return this.stagings.begin(client, ref, offset, length);
  }

  private stageCommit(client: Client, staging: number): SyncStats {
    const { ref, offset, bytes } = this.stagings.take(client, staging);
    return this.write(client, ref, offset, bytes);
  }

  /**
   * One commit of bytes at offset. With a working copy they go through it, as if a mapping had
   * stored them (mappings see them at once; the pmsync commits every dirty page: no isolation
   * between writers). Without one the pages go straight to one commit (partial ones read first).
   */
  private commitBytes(ref: WireRef, offset: number, bytes: Uint8Array): SyncStats {
    const copy = this.copies.get(ref.index);
    if (copy && copy.ref.generation === ref.generation) {
      copy.store(offset, bytes);
      return copy.pmsync();
    }
    const end = offset + bytes.length;
    const pages: { page: number; bytes: Uint8Array }[] = [];
    for (let p = Math.floor(offset / PAGE_BYTES); p * PAGE_BYTES < end; p++) {
      const from = Math.max(offset, p * PAGE_BYTES);
      const to = Math.min(end, (p + 1) * PAGE_BYTES);
      if (from === p * PAGE_BYTES && to === (p + 1) * PAGE_BYTES) {
        pages.push({ page: p, bytes: bytes.subarray(from - offset, to - offset) });
        continue;
      }
      const page = new Uint8Array(PAGE_BYTES);
      this.kernel.readPage(ref, p, page);
      page.set(bytes.subarray(from - offset, to - offset), from - p * PAGE_BYTES);
      pages.push({ page: p, bytes: page });
    }
    const meter = startMeter(this.kernel.device);
    return finishMeter(this.kernel.device, meter, this.kernel.commitPages(ref, pages));
  }

  // ---- mappings ------------------------------------------------------------------------------

  /** The reply passes the working copy as a descriptor of the access granted (read-only for 'ro'). */
  private map(client: Client, ref: WireRef, access: Access, offset: number, length: number): Reply {
    const info = this.kernel.info(ref);
    checkAccess(info, client.credentials, access);
    if (info.damaged) throw damagedRegion(info.name); // a working copy would show unreadable pages as zeros
    if (offset % PAGE_BYTES !== 0) throw new RegionError('INVALID', `map offset ${offset} must be a multiple of ${PAGE_BYTES}`);
    if (length === 0) throw new RegionError('INVALID', 'map length is 0');
    if (length > MAP_CHUNK_BYTES) throw new RegionError('INVALID', `map length ${length} exceeds ${MAP_CHUNK_BYTES} bytes (one ArrayBuffer); map windows with offset and length`);
    checkRange(offset, length, info.sizeBytes);
    if (client.mappings.size >= MAPPINGS_PER_CLIENT_MAX) throw new RegionError('NO_SPACE', `a client may hold at most ${MAPPINGS_PER_CLIENT_MAX} mappings; unmap some first`);
    const copy = this.copyFor(ref, info);
    const mapper = access === 'rw';
    const fd = copy.descriptor(access);
    let slot = -1;
    try {
      if (mapper) slot = copy.addMapper({ pid: client.peer.pid, uid: client.peer.uid, process: client.peer.process });
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    const mapping = client.handle();
    client.mappings.set(mapping, { ref, pid: client.peer.pid, mapper });
    this.mapped.set(ref.index, (this.mapped.get(ref.index) ?? 0) + 1);
    const result: MapResult = { mapping, slot, description: copy.describe(), writable: mapper };
    return { result, fd };
  }

  private unmap(client: Client, mapping: number): null {
    const record = client.mappings.get(mapping);
    if (!record) throw new RegionError('NOT_FOUND', `no mapping ${mapping} on this connection`);
    client.mappings.delete(mapping);
    const copy = this.copies.get(record.ref.index);
    if (!copy || copy.ref.generation !== record.ref.generation) return null;
    this.mapped.set(record.ref.index, (this.mapped.get(record.ref.index) ?? 1) - 1);
    if (record.mapper) copy.removeMapper(record.pid);
    return null;
  }

  private sync(client: Client, { op, region, reported }: Request & { op: 'pmsync' | 'discard' }): SyncStats {
    const [outcome] = this.syncTogether(op, region, [{ client, reported: reported === true }]);
    if (outcome instanceof RegionError) throw outcome;
    assert(outcome !== undefined, 'syncTogether: one outcome per caller');
    return outcome;
  }

  /**
   * pmsync commits the copy's dirty pages, discard puts them back, in one shootdown for every
   * caller whose access checks out (regiond's pmsyncs of one region in one event-loop turn);
   * see WorkingCopy.pmsync for `reported`. One outcome per caller: stats, or why it may not.
   */
  syncTogether(op: 'pmsync' | 'discard', ref: WireRef, callers: SyncCaller[]): (SyncStats | RegionError)[] {
    const info = this.kernel.info(ref);
    const denied = callers.map(({ client }) => accessDenied(info, client.credentials, 'rw'));
    const reported = new Set(callers.filter((c, i) => c.reported && denied[i] === null).map((c) => c.client.peer.pid));
    const copy = this.copies.get(ref.index);
    let stats: SyncStats = { epoch: info.epoch, pages: 0, bytes: 0, linesFlushed: 0, fences: 0, ns: 0 };
    if (denied.includes(null) && copy?.ref.generation === ref.generation) {
      stats = op === 'pmsync' ? copy.pmsync(reported) : copy.discard(reported);
    }
    return denied.map((error) => error ?? { ...stats });
  }

  /** The region's shared working copy, made at its first map (again if the slot was reused). */
  private copyFor(ref: RegionRef, info: RegionInfo): WorkingCopy {
    const existing = this.copies.get(ref.index);
    if (existing && existing.ref.generation === ref.generation) return existing;
    if (existing) this.closeCopy(ref.index);
    const copy = new WorkingCopy(this.kernel, { index: ref.index, generation: ref.generation }, info);
    this.copies.set(ref.index, copy);
    return copy;
  }

  /** resize and remove: BUSY while mapped; an unmapped copy is dropped (its size or life ends). */
  private requireUnmapped(ref: RegionRef, what: string): void {
    const copy = this.copies.get(ref.index);
    if (!copy) return;
    const mappings = this.mapped.get(ref.index) ?? 0;
    if (copy.ref.generation === ref.generation && mappings > 0) {
      throw new RegionError('BUSY', `cannot ${what} region "${copy.info.name}" while it is mapped (${mappings} mappings); unmap it first`);
    }
    this.closeCopy(ref.index); // stores left by unmapped mappings are dropped, as in exclusive mode
  }

  private closeCopy(index: number): void {
    const copy = this.copies.get(index);
    if (!copy) return;
    this.copies.delete(index);
    this.mapped.delete(index);
    copy.close();
  }

  /** A connection ended (closed, or its process died): release everything it held. */
  forget(client: Client): void {
    // A pool that closes unmaps first; mappings left here belong to a client that died or
    // dropped the connection, whose stores may never have been reported: each copy it wrote
    // to drops it at once and compares every page at its next pmsync.
    const wrote = new Set<WorkingCopy>();
    for (const record of client.mappings.values()) {
      const copy = this.copies.get(record.ref.index);
      if (!copy || copy.ref.generation !== record.ref.generation) continue;
      this.mapped.set(record.ref.index, (this.mapped.get(record.ref.index) ?? 1) - 1);
      if (record.mapper) wrote.add(copy);
    }
    for (const copy of wrote) copy.removeMapper(client.peer.pid, true);
    client.mappings.clear();
    this.stagings.forget(client);
    client.opened.clear();
  }

  /** regiond exits: every working copy goes (stores not pmsynced are dropped, as in a crash). */
  closeAll(): void {
    for (const index of [...this.copies.keys()]) this.closeCopy(index);
  }
}

function checkRange(offset: number, length: number, sizeBytes: number): void {
  if (offset + length > sizeBytes) throw new RegionError('INVALID', `range [${offset}, ${offset + length}) is outside the region of ${sizeBytes} bytes`);
}

function requireOwner(region: RegionInfo, client: Client, what: string): void {
  const uid = client.peer.uid;
  if (uid !== 0 && uid !== region.uid) throw new RegionError('PERMISSION', `uid ${uid} may not ${what} region "${region.name}": only its owner (uid ${region.uid}) may`);
}
