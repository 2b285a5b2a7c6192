// Summaries of trial times: the median of each trial, then the median and the spread
// (min-max) of those medians across trials, and the p99 of every op pooled.

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Nearest-rank quantile (q in [0, 1]); NaN for no values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  if (q === 0.5 && sorted.length % 2 === 0) return ((sorted[sorted.length / 2 - 1] ?? 0) + (sorted[sorted.length / 2] ?? 0)) / 2;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function geometricMean(values: readonly number[]): number {
  const usable = values.filter((v) => Number.isFinite(v) && v > 0);
  if (usable.length === 0) return Number.NaN;
  return Math.exp(usable.reduce((sum, v) => sum + Math.log(v), 0) / usable.length);
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Median and min-max of per-trial medians. */
export function spreadOf(perTrial: readonly number[]): Spread {
  return { median: median(perTrial), min: Math.min(...perTrial), max: Math.max(...perTrial) };
}
