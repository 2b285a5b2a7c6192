// The corruption campaign: damage one structure of a committed pool (flip bits, overwrite a
// byte, zero a whole block) and require one of three endings:
//   refused   mount throws RegionError CORRUPT naming the structure (and fsck --repair,
//             if it lets the pool mount, gives back exactly the model);
//   harmless  mount succeeds and every region equals the model;
//   repaired  mount refuses, fsck --repair mends it, and the mount after equals the model;
//   quarantined  as repaired, but fsck --repair marked a region with a damaged page table
//             damaged: every other region equals the model, and every page of the damaged
//             one either equals the model or says it cannot be read.
// A mount that succeeds with anything else is a silent wrong result. Data pages carry no
// checksum (docs/guarantees.md), so only metadata is damaged here.

import { BLOCK_BYTES } from '../constants.js';
import { isRegionError } from '../errors.js';
import { inspectPool } from '../kernel/check.js';
import { RegionManager } from '../kernel/region_manager.js';
import { SimPrng } from '../pm/sim_prng.js';
import { compareWithModel, PoolModel } from './model.js';
import { applicable, applyToKernel, applyToModel, generateSequence, type Op } from './ops.js';
import { describeError, SIM_NOW } from './sequence.js';
import { SparseSimDevice } from './sparse_device.js';
import { findStructures, type Structure, type StructureKind } from './structures.js';

export type Damage = 'bit flip' | 'bit flips' | 'byte' | 'zero block';
export const DAMAGES: readonly Damage[] = ['bit flip', 'bit flips', 'byte', 'zero block'];
export type Ending =
  | 'refused'
  | 'harmless'
  | 'repaired'
  | 'quarantined'
  | 'silent wrong result'
  | 'crash'
  | 'unnamed refusal';

/** A committed pool to damage: its clean device and the model it must equal. */
export interface CommittedPool {
  device: SparseSimDevice;
  model: PoolModel;
  structures: Structure[];
}

export interface TrialResult {
  trial: number;
  damage: Damage;
  kind: StructureKind;
  structure: string;
  ending: Ending;
  /** What happened, for the report of a bad ending. */
  detail: string;
}

/** A refusal must say which structure is damaged. */
const NAMES_STRUCTURE = /superblock|region table|slot|page-table|page table|journal|region "|not a region pool/;
const POOL_BYTES = [256 * 1024, 4 * 1024 * 1024];

const SHAPE: Op[] = [
  { kind: 'create', name: 'a', sizeBytes: 2 * 1024 * 1024 + 1, mode: 0o640, uid: 1, gid: 2 }, // two levels
  { kind: 'write', name: 'a', pages: [0, 511, 512].map((page) => ({ page, from: 0, to: 4096, tag: 1 })) },
  { kind: 'create', name: 'b', sizeBytes: 40_000, mode: 0o600, uid: 1, gid: 2 },
  { kind: 'write', name: 'b', pages: [{ page: 2, from: 100, to: 900, tag: 2 }] },
  { kind: 'create', name: 'gone', sizeBytes: 4096, mode: 0o600, uid: 1, gid: 2 },
  { kind: 'remove', name: 'gone' }, // a removed slot
];

/** Builds a committed pool: a fixed shape (two-level tree, a removed slot) plus seeded random operations. */
export function buildPool(seed: number): CommittedPool {
  const prng = new SimPrng(seed >>> 0);
  const poolBytes = POOL_BYTES[prng.nextBelow(POOL_BYTES.length)] as number;
  const device = SparseSimDevice.create(poolBytes);
  RegionManager.format(device, SIM_NOW);
  const kernel = RegionManager.mount(device, 'pool', { checkInvariants: true });
  const model = new PoolModel(poolBytes);
  const shape = poolBytes >= 4 * 1024 * 1024 ? SHAPE : SHAPE.slice(2);
  const ops = [...shape, ...generateSequence(prng.nextU32(), 8).ops.filter((op) => op.kind !== 'grow')];
  for (const op of ops) {
    if (!applicable(op, model)) continue;
    if (applyToKernel(kernel, model, op, SIM_NOW) === 'done') applyToModel(model, op);
  }
  const clean = device.snapshot();
  return { device: clean, model, structures: findStructures(clean, RegionManager.mount(clean.snapshot(), 'pool')) };
}

/** Damages a copy of the pool as trial `trial` of `seed` says; returns the damaged device and what was hit. */
function damage(pool: CommittedPool, prng: SimPrng): { device: SparseSimDevice; damage: Damage; target: Structure } {
  const target = pool.structures[prng.nextBelow(pool.structures.length)] as Structure;
  const kind = DAMAGES[prng.nextBelow(DAMAGES.length)] as Damage;
  const device = pool.device.snapshot();
  const at = (): number => target.offset + prng.nextBelow(target.length);
  if (kind === 'zero block') {
    const block = target.blocks[prng.nextBelow(target.blocks.length)] as number;
    device.fill(block * BLOCK_BYTES, BLOCK_BYTES, 0);
  } else if (kind === 'byte') {
    const offset = at();
    const old = device.read(offset, 1)[0] as number;
    device.write(offset, Uint8Array.of((old + 1 + prng.nextBelow(255)) & 0xff));
  } else {
    const flips = kind === 'bit flip' ? 1 : 2 + prng.nextBelow(3);
    for (let i = 0; i < flips; i++) {
      const offset = at();
      device.write(offset, Uint8Array.of((device.read(offset, 1)[0] as number) ^ (1 << prng.nextBelow(8))));
    }
  }
  return { device, damage: kind, target };
}

type MountOutcome =
  | { ok: true; difference: string | null; damaged: boolean }
  | { ok: false; corrupt: boolean; message: string };

function mountAndCompare(device: SparseSimDevice, model: PoolModel): MountOutcome {
  try {
    const kernel = RegionManager.mount(device, 'pool');
    return { ok: true, difference: compareWithModel(kernel, model), damaged: kernel.list().some((r) => r.damaged) };
  } catch (error) {
    return { ok: false, corrupt: isRegionError(error, 'CORRUPT'), message: describeError(error) };
  }
}

/** One trial: damage, mount, and if refused, fsck --repair and mount again. */
export function runTrial(pools: CommittedPool[], seed: number, trial: number): TrialResult {
  const prng = new SimPrng((seed + Math.imul(trial + 1, 0x9e3779b9)) >>> 0);
  const pool = pools[trial % pools.length] as CommittedPool;
  const hit = damage(pool, prng);
  const result = (ending: Ending, detail: string): TrialResult =>
    ({ trial, damage: hit.damage, kind: hit.target.kind, structure: hit.target.name, ending, detail });
  const repairCopy = hit.device.snapshot();
  const first = mountAndCompare(hit.device, pool.model);
  if (first.ok) {
    if (first.difference === null) return result('harmless', '');
    return result('silent wrong result', `mounted: ${first.difference}`);
  }
  if (!first.corrupt) return result('crash', `mount: ${first.message}`);
  if (!NAMES_STRUCTURE.test(first.message)) return result('unnamed refusal', first.message);
  try {
    inspectPool(repairCopy, 'pool', true);
  } catch (error) {
    if (!isRegionError(error, 'CORRUPT')) return result('crash', `fsck --repair: ${describeError(error)}`);
    return result('refused', first.message);
  }
  const second = mountAndCompare(repairCopy, pool.model);
  if (!second.ok) {
    return second.corrupt ? result('refused', first.message) : result('crash', `mount after repair: ${second.message}`);
  }
  if (second.difference !== null) return result('silent wrong result', `after fsck --repair: ${second.difference}`);
  return result(second.damaged ? 'quarantined' : 'repaired', first.message);
}

export interface CorruptionSummary {
  trials: number;
  /** ending -> count */
  endings: Map<Ending, number>;
  /** Silent wrong results and other bad endings by "damage / structure kind". */
  bad: Map<string, TrialResult[]>;
}

export const POOLS_PER_CAMPAIGN = 4;

/** The committed pools trials of `seed` damage (trial t damages pool t mod POOLS_PER_CAMPAIGN). */
export function buildPools(seed: number): CommittedPool[] {
  return Array.from({ length: POOLS_PER_CAMPAIGN }, (_, i) => buildPool((seed + i * 7919) >>> 0));
}

/** Runs trials [first, first + count) of `seed`; onTrial sees each result (progress). */
export function runCorruption(
  seed: number, first: number, count: number, onTrial?: (r: TrialResult) => void,
): CorruptionSummary {
  const pools = buildPools(seed);
  const summary: CorruptionSummary = { trials: 0, endings: new Map(), bad: new Map() };
  for (let trial = first; trial < first + count; trial++) {
    const r = runTrial(pools, seed, trial);
    summary.trials++;
    summary.endings.set(r.ending, (summary.endings.get(r.ending) ?? 0) + 1);
    if (isBad(r.ending)) {
      const key = badCategory(r);
      summary.bad.set(key, [...(summary.bad.get(key) ?? []), r]);
    }
    onTrial?.(r);
  }
  return summary;
}

export function isBad(ending: Ending): boolean {
  return ending === 'silent wrong result' || ending === 'crash' || ending === 'unnamed refusal';
}

export function badCategory(r: TrialResult): string {
  return `${r.ending}: ${r.damage} in ${r.kind}`;
}
