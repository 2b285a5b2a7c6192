// Reaching a pool's regiond, and starting one if none runs (DESIGN.md section 7).
//
// connect: try the socket; if nobody listens and we may start one, run the starter (which
// spawns regiond detached and relays its report), then try again. Every loop is bounded
// (CONNECT_ATTEMPTS_MAX, pauses doubling up to CONNECT_PAUSE_MS_MAX). Races end well:
//   - two clients start two regionds: one takes the pool lock and serves; the other sees the
//     socket served and exits quietly ('served'); both clients connect to the winner;
//   - a regiond exiting after its idle period refuses or drops a connection: the client
//     retries; the new regiond it starts waits for the old one's lock.
// Nobody answering is not always "no regiond": the pool's lock (seen in /proc/locks) may be
// held by a regiond whose socket name was deleted or replaced, which binds it again within
// SOCKET_CHECK_MS; the client waits for that (bounded) instead of starting a rival. Only the
// pool file's owner or root can start regiond; anyone else is told the pool is not served.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Persistence } from '../api.js';
import { addon } from '../arch/addon.js';
import { CONNECT_ATTEMPTS_MAX, CONNECT_PAUSE_MS_MAX, CONNECT_PAUSE_MS_MIN, CONNECT_TIMEOUT_MS, DAEMON_START_TIMEOUT_MS, REBIND_POLL_MS, REBIND_WAIT_MS } from '../constants.js';
import { ERROR_CODES, type ErrorCode, isRegionError, RegionError } from '../errors.js';
import { sleepMs } from '../util/sleep.js';
import { Connection } from './connection.js';
import { isRegiond } from '../regiond/identity.js';
import { accessDenied, heldExclusively, lockHolderOf, mayOpenPoolFile, notServed, socketMissing } from './reachability.js';
import type { StartReport } from '../regiond/regiond.js';
import { type SocketAddress, socketAddress, withDirectory } from '../wire/socket_path.js';

const STARTER = fileURLToPath(new URL('../regiond/starter.js', import.meta.url));
/** Seconds of idleness before a regiond started here exits (tests shorten it). */
const IDLE_EXIT_ENV = 'REGIONS_IDLE_EXIT';

export interface ConnectOptions {
  /** Start a regiond if none runs (mode 'shared'); else return null (mode 'auto'). */
  start: boolean;
  persistence: Persistence;
}

/** A connection to the pool's regiond; null if none runs and options.start is false. */
export function connectRegiond(poolPath: string, options: ConnectOptions): Connection | null {
  const address = socketAddress(poolPath);
  if (!fs.existsSync(address.poolPath)) {
    if (!options.start) return null; // auto: the exclusive open says what is wrong
    throw new RegionError('NOT_FOUND', `pool ${poolPath} does not exist; create it with createPool or \`regions mkpool\``);
  }
  return withDirectory(address, (dirfd) => {
    let pause = CONNECT_PAUSE_MS_MIN;
    let last = 'no attempt';
    for (let attempt = 0; attempt < CONNECT_ATTEMPTS_MAX; attempt++) {
      const outcome = connectOnce(dirfd, address);
      if (outcome instanceof Connection) return outcome;
      last = outcome.why;
      if (outcome.kind === 'absent') {
        const next = whenAbsent(dirfd, address, options);
        if (next === 'exclusive') return null;
        if (next === 'now') continue; // connect at once
        if (next !== 'later') return next;
      }
      sleepMs(pause);
      pause = Math.min(2 * pause, CONNECT_PAUSE_MS_MAX);
    }
    throw new RegionError('SERVER_GONE', `could not reach a regiond for pool ${poolPath} in ${CONNECT_ATTEMPTS_MAX} attempts (last: ${last}); run \`regions daemon -p ${poolPath}\` in a terminal to see why`);
  });
}

type Failed = { kind: 'absent' | 'dropped'; why: string };

/** tryConnect, with EACCES explained: who may connect is the pool's setting, and who can change it. */
function connectOnce(dirfd: number, address: SocketAddress): Connection | Failed {
  try {
    return tryConnect(dirfd, address);
  } catch (error) {
    if (isRegionError(error, 'PERMISSION') && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'EACCES') throw accessDenied(address, error);
    throw error;
  }
}

/**
 * Nobody answers at the socket. A regiond that holds the pool's lock binds its socket again
 * shortly (deleted or replaced): wait for it. Else start one, if this user may (the pool
 * file's owner or root: regiond must open the file); else say why the pool is unreachable.
 * 'now': connect again at once; 'later': after a pause; 'exclusive': open it in this process.
 */
function whenAbsent(dirfd: number, address: SocketAddress, options: ConnectOptions): Connection | 'now' | 'later' | 'exclusive' {
  const holder = lockHolderOf(address.poolPath);
  if (holder > 0 && isRegiond(holder)) return awaitRebind(dirfd, address, holder) ?? 'later';
  if (!mayStartRegiond(address.poolPath)) {
    if (!options.start && mayOpenPoolFile(address.poolPath)) return 'exclusive'; // a pool from before access was a setting, its file still open to this user
    if (holder > 0) throw heldExclusively(address, holder);
    throw notServed(address);
  }
  if (!options.start) return 'exclusive';
  const report = startRegiond(address, options.persistence);
  if (report.state === 'ready' || report.state === 'served') return 'now';
  if (report.state === 'busy' && report.regiond) return awaitRebind(dirfd, address, report.holder) ?? 'later';
  throw startFailure(address, report);
}

/** Waits up to REBIND_WAIT_MS for the regiond holding the pool to answer again; null if it let go of the pool meanwhile. */
function awaitRebind(dirfd: number, address: SocketAddress, holder: number): Connection | null {
  const deadline = Date.now() + REBIND_WAIT_MS;
  while (Date.now() < deadline) {
    const outcome = connectOnce(dirfd, address);
    if (outcome instanceof Connection) return outcome;
    if (outcome.kind === 'absent' && lockHolderOf(address.poolPath) !== holder) return null; // it exited: start over
    sleepMs(REBIND_POLL_MS);
  }
  throw socketMissing(address, holder);
}

/** regiond serves a pool only as the file's owner or root, so only they may start one. */
function mayStartRegiond(poolPath: string): boolean {
  const euid = process.geteuid?.() ?? 0;
  try {
    return euid === 0 || fs.statSync(poolPath).uid === euid;
  } catch {
    return false;
  }
}

/** One attempt: a greeted connection; 'absent' if nobody listens; 'dropped' if worth retrying. */
function tryConnect(dirfd: number, address: SocketAddress): Connection | Failed {
  let fd: number;
  try {
    fd = addon.socketConnect(dirfd, address.name, CONNECT_TIMEOUT_MS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') return { kind: 'absent', why: `${code}: no regiond listens` };
    if (code === 'ETIMEDOUT' || code === 'EAGAIN') return { kind: 'dropped', why: `${code}: regiond's backlog is full` };
    if (code === 'EACCES') throw new RegionError('PERMISSION', `cannot connect to the regiond of pool ${address.poolPath}: permission denied (the pool's access setting admits only some users: see 'regions info' and 'regions set-access')`, { cause: error });
    throw new RegionError('IO', `cannot connect to the regiond of pool ${address.poolPath}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return Connection.hello(fd, address.poolPath);
  } catch (error) {
    // A regiond on its way out closes connections it had not yet accepted.
    if (isRegionError(error, 'SERVER_GONE')) return { kind: 'dropped', why: error.message };
    throw error;
  }
}

/** Runs the starter (see starter.ts) and returns regiond's report. */
export function startRegiond(address: SocketAddress, persistence: Persistence): StartReport {
  const idle = process.env[IDLE_EXIT_ENV];
  const options = ['--persistence', persistence, ...(idle !== undefined && /^\d+(\.\d+)?$/.test(idle) ? ['--idle-exit', idle] : [])];
  const run = spawnSync(process.execPath, [STARTER, address.poolPath, String(DAEMON_START_TIMEOUT_MS), ...options], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: '/',
    timeout: DAEMON_START_TIMEOUT_MS + CONNECT_TIMEOUT_MS,
    encoding: 'utf8',
  });
  const line = (run.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const report = JSON.parse(line) as StartReport;
    if (typeof report === 'object' && report !== null && typeof report.state === 'string') return report;
  } catch {
    // fall through
  }
  const why = run.error?.message ?? (`${run.stderr ?? ''}`.trim() || `exit status ${run.status ?? run.signal}`);
  return { state: 'error', code: 'IO', message: `could not start regiond for pool ${address.poolPath}: ${why}` };
}

/** Why a start ended without a regiond to talk to: the pool held by a process that is not regiond, or regiond's own error. */
function startFailure(address: SocketAddress, report: StartReport & { state: 'busy' | 'error' }): RegionError {
  if (report.state === 'busy') return report.regiond ? socketMissing(address, report.holder) : heldExclusively(address, report.holder);
  const code = ERROR_CODES.includes(report.code) ? report.code : ('IO' as ErrorCode);
  return new RegionError(code, `regiond could not start: ${report.message}`);
}

/**
 * An exclusive opener found the pool locked: if a regiond holds it and serves nobody, ask it
 * to exit (the caller then waits for the lock). null if no regiond listens.
 */
export function retireRegiond(poolPath: string): { pid: number; retiring: boolean; clients: number } | null {
  const address = socketAddress(poolPath);
  const connection = withDirectory(address, (dirfd) => {
    const outcome = tryConnect(dirfd, address);
    return outcome instanceof Connection ? outcome : null;
  });
  if (connection === null) return null;
  try {
    const { retiring, clients } = connection.request<{ retiring: boolean; clients: number }>('retire').result;
    return { pid: connection.server.pid, retiring, clients };
  } catch (error) {
    if (isRegionError(error, 'SERVER_GONE')) return null;
    throw error;
  } finally {
    connection.close();
  }
}
