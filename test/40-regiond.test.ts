// Shared mode end to end: regiond started on demand, racing starters, namespace operations and mappings shared between processes, the CLI
// in auto mode, regiond killed with SIGKILL (SERVER_GONE, then recovery by a new regiond),
// and clients killed in the middle of a write or holding a mapping.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { isRegionError, openPool, type PoolInfo } from '../src/index.js';
import { socketAddress } from '../src/wire/socket_path.js';
import { LIST_PAGE_REGIONS } from '../src/constants.js';
import { cleanUp, ClientProcess, KiB, MiB, newPool, regiondPids, regions, regionsJson, runClient, serverOf, stopRegionds, waitFor } from './fixtures/regiond-harness.js';

after(cleanUp);

test('openPool starts regiond on demand; info shows it and its clients', async () => {
  const poolPath = newPool('demand');
  assert.deepEqual(regiondPids(poolPath), []);
  const pool = openPool(poolPath); // the library's default mode is shared
  assert.equal(pool.mode, 'shared');
  const server = serverOf(pool.info());
  assert.deepEqual(regiondPids(poolPath), [server.pid]);
  assert.ok(server.startedAt <= Date.now() && server.startedAt > Date.now() - 60_000);
  assert.deepEqual(server.clients.map((c) => c.pid), [process.pid]);
  const second = openPool(poolPath, { mode: 'shared' });
  second.create('one', { size: '64KiB' });
  second.open('one');
  const both = serverOf(pool.info());
  assert.equal(both.pid, server.pid, 'the second open joins the same regiond');
  assert.equal(both.clients.length, 2);
  assert.ok(both.clients.some((c) => c.regions === 1 && c.uid === process.getuid?.()));
  second.close();
  assert.equal(serverOf(pool.info()).clients.length, 1, 'a closed client is forgotten');
  assert.equal(pool.list()[0]?.uid, process.getuid?.(), 'regions belong to the requesting uid');
  pool.close();
  assert.throws(() => pool.list(), (e) => isRegionError(e, 'CLOSED'));
  const exclusive = openPool(poolPath, { mode: 'exclusive' }); // an idle regiond leaves for an exclusive opener
  assert.equal(exclusive.mode, 'exclusive');
  assert.deepEqual(exclusive.list().map((r) => r.name), ['one']);
  await waitFor('the retired regiond to finish exiting', () => regiondPids(poolPath).length === 0); // it let go of the lock last
  assert.ok(!fs.existsSync(path.join(path.dirname(poolPath), socketAddress(poolPath).name)), 'regiond removes its socket at exit');
  assert.throws(() => openPool(poolPath, { mode: 'shared' }), (e) => isRegionError(e, 'BUSY') && new RegExp(`held exclusively by pid ${process.pid}`).test(e.message));
  exclusive.close();
});

test('two processes racing to start regiond end with one regiond, both connected', async () => {
  const poolPath = newPool('race');
  for (let round = 0; round < 3; round++) {
    const startAt = Date.now() + 700;
    const racers = [0, 1].map((i) => new ClientProcess(poolPath, [['wait-until', startAt], ['info'], ['create', `r${round}-${i}`, 65536, 0o644], ['hold']]));
    const infos = await Promise.all(racers.map(async (racer) => (await racer.line(1)).ok as PoolInfo));
    await Promise.all(racers.map((racer) => racer.line(3)));
    const pids = infos.map((info) => serverOf(info).pid);
    assert.equal(pids[0], pids[1], `round ${round}: both racers talk to one regiond`);
    await waitFor(`round ${round}: the losing regiond, if any, to exit`, () => regiondPids(poolPath).length === 1);
    assert.deepEqual(regiondPids(poolPath), [pids[0]], `round ${round}: exactly one regiond runs`);
    const pool = openPool(poolPath, { mode: 'shared' });
    assert.equal(serverOf(pool.info()).clients.length, 3);
    assert.deepEqual(pool.list().filter((r) => r.name.startsWith(`r${round}-`)).map((r) => r.name), [`r${round}-0`, `r${round}-1`]);
    pool.close();
    await Promise.all(racers.map((racer) => racer.finish()));
    await stopRegionds(poolPath); // the next round races a fresh start
  }
});

test('namespace operations and mappings through regiond: two processes see each other', async () => {
  const poolPath = newPool('namespace');
  const pool = openPool(poolPath, { mode: 'shared' });
  pool.create('alpha', { size: '64KiB', mode: 0o644 });
  pool.open('alpha').write(0, Buffer.from('from the parent'));
  const child = await runClient(poolPath, [
    ['list'],
    ['read', 'alpha', 0, 15],
    ['create', 'beta', 65536, 0o600],
    ['create', 'beta', 65536, 0o600],
    ['rename', 'alpha', 'gamma'],
    ['resize', 'beta', 131072],
    ['write', 'beta', 4096, Buffer.from('from the child').toString('base64')],
  ]);
  assert.deepEqual(child[0]?.ok, ['alpha']);
  assert.equal(Buffer.from(String(child[1]?.ok), 'base64').toString(), 'from the parent');
  assert.equal(child[3]?.error, 'EXISTS');
  assert.deepEqual(pool.list().map((r) => r.name), ['beta', 'gamma']);
  assert.equal(pool.stat('beta').sizeBytes, 131072);
  assert.equal(Buffer.from(pool.open('beta').read(4096, 14)).toString(), 'from the child');
  pool.remove('gamma');
  const later = await runClient(poolPath, [['stat', 'gamma'], ['open', 'gamma', 'ro']]);
  assert.equal(later[0]?.error, 'NOT_FOUND');
  assert.equal(later[1]?.error, 'NOT_FOUND');

  // The data path: both processes map one working copy; one pmsync commits both stores.
  const mapping = pool.open('beta').map();
  new Uint8Array(mapping.buffer)[8192] = 0x5a; // not committed yet
  const seen = await runClient(poolPath, [['map-read', 'beta', 'ro', 8192]]);
  assert.equal(seen[0]?.ok, 0x5a, 'a child sees the parent\'s store at once');
  const stored = await runClient(poolPath, [['map-store', 'beta', 8, 7]]);
  assert.equal(typeof stored[0]?.ok, 'number', JSON.stringify(stored[0]));
  const committed = pool.open('beta', { access: 'ro' }).read(0, 3 * 4096);
  assert.equal(committed[8192], 0x5a, 'the child\'s pmsync took the parent\'s store');
  assert.equal(committed[8], 7);
  assert.throws(() => pool.remove('beta'), (e) => isRegionError(e, 'BUSY'));
  mapping.unmap();
  pool.remove('beta');
  pool.close();
  await stopRegionds(poolPath);
});

test('one process maps a region read-only, then read-write', async () => {
  const poolPath = newPool('ro-then-rw');
  const pool = openPool(poolPath, { mode: 'shared' });
  pool.create('both', { size: '64KiB' });
  try {
    const lines = await runClient(poolPath, [['map-read', 'both', 'ro', 0], ['map-store', 'both', 0, 3]]);
    assert.equal(lines[0]?.ok, 0);
    assert.equal(typeof lines[1]?.ok, 'number', JSON.stringify(lines[1]));
    assert.equal(pool.open('both').read(0, 1)[0], 3);
  } finally {
    pool.close();
    await stopRegionds(poolPath);
  }
});

test(`list pages through more than ${LIST_PAGE_REGIONS} regions; a large read is one snapshot`, async () => {
  const poolPath = newPool('many');
  const pool = openPool(poolPath, { mode: 'shared' });
  const names = Array.from({ length: LIST_PAGE_REGIONS + 300 }, (_, i) => `region-${String(i).padStart(5, '0')}`);
  for (const name of names) pool.create(name, { size: 4096 });
  assert.deepEqual(pool.list().map((r) => r.name), names);
  pool.create('large', { size: 5 * MiB });
  const region = pool.open('large');
  region.write(0, new Uint8Array(5 * MiB).fill(7)); // staged: five chunks, one commit
  const bytes = region.read();
  assert.equal(bytes.length, 5 * MiB);
  assert.ok(bytes.every((b) => b === 7));
  assert.equal(region.info().epoch, 1);
  pool.close();
  await stopRegionds(poolPath);
});

test('the CLI in auto mode uses a running regiond and falls back to exclusive', async () => {
  const poolPath = newPool('cli');
  const alone = regionsJson<PoolInfo>(['info', '-p', poolPath]);
  assert.equal(alone.mode, 'exclusive');
  assert.equal(alone.server, undefined);
  const pool = openPool(poolPath, { mode: 'shared' });
  const server = serverOf(pool.info());
  const served = regionsJson<PoolInfo>(['info', '-p', poolPath]);
  assert.equal(served.mode, 'shared');
  assert.equal(serverOf(served).pid, server.pid);
  assert.equal(regions(['create', 'cli', '--size', '4MiB', '-p', poolPath]).status, 0);
  const input = new Uint8Array(3 * MiB + 123).map((_, i) => (i * 7) & 255); // staged in chunks, one commit
  const sync = regionsJson<{ epoch: number; pages: number }>(['write', 'cli', '--offset', '5', '-p', poolPath], input);
  assert.equal(sync.epoch, 1, 'one pmsync for the whole import');
  assert.equal(sync.pages, Math.ceil((input.length + 5) / 4096));
  const back = regions(['read', 'cli', '--offset', '5', '--length', String(input.length), '-p', poolPath]);
  assert.equal(back.status, 0, back.stderr);
  assert.ok(back.stdout.equals(Buffer.from(input)));
  assert.deepEqual(pool.list().map((r) => r.name), ['cli']);
  const exclusive = regions(['--mode', 'exclusive', 'info', '-p', poolPath]);
  assert.equal(exclusive.status, 1);
  assert.match(exclusive.stderr, new RegExp(`^regions: pool .* is served by regiond \\(pid ${server.pid}\\) to 1 other client; open it with mode 'shared' or 'auto'\n$`));
  pool.close();
  await stopRegionds(poolPath);
  assert.equal(regionsJson<PoolInfo>(['info', '-p', poolPath]).mode, 'exclusive', 'no regiond: exclusive again');
});

test('regiond killed with SIGKILL: SERVER_GONE, then a new regiond recovers the pool', async () => {
  const poolPath = newPool('killed');
  const pool = openPool(poolPath, { mode: 'shared' });
  pool.create('kept', { size: '256KiB' });
  const region = pool.open('kept');
  const pattern = new Uint8Array(200 * KiB).map((_, i) => (i * 13) & 255);
  region.write(1000, pattern);
  const mapping = region.map();
  new Uint8Array(mapping.buffer)[0] = 99; // never committed
  const old = serverOf(pool.info()).pid;
  process.kill(old, 'SIGKILL');
  await waitFor('the killed regiond to go', () => !regiondPids(poolPath).includes(old));
  for (const call of [() => pool.list(), () => region.read(0, 1), () => mapping.pmsync()]) {
    assert.throws(call, (e) => isRegionError(e, 'SERVER_GONE') && /is gone .*committed data is intact/.test(e.message));
  }
  pool.close(); // does not throw
  const again = openPool(poolPath);
  const fresh = serverOf(again.info()).pid;
  assert.notEqual(fresh, old);
  const bytes = again.open('kept').read(0, 256 * KiB);
  assert.equal(bytes[0], 0, 'the uncommitted store is gone');
  assert.ok(Buffer.from(bytes.subarray(1000, 1000 + pattern.length)).equals(Buffer.from(pattern)), 'committed data intact');
  assert.ok(again.check().ok);
  again.close();
  await stopRegionds(poolPath);
});

test('clients killed mid-write or holding a mapping are forgotten; regiond serves on', async () => {
  const poolPath = newPool('clients');
  const pool = openPool(poolPath, { mode: 'shared' });
  pool.create('big', { size: 3 * MiB }); // each write: three staged chunks, then one commit
  for (let kill = 0; kill < 5; kill++) {
    const writer = new ClientProcess(poolPath, [['fill-loop', 'big']]);
    await writer.line(0);
    await new Promise((resolve) => setTimeout(resolve, kill * 15));
    writer.child.kill('SIGKILL');
    const { signal } = await writer.exited;
    assert.equal(signal, 'SIGKILL');
    await waitFor('regiond to forget the killed writer', () => serverOf(pool.info()).clients.length === 1);
    const bytes = pool.open('big').read();
    const value = bytes[0] ?? 0;
    assert.ok(value >= 1);
    assert.ok(bytes.every((b) => b === value), `kill ${kill}: the region holds one whole write (${value})`);
  }
  pool.create('held', { size: '64KiB' });
  const holder = new ClientProcess(poolPath, [['map-keep', 'held', 0, 1], ['hold']]);
  await holder.line(1);
  assert.equal(serverOf(pool.info()).clients.find((c) => c.pid === holder.child.pid)?.mappings, 1);
  assert.throws(() => pool.remove('held'), (e) => isRegionError(e, 'BUSY'));
  holder.child.kill('SIGKILL');
  await holder.exited;
  await waitFor('regiond to forget the mapping', () => serverOf(pool.info()).clients.length === 1);
  pool.remove('held'); // its mapping was released
  assert.equal(pool.open('big').write(0, Uint8Array.of(0)).pages, 1);
  pool.close();
  await stopRegionds(poolPath);
});
