import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from '../src/crashtest/harness.js';
import { PMSYNC_SCENARIOS } from '../src/crashtest/scenarios.js';
import { Journal } from '../src/kernel/journal.js';
import { crashSeed, testScenarios } from './fixtures/crash-scenarios.js';

const seed = crashSeed;

testScenarios(PMSYNC_SCENARIOS);

// The harness must be able to fail: a journal that stores its commit word before the fence
// that orders the record (one fence instead of two) must be caught.
test('the harness catches a commit word written before the record is fenced', (t) => {
  const original = Journal.prototype.commit;
  const scenario = PMSYNC_SCENARIOS.find((s) => s.name.startsWith('pmsync 2 pages'));
  assert.ok(scenario);
  Journal.prototype.commit = function broken(this: Journal, tx) {
    const device = (this as unknown as { device: { fence(): void } }).device;
    const fence = device.fence;
    let skipped = false;
    device.fence = function () {
      if (!skipped) {
        skipped = true;
        return;
      }
      fence.call(this);
    };
    try {
      return original.call(this, tx);
    } finally {
      device.fence = fence;
    }
  };
  try {
    const result = runScenario(scenario, { unitsMax: 10, samples: 64, seed, recoveryCrashes: 0 });
    const first = result.failures[0]?.message.slice(0, 120);
    const caught = `${result.failures.length} of ${result.images} images`;
    t.diagnostic(`expected: a journal broken on purpose is caught in ${caught}; first: ${first}`);
    assert.ok(result.failures.length > 0, 'the broken journal must be caught');
  } finally {
    Journal.prototype.commit = original;
  }
});
