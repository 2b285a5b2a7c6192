// regiond: the pool's kernel as a process (DESIGN.md section 7). One per pool: it holds the
// same OFD lock as an exclusive opener (so a second regiond, or an exclusive open, fails
// BUSY), mounts the pool, and serves clients over a Unix socket next to the pool until it has
// had no client for an idle period. The data path never crosses the socket: clients map the
// shared working copies (memfds) regiond passes them as descriptors.
//
// Start-up, in this order, so racing starters end with one regiond:
//   1. take the pool lock (a regiond that is exiting may still hold it: wait a little; one
//      that serves the socket already has won, so give up at once: 'served');
//   2. bind the socket (under a temporary name, then renamed over any dead regiond's) with
//      the pool's access setting, read from the superblock alone (socket_binding.ts);
//      connections from now on wait in the backlog;
//   3. mount (journal replay: a regiond that was killed is recovered here);
//   4. report 'ready' and serve.
// While serving, the socket is bound again if its name is deleted or replaced.
// Exit (idle, SIGTERM, SIGINT): close every connection and working copy, unlink the socket,
// then release the lock by closing the pool.
//
// regiond serves a pool only as the pool file's owner or root (clients accept no other
// server), and removes group and other bits from the pool file: other users reach the pool
// through the socket, which admits whom the pool's access setting says.
//
// Run as a program: `node regiond.js --serve POOL [--idle-exit SECONDS] [--persistence P]
// [--report-fd N]` (what starter.js runs, detached); `regions daemon` runs it in the
// foreground. Without arguments it exits quietly.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PoolAccess, Persistence } from '../api.js';
import { addon } from '../arch/addon.js';
import { DAEMON_LOCK_POLL_MS, DAEMON_LOCK_WAIT_MS, HELLO_TIMEOUT_MS, IDLE_EXIT_MS_DEFAULT, SOCKET_MODE_DEFAULT } from '../constants.js';
import { type ErrorCode, RegionError } from '../errors.js';
import { RegionManager } from '../kernel/region_manager.js';
import { kernelOptionsFromEnvironment } from '../syscall/kernel_options.js';
import { readSuperblocks } from '../kernel/superblock_store.js';
import { FileDevice } from '../pm/file_device.js';
import { poolHolder, restrictPoolFile, tryLockPool } from '../pm/pool_file.js';
import { sleepMs } from '../util/sleep.js';
import { isRegiond } from './identity.js';
import { RegiondServer } from './server.js';
import { SocketBinding } from './socket_binding.js';
import { openDirectory, type SocketAddress, socketAddress } from '../wire/socket_path.js';
import { Syscalls } from '../syscall/syscalls.js';

/** How a start ended: serving, or why not. starter.js relays it to the client as one JSON line. */
export type StartReport =
  | { state: 'ready'; pid: number }
  | { state: 'served' } // another regiond serves the pool
  | { state: 'busy'; holder: number; regiond: boolean } // an exclusive opener holds the pool, or a regiond nobody can reach
  | { state: 'error'; code: ErrorCode; message: string };

export interface RegiondOptions {
  poolPath: string;
  persistence: Persistence;
  /** Exit after this long without clients; 0: never. */
  idleExitMs: number;
  /** How long to wait for the pool lock of another process (0: fail at once). */
  lockWaitMs: number;
  /** Called once the start has ended, before serving (or before giving up). */
  report?: (report: StartReport) => void;
  log?: (line: string) => void;
}

/** A regiond that lost the start to another one, or found the pool held: not an error of ours. */
export class StartDeclined extends Error {
  constructor(readonly report: StartReport & { state: 'served' | 'busy' }) {
    super(report.state);
  }
}

/** Serves the pool until idle exit or a signal; rejects if it cannot start. */
export async function runRegiond(options: RegiondOptions): Promise<void> {
  const address = socketAddress(options.poolPath);
  const device = new FileDevice(address.poolPath, { persistence: options.persistence });
  const cleanups: (() => void)[] = [() => device.close()];
  const cleanup = (): void => {
    for (const step of cleanups.reverse()) {
      try {
        step();
      } catch {
        // best effort: the process is leaving
      }
    }
  };
  let served: Promise<void>;
  try {
    const ownerUid = poolOwner(device, address.poolPath);
    acquire(device, address, options.lockWaitMs);
    served = serve(device, address, ownerUid, options, cleanups);
  } catch (error) {
    cleanup();
    throw error;
  }
  try {
    await served;
  } finally {
    cleanup();
  }
}

function serve(device: FileDevice, address: SocketAddress, ownerUid: number, options: RegiondOptions, cleanups: (() => void)[]): Promise<void> {
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const dirfd = openDirectory(address);
  cleanups.push(() => fs.closeSync(dirfd));
  const listeners: net.Server[] = [];
  let server: RegiondServer | undefined;
  const access: PoolAccess = readSuperblocks(device, address.poolPath).chosen.access ?? { socketMode: SOCKET_MODE_DEFAULT, group: null };
  const binding = new SocketBinding({ dirfd, address, access, ownerUid, log, serve: (listener) => (server ? server.attach(listener) : listeners.push(listener)) });
  cleanups.push(() => binding.close());
  const kernel = RegionManager.mount(device, address.poolPath, kernelOptionsFromEnvironment());
  let stop: () => void = () => {};
  let failStop: (error: RegionError) => void = () => {};
  const stopped = new Promise<void>((resolve, reject) => {
    stop = resolve;
    failStop = reject; // runRegiond rejects: regiond exits non-zero, naming the error
  });
  const startedAt = Date.now();
  const view = { pid: process.pid, startedAt, clients: () => server?.clients() ?? [] };
  const syscalls = new Syscalls(kernel, { path: address.poolPath, persistence: device.persistence, owner: ownerUid, mode: 'shared', server: view, applyAccess: (next) => binding.apply(next) });
  const helloTimeoutMs = envMilliseconds(HELLO_TIMEOUT_ENV) ?? HELLO_TIMEOUT_MS;
  server = new RegiondServer(syscalls, { pool: address.poolPath, startedAt, idleExitMs: options.idleExitMs, onIdle: () => stop(), onFailure: (error) => failStop(error), log, ownerUid, helloTimeoutMs });
  for (const listener of listeners) server.attach(listener);
  const running = server;
  cleanups.push(() => running.stop());
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const signal of signals) process.on(signal, stop);
  cleanups.push(() => signals.forEach((signal) => process.off(signal, stop)));
  options.report?.({ state: 'ready', pid: process.pid });
  return stopped;
}

/** Tests shorten the hello deadline of the regionds they start (the starter passes its environment on). */
const HELLO_TIMEOUT_ENV = 'REGIONS_HELLO_TIMEOUT_MS';

function envMilliseconds(name: string): number | undefined {
  const value = process.env[name];
  return value !== undefined && /^\d+$/.test(value) && Number(value) > 0 ? Number(value) : undefined;
}

/**
 * The pool file's owner. regiond serves only as that user or root: clients accept no other
 * server, and a group given to the socket must be one regiond may give. The file loses its
 * group and other bits: other users reach the pool through regiond.
 */
function poolOwner(device: FileDevice, poolPath: string): number {
  const owner = fs.fstatSync(device.fd).uid;
  const euid = process.geteuid?.() ?? 0;
  if (euid !== 0 && euid !== owner) throw new RegionError('PERMISSION', `regiond runs as uid ${euid}, but pool ${poolPath} belongs to uid ${owner}: only its owner or root may serve it`);
  restrictPoolFile(device.fd);
  return owner;
}

/**
 * Takes the pool lock. Another regiond that already serves the socket wins at once; a lock
 * held without a serving socket (a regiond exiting, or one between its lock and its bind, or
 * an exclusive opener) is waited for up to waitMs.
 */
function acquire(device: FileDevice, address: SocketAddress, waitMs: number): void {
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryLockPool(device)) return;
    if (regiondListening(address)) throw new StartDeclined({ state: 'served' });
    const holder = poolHolder(device);
    if (holder > 0 && !isRegiond(holder)) throw new StartDeclined({ state: 'busy', holder, regiond: false });
    if (Date.now() >= deadline) throw new StartDeclined({ state: 'busy', holder, regiond: holder > 0 }); // a regiond whose socket does not answer
    sleepMs(DAEMON_LOCK_POLL_MS);
  }
}

function regiondListening(address: SocketAddress): boolean {
  const dirfd = openDirectory(address);
  try {
    addon.socketClose(addon.socketConnect(dirfd, address.name, DAEMON_LOCK_POLL_MS));
    return true;
  } catch {
    return false;
  } finally {
    fs.closeSync(dirfd);
  }
}

// ---- as a program --------------------------------------------------------------------------

interface ServeArguments {
  poolPath: string;
  idleExitMs: number;
  persistence: Persistence;
  reportFd: number | undefined;
}

function parseArguments(argv: string[]): ServeArguments | undefined {
  if (argv[0] !== '--serve' || argv[1] === undefined) return undefined;
  const parsed: ServeArguments = { poolPath: argv[1], idleExitMs: IDLE_EXIT_MS_DEFAULT, persistence: 'auto', reportFd: undefined };
  for (let i = 2; i + 1 < argv.length; i += 2) {
    const value = argv[i + 1] ?? '';
    if (argv[i] === '--idle-exit') parsed.idleExitMs = Math.max(0, Number(value) * 1000) || 0;
    else if (argv[i] === '--persistence' && (value === 'pmem' || value === 'msync' || value === 'auto')) parsed.persistence = value;
    else if (argv[i] === '--report-fd') parsed.reportFd = Number(value);
  }
  return parsed;
}

function reportTo(fd: number | undefined): (report: StartReport) => void {
  return (report) => {
    if (fd === undefined) return;
    try {
      fs.writeSync(fd, `${JSON.stringify(report)}\n`);
      fs.closeSync(fd);
    } catch {
      // the starter is gone; the client will find the socket by itself
    }
  };
}

/**
 * A daemon keeps no descriptor it did not ask for: one inherited without close-on-exec (a
 * shell's or a test runner's pipe) would keep its reader waiting for an end of file until
 * regiond exits. Node's own descriptors are all close-on-exec, so they stay.
 */
function closeInheritedDescriptors(keep: number[]): void {
  const O_CLOEXEC = 0o2000000;
  for (const entry of fs.readdirSync('/proc/self/fdinfo')) {
    const fd = Number(entry);
    if (fd <= 2 || keep.includes(fd)) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) fs.closeSync(fd);
    } catch {
      // closed meanwhile (the directory's own descriptor)
    }
  }
}

async function main(args: ServeArguments): Promise<number> {
  closeInheritedDescriptors(args.reportFd === undefined ? [] : [args.reportFd]);
  const report = reportTo(args.reportFd);
  try {
    await runRegiond({ poolPath: args.poolPath, persistence: args.persistence, idleExitMs: args.idleExitMs, lockWaitMs: DAEMON_LOCK_WAIT_MS, report });
    return 0;
  } catch (error) {
    if (error instanceof StartDeclined) {
      report(error.report);
      return 0; // quietly: another process has the pool
    }
    const code: ErrorCode = error instanceof RegionError ? error.code : 'IO';
    report({ state: 'error', code, message: error instanceof Error ? error.message : String(error) });
    return 1;
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = parseArguments(process.argv.slice(2));
  // Exit now even if a handle lingers: the lock is released, nobody is served any more.
  if (args !== undefined) process.exit(await main(args));
}
