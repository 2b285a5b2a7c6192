// Where two users or two processes meet regiond, an attacker's moves are refused:
//   - a process of another user that took the pool's socket name first receives nothing: the
//     client asks the kernel who listens (SO_PEERCRED) before it sends a byte;
//   - working copies are never files: they arrive as descriptors with the access granted, so
//     a read-only one cannot be reopened writable, and no path from regiond is ever opened;
//   - the shootdown's signal reaches the process that mapped and no later process that was
//     given its pid (regiond holds a pidfd per client), while the dead mapper's stores are
//     still committed by comparison.
// The second uid comes from fixtures/second-user.ts (skipped with the reason without root).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPool, isRegionError, openPool, setPoolAccess, type PoolHandle } from '../src/index.js';
import { socketAddress } from '../src/wire/socket_path.js';
import { CLIENT, type Line, runAs, sharedTempDirectory, stopServer, testUser } from './fixtures/second-user.js';

process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];
const base = sharedTempDirectory(os.tmpdir(), 'regions-trust-');
const children: ChildProcess[] = [];
const served: PoolHandle[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const pool of served) stopServer(pool);
  fs.rmSync(base, { recursive: true, force: true });
});

const user = testUser();
const skip = typeof user === 'string' ? user : false;

function newPool(name: string): string {
  const poolPath = path.join(base, `${name}.pool`);
  createPool(poolPath, { size: '16MiB', mode: 'exclusive' }).close();
  return poolPath;
}

/** Who may connect is the pool's access setting (the pool file stays its owner's only). */
function allowConnections(poolPath: string, mode: number): void {
  const pool = openPool(poolPath, { mode: 'exclusive' });
  try {
    setPoolAccess(pool, { socketMode: mode });
  } finally {
    pool.close();
  }
}

/** A pool served by a regiond that root started, open to every uid's connections. */
function servedPool(name: string): PoolHandle {
  const poolPath = newPool(name);
  allowConnections(poolPath, 0o666);
  const pool = openPool(poolPath, { mode: 'shared' }) as PoolHandle;
  served.push(pool);
  return pool;
}

/** Lines a child prints, as they come. */
function lines(child: ChildProcess): () => Promise<string> {
  const queue: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    for (let at = partial.indexOf('\n'); at >= 0; at = partial.indexOf('\n')) {
      const line = partial.slice(0, at);
      partial = partial.slice(at + 1);
      const next = waiting.shift();
      if (next) next(line);
      else queue.push(line);
    }
  });
  return () => new Promise((resolve) => {
    const line = queue.shift();
    if (line !== undefined) resolve(line);
    else waiting.push(resolve);
  });
}

/** A listener of another uid at the pool's socket name: prints `listening`, then `closed <bytes received>` per connection. */
const IMPOSTOR = `
const net = require('net');
const server = net.createServer((socket) => {
  let bytes = 0;
  socket.on('data', (chunk) => { bytes += chunk.length; });
  socket.on('error', () => {});
  socket.on('close', () => process.stdout.write('closed ' + bytes + '\\n'));
});
server.listen(process.argv[1], () => process.stdout.write('listening\\n'));
`;

test('a process of another user at the socket name receives nothing', { skip }, async () => {
  assert.ok(typeof user !== 'string');
  const poolPath = newPool('impostor');
  const address = socketAddress(poolPath);
  const impostor = spawn(process.execPath, ['-e', IMPOSTOR, path.join(address.directory, address.name)], { uid: user.uid, gid: user.gid, cwd: base, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(impostor);
  const next = lines(impostor);
  assert.equal(await next(), 'listening');
  assert.throws(
    () => openPool(poolPath, { mode: 'shared' }),
    (e) => isRegionError(e, 'PERMISSION') && new RegExp(`uid ${user.uid}\\) is neither the pool file's owner \\(uid 0\\) nor root`).test(e.message),
  );
  assert.equal(await next(), 'closed 0', 'the client closed the connection without sending a byte');
});

test('working copies arrive as descriptors with the access granted, never as files', { skip }, async () => {
  assert.ok(typeof user !== 'string');
  const pool = servedPool('copies');
  pool.create('readable', { size: '64KiB', mode: 0o644 });
  pool.create('open', { size: '64KiB', mode: 0o666 });
  const got = await runAs(user, pool.path, [
    ['map-hold', 'readable', 'ro'],
    ['copy-fds', 'readable'],
    ['map-hold', 'open', 'rw'],
    ['copy-fds', 'open'],
  ]);
  assert.equal(got[0]?.ok, false, JSON.stringify(got));
  assert.deepEqual(got[1]?.ok, [{ access: 'ro', reopen: 'EACCES' }], 'one read-only descriptor, which cannot be reopened writable');
  assert.equal(got[2]?.ok, true);
  // The copy is mode 0600 of regiond's uid: another uid cannot reopen even a writable grant,
  // so the descriptor's own access is all it ever holds.
  assert.deepEqual(got[3]?.ok, [{ access: 'rw', reopen: 'EACCES' }]);
  const mine = pool.open('readable').map();
  const leftovers = fs.readdirSync(base).filter((f) => !f.endsWith('.pool') && !f.endsWith('.sock'));
  assert.deepEqual(leftovers, [], 'no working-copy file beside the pool');
  mine.unmap();
});

/** Spawns `sleep` with the shootdown signal blocked, so a signal sent to it stays visible as pending. */
function decoy(): ChildProcess {
  const script = 'import signal, sys, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN + 6])\nprint("ready", flush=True)\ntime.sleep(3600)';
  const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

/** A decoy given `pid` (ns_last_pid, as root), or why none could be made. */
async function decoyWithPid(pid: number): Promise<ChildProcess | string> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    } catch (error) {
      return `cannot steer pid allocation: ${(error as Error).message}`;
    }
    const child = decoy();
    if (child.pid === pid) {
      const ready = await lines(child)();
      return ready === 'ready' ? child : `the decoy said ${ready}`;
    }
    child.kill('SIGKILL'); // another process took the pid first: try again
  }
  return `pid ${pid} went to other processes 50 times`;
}

/** The process's pending signals (thread-group-wide), from /proc. */
function pendingSignals(pid: number): bigint {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return BigInt(`0x${/ShdPnd:\s+([0-9a-f]+)/.exec(status)?.[1] ?? '0'}`);
}

test('the shootdown signals the process that mapped, never a later one with its pid', { skip: process.getuid?.() === 0 ? false : 'needs root to steer pid allocation' }, async (t) => {
  const pool = servedPool('pidfd');
  pool.create('r', { size: '64KiB', mode: 0o600 });
  // A mapper stores, hands its connection to a child (as after a fork) and exits.
  const mapper = spawn(process.execPath, [CLIENT, pool.path, 'shared', JSON.stringify([['map-keep', 'r', 0, 7], ['orphan-connection'], ['exit-now']])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const read = lines(mapper);
  const exited = new Promise((resolve) => mapper.on('exit', resolve));
  const said: Line[] = [JSON.parse(await read()) as Line, JSON.parse(await read()) as Line];
  assert.equal(typeof said[1]?.ok, 'number', JSON.stringify(said));
  const holder = Number(said[1]?.ok);
  await exited;
  const other = await decoyWithPid(mapper.pid ?? -1);
  if (typeof other === 'string') t.diagnostic(`no process was given the dead mapper's pid (${other}): only the commit is checked`);
  else t.diagnostic(`pid ${other.pid} now belongs to a decoy`);

  const region = pool.open('r');
  const m = region.map();
  const stats = m.pmsync();
  assert.equal(region.read(0, 1)[0], 7, 'the dead mapper\'s store was compared and committed');
  assert.ok(stats.pages >= 1);
  if (typeof other !== 'string') {
    const bit = 1n << BigInt(40 - 1); // SIGRTMIN+6 on Linux (SHOOTDOWN_SIGNAL)
    assert.equal(pendingSignals(other.pid ?? -1) & bit, 0n, 'the decoy that reused the pid was not signalled');
    assert.equal(other.exitCode, null);
  }
  m.unmap();
  process.kill(holder, 'SIGKILL');
});
