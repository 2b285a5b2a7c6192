// PMap under SIGKILL (exclusive mode): a child runs a seeded stream of batches (puts and
// deletes, some abandoned by a throw, the region growing from 128 KiB) and is killed after a
// random number of acknowledged batches. Each time, the reopened map must equal the model
// after the acknowledged batches or after those and the one in flight, and PMap.check() and
// the pool's fsck must be clean. REGIONS_PMAP_KILLS sets the number of kills.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPool, openPool, PMap } from '../src/index.js';
import { SimPrng } from '../src/pm/sim_prng.js';
import { WriterChild } from './fixtures/pmap-child.js';
import { Model, modelAfter, sameContents } from './fixtures/pmap-model.js';

process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];
const seed = Number(process.env['REGIONS_SEED'] ?? 1 + Math.floor(Math.random() * 1e6));
const KILLS = Number(process.env['REGIONS_PMAP_KILLS'] ?? 8);
const SPACE = 300;

test('SIGKILL of a writer in the middle of batches: the map is the acknowledged state or one batch on', async (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed}), ${KILLS} kills`);
  const prng = new SimPrng(seed);
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-pmap-kill-'));
  const file = path.join(dir, 'kill.pool');
  createPool(file, { size: '64MiB', mode: 'exclusive' }).close();
  let model = new Model();
  let inFlight = 0;
  try {
    for (let kill = 0; kill < KILLS; kill++) {
      const streamSeed = prng.nextU32() + 1;
      const args = [file, 'exclusive', String(streamSeed), String(SPACE)];
      const target = 1 + prng.nextBelow(60);
      const acked = await new WriterChild(args, (writer) => writer.acked >= target && writer.kill()).ended;
      const pool = openPool(file, { mode: 'exclusive' });
      try {
        const map = PMap.open(pool, 'm');
        const before = modelAfter(model, streamSeed, SPACE, acked);
        const after = modelAfter(model, streamSeed, SPACE, acked + 1);
        const label = `kill ${kill} after ${acked} batches of stream ${streamSeed} (seed ${seed})`;
        if (sameContents(map, before)) model = before;
        else if (sameContents(map, after)) {
          model = after;
          inFlight++;
        } else assert.fail(`${label}: the map is neither the acknowledged state nor one batch on`);
        const report = map.check();
        assert.ok(report.ok, `${label}: ${JSON.stringify(report.problems)}, ${report.leaks.length} leaks`);
        assert.ok(pool.check().ok, `${label}: fsck`);
        map.close();
      } finally {
        pool.close();
      }
    }
    t.diagnostic(`${KILLS} kills, ${inFlight} with the batch in flight committed; ${model.entries.size} entries left`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
