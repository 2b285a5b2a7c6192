// Who may reach a pool is a pool setting (socket mode and group, kept in the superblock), not
// the pool file's mode: the file is its owner's only. A second uid (fixtures/second-user.ts;
// skipped with the reason without root) cannot open the pool file, cannot reach a pool that no
// regiond serves (and is told why), is refused by a socket that does not admit it (and told
// who can change that), and once admitted is held to region modes, may not grow the pool nor
// change its access. A change applies at once, closes connections it no longer admits, and
// persists. Pools from before the setting read as the default; the fields are checksummed.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool, openPool, type PoolInfo, type PoolHandle, setPoolAccess } from '../src/index.js';
import { BLOCK_BYTES } from '../src/constants.js';
import { decodeSuperblock, encodeSuperblock, SUPERBLOCK_BYTES } from '../src/format/superblock.js';
import { socketAddress } from '../src/wire/socket_path.js';
import { AccessClient, runAccessClient } from './fixtures/access-runner.js';
import { sharedTempDirectory, stopServer, testUser } from './fixtures/second-user.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'regions.js');
process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];
const base = sharedTempDirectory(os.tmpdir(), 'regions-access-');
const served: PoolHandle[] = [];
after(() => {
  for (const pool of served) stopServer(pool);
  fs.rmSync(base, { recursive: true, force: true });
});

const user = testUser();
const skip = typeof user === 'string' ? user : false;

function serve(poolPath: string): PoolHandle {
  const pool = openPool(poolPath, { mode: 'shared' }) as PoolHandle;
  served.push(pool);
  return pool;
}

function socketOf(poolPath: string): fs.Stats {
  const address = socketAddress(poolPath);
  return fs.statSync(path.join(address.directory, address.name));
}

function regions(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [BIN, ...args], { cwd: base, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('a new pool file is its owner\'s only; without a regiond another user is told who can start one', { skip }, async () => {
  assert.ok(typeof user !== 'string');
  const poolPath = path.join(base, 'fresh.pool');
  const made = regions(['-p', poolPath, '--json', 'mkpool', '--size', '16MiB']);
  assert.equal(made.status, 0, made.stderr);
  assert.deepEqual((JSON.parse(made.stdout) as PoolInfo).access, { socketMode: '0600', group: null });
  assert.equal(fs.statSync(poolPath).mode & 0o777, 0o600, 'mode 0600 whatever the umask');
  const lines = await runAccessClient(poolPath, [['open-file'], ['open', 'shared'], ['open', 'auto']], user);
  assert.equal(lines[0]?.error, 'EACCES', `the pool file itself is closed to uid ${user.uid}: ${JSON.stringify(lines[0])}`);
  const notServed = `pool ${poolPath} is not served: no regiond runs and only its owner (uid 0) can start one: \`regions daemon -p ${poolPath}\``;
  for (const line of lines.slice(1)) assert.deepEqual(line, { error: 'PERMISSION', message: notServed });
});

test('the default socket (0600) refuses another user, naming the setting and who can change it', { skip }, async () => {
  assert.ok(typeof user !== 'string');
  const poolPath = path.join(base, 'private.pool');
  createPool(poolPath, { size: '16MiB', mode: 'exclusive' }).close();
  serve(poolPath);
  assert.equal(socketOf(poolPath).mode & 0o777, 0o600);
  const lines = await runAccessClient(poolPath, [['open', 'shared'], ['open-file']], user);
  assert.equal(lines[0]?.error, 'PERMISSION', JSON.stringify(lines[0]));
  assert.match(lines[0]?.message ?? '', new RegExp(`its socket \\(mode 0600, group 0\\) does not admit uid ${user.uid}; .*its owner \\(uid 0\\) or root can widen it with \`regions set-access -p `));
  assert.equal(lines[1]?.error, 'EACCES');
});

test('socket mode 0666: another user connects, region modes hold, the pool file stays closed, grow and set-access are the owner\'s', { skip }, async () => {
  assert.ok(typeof user !== 'string');
  const poolPath = path.join(base, 'open.pool');
  createPool(poolPath, { size: '16MiB', mode: 'exclusive', access: { socketMode: 0o666 } }).close();
  const pool = serve(poolPath);
  pool.create('private', { size: '64KiB', mode: 0o600 });
  pool.create('shared', { size: '64KiB', mode: 0o666 });
  assert.equal(socketOf(poolPath).mode & 0o777, 0o666);
  const lines = await runAccessClient(poolPath, [
    ['open', 'shared'],
    ['region', 'private', 'ro'],
    ['write', 'shared', 0, Buffer.from('theirs').toString('base64')],
    ['grow', 32 * 1024 * 1024],
    ['set-access', { socketMode: 0o600 }],
    ['open-file'],
  ], user);
  assert.equal(lines[0]?.ok, 'shared', JSON.stringify(lines[0]));
  assert.equal(lines[1]?.error, 'PERMISSION', 'regiond enforces region modes');
  assert.equal(typeof lines[2]?.ok, 'number', JSON.stringify(lines[2]));
  assert.deepEqual([lines[3]?.error, lines[4]?.error], ['PERMISSION', 'PERMISSION'], JSON.stringify(lines.slice(3, 5)));
  assert.match(lines[3]?.message ?? '', new RegExp(`uid ${user.uid} may not grow pool .*only its owner \\(uid 0\\) or root may`));
  assert.equal(lines[5]?.error, 'EACCES', 'admitted to regiond is not admitted to the file');
  assert.equal(pool.info().capacityBytes, 16 * 1024 * 1024, 'the refused grow changed nothing');
  assert.deepEqual(pool.info().access, { socketMode: 0o666, group: null });
  assert.equal(Buffer.from(pool.open('shared').read(0, 6)).toString(), 'theirs');
  pool.grow('32MiB'); // the owner may
  assert.equal(pool.info().capacityBytes, 32 * 1024 * 1024);
});

test('a group admits its members; a change applies at once, closes connections it no longer admits, and persists', { skip }, async () => {
  assert.ok(typeof user !== 'string');
  const poolPath = path.join(base, 'group.pool');
  createPool(poolPath, { size: '16MiB', mode: 'exclusive', access: { socketMode: 0o660, group: user.gid } }).close();
  const pool = serve(poolPath);
  assert.deepEqual([socketOf(poolPath).mode & 0o777, socketOf(poolPath).gid], [0o660, user.gid]);
  const member = new AccessClient(poolPath, [['open', 'shared'], ['list'], ['hold'], ['list']], user);
  assert.equal((await member.line(1)).error, undefined, JSON.stringify(member.lines));
  await member.line(2); // holding its connection
  assert.deepEqual(setPoolAccess(pool, { group: 0 }), { socketMode: 0o660, group: 0 }); // a group uid 999 is not in
  assert.deepEqual([socketOf(poolPath).mode & 0o777, socketOf(poolPath).gid], [0o660, 0], 'applied to the socket at once');
  const after = await member.finish();
  assert.equal(after[3]?.error, 'SERVER_GONE', `the connection it no longer admits was closed: ${JSON.stringify(after[3])}`);
  const refused = await runAccessClient(poolPath, [['open', 'shared']], user);
  assert.equal(refused[0]?.error, 'PERMISSION', JSON.stringify(refused[0]));
  stopServer(pool);
  served.splice(served.indexOf(pool), 1);
  await waitFor('the socket to go with its regiond', () => !fs.existsSync(path.join(base, socketAddress(poolPath).name)));
  const again = serve(poolPath); // a new regiond reads the setting from the pool
  assert.deepEqual(again.info().access, { socketMode: 0o660, group: 0 });
  assert.deepEqual([socketOf(poolPath).mode & 0o777, socketOf(poolPath).gid], [0o660, 0]);
  assert.equal(regions(['-p', poolPath, 'set-access', '--no-group']).status, 1, 'group bits without a group are refused');
  const cli = regions(['-p', poolPath, '--json', 'set-access', '--socket-mode', '0666', '--no-group']);
  assert.equal(cli.status, 0, cli.stderr);
  assert.deepEqual(JSON.parse(cli.stdout), { socketMode: '0666', group: null });
  assert.match(regions(['-p', poolPath, 'info']).stdout, /^access +regiond admits socket mode 0666, no group$/m);
});

test('pools from before the access setting read as 0600 with no group; the setting is under the superblock checksum', () => {
  const poolPath = path.join(base, 'old.pool');
  createPool(poolPath, { size: '1MiB', mode: 'exclusive', access: { socketMode: 0o666 } }).close();
  const fd = fs.openSync(poolPath, 'r+');
  try {
    for (const offset of [0, BLOCK_BYTES]) {
      const bytes = Buffer.alloc(SUPERBLOCK_BYTES);
      fs.readSync(fd, bytes, 0, bytes.length, offset);
      const decoded = decodeSuperblock(bytes);
      assert.ok(decoded.ok);
      const tampered = Buffer.from(bytes);
      tampered[84] = 0o644 & 0xff; // the socket mode, checksum left as it was
      assert.deepEqual(decodeSuperblock(tampered), { ok: false, reason: 'checksum', message: 'checksum mismatch' });
      const old = encodeSuperblock({ ...decoded.superblock, access: null }); // what a pool made before the fields holds
      assert.ok(old.subarray(80, 124).every((b) => b === 0));
      fs.writeSync(fd, old, 0, old.length, offset);
    }
  } finally {
    fs.closeSync(fd);
  }
  const pool = openPool(poolPath, { mode: 'exclusive' });
  assert.deepEqual(pool.info().access, { socketMode: 0o600, group: null });
  assert.ok(pool.check().ok);
  pool.close();
});

async function waitFor(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
