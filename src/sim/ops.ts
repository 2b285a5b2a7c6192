// The operations of a generated sequence: every kernel operation, as plain data (so a failing
// sequence prints, shrinks and replays), a seeded generator that favours the sizes and pages
// where page tables change depth (512 pages = 2 MiB per level boundary, and 1 GiB), and the
// one function that applies an operation to both the kernel and the reference model.

import { BLOCK_BYTES, PAGE_BYTES } from '../constants.js';
import { isRegionError } from '../errors.js';
import type { RegionManager } from '../kernel/region_manager.js';
import { SimPrng } from '../pm/sim_prng.js';
import { PoolModel, shortName } from './model.js';

export type Op =
  | { kind: 'create'; name: string; sizeBytes: number; mode: number; uid: number; gid: number }
  | { kind: 'resize'; name: string; sizeBytes: number }
  | { kind: 'write'; name: string; pages: PageWrite[] }
  | { kind: 'rename'; name: string; to: string }
  | { kind: 'remove'; name: string }
  | { kind: 'chown'; name: string; mode: number; uid: number; gid: number }
  | { kind: 'grow'; sizeBytes: number };

/** Bytes [from, to) of `page` take pattern(tag); the rest of the page keeps its committed bytes. */
export interface PageWrite {
  page: number;
  from: number;
  to: number;
  tag: number;
}

type WriteOp = Extract<Op, { kind: 'write' }>;

export interface Sequence {
  poolBytes: number;
  ops: Op[];
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** The simulated pool never exceeds this (a sparse device: only touched blocks cost memory). */
export const POOL_BYTES_LIMIT = GiB + 64 * MiB;
const POOL_CHOICES = [256 * KiB, 3 * MiB, GiB + 8 * MiB];
const NAMES = ['a', 'b', 'c', 'région-ü', 'n'.repeat(255)];
/** Sizes at and around the page-table level boundaries (512 and 512^2 pages), and small ones. */
const SIZES = [
  1, 100, 4095, 4096, 4097, 3 * 4096 + 7, 64 * KiB,
  511 * 4096, 511 * 4096 + 1, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 513 * 4096, 3 * MiB,
  GiB - 4096, GiB - 1, GiB, GiB + 1, GiB + 4096, GiB + 2 * MiB,
];
/** Pages where page-table blocks begin or end. */
const PAGES = [0, 1, 2, 510, 511, 512, 513, 1023, 1024, 262_143, 262_144, 262_145];

/** A page of bytes derived from (tag, page), so every version of every page differs. */
export function patternBytes(tag: number, page: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = (Math.imul(tag, 0x9e3779b1) + Math.imul(page, 0x85ebca6b) + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function pick<T>(prng: SimPrng, items: readonly T[]): T {
  return items[prng.nextBelow(items.length)] as T;
}

function pagesOf(sizeBytes: number): number {
  return Math.max(1, Math.ceil(sizeBytes / PAGE_BYTES));
}

function chooseSize(prng: SimPrng, capacity: number): number {
  const fitting = SIZES.filter((s) => s <= capacity);
  if (prng.chance(3, 4) && fitting.length > 0) return pick(prng, fitting);
  return 1 + prng.nextBelow(Math.min(capacity, 4 * MiB));
}

function choosePages(prng: SimPrng, sizeBytes: number, tag: number): PageWrite[] {
  const pages = pagesOf(sizeBytes);
  const count = 1 + prng.nextBelow(5);
  const chosen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const near = prng.chance(1, 2) ? pick(prng, [...PAGES, pages - 1, pages - 2]) : prng.nextBelow(pages);
    if (near >= 0 && near < pages) chosen.add(near);
  }
  return [...chosen].map((page) => {
    if (prng.chance(1, 2)) return { page, from: 0, to: PAGE_BYTES, tag };
    const from = prng.nextBelow(PAGE_BYTES);
    return { page, from, to: from + 1 + prng.nextBelow(PAGE_BYTES - from), tag };
  });
}

function owner(prng: SimPrng): { mode: number; uid: number; gid: number } {
  return { mode: prng.nextBelow(0o1000), uid: prng.nextBelow(3) * 1000, gid: prng.nextBelow(3) * 100 };
}

/** One operation that makes sense for the model's state (the kernel may still say NO_SPACE). */
function generateOp(prng: SimPrng, model: PoolModel, tag: number): Op {
  const names = [...model.regions.keys()];
  const free = NAMES.filter((n) => !model.regions.has(n));
  const roll = prng.nextBelow(100);
  const name = names.length > 0 ? pick(prng, names) : '';
  if (names.length === 0 || (roll < 14 && free.length > 0)) {
    return { kind: 'create', name: pick(prng, free), sizeBytes: chooseSize(prng, model.capacityBytes), ...owner(prng) };
  }
  if (roll < 30) return { kind: 'resize', name, sizeBytes: chooseSize(prng, model.capacityBytes) };
  if (roll < 70) return { kind: 'write', name, pages: choosePages(prng, model.get(name).sizeBytes, tag) };
  if (roll < 78) return { kind: 'rename', name, to: free.length > 0 ? pick(prng, free) : pick(prng, names) };
  if (roll < 86) return { kind: 'remove', name };
  if (roll < 94 || model.capacityBytes >= POOL_BYTES_LIMIT) return { kind: 'chown', name, ...owner(prng) };
  const step = pick(prng, [BLOCK_BYTES, 64 * KiB, MiB, model.capacityBytes, GiB]);
  return { kind: 'grow', sizeBytes: Math.min(POOL_BYTES_LIMIT, model.capacityBytes + step) };
}

/** The sequence a seed stands for: its pool size and `length` operations. */
export function generateSequence(seed: number, length: number): Sequence {
  const prng = new SimPrng(seed);
  const poolBytes = pick(prng, POOL_CHOICES);
  const ops: Op[] = [];
  const model = new PoolModel(poolBytes);
  for (let i = 0; i < length; i++) {
    const op = generateOp(prng, model, seed * 64 + i + 1);
    ops.push(op);
    applyToModel(model, op);
  }
  return { poolBytes, ops };
}

/** Can the operation run on this state? (A shortened sequence skips those that cannot.) */
export function applicable(op: Op, model: PoolModel): boolean {
  if (op.kind === 'grow') return op.sizeBytes >= model.capacityBytes;
  if (op.kind === 'create') return !model.regions.has(op.name) && op.sizeBytes <= model.capacityBytes;
  if (!model.regions.has(op.name)) return false;
  if (op.kind === 'resize') return op.sizeBytes <= model.capacityBytes;
  if (op.kind === 'rename') return !model.regions.has(op.to);
  if (op.kind === 'write') return op.pages.every((w) => w.page < pagesOf(model.get(op.name).sizeBytes));
  return true;
}

/** The full pages a write commits: the committed page patched, bytes past the end zero (as a working copy's). */
export function writeBytes(model: PoolModel, op: WriteOp): { page: number; bytes: Uint8Array }[] {
  const size = model.get(op.name).sizeBytes;
  return op.pages.map(({ page, from, to, tag }) => {
    const bytes = model.page(op.name, page).slice();
    bytes.set(patternBytes(tag, page, to - from), from);
    const end = size - page * PAGE_BYTES;
    if (end < PAGE_BYTES) bytes.fill(0, Math.max(0, end));
    return { page, bytes };
  });
}

/** Applies op to the model only. */
export function applyToModel(model: PoolModel, op: Op): void {
  switch (op.kind) {
    case 'create': return model.create(op.name, op.sizeBytes, op);
    case 'resize': return model.resize(op.name, op.sizeBytes);
    case 'write': return model.commit(op.name, writeBytes(model, op));
    case 'rename': return model.rename(op.name, op.to);
    case 'remove': return model.remove(op.name);
    case 'chown': return void Object.assign(model.get(op.name), { mode: op.mode, uid: op.uid, gid: op.gid });
    case 'grow': model.capacityBytes = op.sizeBytes;
  }
}

/**
 * Applies op to the kernel. Returns 'done', or 'refused' when the kernel refused it in a way
 * the model cannot foresee and that must change nothing: NO_SPACE (the pool is full), or
 * INVALID from a grow too small to hold a moved journal.
 */
export function applyToKernel(kernel: RegionManager, model: PoolModel, op: Op, now: number): 'done' | 'refused' {
  try {
    switch (op.kind) {
      case 'create': kernel.create(op.name, op.sizeBytes, op, now); break;
      case 'resize': kernel.resize(kernel.lookup(op.name), op.sizeBytes, now); break;
      case 'write': kernel.commitPages(kernel.lookup(op.name), writeBytes(model, op), now); break;
      case 'rename': kernel.rename(kernel.lookup(op.name), op.to, now); break;
      case 'remove': kernel.remove(kernel.lookup(op.name)); break;
      case 'chown': kernel.setOwner(kernel.lookup(op.name), { mode: op.mode, uid: op.uid, gid: op.gid }, now); break;
      case 'grow': kernel.grow(op.sizeBytes); break;
    }
  } catch (error) {
    if (isRegionError(error, 'NO_SPACE') || (op.kind === 'grow' && isRegionError(error, 'INVALID'))) return 'refused';
    throw error;
  }
  return 'done';
}

function describeWrite(w: PageWrite): string {
  return `${w.page}[${w.from},${w.to})#${w.tag}`;
}

/** One line per operation, for failure reports (pages as page[from,to)#tag). */
export function describeOp(op: Op): string {
  const name = shortName;
  switch (op.kind) {
    case 'create': return `create ${name(op.name)} ${op.sizeBytes} mode ${op.mode.toString(8)} ${op.uid}:${op.gid}`;
    case 'resize': return `resize ${name(op.name)} ${op.sizeBytes}`;
    case 'write': return `write ${name(op.name)} ${op.pages.map(describeWrite).join(' ')}`;
    case 'rename': return `rename ${name(op.name)} -> ${name(op.to)}`;
    case 'remove': return `remove ${name(op.name)}`;
    case 'chown': return `chown ${name(op.name)} mode ${op.mode.toString(8)} ${op.uid}:${op.gid}`;
    case 'grow': return `grow pool to ${op.sizeBytes}`;
  }
}
