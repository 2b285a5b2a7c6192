// Quiet mappers (no SharedArrayBuffer handed out) are not write-protected by a pmsync of
// another process: their main thread parks in the shootdown handler until the release
// (native/shootdown.c), and a pmsync's own caller is not signalled at all, having reported its
// pages first. Both must still give a consistent cut: processes storing through `buffer` with
// every tracking pmsync at random, and every committed state they check is consistent
// (test/fixtures/quiet-mapper.ts). REGIONS_SEED replays a run; REGIONS_QUIET_ROUNDS sets its length.
// Then group commit: pmsyncs that reach regiond in one turn of its event loop are one commit.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_VERSION } from '../src/constants.js';
import { createPool, openPool } from '../src/index.js';
import { encodeFrame } from '../src/wire/protocol.js';
import { socketAddress } from '../src/wire/socket_path.js';
import { Raw, type Reply } from './fixtures/raw-connection.js';
import { checkCut, QUIET_REGION, QUIET_REGION_BYTES } from './fixtures/quiet-model.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const mapper = path.join(here, 'fixtures', 'quiet-mapper.js');
const seed = Number(process.env.REGIONS_SEED ?? 1 + Math.floor(Math.random() * 1e6));
const rounds = Number(process.env.REGIONS_QUIET_ROUNDS ?? 1000);
const TRACKINGS = ['fault', 'manual', 'scan', 'fault'] as const;

interface Mapper {
  ready: Promise<void>;
  done: Promise<string>;
  go: () => void;
}

function startMapper(poolPath: string, id: number): Mapper {
  const args = [mapper, poolPath, String(id), TRACKINGS[id] ?? 'fault', String(rounds), String(seed)];
  const child = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, REGIONS_QUIET: '1' },
  });
  let out = '';
  let err = '';
  let sawReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (sawReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes('ready\n')) sawReady();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const done = new Promise<string>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      sawReady();
      if (code === 0) resolve(out);
      else reject(new Error(`mapper ${id} (${TRACKINGS[id]}) exited with ${code ?? signal}: ${out}${err}`));
    });
  });
  return { ready, done, go: () => child.stdin.end('go\n') };
}

test('processes storing through buffer while others pmsync: every committed cut is consistent', async (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed}); ${rounds} rounds per mapper`);
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'regions-quiet-'));
  const poolPath = path.join(dir, 'quiet.pool');
  let regiond: number | undefined;
  try {
    createPool(poolPath, { size: '8MiB', mode: 'shared' }).create(QUIET_REGION, { size: QUIET_REGION_BYTES });
    const mappers = TRACKINGS.map((_, id) => startMapper(poolPath, id));
    await Promise.all(mappers.map((m) => m.ready));
    for (const m of mappers) m.go();
    const outputs = await Promise.all(mappers.map((m) => m.done));
    const pmsyncs = outputs.map((out) => Number(/done (\d+)/.exec(out)?.[1] ?? 0));
    t.diagnostic(`pmsyncs per mapper: ${pmsyncs.join(', ')}`);
    assert.ok(pmsyncs.every((n) => n > 0), 'every mapper pmsynced');
    const pool = openPool(poolPath, { mode: 'shared' });
    regiond = pool.server?.pid;
    try {
      const committed = pool.open(QUIET_REGION).read();
      assert.equal(checkCut(committed), null, 'the last state is a consistent cut');
      assert.equal(pool.check().problems.length, 0, 'fsck is clean');
    } finally {
      pool.close();
    }
  } finally {
    if (regiond) process.kill(regiond, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const REPLY_WAIT_MS = 30_000;

/** The reply's result, checked to answer request `id`; fails the test on silence, a close or an error reply. */
async function resultOf(raw: Raw, id: number, what: string): Promise<Record<string, unknown>> {
  const reply: Reply | null = await raw.next(REPLY_WAIT_MS);
  assert.ok(reply !== null && reply !== 'closed', `${what}: a reply`);
  assert.equal(reply.header.ok, true, `${what}: ${JSON.stringify(reply.header.error)}`);
  assert.equal(reply.header.id, id, `${what}: the reply to request ${id}, in order`);
  return reply.header.result as Record<string, unknown>;
}

test('pmsyncs that reach regiond together are one commit; a request behind a pmsync is answered after it', async () => {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'regions-group-'));
  const poolPath = path.join(dir, 'group.pool');
  createPool(poolPath, { size: '8MiB', mode: 'shared' }).create('g', { size: '64KiB' });
  const pool = openPool(poolPath, { mode: 'shared' });
  const regiond = pool.server?.pid;
  assert.ok(regiond !== undefined, 'shared mode has a regiond');
  try {
    const mapping = pool.open('g').map({ tracking: 'manual' });
    new Uint8Array(mapping.buffer)[0] = 7; // one dirty page, for whichever pmsync comes first
    mapping.markDirty(0, 1);
    const socketPath = path.join(dir, socketAddress(poolPath).name);
    const raws = [await Raw.open(socketPath), await Raw.open(socketPath)];
    const refs: unknown[] = [];
    for (const raw of raws) {
      raw.send(encodeFrame({ id: 1, op: 'hello', protocol: PROTOCOL_VERSION }));
      await resultOf(raw, 1, 'hello');
      raw.send(encodeFrame({ id: 2, op: 'open', name: 'g', access: 'rw' }));
      refs.push((await resultOf(raw, 2, 'open')).region);
    }
    // Stopped, regiond cannot read either request before both are in its sockets: when it
    // goes on, one poll of its event loop delivers both, and they wait for the same turn.
    process.kill(regiond, 'SIGSTOP');
    try {
      raws.forEach((raw, i) => raw.send(encodeFrame({ id: 3, op: 'pmsync', region: refs[i] })));
      raws[0]?.send(encodeFrame({ id: 4, op: 'stat', name: 'g' }));
    } finally {
      process.kill(regiond, 'SIGCONT');
    }
    const [first, second] = await Promise.all(raws.map((raw) => resultOf(raw, 3, 'pmsync')));
    assert.equal(first?.pages, 1, 'the commit took the dirty page');
    assert.equal(second?.pages, 1, 'both pmsyncs were that one commit (a second would have found nothing dirty)');
    assert.equal(first?.epoch, second?.epoch);
    const behind = raws[0] ? await resultOf(raws[0], 4, 'the stat behind the pmsync') : {};
    assert.equal(behind.epoch, first?.epoch, 'the stat saw the commit');
    for (const raw of raws) raw.destroy();
  } finally {
    pool.close();
    process.kill(regiond, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

