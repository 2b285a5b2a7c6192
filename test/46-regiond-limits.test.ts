// Denial of service against regiond, refused: connections that never say hello are closed
// (however they dribble bytes), so CLIENTS_MAX of them lock nobody out for good; one uid holds
// at most CLIENTS_PER_UID_MAX connections while the owner still gets in (second uid from
// fixtures/second-user.ts, skipped with the reason without root); a deleted or replaced socket
// is bound again by the same regiond, and a client says what happened when it cannot be.
// No assertion is about elapsed time: each test waits for the event it expects.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLIENTS_MAX, CLIENTS_PER_UID_MAX } from '../src/constants.js';
import { createPool, isRegionError, openPool, type PoolHandle } from '../src/index.js';
import { socketAddress } from '../src/wire/socket_path.js';
import { AccessClient } from './fixtures/access-runner.js';
import { regiondPid, sharedTempDirectory, testUser } from './fixtures/second-user.js';

process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];
const base = sharedTempDirectory(os.tmpdir(), 'regions-limits-');
const served: PoolHandle[] = [];
const stopped: number[] = [];
after(() => {
  for (const pid of stopped) signal(pid, 'SIGCONT');
  for (const pool of served) {
    const pid = regiondPid(pool);
    pool.close();
    signal(pid, 'SIGTERM');
  }
  fs.rmSync(base, { recursive: true, force: true });
});

const user = testUser();

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}

/** A fresh pool served by a regiond this process started (its environment goes to regiond). */
function servedPool(name: string, access?: { socketMode: number }, env: Record<string, string> = {}): { pool: PoolHandle; socket: string } {
  const poolPath = path.join(base, `${name}.pool`);
  createPool(poolPath, { size: '16MiB', mode: 'exclusive', ...(access ? { access } : {}) }).close();
  Object.assign(process.env, env);
  try {
    const pool = openPool(poolPath, { mode: 'shared' }) as PoolHandle;
    served.push(pool);
    return { pool, socket: path.join(base, socketAddress(poolPath).name) };
  } finally {
    for (const key of Object.keys(env)) delete process.env[key];
  }
}

/**
 * A raw connection that says nothing (or dribbles bytes of a frame that never ends).
 * `connected` resolves once it is connected; `closed` when regiond has closed it.
 */
function silentConnection(socketPath: string, dribble = false): { connected: Promise<void>; closed: Promise<void> } {
  const socket = net.connect(socketPath);
  let timer: NodeJS.Timeout | undefined;
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.on('connect', () => {
    if (!dribble) return;
    const length = Buffer.alloc(4);
    length.writeUInt32LE(65_536); // a frame it may send, that takes hours at this pace: each byte restarts an idle timeout
    socket.write(length);
    timer = setInterval(() => socket.write(Uint8Array.of(0x20)), 100);
  });
  socket.on('error', () => {}); // 'close' follows
  socket.resume(); // read what regiond says (a BUSY reply past CLIENTS_MAX), so its end is seen
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve(clearInterval(timer))));
  return { connected, closed };
}

test(`connections that never say hello are closed: ${CLIENTS_MAX} of them do not lock the pool`, { timeout: 120_000 }, async () => {
  const { pool, socket } = servedPool('silent', undefined, { REGIONS_HELLO_TIMEOUT_MS: '1000' });
  const pid = regiondPid(pool);
  const closed: Promise<void>[] = [];
  for (let i = 0; i < CLIENTS_MAX; i++) {
    const silent = silentConnection(socket, i === 0);
    await silent.connected; // one at a time: a full listen backlog would refuse the connect itself
    closed.push(silent.closed);
  }
  await Promise.all(closed); // each is closed by regiond; on a regiond without a hello deadline this never resolves
  const later = openPool(pool.path, { mode: 'shared' }) as PoolHandle;
  assert.equal(regiondPid(later), pid, 'the same regiond serves the next open');
  assert.deepEqual(later.list(), []);
  later.close();
});

test(`one uid holds at most ${CLIENTS_PER_UID_MAX} connections; the owner still gets in`, { skip: typeof user === 'string' ? user : false, timeout: 120_000 }, async () => {
  assert.ok(typeof user !== 'string');
  const { pool } = servedPool('per-uid', { socketMode: 0o666 });
  const greedy = new AccessClient(pool.path, [['open', 'shared'], ['connect-many', CLIENTS_PER_UID_MAX + 5], ['hold']], user);
  const many = (await greedy.line(1)).ok as { opened: number; error?: string; message?: string };
  await greedy.line(2);
  assert.equal(many.opened, CLIENTS_PER_UID_MAX - 1, `its first open plus ${CLIENTS_PER_UID_MAX - 1} more: ${JSON.stringify(many)}`);
  assert.equal(many.error, 'BUSY');
  assert.match(many.message ?? '', new RegExp(`serves ${CLIENTS_PER_UID_MAX} connections of uid ${user.uid} already, the most one user may hold`));
  const owner = openPool(pool.path, { mode: 'shared' }); // root and the owner are not limited
  const clients = owner.info().server?.clients ?? [];
  assert.equal(clients.filter((c) => c.uid === user.uid).length, CLIENTS_PER_UID_MAX);
  owner.close();
  await greedy.finish();
});

test('a deleted or replaced socket: the same regiond binds it again and a new open reaches it', async () => {
  const { pool, socket } = servedPool('rebind', { socketMode: 0o666 });
  const pid = regiondPid(pool);
  fs.unlinkSync(socket);
  const again = openPool(pool.path, { mode: 'shared' }) as PoolHandle;
  assert.equal(regiondPid(again), pid, 'reached the same regiond, not a new one');
  assert.equal(fs.statSync(socket).mode & 0o777, 0o666, 'bound again with the pool\'s access setting');
  again.close();
  fs.rmSync(socket);
  fs.writeFileSync(socket, 'not a socket'); // replaced
  const third = openPool(pool.path, { mode: 'auto' }) as PoolHandle;
  assert.deepEqual([third.mode, regiondPid(third)], ['shared', pid]);
  assert.ok(fs.statSync(socket).isSocket());
  third.close();
});

test('a regiond that cannot bind again: the client names it instead of blaming an exclusive holder', async () => {
  const { pool, socket } = servedPool('stuck');
  const pid = regiondPid(pool);
  signal(pid, 'SIGSTOP'); // cannot notice the deletion
  stopped.push(pid);
  try {
    fs.unlinkSync(socket);
    assert.throws(() => openPool(pool.path, { mode: 'shared' }), (e) => {
      assert.ok(isRegionError(e, 'BUSY'), String(e));
      assert.match(e.message, new RegExp(`is held by regiond \\(pid ${pid}\\), but its socket \\S+ in \\S+ does not answer .*\`kill ${pid}\``));
      return true;
    });
  } finally {
    signal(pid, 'SIGCONT');
  }
  const resumed = openPool(pool.path, { mode: 'shared' }) as PoolHandle;
  assert.equal(regiondPid(resumed), pid);
  resumed.close();
});
