// The scenarios `regions crashtest` and the test suite run: every metadata operation and the
// pmsync shapes that stress the journal (one page, a few, many, holes, a growing page table,
// back-to-back records reusing both journal halves).

import type { RegionManager } from '../kernel/region_manager.js';
import { FIXED_NOW, type CrashScenario } from './harness.js';

const POOL_BYTES = 256 * 1024; // 64 blocks: small images, quick mounts
const OWNER = { mode: 0o640, uid: 1000, gid: 1000 };

/** A page of bytes derived from (tag, page) so every version of every page differs. */
export function pattern(tag: number, page: number): Uint8Array {
  const bytes = new Uint8Array(4096);
  let x = (tag * 0x9e3779b1 + page * 0x85ebca6b + 1) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function write(kernel: RegionManager, name: string, tag: number, pages: number[]): void {
  kernel.commitPages(kernel.lookup(name), pages.map((page) => ({ page, bytes: pattern(tag, page) })), FIXED_NOW + tag);
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

function scenario(name: string, setup: (k: RegionManager) => void, ...steps: ((k: RegionManager) => void)[]): CrashScenario {
  return { name, poolBytes: POOL_BYTES, setup, steps };
}

function large(base: CrashScenario, factor = 4): CrashScenario {
  return { ...base, poolBytes: factor * POOL_BYTES };
}

const none = (): void => {};
const withData = (k: RegionManager): void => {
  k.create('a', 64 * 1024, OWNER, FIXED_NOW);
  write(k, 'a', 1, [0, 1, 5, 15]);
  k.create('b', 8192, OWNER, FIXED_NOW);
};

export const METADATA_SCENARIOS: CrashScenario[] = [
  scenario('create (first region: new table blocks)', none, (k) => void k.create('alpha', 10_000, OWNER, FIXED_NOW)),
  scenario('create (existing slot block)', withData, (k) => void k.create('c', 4096, OWNER, FIXED_NOW)),
  scenario('create (reuses a removed slot)', withData, (k) => k.remove(k.lookup('b')), (k) => void k.create('d', 1, OWNER, FIXED_NOW)),
  scenario('remove (region with data)', withData, (k) => k.remove(k.lookup('a'))),
  scenario('rename', withData, (k) => k.rename(k.lookup('a'), 'renamed-é', FIXED_NOW)),
  scenario('set owner and mode', withData, (k) => k.setOwner(k.lookup('a'), { mode: 0o600, uid: 7, gid: 8 }, FIXED_NOW)),
  large(scenario('resize grow (page table gains a level)', withData, (k) => k.resize(k.lookup('a'), 3 * 1024 * 1024, FIXED_NOW)), 16),
  scenario('resize shrink (frees pages, zeroes the tail)', withData, (k) => k.resize(k.lookup('a'), 4096 + 100, FIXED_NOW)),
  scenario('resize shrink (root becomes a hole)', withData, (k) => k.resize(k.lookup('a'), 100, FIXED_NOW)),
  scenario('grow pool (same journal)', withData, (k) => k.grow(POOL_BYTES * 2)),
  scenario('grow pool (journal moves)', withData, (k) => k.grow(POOL_BYTES * 8), (k) => write(k, 'a', 9, [2, 3])),
  scenario('set pool access, then again', withData, (k) => k.setAccess({ socketMode: 0o660, group: 1000 }), (k) => k.setAccess({ socketMode: 0o666, group: null })),
];

export const PMSYNC_SCENARIOS: CrashScenario[] = [
  scenario('pmsync 1 page into a hole (new page table)', (k) => void k.create('r', 64 * 1024, OWNER, FIXED_NOW), (k) => write(k, 'r', 2, [3])),
  scenario('pmsync 2 pages over existing ones', withData, (k) => write(k, 'a', 2, [0, 1])),
  large(scenario('pmsync 64 pages (holes and existing)', (k) => {
    k.create('big', 64 * 4096, OWNER, FIXED_NOW);
    write(k, 'big', 1, range(0, 16));
  }, (k) => write(k, 'big', 2, range(0, 64)))),
  large(scenario('pmsync grows the page table (new leaf)', (k) => {
    k.create('wide', 3 * 1024 * 1024, OWNER, FIXED_NOW);
    write(k, 'wide', 1, [0]);
  }, (k) => write(k, 'wide', 2, [700, 701])), 16),
  scenario('back-to-back pmsyncs reuse both journal halves', withData,
    (k) => write(k, 'a', 2, [0]),
    (k) => write(k, 'a', 3, [0, 2]),
    (k) => write(k, 'b', 4, [1]),
    (k) => write(k, 'a', 5, [0])),
];
