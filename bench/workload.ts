// The trial protocol every system follows, in TypeScript (bench/peers/common.h is the same
// in C): the trial's spec, how an op's units are chosen and filled, the timed loop, and the
// result a trial child prints as its last stdout line.
//
// One op commits `count` units of `unitBytes` (a 4 KiB page, or a 64-byte record):
// `seq` walks the data in order; `random` draws `count` distinct units with mulberry32 from
// the trial's seed (partial Fisher-Yates), sorted, so every system of a trial round gets the
// same units. Each unit is filled with one byte value and stamped with the op number and the
// trial's stamp (unique in the run), so every op really changes every unit, even one a trial
// of another system wrote with the same seed (a scanning tracker cannot skip one).

import fs from 'node:fs';

export const PAGE_BYTES = 4096;
export const RECORD_BYTES = 64;
export const CACHE_LINE_BYTES = 64;
/** Most ops one trial records (bounds memory and the result's size). */
export const OPS_LIMIT = 100_000;

export type Pattern = 'seq' | 'random';

/** What the runner hands a trial child (as JSON in argv). */
export interface TrialSpec {
  system: string;
  workload: string;
  /** Workload parameters, e.g. { count: 16, pattern: 'random', dataBytes: 16 MiB }. */
  params: Record<string, number | string>;
  /** The system's store (file or directory) for this workload and size; reused across trials. */
  file: string;
  /** A directory on the same file system for scratch files of this trial. */
  scratch: string;
  seed: number;
  /** Unique per trial in a run: stamped into every unit, so no trial rewrites another's bytes. */
  stamp: number;
  /** Warm-up ops before measuring: at least `warmup`, until `warmupMs` passed (at most OPS_LIMIT). */
  warmup: number;
  warmupMs: number;
  opsMin: number;
  opsMax: number;
  budgetMs: number;
}

/** What a trial child prints: measurements, or why the system could not run. */
export type TrialResult = TrialMeasured | { skipped: string };

export interface TrialMeasured {
  ops: number;
  /** The whole op (write the units and make them durable), per op. */
  opNs: number[];
  /** Region System: the store loop (stores, markDirty, first-store faults), per op. */
  storeNs?: number[];
  /** Region System: pmsync alone, per op. */
  syncNs?: number[];
  /** Totals over the measured ops. */
  linesFlushed?: number;
  fences?: number;
  /** Bytes written toward the persistence domain (how: pmBytesSource). */
  pmBytes?: number;
  pmBytesSource?: string;
  /** User bytes committed per op. */
  userBytesPerOp: number;
  notes?: string;
  /** Workload-specific numbers (e.g. unmapNs). */
  extra?: Record<string, number>;
  /** Workload-specific structured output (e.g. the opcosts table). */
  data?: unknown;
}

/** mulberry32: tiny, fast, and the same in bench/peers/common.h. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Chooses each op's units, as chooser_next in bench/peers/common.h. */
export class UnitChooser {
  readonly units: number;
  readonly chosen: Float64Array;
  #order: Uint32Array | undefined;
  #cursor = 0;
  #next: () => number;

  constructor(
    dataBytes: number,
    unitBytes: number,
    readonly count: number,
    readonly pattern: Pattern,
    seed: number,
  ) {
    this.units = dataBytes / unitBytes;
    if (!Number.isInteger(this.units) || count < 1 || count > this.units) {
      throw new RangeError(`cannot choose ${count} units of ${unitBytes} bytes in ${dataBytes} bytes`);
    }
    this.chosen = new Float64Array(count);
    this.#next = prng(seed);
  }

  /** Fills `chosen` with the next op's units, ascending. */
  next(): Float64Array {
    if (this.pattern === 'seq') {
      for (let j = 0; j < this.count; j++) this.chosen[j] = (this.#cursor + j) % this.units;
      this.#cursor = (this.#cursor + this.count) % this.units;
      if ((this.chosen[this.count - 1] ?? 0) < (this.chosen[0] ?? 0)) this.chosen.sort();
      return this.chosen;
    }
    const order = (this.#order ??= Uint32Array.from({ length: this.units }, (_, i) => i));
    for (let j = 0; j < this.count; j++) {
      const pick = j + (this.#next() % (this.units - j));
      const swap = order[j] ?? 0;
      order[j] = order[pick] ?? 0;
      order[pick] = swap;
      this.chosen[j] = order[j] ?? 0;
    }
    this.chosen.sort();
    return this.chosen;
  }
}

/** The byte value of op n (1..255: never the zero of a fresh page). */
export function fillValue(op: number): number {
  return (op % 255) + 1;
}

/** Fills one unit in place: the op's byte value, then the op number and the stamp (LE u32s). */
export function fillUnit(bytes: Uint8Array, offset: number, unitBytes: number, op: number, stamp: number): void {
  bytes.fill(fillValue(op), offset, offset + unitBytes);
  stampUnit(bytes, offset, op, stamp);
}

export function stampUnit(bytes: Uint8Array, offset: number, op: number, stamp: number): void {
  bytes[offset] = op & 0xff;
  bytes[offset + 1] = (op >>> 8) & 0xff;
  bytes[offset + 2] = (op >>> 16) & 0xff;
  bytes[offset + 3] = (op >>> 24) & 0xff;
  bytes[offset + 4] = stamp & 0xff;
  bytes[offset + 5] = (stamp >>> 8) & 0xff;
  bytes[offset + 6] = (stamp >>> 16) & 0xff;
  bytes[offset + 7] = (stamp >>> 24) & 0xff;
}

export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/** A system's per-op work: `prepare` is untimed (choose units); `op` is timed. */
export interface OpRunner {
  prepare(op: number): void;
  run(op: number): void;
  /** Called once after warm-up: zero counters. */
  reset(): void;
}

/**
 * Runs the warm-up (at least `warmup` ops, then more until `warmupMs` passed, at most OPS_LIMIT:
 * a Node system's code is measured once its JIT tiers have settled, as a long-running
 * program runs it; the C peers warm up by the same rule), then measured ops until opsMax, or
 * until at least opsMin ran and budgetMs passed. Returns the measured ops' times.
 */
export function runOps(spec: TrialSpec, runner: OpRunner): number[] {
  if (spec.opsMin < 1 || spec.opsMax < spec.opsMin || spec.opsMax > OPS_LIMIT) {
    throw new RangeError(`need 0 < opsMin <= opsMax <= ${OPS_LIMIT}`);
  }
  let op = 0;
  const warmStart = nowNs();
  const warming = (): boolean => op < spec.warmup || (op < OPS_LIMIT && (nowNs() - warmStart) / 1e6 < spec.warmupMs);
  for (; warming(); op++) {
    runner.prepare(op);
    runner.run(op);
  }
  runner.reset();
  const times: number[] = [];
  const start = nowNs();
  while (times.length < spec.opsMax) {
    if (times.length >= spec.opsMin && (nowNs() - start) / 1e6 >= spec.budgetMs) break;
    runner.prepare(op);
    const before = nowNs();
    runner.run(op++);
    times.push(nowNs() - before);
  }
  return times;
}

/** The numbered parameter of a spec, checked. */
export function numberParam(spec: TrialSpec, name: string): number {
  const value = spec.params[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`trial parameter ${name} is missing or not a number`);
  return value;
}

export function stringParam(spec: TrialSpec, name: string): string {
  const value = spec.params[name];
  if (typeof value !== 'string') throw new TypeError(`trial parameter ${name} is missing or not a string`);
  return value;
}

/** The pattern of a spec, checked. */
export function patternParam(spec: TrialSpec): Pattern {
  const value = stringParam(spec, 'pattern');
  if (value !== 'seq' && value !== 'random') throw new TypeError(`pattern ${value} is neither seq nor random`);
  return value;
}

/** Bytes written by this process's write/pwrite calls so far (/proc/self/io wchar). */
export function writeSyscallBytes(): number {
  const match = /^wchar:\s*(\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
  return match ? Number(match[1]) : 0;
}

/** The line of a child's stderr that names its error (skipping source excerpts and carets). */
export function errorLine(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  return lines.find((line) => /^\w*(Error|Exception)\b.*:/.test(line)) ?? lines[0] ?? '(no message)';
}
