// Reaching a pool's regiond, and starting one if none runs (DESIGN.md section 7).
//
// connect: try the socket; if nobody listens and we may start one, run the starter (which
// spawns regiond detached and relays its report), then try again. Every loop is bounded
// (CONNECT_ATTEMPTS_MAX, pauses doubling up to CONNECT_PAUSE_MS_MAX). Races end well:
//   - two clients start two regionds: one takes the pool lock and serves; the other sees the
//     socket served and exits quietly ('served'); both clients connect to the winner;
//   - a regiond exiting after its idle period refuses or drops a connection: the client
//     retries; the new regiond it starts waits for the old one's lock.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Persistence } from '../api.js';
import { addon } from '../arch/addon.js';
import { CONNECT_ATTEMPTS_MAX, CONNECT_PAUSE_MS_MAX, CONNECT_PAUSE_MS_MIN, CONNECT_TIMEOUT_MS, DAEMON_START_TIMEOUT_MS } from '../constants.js';
import { ERROR_CODES, type ErrorCode, isRegionError, RegionError } from '../errors.js';
import { sleepMs } from '../util/sleep.js';
import { Connection } from './client.js';
import type { StartReport } from './regiond.js';
import { type SocketAddress, socketAddress, withDirectory } from './socket_path.js';

const STARTER = fileURLToPath(new URL('./starter.js', import.meta.url));
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
      const outcome = tryConnect(dirfd, address);
      if (outcome instanceof Connection) return outcome;
      last = outcome.why;
      if (outcome.kind === 'absent') {
        if (!options.start) return null;
        const report = startRegiond(address, options.persistence);
        if (report.state === 'ready' || report.state === 'served') continue; // connect at once
        throw startFailure(address, report);
      }
      sleepMs(pause);
      pause = Math.min(2 * pause, CONNECT_PAUSE_MS_MAX);
    }
    throw new RegionError('SERVER_GONE', `could not reach a regiond for pool ${poolPath} in ${CONNECT_ATTEMPTS_MAX} attempts (last: ${last}); run \`regions daemon -p ${poolPath}\` in a terminal to see why`);
  });
}

type Failed = { kind: 'absent' | 'dropped'; why: string };

/** One attempt: a greeted connection; 'absent' if nobody listens; 'dropped' if worth retrying. */
function tryConnect(dirfd: number, address: SocketAddress): Connection | Failed {
  let fd: number;
  try {
    fd = addon.socketConnect(dirfd, address.name, CONNECT_TIMEOUT_MS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') return { kind: 'absent', why: `${code}: no regiond listens` };
    if (code === 'ETIMEDOUT' || code === 'EAGAIN') return { kind: 'dropped', why: `${code}: regiond's backlog is full` };
    if (code === 'EACCES') throw new RegionError('PERMISSION', `cannot connect to the regiond of pool ${address.poolPath}: permission denied (the socket has the pool file's permissions)`, { cause: error });
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

function startFailure(address: SocketAddress, report: StartReport & { state: 'busy' | 'error' }): RegionError {
  if (report.state === 'busy') {
    const who = report.holder > 0 ? `pid ${report.holder}` : 'another process';
    return new RegionError('BUSY', `pool ${address.poolPath} is held exclusively by ${who}; no regiond can serve it until that process closes it`);
  }
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
