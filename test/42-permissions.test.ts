// Region modes between users, enforced by regiond: a second uid (the system user
// regions-test, created if missing; needs root and useradd, else the test is skipped with
// the reason) talks to a regiond run by root. It is refused a 0600 region of another owner,
// gets read-only access (and a read-only mapping) to a 0644 one, read-write to a 0666 one,
// may not rename, remove or chmod what it does not own, owns what it creates; and a pool
// whose access setting does not admit it (the default socket mode 0600) is closed to it.
// More on the access setting itself in 45-pool-access.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPool, openPool, type PoolInfo, type RegionInfo, type PoolHandle } from '../src/index.js';
import { runAs, sharedTempDirectory, stopServer, testUser, USER } from './fixtures/second-user.js';

process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];
const base = sharedTempDirectory(os.tmpdir(), 'regions-perm-'); // the second user reaches the pools and their sockets here
const served: PoolHandle[] = [];
after(() => {
  for (const pool of served) stopServer(pool);
  fs.rmSync(base, { recursive: true, force: true });
});

/** A pool served by a regiond that root started; its socket has `socketMode` (the pool file stays 0600). */
function servedPool(name: string, socketMode: number): PoolHandle {
  const poolPath = path.join(base, `${name}.pool`);
  createPool(poolPath, { size: '16MiB', mode: 'exclusive', access: { socketMode } }).close();
  const pool = openPool(poolPath, { mode: 'shared' }) as PoolHandle;
  served.push(pool);
  return pool;
}

const user = testUser();

test('region modes between two uids through regiond', { skip: typeof user === 'string' ? user : false }, async (t) => {
  assert.ok(typeof user !== 'string');
  t.diagnostic(`second user ${USER}: uid ${user.uid}, gid ${user.gid}`);
  const pool = servedPool('modes', 0o666);
  for (const [name, mode] of [['private', 0o600], ['readable', 0o644], ['open', 0o666]] as const) {
    pool.create(name, { size: '64KiB', mode });
    pool.open(name).write(0, Buffer.from(name));
  }
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  const lines = await runAs(user, pool.path, [
    ['open', 'private', 'ro'], // 0
    ['read', 'private', 0, 7],
    ['open', 'readable', 'ro'],
    ['read', 'readable', 0, 8],
    ['open', 'readable', 'rw'],
    ['write', 'readable', 0, b64('no')], // 5
    ['resize', 'readable', 8192],
    ['chmod', 'readable', 0o666],
    ['open', 'open', 'rw'],
    ['write', 'open', 100, b64('written by the second uid')],
    ['rename', 'open', 'renamed'], // 10
    ['remove', 'open'],
    ['create', 'mine', 65536, 0o600],
    ['stat', 'mine'],
    ['info'],
    ['map-store', 'open', 5, 9], // 15
  ]);
  const code = (i: number): string | undefined => lines[i]?.error;
  assert.equal(code(0), 'PERMISSION', 'a 0600 region of another owner is closed');
  assert.match(lines[0]?.message ?? '', new RegExp(`uid ${user.uid} may not open region "private" read-only`));
  assert.equal(code(1), 'PERMISSION');
  assert.equal(lines[2]?.ok, 'ro', '0644: read-only access');
  assert.equal(Buffer.from(String(lines[3]?.ok), 'base64').toString(), 'readable');
  assert.equal(code(4), 'PERMISSION', '0644: no read-write access');
  assert.equal(code(5), 'PERMISSION');
  assert.equal(code(6), 'PERMISSION', 'resize needs write access');
  assert.equal(code(7), 'PERMISSION', 'chmod is for the owner');
  assert.equal(lines[8]?.ok, 'rw', '0666: read-write access');
  assert.equal(typeof lines[9]?.ok, 'number');
  assert.equal(code(10), 'PERMISSION', 'rename is for the owner');
  assert.equal(code(11), 'PERMISSION', 'remove is for the owner');
  assert.equal(lines[12]?.ok, 'mine');
  const mine = lines[13]?.ok as RegionInfo;
  assert.deepEqual([mine.uid, mine.gid], [user.uid, user.gid], 'a region created through regiond belongs to the peer');
  const info = lines[14]?.ok as PoolInfo;
  assert.ok(info.server?.clients.some((c) => c.uid === user.uid));
  assert.equal(typeof lines[15]?.ok, 'number', `a writable mapping of a 0666 region: ${JSON.stringify(lines[15])}`);

  assert.equal(Buffer.from(pool.open('open').read(100, 25)).toString(), 'written by the second uid');
  assert.equal(pool.open('open').read(5, 1)[0], 9);
  assert.equal(Buffer.from(pool.open('readable').read(0, 8)).toString(), 'readable', 'the refused write changed nothing');
  assert.equal(pool.stat('readable').mode, 0o644);
  assert.deepEqual(pool.list().map((r) => r.name), ['mine', 'open', 'private', 'readable']);
  pool.open('mine').write(0, Uint8Array.of(1)); // root may do anything
  const again = await runAs(user, pool.path, [['write', 'mine', 1, b64('x')], ['chmod', 'mine', 0o640], ['rename', 'mine', 'ours'], ['remove', 'ours']]);
  assert.deepEqual(again.map((l) => l.error), [undefined, undefined, undefined, undefined], JSON.stringify(again));

  await t.test('a read-only mapping of a 0644 region of another owner', async () => {
    const mapped = await runAs(user, pool.path, [['map-read', 'readable', 'ro', 0]]);
    assert.equal(mapped[0]?.ok, 'r'.charCodeAt(0), JSON.stringify(mapped));
  });
});

test('a pool whose socket the second uid may not write is closed to it', { skip: typeof user === 'string' ? user : false }, async () => {
  assert.ok(typeof user !== 'string');
  const pool = servedPool('private', 0o600);
  const socket = fs.readdirSync(base).find((f) => f.endsWith('.sock') && fs.statSync(path.join(base, f)).mode % 0o1000 === 0o600);
  assert.ok(socket !== undefined, 'the socket has the mode the pool\'s access setting says');
  const lines = await runAs(user, pool.path, [['list']]);
  assert.equal(lines[0]?.error, 'PERMISSION', JSON.stringify(lines));
  assert.match(lines[0]?.message ?? '', new RegExp(`does not admit uid ${user.uid}`));
});
