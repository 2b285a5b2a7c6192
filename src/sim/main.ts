// `npm run sim -- [--seeds N] [--seed S] [--length L] [--crash-rate R] [--images I]
//                 [--corruption-trials N] [--trial T]`
// Long campaigns of generated operation sequences with crash images, then the corruption
// campaign; a progress bar on a TTY, a summary at the end, exit status 1 on any failure. The
// base seed is REGIONS_SIM_SEED, --seed, or drawn at random, and is printed first, so any run
// can be replayed. Zeroed-block silent wrong results are a known open issue: reported and
// counted, but they do not fail the run.

import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startProgress } from '../util/progress.js';
import { formatFailure, formatSummary, runCampaign } from './campaign.js';
import { buildPools, type CorruptionSummary, isBad, runCorruption, runTrial } from './corruption.js';

const USAGE = 'usage: npm run sim -- [--seeds N] [--seed S] [--length L] [--crash-rate R (of 1024)] [--images I]\n'
  + '                       [--corruption-trials N] [--trial T (one corruption trial of seed S)]';

function count(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${what} must be a whole number, got "${text}"\n${USAGE}`);
  }
  return value;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' }, seed: { type: 'string' }, length: { type: 'string' },
      'crash-rate': { type: 'string' }, images: { type: 'string' },
      'corruption-trials': { type: 'string' }, trial: { type: 'string' },
    },
  });
  const seed = count(values.seed ?? process.env['REGIONS_SIM_SEED'], randomInt(2 ** 32), '--seed') >>> 0;
  process.stdout.write(`seed ${seed} (replay with REGIONS_SIM_SEED=${seed} or --seed ${seed})\n`);
  if (values.trial !== undefined) return oneTrial(seed, count(values.trial, 0, '--trial'));
  const sequences = count(values.seeds, 1000, '--seeds');
  const options = {
    seed, sequences, length: count(values.length, 24, '--length'),
    per1024: count(values['crash-rate'], 256, '--crash-rate'),
    images: count(values.images, 3, '--images'), shorten: true,
  };
  const bar = startProgress({ label: 'sequences', json: false, total: sequences, unit: 'items' });
  const campaign = runCampaign(options, (done) => bar.update(done));
  bar.stop();
  for (const failure of campaign.failures) process.stdout.write(`${formatFailure(failure)}\n`);
  process.stdout.write(`generated sequences: ${formatSummary(campaign)}\n`);
  const trials = count(values['corruption-trials'], 10_000, '--corruption-trials');
  const corruption = trials > 0 ? corruptionCampaign(seed, trials) : null;
  const failed = campaign.failures.length > 0 || (corruption !== null && failingTrials(corruption) > 0);
  process.stdout.write(failed ? 'FAILED\n' : 'ok\n');
  return failed ? 1 : 0;
}

function corruptionCampaign(seed: number, trials: number): CorruptionSummary {
  const bar = startProgress({ label: 'corruption trials', json: false, total: trials, unit: 'items' });
  const summary = runCorruption(seed, 0, trials, (r) => bar.update(r.trial + 1));
  bar.stop();
  const endings = [...summary.endings].map(([ending, n]) => `${n} ${ending}`).join(', ');
  process.stdout.write(`corruption trials: ${summary.trials} (${endings})\n`);
  for (const [category, results] of [...summary.bad].sort(([a], [b]) => a.localeCompare(b))) {
    process.stdout.write(`  ${category}: ${results.length}\n`);
    for (const r of results.slice(0, 5)) {
      const detail = r.detail.slice(0, 160);
      process.stdout.write(`    seed ${seed} trial ${r.trial}: ${r.damage} in ${r.structure}: ${detail}\n`);
    }
  }
  if (summary.bad.size > 0) process.stdout.write(`  replay one: --seed ${seed} --trial T\n`);
  return summary;
}

function failingTrials(summary: CorruptionSummary): number {
  return [...summary.bad.values()].reduce((n, r) => n + r.length, 0);
}

function oneTrial(seed: number, trial: number): number {
  const r = runTrial(buildPools(seed), seed, trial);
  const detail = r.detail ? `: ${r.detail}` : '';
  process.stdout.write(`trial ${trial}: ${r.damage} in ${r.structure}: ${r.ending}${detail}\n`);
  return isBad(r.ending) ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (error) {
  process.stderr.write(`sim: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
