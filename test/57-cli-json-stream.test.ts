// The CLI's --json documents and its streaming data commands. With --json every change prints
// the object it leaves (mv, resize, chmod: the region; rm: the region it removed; grow: the
// pool), modes print as octal strings, and a failure prints an error document on stdout
// besides its line on stderr, with the exit codes unchanged (1 runtime, 2 usage). `regions
// write` stages a large stdin as it reads it (a file) or piece by piece (a pipe) and commits
// once; `regions read` streams one snapshot, and a pmsync between two of its pieces is BUSY
// rather than a torn copy. A staged write given too much or too little writes nothing.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import type { PoolInfo, RegionInfo } from '../src/api.js';
import { RegionHandle } from '../src/client/region_handle.js';
import { DATA_CHUNK_BYTES } from '../src/constants.js';
import { isRegionError, openPool } from '../src/index.js';
import { base, BIN, cleanUp, MiB, newPool, regions, regionsJson } from './fixtures/regiond-harness.js';

after(cleanUp);

interface ErrorDocument {
  error: { code: string; message: string; exitCode: number };
}

function failure(args: string[], status: number): ErrorDocument {
  const run = regions([...args, '--json']);
  assert.equal(run.status, status, run.stderr);
  const document = JSON.parse(run.stdout.toString()) as ErrorDocument;
  assert.equal(`regions: ${document.error.message}\n`, run.stderr, 'the document says what stderr says');
  assert.equal(document.error.exitCode, status);
  return document;
}

test('--json: each change prints what it made, modes in octal, failures as a document', () => {
  const poolPath = newPool('json');
  const p = ['-p', poolPath];
  const made = regionsJson<RegionInfo & { mode: string }>([...p, 'create', 'a', '--size', '8KiB', '--mode', '0640']);
  assert.equal(made.mode, '0640');
  const moved = regionsJson<RegionInfo>([...p, 'mv', 'a', 'b']);
  assert.deepEqual([moved.name, moved.id, moved.mode], ['b', made.id, '0640']);
  assert.equal(regionsJson<RegionInfo>([...p, 'resize', 'b', '--size', '16KiB']).sizeBytes, 16384);
  assert.equal(regionsJson<RegionInfo>([...p, 'chmod', 'b', '0600']).mode, '0600');
  assert.deepEqual(regionsJson<RegionInfo[]>([...p, 'ls']).map((r) => r.mode), ['0600']);
  const grown = regionsJson<PoolInfo>([...p, 'grow', '--size', '32MiB']);
  assert.deepEqual([grown.capacityBytes, grown.access.socketMode], [32 * MiB, '0600']);
  const removed = regionsJson<RegionInfo>([...p, 'rm', 'b']);
  assert.deepEqual([removed.name, removed.sizeBytes], ['b', 16384]);
  assert.deepEqual(regionsJson<RegionInfo[]>([...p, 'ls']), []);
  assert.equal(failure([...p, 'stat', 'b'], 1).error.code, 'NOT_FOUND');
  assert.equal(failure([...p, 'rm', 'b'], 1).error.code, 'NOT_FOUND');
  assert.equal(failure([...p, 'resize', 'b', '--size', 'lots'], 2).error.code, 'USAGE');
  assert.equal(failure([...p, 'mv', 'only-one'], 2).error.code, 'USAGE');
  assert.equal(regions([...p, 'stat', 'b']).stdout.length, 0, 'without --json a failure prints nothing on stdout');
});

/** `regions ARGS < file`: stdin is the file itself (its length known), not a pipe. */
function regionsFromFile(args: string[], file: string): { status: number | null; stdout: string; stderr: string } {
  const input = fs.openSync(file, 'r');
  try {
    const env = { ...process.env, CI: 'true' };
    const run = spawnSync(process.execPath, [BIN, ...args], { stdio: [input, 'pipe', 'pipe'], env });
    return { status: run.status, stdout: run.stdout.toString(), stderr: run.stderr.toString() };
  } finally {
    fs.closeSync(input);
  }
}

test('regions write streams a large file or pipe into one commit; read streams it back', () => {
  const poolPath = newPool('stream');
  const p = ['-p', poolPath];
  regionsJson([...p, 'create', 'data', '--size', '4MiB']);
  const bytes = randomBytes(3 * DATA_CHUNK_BYTES + 777);
  const file = path.join(base, 'input.bin');
  fs.writeFileSync(file, bytes);
  const fromFile = regionsFromFile([...p, 'write', 'data', '--offset', '4096', '--json'], file);
  assert.equal(fromFile.status, 0, fromFile.stderr);
  const sync = JSON.parse(fromFile.stdout) as { epoch: number; pages: number };
  assert.deepEqual([sync.epoch, sync.pages], [1, Math.ceil(bytes.length / 4096)], 'one pmsync for every page');
  const back = regions([...p, 'read', 'data', '--offset', '4096', '--length', String(bytes.length)]);
  assert.equal(back.status, 0, back.stderr);
  assert.ok(back.stdout.equals(bytes), 'read returns what write stored');
  const reversed = Buffer.from(bytes).reverse();
  const fromPipe = regionsJson<{ epoch: number }>([...p, 'write', 'data'], reversed); // spawnSync's input is a pipe
  assert.equal(fromPipe.epoch, 2);
  const again = regions([...p, 'read', 'data', '--length', String(reversed.length)]);
  assert.ok(again.stdout.equals(reversed), 'the piped input, whole');
  const tooLong = regionsFromFile([...p, 'write', 'data', '--offset', String(2 * MiB)], file);
  assert.equal(tooLong.status, 1);
  assert.match(tooLong.stderr, /^regions: /);
  assert.equal(regionsJson<RegionInfo>([...p, 'stat', 'data']).epoch, 2, 'a write that does not fit commits nothing');
});

test('a region read in pieces is one snapshot, or BUSY when a pmsync lands between pieces', () => {
  const poolPath = newPool('pieces');
  const pool = openPool(poolPath, { mode: 'exclusive' });
  try {
    pool.create('r', { size: 3 * DATA_CHUNK_BYTES });
    const region = pool.open('r');
    assert.ok(region instanceof RegionHandle);
    region.write(0, new Uint8Array(3 * DATA_CHUNK_BYTES).fill(1));
    const whole = [...region.pieces(0, 3 * DATA_CHUNK_BYTES)];
    assert.deepEqual(whole.map((piece) => piece.length), [DATA_CHUNK_BYTES, DATA_CHUNK_BYTES, DATA_CHUNK_BYTES]);
    const pieces = region.pieces(0, 3 * DATA_CHUNK_BYTES);
    assert.equal(pieces.next().value?.[0], 1);
    region.write(DATA_CHUNK_BYTES, Uint8Array.of(2)); // a commit between two pieces
    const torn = (e: unknown): boolean => isRegionError(e, 'BUSY') && /not one snapshot/.test(e.message);
    assert.throws(() => pieces.next(), torn);
  } finally {
    pool.close();
  }
});

test('a staged write given too many or too few bytes writes nothing', () => {
  const poolPath = newPool('staged');
  const pool = openPool(poolPath, { mode: 'exclusive' });
  try {
    pool.create('r', { size: 2 * DATA_CHUNK_BYTES });
    const region = pool.open('r');
    assert.ok(region instanceof RegionHandle);
    const tooMuch = region.stage(0, 10);
    assert.throws(() => tooMuch.append(new Uint8Array(11).fill(9)), (e: unknown) => isRegionError(e, 'INVALID'));
    const tooFew = region.stage(0, DATA_CHUNK_BYTES + 1);
    tooFew.append(new Uint8Array(DATA_CHUNK_BYTES).fill(9));
    const incomplete = (e: unknown): boolean => isRegionError(e, 'INVALID') && /incomplete/.test(e.message);
    assert.throws(() => tooFew.commit(), incomplete);
    assert.equal(region.info().epoch, 0, 'no commit happened');
    assert.ok(region.read(0, DATA_CHUNK_BYTES + 1).every((b) => b === 0));
    const whole = region.stage(0, DATA_CHUNK_BYTES + 1);
    whole.append(new Uint8Array(5).fill(7));
    whole.append(new Uint8Array(DATA_CHUNK_BYTES - 4).fill(7));
    assert.equal(whole.commit().epoch, 1);
    assert.ok(region.read(0, DATA_CHUNK_BYTES + 1).every((b) => b === 7));
  } finally {
    pool.close();
  }
});
