// regiond in the foreground (`regions daemon`): it serves, refuses a second daemon, ends
// cleanly on SIGTERM and by itself once idle; and a pool path longer than sun_path.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createPool, openPool, type PoolInfo } from '../src/index.js';
import { socketAddress } from '../src/wire/socket_path.js';
import { base, BIN, cleanUp, newPool, regions, runClient, serverOf, stopRegionds, track, waitFor } from './fixtures/regiond-harness.js';

after(cleanUp);

/** `regions daemon` in the foreground: its ready line, and its exit code once it ends. */
async function foregroundDaemon(poolPath: string, idleExitSeconds: number): Promise<{ ready: { pid: number; socket: string }; exited: Promise<number | null>; stderr: () => string }> {
  const daemon = spawn(process.execPath, [BIN, 'daemon', '-p', poolPath, '--idle-exit', String(idleExitSeconds), '--json'], { cwd: base, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  daemon.stdout.on('data', (chunk: Buffer) => void (out += chunk.toString()));
  daemon.stderr.on('data', (chunk: Buffer) => void (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.on('close', resolve));
  await waitFor(`regions daemon to report (stderr: ${err})`, () => out.includes('}'));
  const ready = JSON.parse(out) as { pid: number; socket: string };
  assert.equal(ready.pid, daemon.pid);
  return { ready, exited, stderr: () => err };
}

// No step here races the idle exit: the daemon that must stay has an idle exit far longer
// than any test, and the one that must leave is only checked to leave.
test('regions daemon serves in the foreground, refuses a second one, and ends cleanly on SIGTERM', async () => {
  const poolPath = newPool('foreground');
  const { ready, exited, stderr } = await foregroundDaemon(poolPath, 3600);
  assert.ok(fs.statSync(ready.socket).isSocket());
  assert.equal(fs.statSync(ready.socket).mode & 0o777, 0o600, 'the socket admits the pool\'s owner only, as the pool\'s default access setting says');
  const second = regions(['daemon', '-p', poolPath]);
  assert.equal(second.status, 1);
  assert.match(second.stderr, /^regions: pool .* is served by another regiond already\n$/);
  const pool = openPool(poolPath, { mode: 'auto' });
  assert.equal(pool.mode, 'shared', 'auto finds the running regiond');
  assert.equal(serverOf(pool.info()).pid, ready.pid);
  pool.close();
  process.kill(ready.pid, 'SIGTERM');
  assert.equal(await exited, 0, stderr());
  assert.ok(!fs.existsSync(ready.socket), 'and removed its socket');
});

test('regions daemon exits by itself once idle, and stays while a client is connected', async (t) => {
  const poolPath = newPool('idle');
  const { ready, exited, stderr } = await foregroundDaemon(poolPath, 1);
  let gone = false;
  void exited.then(() => (gone = true));
  const pool = openPool(poolPath, { mode: 'auto' });
  if (pool.mode === 'shared' && !gone) {
    // Connected before its first idle second ran out: it must now stay past that second.
    const idleEnds = Date.now() + 1500;
    while (Date.now() < idleEnds) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(gone, false, 'regiond stays while a client is connected');
    assert.equal(serverOf(pool.info()).pid, ready.pid);
  } else {
    t.diagnostic('the machine was slow enough that regiond left before the client connected: only its exit is checked');
  }
  pool.close();
  assert.equal(await exited, 0, stderr());
  assert.ok(!fs.existsSync(ready.socket), 'and removed its socket');
});

test('a pool path longer than 200 bytes works (sun_path holds 108)', async () => {
  const deep = path.join(base, 'd'.repeat(100), 'e'.repeat(100));
  fs.mkdirSync(deep, { recursive: true });
  const poolPath = path.join(deep, 'long.pool');
  track(poolPath);
  assert.ok(poolPath.length > 200);
  assert.ok(path.join(deep, socketAddress(poolPath).name).length > 108);
  const pool = createPool(poolPath, { size: '8MiB' }); // shared: formats, then starts regiond
  assert.equal(pool.mode, 'shared');
  pool.create('deep', { size: '64KiB' });
  pool.open('deep').write(10, Uint8Array.of(1, 2, 3));
  const lines = await runClient(poolPath, [['read', 'deep', 10, 3], ['info']]);
  assert.deepEqual([...Buffer.from(String(lines[0]?.ok), 'base64')], [1, 2, 3]);
  assert.equal(serverOf(lines[1]?.ok as PoolInfo).pid, serverOf(pool.info()).pid);
  pool.close();
  await stopRegionds(poolPath);
});

