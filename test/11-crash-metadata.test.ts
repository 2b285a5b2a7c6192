import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from '../src/crashtest/harness.js';
import { METADATA_SCENARIOS } from '../src/crashtest/scenarios.js';

const seed = Number(process.env.REGIONS_SEED ?? 1);

for (const scenario of METADATA_SCENARIOS) {
  test(`crash images: ${scenario.name}`, (t) => {
    t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
    const result = runScenario(scenario, { unitsMax: 10, samples: 24, seed, recoveryCrashes: 2 });
    t.diagnostic(`${result.points} fence points, ${result.images} images, ${result.failures.length} failures`);
    assert.ok(result.images > 0);
    assert.deepEqual(result.failures.slice(0, 3), []);
  });
}
