// The executable specification of the on-PM invariants (src/kernel/invariants.ts): docs/format.md
// lists the same rules word for word; for every rule, one damage of a sound pool makes fsck (or
// a mounted pool's check) report a problem naming it; and the debug mode stops the kernel at
// the first commit after which a rule no longer holds.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { BLOCK_BYTES, SLOT_BYTES } from '../src/constants.js';
import { isRegionError } from '../src/errors.js';
import { encodeEntry } from '../src/format/entry.js';
import { decodeSlot, encodeSlot, type Slot, SLOT_STATE } from '../src/format/slot.js';
import { decodeSuperblock, type Superblock } from '../src/format/superblock.js';
import { inspectPool } from '../src/kernel/check.js';
import { type Invariant, INVARIANTS } from '../src/kernel/invariants.js';
import { Journal } from '../src/kernel/journal.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { SimDevice } from '../src/pm/sim_device.js';

const NOW = 1_700_000_000_000;
const OWNER = { mode: 0o600, uid: 0, gid: 0 };
const DOC = readFileSync(new URL('../../docs/format.md', import.meta.url), 'utf8');

test('docs/format.md states exactly the invariants the module checks', () => {
  const section = DOC.slice(DOC.indexOf('## Invariants'));
  const stated = Object.fromEntries([...section.matchAll(/^- `([a-z-]+)`: (.+)$/gm)].map((m) => [m[1], m[2]]));
  assert.deepEqual(stated, { ...INVARIANTS });
});

/** A sound pool: a (two levels; pages 0, 511, 512), b (3 pages; page 2), c (1 page), gone (removed). */
function sound(): { image: Uint8Array; kernel: RegionManager; sb: Superblock } {
  const device = new SimDevice({ sizeBytes: 4 * 1024 * 1024 });
  RegionManager.format(device, NOW);
  const kernel = RegionManager.mount(device, 'pool');
  const data = (p: number): { page: number; bytes: Uint8Array } => ({
    page: p,
    bytes: new Uint8Array(BLOCK_BYTES).fill(p + 1),
  });
  const regions = [
    ['a', 2 * 1024 * 1024 + BLOCK_BYTES, [0, 511, 512]],
    ['b', 3 * BLOCK_BYTES, [2]],
    ['c', BLOCK_BYTES, [0]],
  ] as const;
  for (const [name, size, pages] of regions) {
    kernel.create(name, size, OWNER, NOW);
    kernel.commitPages(kernel.lookup(name), pages.map(data), NOW);
  }
  kernel.create('gone', BLOCK_BYTES, OWNER, NOW);
  kernel.remove(kernel.lookup('gone'));
  const result = decodeSuperblock(device.read(0, 128));
  assert.ok(result.ok);
  return { image: device.read(0, device.sizeBytes), kernel, sb: result.superblock };
}

type Pool = ReturnType<typeof sound> & { device: SimDevice };

function word(device: SimDevice, position: number, block: number): void {
  const [lo, hi] = encodeEntry(block, position);
  const view = new DataView(new ArrayBuffer(8));
  view.setUint32(0, lo, true);
  view.setUint32(4, hi, true);
  device.write(position, new Uint8Array(view.buffer));
}

function flip(device: SimDevice, offset: number, bit: number): void {
  device.write(offset, Uint8Array.of((device.read(offset, 1)[0] as number) ^ (1 << bit)));
}

/** Slot `index` (a 0, b 1, c 2, gone 3: one slot block) rewritten with `change`, checksum and all. */
function rewriteSlot(pool: Pool, index: number, change: Partial<Slot>): void {
  const position = pool.kernel.slotPosition(pool.kernel.lookup('a')) + index * SLOT_BYTES;
  const result = decodeSlot(pool.device.read(position, SLOT_BYTES), position);
  assert.ok(result.ok);
  pool.device.write(position, encodeSlot({ ...result.slot, ...change }, position));
}

/** Pool offset of the leaf entry of `page` in region `name`. */
function leaf(pool: Pool, name: string, page: number): number {
  const blocks = pool.kernel.pageTableBlocks(pool.kernel.lookup(name));
  const block = blocks.length === 1 ? blocks[0] : blocks[1 + Math.floor(page / 512)];
  return (block as number) * BLOCK_BYTES + (page % 512) * 8;
}

function dataBlock(pool: Pool, name: string, page: number): number {
  return new DataView(pool.image.buffer, pool.image.byteOffset + leaf(pool, name, page), 8).getUint32(0, true);
}

function newestHalf(pool: Pool): { offset: number; sequence: number; target: number } {
  const journal = new Journal(pool.device, pool.sb.journalStart, pool.sb.journalBlocks, 0);
  const committed = journal.halves().filter((h) => h.record && h.commitWord === h.record.sequence);
  const newest = committed.sort((x, y) => y.commitWord - x.commitWord)[0];
  assert.ok(newest?.record);
  const target = newest.record.words.offsets[0] ?? (newest.record.ranges[0]?.offset as number);
  return { offset: newest.offset, sequence: newest.record.sequence, target };
}

const FREE_BLOCK = 1000; // far above every block the sound pool uses

/** One damage per rule; each must make fsck report a problem naming that rule. */
const DAMAGE: Record<Invariant, (pool: Pool) => void> = {
  'superblock-copies': (p) => flip(p.device, BLOCK_BYTES + 20, 3),
  'format-version': () => {}, // the version 1 fixture, below
  'entry-code': (p) => flip(p.device, leaf(p, 'a', 0) + 6, 1),
  'entry-target': (p) => word(p.device, leaf(p, 'b', 0), p.sb.journalStart),
  'slot-valid': (p) => flip(p.device, p.kernel.slotPosition(p.kernel.lookup('b')) + 130, 0),
  'removed-slot-empty': (p) => rewriteSlot(p, 3, { root: FREE_BLOCK, levels: 1 }),
  'unique-names': (p) => rewriteSlot(p, 3, { state: SLOT_STATE.live, name: 'b', sizeBytes: BLOCK_BYTES, levels: 1 }),
  'tree-depth': (p) => rewriteSlot(p, 1, { levels: 0 }),
  'tree-pages': (p) => word(p.device, leaf(p, 'c', 0) + 8, FREE_BLOCK),
  'single-owner': (p) => word(p.device, leaf(p, 'b', 0), dataBlock(p, 'a', 0)),
  'journal-newest': (p) => {
    const newest = newestHalf(p);
    flip(p.device, newest.offset + 64 + 70, 2); // two bits of the newest committed record
    flip(p.device, newest.offset + 64 + 90, 5);
  },
  'journal-commit-word': (p) => flip(p.device, newestHalf(p).offset + 5, 0),
  'journal-applied': (p) => flip(p.device, newestHalf(p).target + 1, 0),
  'free-map': () => {}, // a mounted pool's check, below
};

for (const rule of Object.keys(INVARIANTS) as Invariant[]) {
  test(`a pool that breaks ${rule} is reported as breaking it`, () => {
    const pool: Pool = { ...sound(), device: new SimDevice({ sizeBytes: BLOCK_BYTES * 16 }) };
    let rules: Invariant[];
    if (rule === 'format-version') {
      const fixture = new URL('../../test/fixtures/images/version1-pool.img.gz', import.meta.url);
      const image = gunzipSync(readFileSync(fixture));
      rules = inspectPool(SimDevice.fromImage(image), 'pool', false).problems.map((p) => p.rule);
    } else if (rule === 'free-map') {
      const device = SimDevice.fromImage(pool.image);
      const kernel = RegionManager.mount(device, 'pool');
      word(device, leaf(pool, 'a', 5), FREE_BLOCK); // behind the kernel's back: a block DRAM thinks is free
      rules = kernel.check().problems.map((p) => p.rule);
    } else {
      pool.device = SimDevice.fromImage(pool.image);
      DAMAGE[rule](pool);
      rules = inspectPool(pool.device, 'pool', false).problems.map((p) => p.rule);
    }
    assert.ok(rules.includes(rule), `reported: ${rules.join(', ') || 'nothing'}`);
  });
}

test('the debug mode stops the kernel at the first commit after which an invariant breaks', () => {
  const { image, kernel: clean } = sound();
  const entry = leaf({ ...sound(), device: SimDevice.fromImage(image), image, kernel: clean } as Pool, 'a', 5);
  for (const checkInvariants of [false, true]) {
    const device = SimDevice.fromImage(image);
    const kernel = RegionManager.mount(device, 'pool', { checkInvariants });
    word(device, entry, FREE_BLOCK);
    const zeros = [{ page: 0, bytes: new Uint8Array(BLOCK_BYTES) }];
    const commit = (): unknown => kernel.commitPages(kernel.lookup('b'), zeros, NOW);
    if (!checkInvariants) {
      commit(); // unchecked, the damage goes unnoticed
      continue;
    }
    assert.throws(commit, (e) => isRegionError(e, 'CORRUPT') && /breaks the invariant free-map/.test(e.message));
    assert.throws(
      () => kernel.list(),
      (e) => isRegionError(e, 'IO') && /free-map/.test(e.message),
      'the kernel stopped',
    );
  }
});
