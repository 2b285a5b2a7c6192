// The corruption campaign (src/sim/corruption.ts): damage one structure of a committed pool
// per trial and require a refusal naming it, a harmless mount, or a repair, never a mount
// with wrong data (a zeroed block included: format version 2 check-codes holes and never-used
// slots). REGIONS_SIM_SEED=N replays.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildPools, runCorruption, runTrial } from '../src/sim/corruption.js';

const seed = Number(process.env['REGIONS_SIM_SEED'] ?? 2_024);
const TRIALS = 1_000;

test(`corruption campaign: ${TRIALS} trials, no silent wrong result`, (t) => {
  t.diagnostic(`seed ${seed} (replay: REGIONS_SIM_SEED=${seed}; one trial: npm run sim -- --seed ${seed} --trial T)`);
  const summary = runCorruption(seed, 0, TRIALS);
  t.diagnostic(`endings: ${[...summary.endings].map(([ending, n]) => `${n} ${ending}`).join(', ')}`);
  const failing: string[] = [];
  for (const [category, results] of summary.bad) {
    t.diagnostic(`${category}: ${results.length} (trials ${results.slice(0, 12).map((r) => r.trial).join(', ')})`);
    const describe = (r: (typeof results)[number]): string =>
      `seed ${seed} trial ${r.trial}: ${r.damage} in ${r.structure}: ${r.ending}: ${r.detail}`;
    failing.push(...results.map(describe));
  }
  assert.equal(summary.trials, TRIALS);
  assert.ok((summary.endings.get('refused') ?? 0) > 0, 'some damage is refused');
  assert.deepEqual(failing, []);
});

test('a pool whose data differs from the model is a silent wrong result (the campaign can fail)', () => {
  const pools = buildPools(seed);
  for (const pool of pools) {
    const [name, region] = [...pool.model.regions][0] ?? [];
    assert.ok(name !== undefined && region !== undefined, 'every pool has a region');
    region.pages.set(0, new Uint8Array(4096).fill(7)); // the model now says page 0 holds 7s
  }
  const endings = new Set(Array.from({ length: 40 }, (_, trial) => runTrial(pools, seed, trial).ending));
  assert.ok(endings.has('silent wrong result'), `endings: ${[...endings]}`);
});
