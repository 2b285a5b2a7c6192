// Durations as people read them: 850 ns, 12.5 µs, 3.2 ms, 1.25 s.

/** Nanoseconds in the largest unit that keeps the number at least 1. */
export function formatNs(ns: number): string {
  if (ns < 1e3) return `${ns} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}
