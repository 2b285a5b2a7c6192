// A ratchet on size: every source file of src/, test/, bench/ and native/ (ts, c, h, cc) is at
// most 400 lines, every function at most 70 lines, every line at most 120 columns. What
// already exceeded a limit when the rule came is listed in ALLOWLIST with its measure then;
// the test fails on a new violation or an allowlisted one that grows, and says (as a
// diagnostic) when one has shrunk, so the list only ever gets shorter.
//
// `node dist/test/09-tidy.test.js --print-allowlist` prints the current violations in
// ALLOWLIST's form (after splitting a file, paste it over the list).

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  cFunctions, formatViolation, measureFile, measureTree, parseViolation, tsFunctions, type Violation,
} from './fixtures/tidy.js';

/** dist/test -> the repository */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const ALLOWLIST: readonly string[] = [
  'bench/analysis.ts: 30 lines over 120 columns, widest 472',
  'bench/machine.ts: 4 lines over 120 columns, widest 146',
  'bench/metadata.ts: 5 lines over 120 columns, widest 210',
  'bench/peers.ts: 12 lines over 120 columns, widest 189',
  'bench/peers/common.h: 1 lines over 120 columns, widest 155',
  'bench/peers/pmdk_peer.c: 3 lines over 120 columns, widest 131',
  'bench/plan.ts: 6 lines over 120 columns, widest 189',
  'bench/report.ts: 40 lines over 120 columns, widest 715',
  'bench/run.ts: 3 lines over 120 columns, widest 170',
  'bench/stats.ts: 1 lines over 120 columns, widest 129',
  'bench/suite.ts: 9 lines over 120 columns, widest 157',
  'bench/systems.ts: 17 lines over 120 columns, widest 314',
  'bench/trials/lmdb.ts: 2 lines over 120 columns, widest 143',
  'bench/trials/map.ts: 3 lines over 120 columns, widest 162',
  'bench/trials/metadata.ts: 1 lines over 120 columns, widest 134',
  'bench/trials/mmap.ts: 4 lines over 120 columns, widest 148',
  'bench/trials/mount.ts: 5 lines over 120 columns, widest 226',
  'bench/trials/regions.ts: 4 lines over 120 columns, widest 143',
  'bench/trials/shared.ts: 5 lines over 120 columns, widest 190',
  'bench/trials/sqlite.ts: 2 lines over 120 columns, widest 143',
  'bench/workload.ts: 1 lines over 120 columns, widest 134',
  'native/arch/arch.h: 1 lines over 120 columns, widest 122',
  'src/arch/addon.ts: 5 lines over 120 columns, widest 181',
  'src/cli/commands/bench.ts: 4 lines over 120 columns, widest 221',
  'src/cli/commands/crashtest.ts: 6 lines over 120 columns, widest 171',
  'src/cli/commands/daemon.ts: 7 lines over 120 columns, widest 149',
  'src/cli/commands/data.ts: 3 lines over 120 columns, widest 137',
  'src/cli/commands/pool.ts: 7 lines over 120 columns, widest 157',
  'src/cli/commands/region.ts: 2 lines over 120 columns, widest 130',
  'src/cli/context.ts: 2 lines over 120 columns, widest 145',
  'src/cli/output.ts: 3 lines over 120 columns, widest 129',
  'src/client/connection.ts: 11 lines over 120 columns, widest 325',
  'src/client/launcher.ts: 14 lines over 120 columns, widest 257',
  'src/client/pool.ts: 6 lines over 120 columns, widest 170',
  'src/client/pool_access.ts: 5 lines over 120 columns, widest 178',
  'src/client/pool_handle.ts: 4 lines over 120 columns, widest 131',
  'src/client/reachability.ts: 7 lines over 120 columns, widest 195',
  'src/client/region_handle.ts: 7 lines over 120 columns, widest 178',
  'src/constants.ts: 3 lines over 120 columns, widest 160',
  'src/crashtest/harness.ts: 1 lines over 120 columns, widest 126',
  'src/crashtest/scenarios.ts: 7 lines over 120 columns, widest 164',
  'src/format/le.ts: 1 lines over 120 columns, widest 133',
  'src/format/slot.ts: 4 lines over 120 columns, widest 146',
  'src/format/superblock.ts: 11 lines over 120 columns, widest 202',
  'src/kernel/access.ts: 1 lines over 120 columns, widest 162',
  'src/kernel/allocator.ts: 1 lines over 120 columns, widest 122',
  'src/kernel/journal.ts: 1 lines over 120 columns, widest 145',
  'src/kernel/names.ts: 4 lines over 120 columns, widest 158',
  'src/kernel/permission.ts: 1 lines over 120 columns, widest 196',
  'src/kernel/region_manager.ts: 15 lines over 120 columns, widest 162',
  'src/kernel/region_table.ts: 2 lines over 120 columns, widest 129',
  'src/kernel/superblock_store.ts: 6 lines over 120 columns, widest 147',
  'src/map/control_area.ts: 1 lines over 120 columns, widest 132',
  'src/map/mapping.ts: 4 lines over 120 columns, widest 147',
  'src/map/shared_copy.ts: 5 lines over 120 columns, widest 155',
  'src/pm/device.ts: 3 lines over 120 columns, widest 131',
  'src/pm/file_device.ts: 7 lines over 120 columns, widest 176',
  'src/pm/reserve.ts: 1 lines over 120 columns, widest 128',
  'src/pm/sim_device.ts: 13 lines over 120 columns, widest 152',
  'src/pm/sim_images.ts: 1 lines over 120 columns, widest 126',
  'src/pm/sim_prng.ts: 1 lines over 120 columns, widest 129',
  'src/regiond/regiond.ts: 12 lines over 120 columns, widest 202',
  'src/regiond/server.ts: 15 lines over 120 columns, widest 282',
  'src/regiond/socket_binding.ts: 5 lines over 120 columns, widest 187',
  'src/regiond/starter.ts: 3 lines over 120 columns, widest 163',
  'src/sync/region_lock.ts: 9 lines over 120 columns, widest 184',
  'src/sync/shared_words.ts: 3 lines over 120 columns, widest 149',
  'src/syscall/pool_info.ts: 1 lines over 120 columns, widest 137',
  'src/syscall/staging.ts: 5 lines over 120 columns, widest 200',
  'src/syscall/syscalls.ts: 13 lines over 120 columns, widest 196',
  'src/syscall/working_copy.ts: 10 lines over 120 columns, widest 244',
  'src/util/groups.ts: 1 lines over 120 columns, widest 134',
  'src/util/options.ts: 1 lines over 120 columns, widest 155',
  'src/util/progress.ts: 2 lines over 120 columns, widest 153',
  'src/util/size.ts: 3 lines over 120 columns, widest 132',
  'src/wire/protocol.ts: 18 lines over 120 columns, widest 188',
  'src/wire/socket_path.ts: 3 lines over 120 columns, widest 162',
  'test/01-sim-device.test.ts: 2 lines over 120 columns, widest 152',
  'test/02-native.test.ts: 2 lines over 120 columns, widest 123',
  'test/03-file-device.test.ts: 4 lines over 120 columns, widest 138',
  'test/04-native-tracking.test.ts: 556 lines',
  'test/04-native-tracking.test.ts: 9 lines over 120 columns, widest 144',
  'test/06-native-shootdown.test.ts: 447 lines',
  'test/06-native-shootdown.test.ts: 11 lines over 120 columns, widest 167',
  'test/08-layers.test.ts: 1 lines over 120 columns, widest 121',
  'test/13-hostile.test.ts: 6 lines over 120 columns, widest 164',
  'test/14-limits.test.ts: 2 lines over 120 columns, widest 129',
  'test/20-cli.test.ts: 13 lines over 120 columns, widest 163',
  'test/30-map.test.ts: 11 lines over 120 columns, widest 181',
  'test/31-kill.test.ts: 4 lines over 120 columns, widest 170',
  'test/32-api-modes.test.ts: 8 lines over 120 columns, widest 163',
  'test/35-lifetime-stress.test.ts: 9 lines over 120 columns, widest 161',
  'test/40-regiond.test.ts: 9 lines over 120 columns, widest 170',
  'test/41-protocol-fuzz.test.ts: 21 lines over 120 columns, widest 188',
  'test/41-protocol-fuzz.test.ts: function fuzz: 98 lines',
  'test/42-permissions.test.ts: 5 lines over 120 columns, widest 153',
  'test/43-shared-atomicity.test.ts: 5 lines over 120 columns, widest 193',
  'test/44-trust.test.ts: 8 lines over 120 columns, widest 194',
  'test/45-pool-access.test.ts: 12 lines over 120 columns, widest 198',
  'test/46-regiond-limits.test.ts: 8 lines over 120 columns, widest 172',
  'test/47-regiond-daemon.test.ts: 4 lines over 120 columns, widest 183',
  'test/48-regiond-fail-stop.test.ts: 5 lines over 120 columns, widest 227',
  'test/50-region-lock.test.ts: 6 lines over 120 columns, widest 132',
  'test/51-examples.test.ts: 14 lines over 120 columns, widest 174',
  'test/fixtures/access-runner.ts: 1 lines over 120 columns, widest 178',
  'test/fixtures/lock-worker.ts: 1 lines over 120 columns, widest 154',
  'test/fixtures/native-shootdown-mapper.ts: 2 lines over 120 columns, widest 176',
  'test/fixtures/regiond-client.ts: 3 lines over 120 columns, widest 150',
  'test/fixtures/regiond-harness.ts: 3 lines over 120 columns, widest 142',
  'test/fixtures/second-user.ts: 3 lines over 120 columns, widest 172',
  'test/fixtures/sim-oracle.ts: 3 lines over 120 columns, widest 137',
];

interface Verdict {
  failures: string[];
  notes: string[];
}

/** What the current violations mean against the allowlist. */
export function judge(current: Violation[], allowlist: readonly string[]): Verdict {
  const allowed = new Map<string, Violation>();
  const failures: string[] = [];
  for (const text of allowlist) {
    const entry = parseViolation(text);
    if (entry === null) failures.push(`ALLOWLIST: cannot read '${text}'`);
    else allowed.set(`${entry.kind} ${entry.id}`, entry);
  }
  const notes: string[] = [];
  const now = new Map(current.map((v) => [`${v.kind} ${v.id}`, v]));
  for (const [key, v] of now) {
    const was = allowed.get(key);
    const against = was === undefined ? '' : ` (allowed: ${formatViolation(was)})`;
    const grew = was !== undefined && (v.size > was.size || (v.widest ?? 0) > (was.widest ?? 0));
    if (was === undefined) failures.push(`new: ${formatViolation(v)}`);
    else if (grew) failures.push(`grew: ${formatViolation(v)}${against}`);
    else if (v.size < was.size || (v.widest ?? 0) < (was.widest ?? 0)) {
      notes.push(`shrank: ${formatViolation(v)}${against}; lower it in ALLOWLIST`);
    }
  }
  for (const [key, was] of allowed) {
    if (!now.has(key)) notes.push(`within the limit now: ${formatViolation(was)}; remove it from ALLOWLIST`);
  }
  return { failures, notes };
}

if (process.argv.includes('--print-allowlist')) {
  for (const v of measureTree(root)) process.stdout.write(`  '${formatViolation(v).replace(/'/g, "\\'")}',\n`);
} else {
  test('files, functions and lines are within their limits, or allowlisted and not growing', (t) => {
    const verdict = judge(measureTree(root), ALLOWLIST);
    for (const note of verdict.notes) t.diagnostic(note);
    assert.deepEqual(verdict.failures, [], 'split what grew or is new (or, if it only moved, see --print-allowlist)');
  });

  test('the measures find long functions in TypeScript and C, and the ratchet judges them', () => {
    const body = (n: number): string => Array.from({ length: n }, (_, i) => `  x += ${i}; // }\n`).join('');
    const tsText = `class A {\n  m(): void {\n${body(69)}  }\n}\ntest('a name', () => {\n${body(3)}});\n`;
    assert.deepEqual(tsFunctions('a.ts', tsText), [{ name: 'A > m', lines: 71 }, { name: "test('a name')", lines: 5 }]);
    // braces in directives, literals and comments, a struct, extern "C": one function, f
    const cText = `#define X(a) { a }\nstruct s { int a; };\nextern "C" {\nstatic int\nf(int a) {\n`
      + `  const char *s = "{";\n${body(70)}}\n}\n`;
    assert.deepEqual(cFunctions(cText), [{ name: 'f', lines: 73 }]);
    const found = measureFile('x.c', `${cText}${'y'.repeat(121)}\n`);
    const expected = ['x.c: 1 lines over 120 columns, widest 121', 'x.c: function f: 73 lines'];
    assert.deepEqual(found.map(formatViolation), expected);
    assert.deepEqual(judge(found, ['x.c: function f: 73 lines']).failures, [`new: ${expected[0]}`]);
    assert.match(judge(found, ['x.c: function f: 72 lines']).failures[1] ?? '', /^grew: x\.c: function f: 73 lines/);
    assert.match(judge([], ['x.c: 401 lines']).notes[0] ?? '', /^within the limit now: x\.c: 401 lines/);
  });
}
