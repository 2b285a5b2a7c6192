// PMap in shared mode under SIGKILL: two writer processes run seeded streams of batches on
// the same map (keys prefixed 'a' and 'b', so each has its own model), one is killed, the
// other goes on (taking the lock over from the dead one and putting its half-done batch
// back), then it is killed too. Each writer's keys must then be its acknowledged state or
// one batch on: a survivor that committed the dead writer's half batch would leave neither.
// PMap.check() must be clean. REGIONS_PMAP_SHARED_KILLS sets the number of rounds.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { createPool, openPool, PMap } from '../src/index.js';
import { SimPrng } from '../src/pm/sim_prng.js';
import { WriterChild } from './fixtures/pmap-child.js';
import { Model, modelAfter, sameContents } from './fixtures/pmap-model.js';

process.env['REGIONS_QUIET'] = '1';
process.env['REGIONS_IDLE_EXIT'] = '20';
delete process.env['REGIONS_POOL'];
const seed = Number(process.env['REGIONS_SEED'] ?? 1 + Math.floor(Math.random() * 1e6));
const ROUNDS = Number(process.env['REGIONS_PMAP_SHARED_KILLS'] ?? 8);
const SPACE = 200;
const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-pmap-shared-'));
const file = path.join(dir, 'shared.pool');
const regionds = new Set<number>();

after(() => {
  for (const pid of regionds) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone already
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs both writers; the first dies at its target, the other a few batches later. */
async function round(prng: SimPrng, seeds: [number, number], firstDies: 0 | 1): Promise<[number, number]> {
  const target = 1 + prng.nextBelow(40);
  const extra = 2 + prng.nextBelow(10);
  let survivorTarget = Infinity;
  const writers: WriterChild[] = [];
  const onAck = (index: number) => (writer: WriterChild): void => {
    if (index === firstDies && writer.acked >= target && survivorTarget === Infinity) {
      writer.kill();
      survivorTarget = (writers[1 - index]?.acked ?? 0) + extra;
    } else if (index !== firstDies && writer.acked >= survivorTarget) writer.kill();
  };
  for (const index of [0, 1]) {
    const args = [file, 'shared', String(seeds[index]), String(SPACE), 'ab'[index] ?? ''];
    writers.push(new WriterChild(args, onAck(index)));
  }
  const [a, b] = await Promise.all(writers.map((writer) => writer.ended));
  return [a ?? 0, b ?? 0];
}

test('shared: two writers under SIGKILL; each keeps its acknowledged batches, never half a batch', async (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed}), ${ROUNDS} rounds`);
  const prng = new SimPrng(seed);
  createPool(file, { size: '64MiB', mode: 'exclusive' }).close();
  const setup = openPool(file, { mode: 'shared' });
  if (setup.server) regionds.add(setup.server.pid);
  PMap.open(setup, 'm', { create: true, size: '8MiB' }).close();
  setup.close();
  const models: [Model, Model] = [new Model(), new Model()];
  let inFlight = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const seeds: [number, number] = [prng.nextU32() + 1, prng.nextU32() + 1];
    const acked = await round(prng, seeds, (r % 2) as 0 | 1);
    const pool = openPool(file, { mode: 'shared' });
    if (pool.server) regionds.add(pool.server.pid);
    try {
      const map = PMap.open(pool, 'm');
      for (const index of [0, 1] as const) {
        const prefix = 'ab'[index] ?? '';
        const range = { start: prefix, end: String.fromCharCode(prefix.charCodeAt(0) + 1) };
        const before = modelAfter(models[index], seeds[index], SPACE, acked[index], prefix);
        const next = modelAfter(models[index], seeds[index], SPACE, acked[index] + 1, prefix);
        const label = `round ${r}, writer ${prefix} after ${acked[index]} batches (seed ${seed})`;
        if (sameContents(map, before, range)) models[index] = before;
        else if (sameContents(map, next, range)) {
          models[index] = next;
          inFlight++;
        } else assert.fail(`${label}: its keys are neither the acknowledged state nor one batch on`);
      }
      const report = map.check();
      const problems = JSON.stringify(report.problems);
      assert.ok(report.ok, `round ${r}: ${problems}, ${report.leaks.length} leaks (seed ${seed})`);
      map.close();
    } finally {
      pool.close();
    }
  }
  t.diagnostic(`${ROUNDS} rounds, ${2 * ROUNDS} kills, ${inFlight} with the batch in flight committed`);
});

test('shared: readers never see half a batch: a sum kept by transfers, read while a writer runs, dies', async (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
  const pool = openPool(file, { mode: 'shared' });
  if (pool.server) regionds.add(pool.server.pid);
  try {
    const setup = PMap.open<number>(pool, 't', { create: true, size: '1MiB' });
    setup.batch(() => {
      for (let i = 0; i < 50; i++) setup.put(i, 1000);
    });
    setup.close();
    const sum = (map: PMap<number>): number => [...map.range()].reduce((total, [, value]) => total + value, 0);
    const writer = new WriterChild([file, 'shared', String(seed), 'transfer'], () => {});
    const reader = PMap.open<number>(pool, 't');
    let reads = 0;
    for (; (reads < 300 || writer.acked < 50) && reads < 20_000; reads++) {
      assert.equal(sum(reader), 50_000, `read ${reads} while ${writer.acked} transfers were acknowledged`);
      await new Promise((resolve) => setImmediate(resolve)); // let the writer's acknowledgements in
    }
    assert.ok(writer.acked >= 50, `the writer acknowledged ${writer.acked} transfers during ${reads} reads`);
    writer.kill();
    const acked = await writer.ended;
    assert.equal(sum(reader), 50_000, 'after the writer died (perhaps inside a transfer)');
    assert.ok(reader.check().ok);
    t.diagnostic(`${reads} reads of 50 keys during ${acked} transfers`);
    reader.close();
  } finally {
    pool.close();
  }
});
