// The layouts C and TypeScript share, held to each other: the control area of a shared
// working copy (src/map/control_area.ts is the source of truth, native/registry.h its C
// mirror), and what trackRegister/sharedRegister take (modes, mechanisms, the fault
// budget). native/layout.c reports the C side as TypeScript names -> numbers computed with
// offsetof and sizeof; every name on either side must be on the other with the same value,
// and a failure lists each disagreement by name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addon, CHUNK_BYTES_MAX, type SharedMechanism, type TrackMode } from '../src/arch/addon.js';
import { CACHE_LINE_BYTES, PAGE_BYTES } from '../src/constants.js';
import {
  BITMAP_OFFSET,
  CONTROL_HEADER_BYTES,
  CONTROL_MAGIC,
  CONTROL_VERSION,
  MAPPER_SLOT_BYTES,
  MAPPER_SLOTS,
  MECHANISM_CODE,
  REGISTERED,
  SLOT_WORD,
  slotByteOffset,
  slotWord,
  WORD,
} from '../src/map/control_area.js';
import { SEGV_FAULT_PAGES_MAX } from '../src/map/fault_mechanism.js';

type Layout = Map<string, number>;

// Every TrackMode and SharedMechanism: the compiler checks that each list is complete.
const TRACK_MODES = { segv: true, uffd: true, none: true, readonly: true } satisfies Record<TrackMode, true>;
const SHARED_MECHANISMS = { segv: true, uffd: true, none: true } satisfies Record<SharedMechanism, true>;

// Compared by rule rather than equality: TypeScript asks for at most what C allows.
const BOUNDS = ['TRACK_FAULT_PAGES_MAX'];

function typescriptLayout(): Layout {
  const layout: Layout = new Map<string, number>([
    ['PAGE_BYTES', PAGE_BYTES],
    ['CACHE_LINE_BYTES', CACHE_LINE_BYTES],
    ['CHUNK_BYTES_MAX', CHUNK_BYTES_MAX],
    ['CONTROL_MAGIC', CONTROL_MAGIC],
    ['CONTROL_VERSION', CONTROL_VERSION],
    ['CONTROL_HEADER_BYTES', CONTROL_HEADER_BYTES],
    ['BITMAP_OFFSET', BITMAP_OFFSET],
    ['MAPPER_SLOT_BYTES', MAPPER_SLOT_BYTES],
    ['MAPPER_SLOTS', MAPPER_SLOTS],
    ['slotByteOffset(0)', slotByteOffset(0)],
    ['slotByteOffset(last)', slotByteOffset(MAPPER_SLOTS - 1)],
    // control_area.ts's bitmap is u32 words (bit p%32 of word p/32), C's bytes (bit p%8 of
    // byte p/8): the same bits only on a little-endian CPU.
    ['littleEndian', 1],
  ]);
  const groups: [string, Record<string, number | true>][] = [
    ['WORD', WORD],
    ['SLOT_WORD', SLOT_WORD],
    ['MECHANISM_CODE', MECHANISM_CODE],
    ['REGISTERED', REGISTERED],
    ['TrackMode', TRACK_MODES],
    ['SharedMechanism', SHARED_MECHANISMS],
  ];
  for (const [group, fields] of groups) {
    for (const [name, value] of Object.entries(fields)) layout.set(`${group}.${name}`, value === true ? 1 : value);
  }
  return layout;
}

function nativeLayout(): Layout {
  const layout = addon.layout();
  assert.equal(typeof layout, 'object', 'layout() returns an object');
  const entries = Object.entries(layout);
  for (const [name, value] of entries) assert.equal(typeof value, 'number', `layout().${name} is a number`);
  return new Map(entries.filter(([name]) => !BOUNDS.includes(name)));
}

/** One line per disagreement: a name on one side only, or two values. */
function mismatches(native: Layout, typescript: Layout): string[] {
  const problems: string[] = [];
  for (const [name, value] of typescript) {
    const c = native.get(name);
    if (c === undefined) problems.push(`${name}: TypeScript ${value}, C has none (native/layout.c)`);
    else if (c !== value) problems.push(`${name}: C ${c}, TypeScript ${value}`);
  }
  for (const [name, value] of native) {
    if (!typescript.has(name)) problems.push(`${name}: C ${value}, TypeScript has none`);
  }
  return problems;
}

/** TypeScript's slot-word formula against C's slot offsets, for the first and the last slot. */
function slotWordMismatches(native: Layout): string[] {
  const problems: string[] = [];
  const first = native.get('slotByteOffset(0)') ?? NaN;
  const bytes = native.get('MAPPER_SLOT_BYTES') ?? NaN;
  for (const slot of [0, MAPPER_SLOTS - 1]) {
    for (const [name, field] of Object.entries(SLOT_WORD)) {
      const c = (first + slot * bytes) / 4 + (native.get(`SLOT_WORD.${name}`) ?? NaN);
      const typescript = slotWord(slot, field);
      if (c !== typescript) {
        problems.push(`slotWord(${slot}, SLOT_WORD.${name}): C word ${c}, TypeScript ${typescript}`);
      }
    }
  }
  return problems;
}

test('C and TypeScript agree on every shared constant and offset', () => {
  const native = nativeLayout();
  const problems = [...mismatches(native, typescriptLayout()), ...slotWordMismatches(native)];
  assert.equal(problems.length, 0, `${problems.length} layout mismatch(es):\n  ${problems.join('\n  ')}`);
});

test('the fault budget TypeScript asks for is one the registry accepts', () => {
  const max = addon.layout()['TRACK_FAULT_PAGES_MAX'];
  assert.ok(max !== undefined, 'layout() reports TRACK_FAULT_PAGES_MAX');
  assert.ok(
    SEGV_FAULT_PAGES_MAX >= 1 && SEGV_FAULT_PAGES_MAX <= max,
    `SEGV_FAULT_PAGES_MAX ${SEGV_FAULT_PAGES_MAX} must lie in [1, ${max}] (trackRegister's options.faultPagesMax)`,
  );
});

// The comparison itself must catch a disagreement, or a passing test above proves nothing.
test('a changed, a missing and an extra name are each reported by name', () => {
  const typescript = typescriptLayout();
  const native = new Map(typescript);
  native.set('WORD.releaseSeq', (typescript.get('WORD.releaseSeq') ?? 0) + 1);
  native.delete('MECHANISM_CODE.compare');
  native.set('WORD.extra', 9);
  assert.deepEqual(mismatches(native, typescript).sort(), [
    `MECHANISM_CODE.compare: TypeScript ${MECHANISM_CODE.compare}, C has none (native/layout.c)`,
    `WORD.extra: C 9, TypeScript has none`,
    `WORD.releaseSeq: C ${WORD.releaseSeq + 1}, TypeScript ${WORD.releaseSeq}`,
  ]);
  native.set('SLOT_WORD.ackSeq', SLOT_WORD.ackSeq + 1);
  assert.equal(slotWordMismatches(native).length, 2, 'the ackSeq word of the first and the last slot');
});
