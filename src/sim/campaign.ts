// Campaigns of generated sequences, shared by the test suite and `npm run sim`: sequence i of
// a campaign with base seed B is generated from seed B + i, so every failure names the one
// seed that replays it (REGIONS_SIM_SEED), and is reported with a delta-debugged sequence.

import { describeOp, generateSequence, type Sequence } from './ops.js';
import { type CrashPolicy, runSequence, type SimFailure, shortenSequence } from './sequence.js';

export interface CampaignOptions {
  /** The first sequence's seed; sequence i uses seed + i (mod 2^32). */
  seed: number;
  sequences: number;
  /** Operations per sequence. */
  length: number;
  /** Chance in 1/1024 that a fence becomes a crash point, and images sampled there. */
  per1024: number;
  images: number;
  /** Shorten each failing sequence (delta debugging) before reporting it. */
  shorten: boolean;
}

export interface SequenceFailure {
  seed: number;
  /** The campaign's options (with the sequence's own seed, they replay it). */
  options: CampaignOptions;
  failure: SimFailure;
  sequence: Sequence;
  /** The delta-debugged sequence, or null when not shortened. */
  shortened: Sequence | null;
}

export interface CampaignSummary {
  sequences: number;
  operations: number;
  crashPoints: number;
  images: number;
  failures: SequenceFailure[];
}

/** A sequence's crash choices have their own seed, so shortening the sequence keeps them comparable. */
export function policyFor(seed: number, options: Pick<CampaignOptions, 'per1024' | 'images'>): CrashPolicy {
  return { seed: (seed ^ 0x5eed5eed) >>> 0, per1024: options.per1024, images: options.images };
}

export function sequenceSeed(base: number, i: number): number {
  return (base + i) >>> 0;
}

/** Runs the campaign; onSequence sees the count done (progress). */
export function runCampaign(options: CampaignOptions, onSequence?: (done: number) => void): CampaignSummary {
  const summary: CampaignSummary = { sequences: 0, operations: 0, crashPoints: 0, images: 0, failures: [] };
  for (let i = 0; i < options.sequences; i++) {
    const seed = sequenceSeed(options.seed, i);
    const sequence = generateSequence(seed, options.length);
    const policy = policyFor(seed, options);
    const result = runSequence(sequence, policy);
    summary.sequences++;
    summary.operations += result.opsRun;
    summary.crashPoints += result.crashPoints;
    summary.images += result.images;
    if (result.failure) {
      const shortened = options.shorten ? shortenSequence(sequence, policy) : null;
      summary.failures.push({ seed, options, failure: result.failure, sequence, shortened });
    }
    onSequence?.(i + 1);
  }
  return summary;
}

/** What a person needs to see and replay a failing sequence. */
export function formatFailure(f: SequenceFailure): string {
  const shown = f.shortened ?? f.sequence;
  const lines = [
    `sequence seed ${f.seed} failed at operation ${f.failure.op}: ${f.failure.message}`,
    `  replay: REGIONS_SIM_SEED=${f.seed} npm run sim -- --seeds 1 --length ${f.options.length} `
      + `--crash-rate ${f.options.per1024} --images ${f.options.images} --corruption-trials 0`,
    `  ${f.shortened ? `shortened to ${shown.ops.length} of ${f.sequence.ops.length} operations` : 'operations'}`
      + ` (pool ${shown.poolBytes} bytes):`,
    ...shown.ops.map((op, i) => `    ${i}. ${describeOp(op)}`),
  ];
  return lines.join('\n');
}

export function formatSummary(s: CampaignSummary): string {
  return `${s.sequences} sequences, ${s.operations} operations, ${s.crashPoints} crash points, `
    + `${s.images} crash images mounted and checked; ${s.failures.length} failing sequences`;
}
