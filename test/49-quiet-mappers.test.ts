// Quiet mappers (no SharedArrayBuffer handed out) are not write-protected by a pmsync of
// another process: their main thread parks in the shootdown handler until the release
// (native/shootdown.c), and a pmsync's own caller is not signalled at all, having reported its
// pages first. Both must still give a consistent cut: processes storing through `buffer` with
// every tracking pmsync at random, and every committed state they check is consistent
// (test/fixtures/quiet-mapper.ts). REGIONS_SEED replays a run; REGIONS_QUIET_ROUNDS sets its length.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPool, openPool } from '../src/index.js';
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
