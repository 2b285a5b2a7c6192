// `regions crashtest`: runs the crash-image scenarios of src/crashtest on a SimDevice and
// reports them; any failure prints its seed so `--seed` replays it.

import { type Command, Option } from 'commander';
import { runScenario, type CrashFailure, type ScenarioResult } from '../../crashtest/harness.js';
import { METADATA_SCENARIOS, PMSYNC_SCENARIOS } from '../../crashtest/scenarios.js';
import { act, globalsOf, integerArg } from '../context.js';
import { emit, table } from '../output.js';
import { count } from '../../util/count.js';
import { startProgress } from '../../util/progress.js';

const SCENARIO_SETS = {
  metadata: METADATA_SCENARIOS,
  pmsync: PMSYNC_SCENARIOS,
  all: [...METADATA_SCENARIOS, ...PMSYNC_SCENARIOS],
};
/** Images of each recovery that are themselves crashed at every fence (as in the test suite). */
const RECOVERY_CRASHES = 2;

interface CrashtestOptions {
  ops: keyof typeof SCENARIO_SETS;
  seed?: number;
  unitsMax: number;
  samples: number;
}

export function registerCrashtestCommand(program: Command): void {
  program
    .command('crashtest')
    .description('check that every crash image of each operation mounts to the state before or after it')
    .addOption(new Option('--ops <set>', 'which operations').choices(Object.keys(SCENARIO_SETS)).default('all'))
    .option('--seed <n>', 'seed of the crash-image sampler (default $REGIONS_SEED, else random)', integerArg('seed'))
    .option('--units-max <n>', 'most pending store units combined per crash image', integerArg('units-max'), 10)
    .option('--samples <n>', 'crash images sampled per fence point', integerArg('samples'), 24)
    .option('--json', 'print { operations, images, failures, seed }')
    .action(act(crashtest));
}

function crashtest(cmd: Command): number {
  const globals = globalsOf(cmd);
  const options = cmd.opts<CrashtestOptions>();
  const seed = options.seed ?? defaultSeed();
  const scenarios = SCENARIO_SETS[options.ops];
  const progress = startProgress({ label: 'crashtest', json: globals.json, total: scenarios.length, unit: 'items' });
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of scenarios) {
      results.push(runScenario(scenario, { unitsMax: options.unitsMax, samples: options.samples, seed, recoveryCrashes: RECOVERY_CRASHES }));
      progress.update(results.length);
    }
  } finally {
    progress.stop();
  }
  const operations = scenarios.reduce((sum, s) => sum + s.steps.length, 0);
  const images = results.reduce((sum, r) => sum + r.images, 0);
  const failures = results.flatMap((r) => r.failures);
  const steps = scenarios.map((s) => s.steps.length);
  emit(globals, { operations, images, failures: failures.length, seed }, () => humanReport(results, steps, { operations, images, seed }, failures[0]));
  return failures.length === 0 ? 0 : 1;
}

/** One row per scenario with its operations (a scenario may run several), so the totals add up. */
function humanReport(results: ScenarioResult[], steps: number[], totals: { operations: number; images: number; seed: number }, first: CrashFailure | undefined): string[] {
  const rows = results.map((r, i) => [
    r.failures.length === 0 ? 'ok' : 'FAIL', r.scenario, count(steps[i] ?? 0, 'operation'), `${r.points} fence points`, `${r.images} images`,
  ]);
  const failed = results.reduce((sum, r) => sum + r.failures.length, 0);
  const summary = `${count(results.length, 'scenario')}, ${count(totals.operations, 'operation')}, ${totals.images} crash images, ${count(failed, 'failure')}`;
  const lines = [...table(rows), `${summary} (seed ${totals.seed}; replay with --seed ${totals.seed})`];
  if (first) lines.push(`first failure: seed ${first.seed}, scenario "${first.scenario}", fence point ${first.point}, image ${first.image}: ${first.message}`);
  return lines;
}

function defaultSeed(): number {
  const fromEnv = process.env['REGIONS_SEED'];
  if (fromEnv !== undefined && /^\d+$/.test(fromEnv)) return Number(fromEnv);
  return Math.floor(Math.random() * 2 ** 31);
}
